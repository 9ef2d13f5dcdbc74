"""The run store: status transitions, metric history, bundles, crash recovery, owners, quotas, expiry, thumbnails."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pipelines.core.events import Done, Preview, Progress
from pipelines.core.runner import Run
from pipelines.core.runs import OPERATOR, NoRoom, RunStore


@dataclass(frozen=True)
class Config:
    out_dir: Path | None = None


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


def test_owners_scope_reads_and_the_operator_sees_all(tmp_path):
    store = RunStore(tmp_path)
    a = store.start("inspect", {}, "cpu", owner="session:a")
    b = store.start("inspect", {}, "cpu", owner="session:b")
    cli = store.start("inspect", {}, "cpu")
    assert [r.id for r in store.list(owner="session:a")] == [a]
    assert {r.id for r in store.list()} == {a, b, cli}
    assert store.get(cli).owner == OPERATOR
    with pytest.raises(KeyError) as theirs:
        store.get(b, owner="session:a")
    with pytest.raises(KeyError) as missing:
        store.get("nope", owner="session:a")
    assert str(theirs.value).replace(b, "X") == str(missing.value).replace("nope", "X")
    with pytest.raises(KeyError):
        store.bundle(b, tmp_path / "z", owner="session:a")


def test_an_old_store_gains_owners_and_its_runs_belong_to_the_operator(tmp_path):
    old = sqlite3.connect(tmp_path / "runs.sqlite")
    old.executescript(
        "CREATE TABLE runs (id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, preset TEXT, source TEXT NOT NULL,"
        " config TEXT NOT NULL, versions TEXT NOT NULL, device TEXT NOT NULL, status TEXT NOT NULL,"
        " started_at REAL NOT NULL, ended_at REAL, heartbeat_at REAL NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,"
        " out_dir TEXT, metrics TEXT NOT NULL DEFAULT '{}', artifacts TEXT NOT NULL DEFAULT '{}', error TEXT);"
        "INSERT INTO runs VALUES ('r1','inspect',NULL,'ui','{}','{}','cpu','done',1,2,2,'h',1,NULL,'{}','{}',NULL);"
    )
    old.commit()
    old.close()
    store = RunStore(tmp_path)
    assert store.get("r1").owner == OPERATOR and store.list(owner="session:x") == []


def test_quota_and_full_disk_refuse_with_a_sentence(tmp_path, monkeypatch):
    store = RunStore(tmp_path, quota_mb=1.0)
    out = tmp_path / "runs" / "r"
    out.mkdir(parents=True)
    (out / "big.bin").write_bytes(b"0" * (2 * 2**20))
    rid = store.start("inspect", {}, "cpu", owner="session:a", out_dir=out)
    store.finish(rid, "done")
    with pytest.raises(NoRoom, match="Your runs' files take 2 MB of the 1 MB"):
        store.start("inspect", {}, "cpu", owner="session:a")
    store.start("inspect", {}, "cpu", owner="session:b")  # another visitor is not held back
    store.start("inspect", {}, "cpu")  # nor the operator
    full = shutil._ntuple_diskusage(100 * 2**20, 100 * 2**20 - 2**20, 2**20)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: full)
    store.min_free_mb = 50
    with pytest.raises(NoRoom, match="disk is nearly full"):
        store.start("inspect", {}, "cpu")


def test_expiry_removes_visitors_run_folders_and_keeps_records(tmp_path):
    store = RunStore(tmp_path)
    folders = {}
    for owner in ("session:a", OPERATOR):
        out = tmp_path / "runs" / owner.replace(":", "-")
        out.mkdir(parents=True)
        (out / "mesh.glb").write_bytes(b"glb")
        rid = store.start("inspect", {}, "cpu", owner=owner, out_dir=out)
        store.finish(rid, "done", artifacts={"glb": out / "mesh.glb"})
        folders[owner] = (rid, out)
    assert store.expire(3600) == 0  # nothing is old yet
    assert store.expire(3600, now=time.time() + 7200) == 1
    rid, out = folders["session:a"]
    assert not out.exists() and store.get(rid).artifacts == {} and store.get(rid).status == "done"
    assert folders[OPERATOR][1].is_dir()


def test_a_run_that_raises_half_way_is_failed_with_its_message(tmp_path):
    store = RunStore(tmp_path)

    def broken(cfg):
        yield Progress(1, 3, {"loss": 1.0})
        raise RuntimeError("the GPU caught fire")

    run = Run("inspect", broken, Config(), store, tmp_path / "runs", owner="session:a")
    with pytest.raises(RuntimeError):
        list(run)
    rec = store.get(run.id)
    assert rec.status == "failed" and rec.error == "RuntimeError: the GPU caught fire" and rec.owner == "session:a"
    assert store.history(run.id) == [(1, "loss", 1.0)]


def test_done_runs_get_a_thumbnail_of_their_last_preview(tmp_path):
    store = RunStore(tmp_path)

    def pictured(cfg):
        yield Preview(1, image=np.full((64, 32, 3), 200, np.uint8))
        yield Done({"loss": 0.5})

    run = Run("inspect", pictured, Config(), store, tmp_path / "runs")
    list(run)
    thumb = store.get(run.id).thumbnail
    assert thumb and Path(thumb).is_file() and Path(thumb).parent == tmp_path / "runs" / run.id
