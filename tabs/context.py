"""What every tab is handed: data dir, run store, device, limits, who the visitor is, per-session folders, stop
flags, and the publishing of run outputs to the browser under names that cannot be guessed."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pipelines.core.runs import RunStore

SECRET_NAME = ".secret"
"""The data dir's key for session folder names (created once, readable by the owner only, never served)."""


def data_secret(data_dir: Path) -> bytes:
    """The data dir's secret key, created on first use."""
    path = data_dir / SECRET_NAME
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def request_user(request: Any) -> str | None:
    """The logged-in user's name under `--auth`, else None."""
    return getattr(request, "username", None) or None


def request_session(request: Any) -> str:
    """The browser session's hash (a gradio_client Client has its own), or "anonymous" without a request."""
    return str(getattr(request, "session_hash", None) or "anonymous")


@dataclass
class AppContext:
    """Shared app state. Tabs read settings from here; nothing global lives elsewhere.

    Owners: a run started from the app belongs to the logged-in user under `--auth`, else to the browser session;
    the Runs tab shows a visitor only their own runs unless `shared_runs`. Files a visitor gets are copies in their
    session folder, named by a keyed hash of the session (`session_dir`), which is all the app serves of the data dir.
    """

    data_dir: Path
    device: torch.device
    store: RunStore
    models_dir: Path | None = None
    max_upload_mb: float = 200.0
    session_max_age_s: float = 24 * 3600
    shared_runs: bool = False
    expire_s: float | None = 72 * 3600
    _stops: dict[tuple[str, str], threading.Event] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _secret: bytes = b""

    def __post_init__(self) -> None:
        if not self._secret:
            self._secret = data_secret(self.data_dir)

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def sessions_dir(self) -> Path:
        """The only part of the data dir the app may serve: one folder per session, under a keyed name."""
        return self.data_dir / "sessions"

    # -- who is asking -----------------------------------------------------------------------------------------
    def owner(self, request: Any) -> str:
        """Who a run started by `request` belongs to: "user:<name>" under --auth, else "session:<hash>"."""
        user = request_user(request)
        return f"user:{user}" if user else f"session:{request_session(request)}"

    def viewer(self, request: Any) -> str | None:
        """Whose runs `request` may see: its owner, or None (everyone's) with --shared-runs."""
        return None if self.shared_runs else self.owner(request)

    # -- files -------------------------------------------------------------------------------------------------
    def session_key(self, session_hash: str | None) -> str:
        """The folder name of a session: a keyed hash, so knowing a session's hash does not give its folder."""
        message = (session_hash or "anonymous").encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def session_dir(self, session_hash: str | None) -> Path:
        """A folder of this browser session's scratch files (uploads, viewer files, published outputs)."""
        path = self.sessions_dir / self.session_key(session_hash)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def publish(self, value: Any, request: Any) -> Any:
        """`value` with every path to a file under the runs folder replaced by a copy in the session's folder
        (lists, tuples and Gradio update dicts are walked); anything else is returned as it is."""
        if isinstance(value, (list, tuple)):
            return type(value)(self.publish(v, request) for v in value)
        if isinstance(value, dict) and value.get("__type__") == "update" and "value" in value:
            return {**value, "value": self.publish(value["value"], request)}
        if not isinstance(value, (str, Path)) or len(str(value)) > 4096:
            return value
        src = Path(value)
        try:
            inside = src.is_file() and src.resolve().is_relative_to(self.runs_dir.resolve())
        except OSError:
            inside = False
        if not inside:
            return value
        # The same file published twice (a thumbnail listed at each refresh) lands in the same unguessable folder.
        stamp = f"{src.resolve()}:{src.stat().st_mtime_ns}".encode()
        token = hmac.new(self._secret, stamp, hashlib.sha256).hexdigest()[:24]
        dest = self.session_dir(request_session(request)) / "out" / token / src.name
        if dest.is_file():
            return str(dest) if isinstance(value, str) else dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dest)  # same file system: no copy
        except OSError:
            shutil.copyfile(src, dest)
        return str(dest) if isinstance(value, str) else dest

    def publish_all(self, updates: dict[Any, Any], request: Any) -> dict[Any, Any]:
        """A dict of Gradio updates with `publish` applied to each value."""
        return {key: self.publish(value, request) for key, value in updates.items()}

    # -- stops and clean-up ------------------------------------------------------------------------------------
    def stop_flag(self, session_hash: str | None, tab: str) -> threading.Event:
        """The Stop flag of one tab in one session (a run checks it at every event)."""
        key = (session_hash or "anonymous", tab)
        with self._lock:
            return self._stops.setdefault(key, threading.Event())

    def end_session(self, session_hash: str | None) -> None:
        """Stops the session's runs and removes its scratch folder (run outputs stay in runs/)."""
        with self._lock:
            for key, flag in list(self._stops.items()):
                if key[0] == (session_hash or "anonymous"):
                    flag.set()
                    del self._stops[key]
        if session_hash:
            shutil.rmtree(self.session_dir(session_hash), ignore_errors=True)

    def clean_old_sessions(self) -> int:
        """Removes session folders untouched for longer than `session_max_age_s`; returns how many."""
        if not self.sessions_dir.is_dir():
            return 0
        cutoff = time.time() - self.session_max_age_s
        removed = 0
        for path in self.sessions_dir.iterdir():
            if path.is_dir() and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        return removed

    def expire_old(self) -> tuple[int, int]:
        """Old session folders and expired visitors' run folders removed now: (sessions, runs)."""
        runs = 0 if self.expire_s is None else self.store.expire(self.expire_s)
        return self.clean_old_sessions(), runs
