"""Pose benchmark on the CPU: steps per second at the book's settings and at the quick preset, and how long the quick
preset takes to land within 5° from a 30° start (plus the quick tracking run), with 2 and 1 torch threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THREADS = (2, 1)


def _steps_per_second(size: int, k: int, detail: int, backend: str, steps: int) -> float:
    """Silhouette-loss steps (render, loss, backward, Adam) per second on the CPU."""
    import torch

    from pipelines import pose

    device = torch.device("cpu")
    mesh, _ = pose.load_mesh((), Path("."), detail, device)
    scene = pose.Scene(mesh, device)
    s = pose.SoftSettings(size, 1e-4, 1e-4, k, backend)
    truth = pose.spherical_to_position(2.7, 15.0, 50.0)[None]
    with torch.no_grad():
        target = scene.silhouette(truth, s)
    position = pose.turn(truth[0], 30.0, torch.Generator().manual_seed(0))[None].requires_grad_(True)
    optimizer = torch.optim.Adam([position], lr=0.05)

    def step() -> None:
        loss = ((scene.silhouette(position, s) - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t0)


def _quick_run(name: str) -> dict:
    import dataclasses

    from pipelines import pose, pose_track

    module = pose if name == "pose" else pose_track
    with tempfile.TemporaryDirectory() as tmp:
        cfg = dataclasses.replace(module.Config.quick(), out_dir=Path(tmp), device="cpu", videos=())
        t0 = time.perf_counter()
        first_within = None
        done = None
        for event in module.run(cfg):
            losses = getattr(event, "losses", {})
            if first_within is None and losses.get("error_deg", 99.0) < 5.0:
                first_within = time.perf_counter() - t0
            if type(event).__name__ == "Done":
                done = event
        total = time.perf_counter() - t0
    return {"time_to_5deg_s": first_within, "total_s": total, **done.metrics}


def measure(threads: int) -> dict:
    """Everything, in this process, with `threads` torch threads."""
    import torch

    torch.set_num_threads(threads)
    out = {"threads": threads}
    # the book: 256 px, 100 faces per pixel, sigma 1e-4, the toy cow at detail 2 (8,960 faces; the book's cow has 5,856)
    out["book_pytorch3d_steps_per_s"] = _steps_per_second(256, 100, 2, "pytorch3d", 2)
    out["book_torch_steps_per_s"] = _steps_per_second(256, 100, 2, "torch", 3)
    # the quick preset: detail 1 (2,240 faces), 16 faces per pixel, 64 px then 128 px
    out["quick64_torch_steps_per_s"] = _steps_per_second(64, 16, 1, "torch", 10)
    out["quick128_torch_steps_per_s"] = _steps_per_second(128, 16, 1, "torch", 10)
    out["quick128_pytorch3d_steps_per_s"] = _steps_per_second(128, 16, 1, "pytorch3d", 3)
    out["pose_quick"] = _quick_run("pose")
    out["track_quick"] = _quick_run("pose-track")
    return out


def _child(threads: int) -> dict:
    code = f"import json; from bench.pose import measure; print('RESULT ' + json.dumps(measure({threads})))"
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"benchmark child failed: {proc.stderr[-2000:]}")


def main() -> None:
    print(f"CPU cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}", flush=True)
    results = [_child(n) for n in THREADS]
    rows = [
        ("book 256 px, K=100, PyTorch3D rasteriser (torch fragments on the CPU)", "book_pytorch3d_steps_per_s"),
        ("book 256 px, K=100, torch rasteriser", "book_torch_steps_per_s"),
        ("quick 64 px, K=16, torch rasteriser", "quick64_torch_steps_per_s"),
        ("quick 128 px, K=16, torch rasteriser", "quick128_torch_steps_per_s"),
        ("quick 128 px, K=16, PyTorch3D rasteriser (torch fragments on the CPU)", "quick128_pytorch3d_steps_per_s"),
    ]
    header = "| pose, CPU | " + " | ".join(f"{r['threads']} thread(s)" for r in results) + " |"
    print(header)
    print("|" + "---|" * (len(results) + 1))
    for label, key in rows:
        print(f"| {label}: steps/s | " + " | ".join(f"{r[key]:.2f}" for r in results) + " |")
    for label, key in (
        ("pose quick: time to within 5° of a 30° start", "time_to_5deg_s"),
        ("pose quick: whole run", "total_s"),
    ):
        print(f"| {label} (s) | " + " | ".join(f"{r['pose_quick'][key]:.1f}" for r in results) + " |")
    print(
        "| pose quick: final error (°) / steps | "
        + " | ".join(f"{r['pose_quick']['error_deg']:.2f} / {r['pose_quick']['steps']:.0f}" for r in results)
        + " |"
    )
    print(
        "| tracking quick (24 frames): whole run (s) | "
        + " | ".join(f"{r['track_quick']['total_s']:.1f}" for r in results)
        + " |"
    )
    print(
        "| tracking quick: max error (°) | "
        + " | ".join(f"{r['track_quick']['max_error_deg']:.2f}" for r in results)
        + " |"
    )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(json.dumps(results))
