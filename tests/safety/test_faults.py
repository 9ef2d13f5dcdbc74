"""Faults: the app started as a Hugging Face Space would start it, killed with SIGKILL mid-run and restarted; a run
that fails half-way; a data dir that cannot hold runs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

import app
from pipelines.core import paths
from pipelines.core.runs import RunStore
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def space_env(port: int) -> dict[str, str]:
    """The environment a Gradio Space gets (https://huggingface.co/docs/hub/spaces-config-reference), no flags."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STUDIO_", "GRADIO_"))}
    env.update(
        GRADIO_SERVER_NAME="0.0.0.0",
        GRADIO_SERVER_PORT=str(port),
        SPACE_ID="studio/3d-deep-learning-studio",
        SPACE_AUTHOR_NAME="studio",
        SPACE_REPO_NAME="3d-deep-learning-studio",
        SYSTEM="spaces",
        GRADIO_ANALYTICS_ENABLED="False",
        OMP_NUM_THREADS="1",
    )
    return env


def test_as_a_space_then_killed_mid_run_and_restarted(tmp_path):
    port = free_port()
    log = (tmp_path / "app.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")], cwd=tmp_path, env=space_env(port), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        client = wait_for(lambda: _client(url, proc), 120, "the app to serve")
        _, report = client.predict(api_name="/health")
        assert report["device"]
        client.submit(preset="quick", api_name="/volume")  # about a minute on a CPU: long enough to be killed
        data = tmp_path / "data"  # a Space has no flags: the default data dir under the working directory
        running = wait_for(lambda: RunStore(data).list(status="running"), 60, "the run to start")
        time.sleep(1.0)  # mid-run
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    restarted = app.make_context(data_dir=data, device="cpu")  # what `python app.py` does first
    assert restarted.store.recovered == 1
    record = restarted.store.get(running[0].id)
    assert record.status == "failed" and "Interrupted" in record.error and record.ended_at is not None
    # Partial outputs stay in the run folder (for the operator; they expire with the run's other files), and are
    # never handed out: an interrupted run has no artifacts.
    assert record.out_dir and record.artifacts == {}


def _client(url: str, proc: subprocess.Popen) -> Client | None:
    if proc.poll() is not None:
        raise AssertionError(f"the app exited with {proc.returncode}")
    try:
        return Client(url, verbose=False)
    except Exception:  # noqa: BLE001 - not serving yet
        return None


def test_a_run_that_fails_half_way_is_recorded_and_the_app_keeps_serving(safe_app, visitor_a, tmp_path):
    bad = tmp_path / "half.ply"
    good = (ROOT / "assets" / "torus_binary.ply").read_bytes()
    bad.write_bytes(good[: len(good) // 2])  # a header that promises more than the file holds
    with pytest.raises(AppError) as err:
        visitor_a.predict(mesh_files=handle_file(str(bad)), surface_points=100, api_name="/inspect")
    assert "Traceback" not in str(err.value)
    failed = [r for r in safe_app.ctx.store.list(status="failed") if r.config["files"][0].endswith("half.ply")]
    assert failed and failed[0].error
    _, report = visitor_a.predict(api_name="/health")
    assert report["device"]


def test_a_data_dir_in_the_way_is_a_sentence_at_start(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as exit_:
        app.main(["--data-dir", str(blocker / "data")])
    assert "cannot be created" in str(exit_.value) and "--data-dir" in str(exit_.value)


def test_an_unwritable_data_dir_is_a_sentence_at_start(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    if os.geteuid() != 0:  # root writes through permissions: there the failure is simulated
        data.chmod(0o500)
    else:

        def refuse(path, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(paths, "open", refuse, raising=False)
    try:
        with pytest.raises(SystemExit) as exit_:
            app.main(["--data-dir", str(data)])
    finally:
        data.chmod(0o700)
    assert "is not writable" in str(exit_.value) and "Permission denied" in str(exit_.value)


def test_a_full_disk_is_a_sentence_at_start(tmp_path, monkeypatch):
    nearly_full = shutil._ntuple_diskusage(10 * 2**30, 10 * 2**30 - 100 * 2**20, 100 * 2**20)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: nearly_full)
    with pytest.raises(SystemExit) as exit_:
        app.main(["--data-dir", str(tmp_path / "data"), "--min-free-mb", "500"])
    assert "nearly full: 100 MB free" in str(exit_.value)
