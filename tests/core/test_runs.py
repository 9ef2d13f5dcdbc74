"""The run store: status transitions, metric history, bundles, and crash recovery."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile

import pytest

from pipelines.core.runs import RunStore


def test_transitions_and_history(tmp_path):
    store = RunStore(tmp_path)
    rid = store.start("inspect", {"a": 1}, "cpu", preset="tiny", source="ui")
    assert store.get(rid).status == "running"
    store.log_metrics(rid, [(1, "loss", 2.0), (2, "loss", 1.0), (2, "psnr", 20.0)])
    store.finish(rid, "done", metrics={"loss": 1.0}, artifacts={"mesh": tmp_path / "m.ply"})
    rec = store.get(rid)
    assert rec.status == "done" and rec.metrics == {"loss": 1.0} and rec.duration_s >= 0
    assert rec.config == {"a": 1} and "torch" in rec.versions
    assert store.history(rid, "loss") == [(1, "loss", 2.0), (2, "loss", 1.0)]
    assert store.metric_names() == ["loss", "psnr"]
    # a finished run cannot be finished again, nor with a bad status
    store.finish(rid, "failed", error="late")
    assert store.get(rid).status == "done"
    with pytest.raises(ValueError):
        store.finish(rid, "running")


def test_filters_and_persistence(tmp_path):
    store = RunStore(tmp_path)
    a = store.start("inspect", {}, "cpu")
    b = store.start("other", {}, "cpu")
    store.finish(a, "done")
    store.finish(b, "stopped")
    store.close()
    again = RunStore(tmp_path)  # survives a restart
    assert [r.id for r in again.list(pipeline="inspect")] == [a]
    assert [r.id for r in again.list(status="stopped")] == [b]
    assert len(again.list()) == 2


def test_bundle_contents(tmp_path):
    store = RunStore(tmp_path)
    art = tmp_path / "artifact.txt"
    art.write_text("hello")
    rid = store.start("inspect", {"x": 2}, "cpu")
    store.log_metrics(rid, [(0, "loss", 3.0)])
    store.finish(rid, "done", metrics={"loss": 3.0}, artifacts={"text": art})
    with zipfile.ZipFile(store.bundle(rid, tmp_path / "b")) as zf:
        names = set(zf.namelist())
        assert {"run.json", "config.json", "metrics.csv", "artifacts/artifact.txt"} <= names
        assert json.loads(zf.read("config.json")) == {"x": 2}
        assert zf.read("metrics.csv").decode().splitlines()[1] == "0,loss,3.0"


def test_killed_run_is_marked_failed_at_next_start(tmp_path):
    # A child process starts a run, logs a metric and is killed with SIGKILL before finishing it.
    code = textwrap.dedent(
        f"""
        import os, signal
        from pipelines.core.runs import RunStore
        s = RunStore({str(tmp_path)!r})
        rid = s.start("inspect", {{}}, "cpu")
        s.log_metrics(rid, [(1, "loss", 1.0)])
        print(rid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9
    rid = proc.stdout.strip()
    store = RunStore(tmp_path)
    assert store.recovered == 1
    rec = store.get(rid)
    assert rec.status == "failed" and "Interrupted" in rec.error
    assert store.history(rid) == [(1, "loss", 1.0)]  # what was recorded is kept


def test_live_run_of_another_process_is_not_marked_failed(tmp_path):
    store = RunStore(tmp_path)
    rid = store.start("inspect", {}, "cpu")  # this process is alive
    assert RunStore(tmp_path).recovered == 0
    assert store.get(rid).status == "running"
