"""The run store: every pipeline run, from the UI or the CLI, recorded in SQLite under the data dir."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import sqlite3
import threading
import time
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.core.config import to_jsonable

STATUSES = ("running", "done", "stopped", "failed")
OPERATOR = "operator"
"""The owner of CLI runs and of runs recorded before runs had owners; the operator sees every run."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    preset TEXT,
    source TEXT NOT NULL,
    config TEXT NOT NULL,
    versions TEXT NOT NULL,
    device TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    heartbeat_at REAL NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    out_dir TEXT,
    metrics TEXT NOT NULL DEFAULT '{}',
    artifacts TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    owner TEXT NOT NULL DEFAULT 'operator',
    thumbnail TEXT
);
CREATE TABLE IF NOT EXISTS metric_history (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    t REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metric_history_run ON metric_history(run_id, name, step);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);
"""
# Columns added after the first release, with their SQL type: an older runs.sqlite gains them at open (old rows
# belong to the operator).
_ADDED_COLUMNS = {"owner": "TEXT NOT NULL DEFAULT 'operator'", "thumbnail": "TEXT"}
_COLUMNS = (
    "id, pipeline, preset, source, config, versions, device, status, started_at, ended_at, out_dir, metrics,"
    " artifacts, error, owner, thumbnail"
)


class NoRoom(ValueError):
    """A run refused before it starts because the visitor's quota or the disk is full (a user error)."""


@dataclass(frozen=True)
class RunRecord:
    """One row of the `runs` table, decoded."""

    id: str
    pipeline: str
    preset: str | None
    source: str
    config: dict[str, Any]
    versions: dict[str, str]
    device: str
    status: str
    started_at: float
    ended_at: float | None
    out_dir: str | None
    metrics: dict[str, Any]
    artifacts: dict[str, str]
    error: str | None
    owner: str = OPERATOR
    thumbnail: str | None = None

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def software_versions() -> dict[str, str]:
    """Versions of the libraries a run depends on (imported lazily: gradio is not needed here)."""
    import platform

    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    try:
        import pytorch3d

        versions["pytorch3d"] = pytorch3d.__version__
    except Exception:  # noqa: BLE001 - a broken install is reported, not fatal here
        versions["pytorch3d"] = "unavailable"
    return versions


class RunStore:
    """SQLite-backed record of runs. Safe to share between threads of one process (one lock).

    Every run has an `owner` (a visitor's name or browser session, or `OPERATOR`); readers pass `owner` to see only
    that owner's runs (None: all runs, for the operator). `quota_mb` caps the disk a non-operator owner's run folders
    may take, and `min_free_mb` keeps that much of the disk free: `start` refuses a run with `NoRoom` otherwise.
    """

    def __init__(self, data_dir: str | Path, *, quota_mb: float | None = None, min_free_mb: float = 0.0) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "runs.sqlite"
        self.quota_mb = quota_mb
        self.min_free_mb = min_free_mb
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._migrate()
        self.recovered = self.mark_orphans_failed()

    def _migrate(self) -> None:
        have = {row[1] for row in self._db.execute("PRAGMA table_info(runs)").fetchall()}
        for name, sql_type in _ADDED_COLUMNS.items():
            if name not in have:
                self._db.execute(f"ALTER TABLE runs ADD COLUMN {name} {sql_type}")
        self._db.execute("CREATE INDEX IF NOT EXISTS runs_owner ON runs(owner, started_at)")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing -------------------------------------------------------------------------------
    def start(
        self,
        pipeline: str,
        config: dict[str, Any],
        device: str,
        *,
        preset: str | None = None,
        source: str = "cli",
        out_dir: Path | None = None,
        run_id: str | None = None,
        owner: str = OPERATOR,
    ) -> str:
        """Records a new running run and returns its id; `NoRoom` (before anything is written) when the owner's
        quota or the disk is full."""
        self.check_room(owner)
        run_id = run_id or new_run_id(pipeline)
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO runs (id, pipeline, preset, source, config, versions, device, status,"
                " started_at, heartbeat_at, host, pid, out_dir, owner) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    pipeline,
                    preset,
                    source,
                    json.dumps(config, sort_keys=True),
                    json.dumps(software_versions()),
                    device,
                    "running",
                    now,
                    now,
                    socket.gethostname(),
                    os.getpid(),
                    None if out_dir is None else str(out_dir),
                    owner,
                ),
            )
        return run_id

    def check_room(self, owner: str) -> None:
        """Raises `NoRoom` with a sentence when the disk is nearly full or `owner` has used up their quota."""
        free_mb = shutil.disk_usage(self.data_dir).free / 2**20
        if free_mb < self.min_free_mb:
            raise NoRoom(
                f"The studio's disk is nearly full ({free_mb:.0f} MB free, {self.min_free_mb:.0f} MB kept free): "
                "no new run can start until the operator frees space or old outputs expire."
            )
        if owner == OPERATOR or not self.quota_mb:
            return
        used_mb = self.usage_bytes(owner) / 2**20
        if used_mb >= self.quota_mb:
            raise NoRoom(
                f"Your runs' files take {used_mb:.0f} MB of the {self.quota_mb:.0f} MB each visitor may use here: "
                "new runs start again when older outputs expire."
            )

    def usage_bytes(self, owner: str) -> int:
        """Bytes on disk of the run folders of `owner`'s runs (only folders inside the data dir count)."""
        with self._lock:
            rows = self._db.execute("SELECT out_dir FROM runs WHERE owner=? AND out_dir IS NOT NULL", (owner,))
            folders = [Path(r[0]) for r in rows.fetchall()]
        root = self.data_dir.resolve()
        total = 0
        for folder in folders:
            if folder.is_dir() and folder.resolve().is_relative_to(root):
                total += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())
        return total

    def set_thumbnail(self, run_id: str, path: Path | str) -> None:
        with self._lock:
            self._db.execute("UPDATE runs SET thumbnail=? WHERE id=?", (str(path), run_id))

    def expire(self, max_age_s: float, now: float | None = None) -> int:
        """Removes the run folders (uploads and outputs) of visitors' runs that ended more than `max_age_s` ago;
        their records stay, without artifacts. The operator's runs are kept. Returns how many folders went."""
        cutoff = (time.time() if now is None else now) - max_age_s
        with self._lock:
            rows = self._db.execute(
                "SELECT id, out_dir FROM runs WHERE owner<>? AND status<>'running' AND ended_at<? AND out_dir IS NOT NULL",
                (OPERATOR, cutoff),
            ).fetchall()
        root = (self.data_dir / "runs").resolve()
        removed = 0
        for run_id, out_dir in rows:
            folder = Path(out_dir)
            if folder.is_dir() and folder.resolve().is_relative_to(root):
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
            with self._lock:
                self._db.execute("UPDATE runs SET out_dir=NULL, artifacts='{}', thumbnail=NULL WHERE id=?", (run_id,))
        return removed

    def log_metrics(self, run_id: str, rows: Iterable[tuple[int, str, float]]) -> None:
        """Append (step, name, value) rows to the metric history; non-finite values are kept as NULL-free NaN."""
        now = time.time()
        data = [(run_id, int(s), str(n), float(v), now) for s, n, v in rows]
        if not data:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO metric_history VALUES (?,?,?,?,?)", data)
            self._db.execute("UPDATE runs SET heartbeat_at=? WHERE id=?", (now, run_id))
            self._db.execute("COMMIT")

    def finish(
        self,
        run_id: str,
        status: str,
        *,
        metrics: dict[str, Any] | None = None,
        artifacts: dict[str, str | Path] | None = None,
        error: str | None = None,
    ) -> None:
        if status not in STATUSES or status == "running":
            raise ValueError(f"Cannot finish a run with status {status!r}.")

        with self._lock:
            self._db.execute(
                "UPDATE runs SET status=?, ended_at=?, metrics=?, artifacts=?, error=? WHERE id=? AND status='running'",
                (
                    status,
                    time.time(),
                    json.dumps(to_jsonable(metrics or {})),
                    json.dumps({k: str(v) for k, v in (artifacts or {}).items()}),
                    error,
                    run_id,
                ),
            )

    def mark_orphans_failed(self) -> int:
        """Runs left `running` by a process that no longer exists are marked failed. Returns how many."""
        host = socket.gethostname()
        with self._lock:
            rows = self._db.execute("SELECT id, host, pid, heartbeat_at FROM runs WHERE status='running'").fetchall()
            dead = [
                rid
                for rid, rhost, pid, beat in rows
                if (rhost == host and not _pid_alive(pid)) or (rhost != host and time.time() - beat > 3600)
            ]
            for rid in dead:
                self._db.execute(
                    "UPDATE runs SET status='failed', ended_at=heartbeat_at,"
                    " error='Interrupted: the process running it ended without finishing it (crash or kill).'"
                    " WHERE id=?",
                    (rid,),
                )
        return len(dead)

    def delete(self, run_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM runs WHERE id=?", (run_id,))

    # -- reading -------------------------------------------------------------------------------
    def get(self, run_id: str, owner: str | None = None) -> RunRecord:
        """The run `run_id`; with `owner`, only if it is theirs (another owner's run is missing, as an unknown id)."""
        if owner is None:
            rows = self._select("WHERE id=?", (run_id,))
        else:
            rows = self._select("WHERE id=? AND owner=?", (run_id, owner))
        if not rows:
            raise KeyError(f"No run with id {run_id!r}.")
        return rows[0]

    def list(
        self,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int = 500,
        owner: str | None = None,
    ) -> list[RunRecord]:
        """The newest runs first, filtered by pipeline, status and owner (None: any)."""
        clauses, params = [], []
        if owner is not None:
            clauses.append("owner=?")
            params.append(owner)
        if pipeline:
            clauses.append("pipeline=?")
            params.append(pipeline)
        if status:
            clauses.append("status=?")
            params.append(status)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._select(f"{where} ORDER BY started_at DESC LIMIT ?", (*params, int(limit)))

    def history(self, run_id: str, name: str | None = None) -> list[tuple[int, str, float]]:
        sql = "SELECT step, name, value FROM metric_history WHERE run_id=?"
        params: tuple = (run_id,)
        if name:
            sql += " AND name=?"
            params = (run_id, name)
        with self._lock:
            return [tuple(r) for r in self._db.execute(sql + " ORDER BY step, rowid", params).fetchall()]

    def metric_names(self, run_ids: Iterable[str] | None = None) -> list[str]:
        with self._lock:
            if run_ids is None:
                rows = self._db.execute("SELECT DISTINCT name FROM metric_history").fetchall()
            else:
                ids = list(run_ids)
                marks = ",".join("?" * len(ids)) or "''"
                rows = self._db.execute(
                    f"SELECT DISTINCT name FROM metric_history WHERE run_id IN ({marks})", ids
                ).fetchall()
        return sorted(r[0] for r in rows)

    def _select(self, tail: str, params: tuple) -> list[RunRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM runs {tail}", params).fetchall()
        return [
            RunRecord(
                id=r[0],
                pipeline=r[1],
                preset=r[2],
                source=r[3],
                config=json.loads(r[4]),
                versions=json.loads(r[5]),
                device=r[6],
                status=r[7],
                started_at=r[8],
                ended_at=r[9],
                out_dir=r[10],
                metrics=json.loads(r[11]),
                artifacts=json.loads(r[12]),
                error=r[13],
                owner=r[14],
                thumbnail=r[15],
            )
            for r in rows
        ]

    # -- bundles -------------------------------------------------------------------------------
    def metrics_csv(self, run_id: str) -> str:
        """The metric history as CSV text: step,name,value."""
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["step", "name", "value"])
        writer.writerows(self.history(run_id))
        return buf.getvalue()

    def bundle(self, run_id: str, dest_dir: Path, owner: str | None = None) -> Path:
        """A zip with run.json (the record), config.json, metrics.csv and the run's artifacts (KeyError when the run
        is not `owner`'s, as for an unknown id)."""
        rec = self.get(run_id, owner)
        dest_dir.mkdir(parents=True, exist_ok=True)
        out = dest_dir / f"{run_id}.zip"
        record = {k: getattr(rec, k) for k in rec.__dataclass_fields__}
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("run.json", json.dumps(record, indent=2, default=str))
            zf.writestr("config.json", json.dumps(rec.config, indent=2))
            zf.writestr("metrics.csv", self.metrics_csv(run_id))
            for name, path in rec.artifacts.items():
                p = Path(path)
                if p.is_file():
                    zf.write(p, f"artifacts/{p.name}")
                elif p.is_dir():
                    for sub in sorted(p.rglob("*")):
                        if sub.is_file():
                            zf.write(sub, f"artifacts/{name}/{sub.relative_to(p)}")
        return out


def new_run_id(pipeline: str) -> str:
    """Sortable and readable: 20261124-233015-inspect-3fa2c1."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{pipeline}-{uuid.uuid4().hex[:6]}"


def default_data_dir() -> Path:
    """`$STUDIO_DATA_DIR`, else `./data` (the app's `--data-dir` and the CLI's override it)."""
    return Path(os.environ.get("STUDIO_DATA_DIR", "data"))
