"""What every tab is handed: data dir, run store, device, limits and per-session folders and stop flags."""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pipelines.core.runs import RunStore


@dataclass
class AppContext:
    """Shared app state. Tabs read settings from here; nothing global lives elsewhere."""

    data_dir: Path
    device: torch.device
    store: RunStore
    models_dir: Path | None = None
    max_upload_mb: float = 200.0
    session_max_age_s: float = 24 * 3600
    _stops: dict[tuple[str, str], threading.Event] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def sessions_dir(self) -> Path:
        return self.data_dir / "sessions"

    def session_dir(self, session_hash: str | None) -> Path:
        """A folder of this browser session's scratch files (uploads, viewer files)."""
        safe = "".join(c for c in (session_hash or "anonymous") if c.isalnum() or c in "-_")[:64] or "anonymous"
        path = self.sessions_dir / safe
        path.mkdir(parents=True, exist_ok=True)
        return path

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
