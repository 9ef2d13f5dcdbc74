"""Runs a pipeline generator while recording it in the run store (shared by the CLI and the app)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pipelines.core.config import to_jsonable
from pipelines.core.events import Done, Event, Progress
from pipelines.core.runs import RunStore, new_run_id


class Run:
    """One recorded run of `run_fn(cfg)` (a pipeline's `run`) under the registry key `name`. Iterate it for the
    pipeline's events; closing the iterator stops the pipeline.

    The run's artifacts go to `runs_dir/<run id>/` unless the config names an `out_dir`.
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
            )
        pending: list[tuple[int, str, float]] = []
        last_flush = time.monotonic()
        self.status = "running"
        final = "failed"
        try:
            for event in self.run_fn(self.cfg):
                if isinstance(event, Progress) and event.losses:
                    pending.extend((event.step, k, float(v)) for k, v in event.losses.items())
                    if store is not None and time.monotonic() - last_flush > self.flush_every_s:
                        store.log_metrics(self.id, pending)
                        pending, last_flush = [], time.monotonic()
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
