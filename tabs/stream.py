"""Folds a pipeline run's events into throttled Gradio updates: progress bar with ETA, preview, curves, files."""

from __future__ import annotations

import html
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import plotly.graph_objects as go

import pipelines
from pipelines.core.events import Done, Preview, Progress
from pipelines.core.runner import Run

from .context import AppContext

Updates = dict[Any, Any]


@dataclass
class RunPanel:
    """The widgets every long-running tab shows. Create with `run_panel()` inside a Blocks context."""

    status: gr.HTML
    preview: gr.Image | None
    curves: gr.Plot | None
    metrics: gr.JSON
    files: gr.File

    @property
    def outputs(self) -> list[Any]:
        return [c for c in (self.status, self.preview, self.curves, self.metrics, self.files) if c is not None]


LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
"""The delimiters every lesson's gr.Markdown uses: $$ display $$ and $ inline $."""


def upload_paths(files: Any) -> tuple[str, ...]:
    """The paths of a gr.File value (one file, a list, or dicts with a path), in order; () when empty."""
    if not files:
        return ()
    items = files if isinstance(files, list) else [files]
    return tuple(str(f.get("path") if isinstance(f, dict) else getattr(f, "name", f)) for f in items if f)


def upload_path(file: Any) -> str | None:
    """The first path of a gr.File value, or None."""
    paths = upload_paths(file)
    return paths[0] if paths else None


def run_panel(*, preview: bool = True, curves: bool = True, preview_label: str = "Live preview") -> RunPanel:
    status = gr.HTML(progress_html(0, 0, "Ready.", None, "idle"), elem_classes=["studio-status"])
    with gr.Row():
        image = gr.Image(label=preview_label, type="numpy", interactive=False, height=320) if preview else None
        plot = gr.Plot(label="Loss and metric curves") if curves else None
    metrics = gr.JSON(label="Final metrics")
    files = gr.File(label="Downloads", file_count="multiple", interactive=False)
    return RunPanel(status, image, plot, metrics, files)


def progress_html(step: int, total: int, message: str, eta_s: float | None, state: str = "running") -> str:
    """A progress bar with step count, ETA and the latest message (state: running, done, stopped, failed)."""
    frac = 0.0 if total <= 0 else min(1.0, step / total)
    eta = "" if eta_s is None else f" · ETA {format_seconds(eta_s)}"
    count = f"{step}/{total}" if total else ""
    return (
        f'<div class="studio-progress" data-state="{state}">'
        f'<div class="studio-bar"><div class="studio-fill" style="width:{frac * 100:.1f}%"></div></div>'
        f'<div class="studio-text">{html.escape(state)} {count}{eta} · {html.escape(message)}</div></div>'
    )


def format_seconds(s: float) -> str:
    s = max(0.0, s)
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"


def curves_figure(history: dict[str, tuple[list[int], list[float]]], title: str = "") -> go.Figure:
    """One line per loss/metric name; log y when every value is positive."""
    fig = go.Figure()
    positive = True
    for name, (steps, values) in history.items():
        fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=name))
        positive = positive and all(v > 0 for v in values)
    fig.update_layout(
        title=title,
        xaxis_title="step",
        yaxis_type="log" if positive and history else "linear",
        height=320,
        margin=dict(l=40, r=10, t=30, b=40),
        legend=dict(orientation="h"),
    )
    return fig


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
    session = getattr(request, "session_hash", None)
    flag = ctx.stop_flag(session, tab)
    flag.clear()
    run = Run(name, pipelines.get(name).run, cfg, ctx.store, ctx.runs_dir, preset=preset, source="ui")
    events = iter(run)
    history: dict[str, tuple[list[int], list[float]]] = {}
    start = time.monotonic()
    last_emit = 0.0
    step, total, message = 0, 0, "starting"
    pending: Updates = {}
    yield {panel.status: progress_html(0, 0, f"Run {run.id} started", None), panel.files: None, panel.metrics: None}
    try:
        for event in events:
            if flag.is_set():
                events.close()
                yield {
                    panel.status: progress_html(
                        step,
                        total,
                        f"Stopped by you at step {step}. Run {run.id} is recorded as stopped.",
                        None,
                        "stopped",
                    )
                }
                return
            if isinstance(event, Progress):
                step, total, message = event.step, event.total, event.message or message
                for key, value in event.losses.items():
                    steps, values = history.setdefault(key, ([], []))
                    steps.append(event.step)
                    values.append(float(value))
            elif isinstance(event, Preview):
                if panel.preview is not None and event.image is not None:
                    pending[panel.preview] = event.image
                if event.caption:
                    message = event.caption
                if on_preview is not None:
                    pending.update(on_preview(event))
            elif isinstance(event, Done):
                elapsed = time.monotonic() - start
                updates: Updates = {
                    panel.status: progress_html(
                        total or 1, total or 1, f"Done in {format_seconds(elapsed)}. Run {run.id}.", 0.0, "done"
                    ),
                    panel.metrics: {"run_id": run.id, **event.metrics},
                    panel.files: [str(p) for p in event.files.values()] or None,
                }
                if panel.curves is not None and history:
                    updates[panel.curves] = curves_figure(history)
                updates.update(pending)
                if on_done is not None:
                    updates.update(on_done(event))
                yield updates
                return
            now = time.monotonic()
            if now - last_emit >= min_interval_s:
                elapsed = now - start
                eta = elapsed / step * (total - step) if step and total else None
                pending[panel.status] = progress_html(step, total, message, eta)
                if panel.curves is not None and history:
                    pending[panel.curves] = curves_figure(history)
                yield pending
                pending, last_emit = {}, now
    except gr.Error:
        raise
    except ValueError as err:
        raise gr.Error(str(err), title="Cannot run this") from None
    except Exception as err:  # noqa: BLE001 - any failure becomes a message; the run store marks it failed
        raise gr.Error(f"{type(err).__name__}: {err}", title=f"{name} failed") from None
    finally:
        events.close()


def stop_button(ctx: AppContext, tab: str) -> gr.Button:
    """A Stop button that sets the session's stop flag for `tab` (outside the GPU queue, so it acts at once)."""
    button = gr.Button("Stop", variant="stop")

    def _stop(request: gr.Request) -> None:
        ctx.stop_flag(getattr(request, "session_hash", None), tab).set()

    button.click(_stop, None, None, queue=False, api_name=f"{tab}_stop")
    return button


def viewer_file(ctx: AppContext, request: gr.Request | None, path: str | Path) -> str:
    """A copy of `path` in the session's folder, for a 3D viewer (viewer files are kept per session).

    Hand it to the `gr.Model3D` through a `gr.State` and a chained `.then(lambda p: p, state, model)`: when a
    streaming (generator) event updates a Model3D together with other outputs such as a `gr.File`, Gradio 6.31
    leaves the viewer empty (no canvas); a plain chained event shows it.
    """
    src = Path(path)
    dest_dir = ctx.session_dir(getattr(request, "session_hash", None)) / "viewer"
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{uuid.uuid4().hex[:8]}-{src.name}"
    shutil.copyfile(src, dest)
    return str(dest)
