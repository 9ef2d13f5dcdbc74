"""Load benchmark: the app started as `python app.py` in its own process, and 8 concurrent gradio_client visitors in
bounded loops across tabs (inspect, render, a tiny training run, a run stopped mid-way, the runs list). Prints p50/p95
latency and queue wait per endpoint, the server's peak RSS, and checks that every visitor got only their own runs and
that nothing is left running.

`python -m bench load`; `STUDIO_LOAD_VISITORS` (8), `STUDIO_LOAD_ROUNDS` (2) and `STUDIO_LOAD_DEVICE` (cpu) change
the visitors, the rounds each makes and the app's device.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TORUS = ROOT / "assets" / "torus_binary.ply"


@dataclass
class Call:
    endpoint: str
    latency_s: float
    queue_s: float
    ok: bool
    error: str = ""


@dataclass
class Visitor:
    index: int
    calls: list[Call] = field(default_factory=list)
    run_ids: set[str] = field(default_factory=set)
    listed: set[str] = field(default_factory=set)
    session: str = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(visitor: Visitor, client: Any, endpoint: str, stop_after_s: float | None = None, **kwargs: Any) -> Any:
    """Submits a call, notes when it leaves the queue (status PROCESSING) and when it ends; with `stop_after_s`,
    presses the tab's Stop that long after it starts processing."""
    from gradio_client.utils import Status

    start = time.monotonic()
    job = client.submit(**kwargs, api_name=endpoint)
    processing = None
    while not job.done():
        if processing is None and job.status().code in (Status.PROCESSING, Status.ITERATING, Status.PROGRESS):
            processing = time.monotonic()
        if stop_after_s is not None and processing is not None and time.monotonic() - processing > stop_after_s:
            client.predict(api_name=f"{endpoint}_stop")
            stop_after_s = None
        time.sleep(0.05)
    end = time.monotonic()
    try:
        result = job.result()
        ok, error = True, ""
    except Exception as err:  # noqa: BLE001 - a failed call is counted, and its message kept
        result, ok, error = None, False, str(err)[:200]
    queue = (processing or end) - start
    visitor.calls.append(Call(endpoint, end - start, queue, ok, error))
    return result


def run_visitor(url: str, visitor: Visitor, rounds: int) -> None:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    visitor.session = client.session_hash
    for _ in range(rounds):
        inspected = timed(visitor, client, "/inspect", mesh_files=handle_file(str(TORUS)), surface_points=500)
        if inspected:
            visitor.run_ids.add(inspected[1]["run_id"])
        timed(visitor, client, "/render", mesh_name="torus")
        fitted = timed(visitor, client, "/mesh_fit", preset="tiny")
        if fitted:
            visitor.run_ids.add(_run_id(fitted))
        timed(visitor, client, "/nerf", stop_after_s=0.5, preset="quick")  # stopped mid-run
        listed = timed(visitor, client, "/runs_list", pipeline="all", status="all")
        if listed:
            rows = listed[0]["data"] if isinstance(listed[0], dict) else listed[0]
            visitor.listed = {str(row[7]) for row in rows}


def _run_id(result: Any) -> str:
    return next((r["run_id"] for r in result if isinstance(r, dict) and "run_id" in r), "")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def wait_until_serving(url: str, proc: subprocess.Popen, timeout_s: float = 180) -> None:
    from gradio_client import Client

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}")
        try:
            Client(url, verbose=False)
            return
        except Exception:  # noqa: BLE001 - not serving yet
            time.sleep(1.0)
    raise RuntimeError("the app did not start serving")


def report(visitors: list[Visitor], rss_mb: float, wall_s: float, data_dir: Path) -> dict:
    """Prints the table and the checks; returns every figure."""
    from pipelines.core.runs import RunStore

    calls = [c for v in visitors for c in v.calls]
    print(f"\n{len(visitors)} visitors, {len(calls)} calls in {wall_s:.0f} s; server peak RSS {rss_mb:.0f} MB\n")
    print("| endpoint | calls | failed | p50 latency (s) | p95 latency (s) | p50 queue wait (s) | p95 queue wait (s) |")
    print("|---|---|---|---|---|---|---|")
    figures: dict[str, Any] = {"visitors": len(visitors), "wall_s": wall_s, "peak_rss_mb": rss_mb, "endpoints": {}}
    for endpoint in sorted({c.endpoint for c in calls}):
        mine = [c for c in calls if c.endpoint == endpoint]
        lat, queue = [c.latency_s for c in mine], [c.queue_s for c in mine]
        row = {
            "calls": len(mine),
            "failed": sum(not c.ok for c in mine),
            "p50_s": percentile(lat, 0.5),
            "p95_s": percentile(lat, 0.95),
            "queue_p50_s": percentile(queue, 0.5),
            "queue_p95_s": percentile(queue, 0.95),
            "errors": sorted({c.error for c in mine if c.error})[:3],
        }
        figures["endpoints"][endpoint] = row
        print(
            f"| `{endpoint}` | {row['calls']} | {row['failed']} | {row['p50_s']:.2f} | {row['p95_s']:.2f} "
            f"| {row['queue_p50_s']:.2f} | {row['queue_p95_s']:.2f} |"
        )
    store = RunStore(data_dir)
    running = [r.id for r in store.list(status="running")]
    leaks = {v.index: sorted(v.listed - v.run_ids - _own(store, v)) for v in visitors}
    missing = {v.index: sorted(v.run_ids - v.listed) for v in visitors}
    figures.update(
        left_running=running,
        foreign_runs_listed=leaks,
        own_runs_not_listed=missing,
        runs_by_status={s: len(store.list(status=s)) for s in ("done", "stopped", "failed", "running")},
    )
    print(f"\nruns left running: {len(running)}; runs by status: {figures['runs_by_status']}")
    print(f"visitors shown another visitor's run: {sum(bool(x) for x in leaks.values())} of {len(visitors)}")
    print(f"visitors missing one of their own runs in their list: {sum(bool(x) for x in missing.values())}")
    return figures


def _own(store: Any, visitor: Visitor) -> set[str]:
    return {r.id for r in store.list(owner=f"session:{visitor.session}")}


def main() -> None:
    n_visitors = int(os.environ.get("STUDIO_LOAD_VISITORS", "8"))
    rounds = int(os.environ.get("STUDIO_LOAD_ROUNDS", "2"))
    device = os.environ.get("STUDIO_LOAD_DEVICE", "cpu")
    data_dir = Path(tempfile.mkdtemp(prefix="studio-load-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [sys.executable, str(ROOT / "app.py"), "--data-dir", str(data_dir), "--port", str(port)]
    log = open(data_dir / "app.log", "w")  # noqa: SIM115 - open for the server's whole life
    proc = subprocess.Popen([*command, "--device", device], env=env, stdout=log, stderr=subprocess.STDOUT)
    print(f"CPU cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}", flush=True)
    try:
        wait_until_serving(url, proc)
        visitors = [Visitor(i) for i in range(n_visitors)]
        start = time.monotonic()
        threads = [threading.Thread(target=run_visitor, args=(url, v, rounds)) for v in visitors]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - start
        time.sleep(1.0)  # the last stopped run's record is written as its generator closes
        figures = report(visitors, peak_rss_mb(proc.pid), wall, data_dir)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    print(f"app log: {data_dir / 'app.log'}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(json.dumps(figures, default=str))
