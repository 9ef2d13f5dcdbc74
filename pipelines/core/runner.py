"""Runs a pipeline generator while recording it in the run store (shared by the CLI and the app)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pipelines.core.config import to_jsonable
from pipelines.core.events import Done, Event, Preview, Progress
from pipelines.core.runs import OPERATOR, RunStore, new_run_id

THUMBNAIL_PX = 256
"""The longer side of a run's thumbnail (the Runs tab's history)."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")


def save_thumbnail(out_dir: Path, image: np.ndarray | None, files: dict[str, Path]) -> Path | None:
    """A small PNG of the run's last preview (else its first image file) in `out_dir`; None when there is neither."""
    try:
        if image is not None:
            picture = Image.fromarray(image)
        else:
            first = next((Path(p) for p in files.values() if Path(p).suffix.lower() in IMAGE_SUFFIXES), None)
            if first is None or not first.is_file():
                return None
            with Image.open(first) as opened:
                picture = opened.convert("RGB")
        picture.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "thumbnail.png"
        picture.save(path)
        return path
    except (OSError, ValueError):  # a thumbnail is a nicety: a full disk or odd image must not fail the run
        return None


class Run:
    """One recorded run of `run_fn(cfg)` (a pipeline's `run`) under the registry key `name`. Iterate it for the
    pipeline's events; closing the iterator stops the pipeline.

    The run's artifacts go to `runs_dir/<run id>/` unless the config names an `out_dir`. The run belongs to
    `owner` (a visitor, or the operator for the CLI); the store refuses to start it (`NoRoom`, a ValueError) when the
    owner's quota or the disk is full. At the end a thumbnail of the last preview is saved beside the artifacts.
    """

    def __init__(
        self,
        name: str,
        run_fn: Callable[[Any], Iterator[Event]],
        cfg: Any,
        store: RunStore | None,
        runs_dir: Path,
        *,
        preset: str | None = None,
        source: str = "cli",
        owner: str = OPERATOR,
        flush_every_s: float = 1.0,
    ) -> None:
        self.name = name
        self.run_fn = run_fn
        self.store = store
        self.id = new_run_id(name)
        if getattr(cfg, "out_dir", None) is None:
            cfg = dataclasses.replace(cfg, out_dir=Path(runs_dir) / self.id)
        self.cfg = cfg
        self.preset = preset
        self.source = source
        self.owner = owner
        self.flush_every_s = flush_every_s
        self.status = "pending"
        self.done: Done | None = None
        self.error: str | None = None

    def __iter__(self) -> Iterator[Event]:
        return self._events()

    def _events(self) -> Iterator[Event]:
        store = self.store
        if store is not None:
            store.start(
                self.name,
                to_jsonable(self.cfg),
                str(getattr(self.cfg, "device", "cpu")),
                preset=self.preset,
                source=self.source,
                out_dir=self.cfg.out_dir,
                run_id=self.id,
                owner=self.owner,
            )
        pending: list[tuple[int, str, float]] = []
        last_flush = time.monotonic()
        self.status = "running"
        final = "failed"
        last_image: np.ndarray | None = None
        try:
            for event in self.run_fn(self.cfg):
                if isinstance(event, Progress) and event.losses:
                    pending.extend((event.step, k, float(v)) for k, v in event.losses.items())
                    if store is not None and time.monotonic() - last_flush > self.flush_every_s:
                        store.log_metrics(self.id, pending)
                        pending, last_flush = [], time.monotonic()
                elif isinstance(event, Preview) and event.image is not None:
                    last_image = event.image
                elif isinstance(event, Done):
                    self.done = event
                yield event
            final = "done" if self.done is not None else "failed"
            if self.done is None:
                self.error = "The pipeline ended without a result."
        except GeneratorExit:
            # Closed by the consumer: after Done the result is complete; before it, the run was stopped.
            final = "done" if self.done is not None else "stopped"
            raise
        except Exception as err:
            self.error = f"{type(err).__name__}: {err}"
            raise
        finally:
            self.status = final
            if store is not None:
                store.log_metrics(self.id, pending)
                done = self.done
                store.finish(
                    self.id,
                    final,
                    metrics=None if done is None else done.metrics,
                    artifacts=None if done is None else done.files,
                    error=self.error,
                )
                if final == "done":
                    thumb = save_thumbnail(Path(self.cfg.out_dir), last_image, done.files if done else {})
                    if thumb is not None:
                        store.set_thumbnail(self.id, thumb)
