"""Folds a pipeline run's events into throttled Gradio updates: progress bar with ETA, preview, curves, files."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

import pipelines
from pipelines.core.events import Done, Preview, Progress
from pipelines.core.runner import Run

from .context import AppContext
from .headline import write_metrics_json
from .plots import curves_figure
from .widgets import RunPanel, format_seconds, progress_html

__all__ = ["curves_figure", "stream"]  # curves_figure lives in plots; tabs and tests still import it from here

Updates = dict[Any, Any]


@dataclass
class _Folded:
    """What a run has reported so far: step, total, latest message, curves, and updates not yet sent."""

    step: int = 0
    total: int = 0
    message: str = "starting"
    history: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    pending: Updates = field(default_factory=dict)
    picture: Any = None
    """The latest preview image: the run's last message carries it again, so an API caller always gets it."""

    def progress(self, event: Progress) -> None:
        self.step, self.total, self.message = event.step, event.total, event.message or self.message
        for key, value in event.losses.items():
            steps, values = self.history.setdefault(key, ([], []))
            steps.append(event.step)
            values.append(float(value))

    def preview(self, event: Preview, panel: RunPanel, on_preview: Callable[[Preview], Updates] | None) -> None:
        if panel.preview is not None and event.image is not None:
            self.pending[panel.preview] = self.picture = event.image
        if event.caption:
            self.message = event.caption
        if on_preview is not None:
            self.pending.update(on_preview(event))


def _done_updates(
    folded: _Folded,
    event: Done,
    panel: RunPanel,
    run: Run,
    elapsed: float,
    on_done: Callable[[Done], Updates] | None,
) -> Updates:
    total = folded.total or 1
    metrics = {"run_id": run.id, **event.metrics}
    files = [str(p) for p in event.files.values()]
    saved = write_metrics_json(metrics, getattr(run.cfg, "out_dir", None))
    if saved is not None and str(saved) not in files:
        files.append(str(saved))
    updates: Updates = {
        panel.status: progress_html(total, total, f"Done in {format_seconds(elapsed)}. Run {run.id}.", 0.0, "done"),
        panel.metrics: metrics,
        panel.files: files or None,
    }
    if panel.card is not None:
        updates[panel.card] = {"run_id": run.id, "pipeline": run.name, "elapsed_s": elapsed}
    if panel.curves is not None and folded.history:
        updates[panel.curves] = curves_figure(folded.history)
    if panel.preview is not None and folded.picture is not None:
        updates[panel.preview] = folded.picture
    updates.update(folded.pending)
    if on_done is not None:
        updates.update(on_done(event))
    return updates


def stream(
    ctx: AppContext,
    panel: RunPanel,
    name: str,
    cfg: Any,
    *,
    preset: str | None,
    request: gr.Request | None,
    tab: str,
    on_preview: Callable[[Preview], Updates] | None = None,
    on_done: Callable[[Done], Updates] | None = None,
    min_interval_s: float = 0.3,
) -> Iterator[Updates]:
    """Drive a recorded run of pipeline `name`, yielding dict updates for `panel` (and the tab's extras).

    The tab's Stop button sets the session's stop flag; the run is closed at its next event, recorded as
    stopped, and the panel says so. User errors (ValueError and subclasses) become `gr.Error` messages.
    """
    flag = ctx.stop_flag(getattr(request, "session_hash", None), tab)
    flag.clear()
    owner = ctx.owner(request)
    run = Run(name, pipelines.get(name).run, cfg, ctx.store, ctx.runs_dir, preset=preset, source="ui", owner=owner)
    events = iter(run)
    folded, start, last_emit = _Folded(), time.monotonic(), 0.0
    yield {panel.status: progress_html(0, 0, f"Run {run.id} started", None), panel.files: None, panel.metrics: None}
    try:
        for event in events:
            if flag.is_set():
                events.close()
                stopped = f"Stopped by you at step {folded.step}. Run {run.id} is recorded as stopped."
                yield {panel.status: progress_html(folded.step, folded.total, stopped, None, "stopped")}
                return
            if isinstance(event, Progress):
                folded.progress(event)
            elif isinstance(event, Preview):
                folded.preview(event, panel, on_preview)
            elif isinstance(event, Done):
                done = _done_updates(folded, event, panel, run, time.monotonic() - start, on_done)
                yield ctx.publish_all(done, request)  # the browser gets copies, not the run folder
                return
            now = time.monotonic()
            if now - last_emit >= min_interval_s:
                step, total = folded.step, folded.total
                eta = (now - start) / step * (total - step) if step and total else None
                folded.pending[panel.status] = progress_html(step, total, folded.message, eta)
                if panel.curves is not None and folded.history:
                    folded.pending[panel.curves] = curves_figure(folded.history)
                yield folded.pending
                folded.pending, last_emit = {}, now
    except gr.Error:
        raise
    except ValueError as err:
        raise gr.Error(str(err), title="Cannot run this") from None
    except Exception as err:  # noqa: BLE001 - any failure becomes a message; the run store marks it failed
        raise gr.Error(f"{type(err).__name__}: {err}", title=f"{name} failed") from None
    finally:
        events.close()
