"""Runs tab: the visitor's own runs (everyone's with --shared-runs) with thumbnails and headline numbers; reopen a
run's pictures, video and mesh; plot metrics across runs, each on its own axis; download a run bundle."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import gradio as gr
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pipelines import REGISTRY
from pipelines.core.headline import format_headline
from pipelines.core.runs import STATUSES, RunRecord

from .context import AppContext, request_session
from .headline import headlines_of, numeric
from .viewer import HIDE_WHEN_EMPTY
from .widgets import bind, model3d, refresh_on_select, viewer_file

COLUMNS = ["started", "pipeline", "status", "headline", "preset", "device", "duration_s", "id", "error"]
ALL = "all"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
VIDEO_SUFFIXES = (".mp4", ".webm")
MESH_SUFFIXES = (".glb", ".gltf", ".obj", ".stl", ".ply")
MAX_PICTURES = 24
"""Pictures a reopened run shows at most."""
NO_RUN = "No run with id {!r}: copy an id from the table (only your own runs are listed)."


def started(record: RunRecord) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.started_at))


def run_label(record: RunRecord) -> str:
    """How a run is named in plots and captions: its pipeline and when it started."""
    return f"{record.pipeline} · {started(record)[5:16]}"


def headline(record: RunRecord) -> str:
    """The pipeline's headline numbers for this run ("Held-out PSNR 31.1 dB"); a few raw metrics if it declares none."""
    values = numeric(record.metrics)
    text = format_headline(values, headlines_of(record.pipeline))
    if text:
        return text
    return ", ".join(f"{k}={v:.4g}" for k, v in list(values.items())[:3])


def visible_runs(ctx: AppContext, request: Any, pipeline: str = ALL, status: str = ALL) -> list[RunRecord]:
    """The runs this visitor may see, newest first, filtered by pipeline and status ("all": any)."""
    return ctx.store.list(
        pipeline=None if pipeline in (ALL, "", None) else pipeline,
        status=None if status in (ALL, "", None) else status,
        owner=ctx.viewer(request),
    )


def table(records: list[RunRecord]) -> list[list]:
    return [
        [
            started(r),
            r.pipeline,
            r.status,
            headline(r),
            r.preset or "",
            r.device,
            None if r.duration_s is None else round(r.duration_s, 2),
            r.id,
            r.error or "",
        ]
        for r in records
    ]


def thumbnails(ctx: AppContext, request: Any, records: list[RunRecord]) -> tuple[list[tuple[str, str]], list[str]]:
    """(published thumbnail, caption) for each run that has one, and the run ids in the same order."""
    items, ids = [], []
    for r in records:
        if r.thumbnail and Path(r.thumbnail).is_file():
            items.append((ctx.publish(r.thumbnail, request), f"{run_label(r)} · {headline(r) or r.status}"))
            ids.append(r.id)
    return items, ids


def list_runs(
    pipeline: str, status: str, request: gr.Request, *, ctx: AppContext
) -> tuple[list[list], gr.Dropdown, list[tuple[str, str]], list[str]]:
    """/runs_list: your runs of a pipeline with a status ("all": any), the metric names they logged, and their
    thumbnails with the pipeline, time and headline number."""
    records = visible_runs(ctx, request, pipeline, status)
    names = ctx.store.metric_names([r.id for r in records])
    pictures, ids = thumbnails(ctx, request, records)
    return table(records), gr.Dropdown(choices=names), pictures, ids


def metric_figure(ctx: AppContext, records: list[RunRecord], metrics: list[str]) -> go.Figure:
    """Each metric on its own axis (one row each), a line per run labelled by pipeline and start time."""
    metrics = [m for m in metrics if m] or [""]
    fig = make_subplots(rows=len(metrics), cols=1, shared_xaxes=True, subplot_titles=metrics, vertical_spacing=0.08)
    shown_runs: set[str] = set()
    for row, metric in enumerate(metrics, start=1):
        for r in records:
            history = ctx.store.history(r.id, metric) if metric else []
            if not history:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[h[0] for h in history],
                    y=[h[2] for h in history],
                    mode="lines",
                    name=run_label(r),
                    legendgroup=r.id,
                    showlegend=r.id not in shown_runs,
                    hovertemplate=f"{run_label(r)}<br>{metric} %{{y:.4g}} at step %{{x}}<extra>{r.id}</extra>",
                ),
                row=row,
                col=1,
            )
            shown_runs.add(r.id)
        fig.update_yaxes(title_text=metric, row=row, col=1)
    fig.update_xaxes(title_text="step", row=len(metrics), col=1)
    fig.update_layout(
        height=max(320, 240 * len(metrics)),
        title="pick one or more metrics" if metrics == [""] else None,
        legend=dict(orientation="h"),
        margin=dict(l=50, r=10, t=40, b=40),
    )
    return fig


def plot_metric(pipeline: str, status: str, metrics: list[str], request: gr.Request, *, ctx: AppContext) -> go.Figure:
    """/runs_plot: the chosen metrics' histories across your listed runs, each metric on its own axis."""
    chosen = [metrics] if isinstance(metrics, str) else list(metrics or [])
    if not [m for m in chosen if m]:
        raise gr.Error("Pick a metric first.")
    return metric_figure(ctx, visible_runs(ctx, request, pipeline, status), chosen)


def own_run(ctx: AppContext, request: Any, run_id: str) -> RunRecord:
    """The run if this visitor may see it; another visitor's run answers exactly as an unknown id does."""
    run_id = (run_id or "").strip()
    try:
        return ctx.store.get(run_id, ctx.viewer(request))
    except KeyError:
        raise gr.Error(NO_RUN.format(run_id)) from None


def bundle_run(run_id: str, request: gr.Request, *, ctx: AppContext) -> str:
    """/runs_bundle: one of your runs as a zip (config, metrics and artifacts)."""
    record = own_run(ctx, request, run_id)
    folder = ctx.session_dir(request_session(request)) / "bundles" / secrets.token_hex(8)
    return str(ctx.store.bundle(record.id, folder, ctx.viewer(request)))


def artifact_files(record: RunRecord) -> list[Path]:
    """The run's artifact files (folders walked), thumbnail first, in a stable order."""
    files = [Path(record.thumbnail)] if record.thumbnail else []
    for path in map(Path, record.artifacts.values()):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        else:
            files.append(path)
    return [f for f in files if f.is_file()]


def open_run(
    run_id: str, request: gr.Request, *, ctx: AppContext
) -> tuple[list[tuple[str, str]], str | None, str | None, dict]:
    """/runs_open: one of your runs again: its pictures, video, mesh and record (headline, metrics, config)."""
    record = own_run(ctx, request, run_id)
    files = artifact_files(record)
    pictures = [(ctx.publish(str(f), request), f.name) for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
    video = next((str(f) for f in files if f.suffix.lower() in VIDEO_SUFFIXES), None)
    mesh = next((str(f) for s in MESH_SUFFIXES for f in files if f.suffix.lower() == s), None)
    summary = {
        "id": record.id,
        "pipeline": record.pipeline,
        "started": started(record),
        "status": record.status,
        "headline": headline(record),
        "duration_s": record.duration_s,
        "metrics": record.metrics,
        "config": record.config,
        "error": record.error,
        "files": [f.name for f in files],
    }
    if not files and record.status == "done":
        summary["note"] = "This run's files have expired or were removed; its record and metrics remain."
    viewer = viewer_file(ctx, request, mesh) if mesh else None  # a GLB turned to the three-quarter view
    return pictures[:MAX_PICTURES], ctx.publish(video, request), viewer, summary


def selected_run_id(event: gr.SelectData, rows: Any) -> str:
    """The id of the table row the user clicked."""
    row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
    try:
        return str(rows.iloc[row, COLUMNS.index("id")])
    except Exception:  # noqa: BLE001 - a click outside the data fills nothing
        return ""


def selected_thumbnail(event: gr.SelectData, ids: list[str]) -> str:
    """The id of the run whose thumbnail the user clicked."""
    index = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
    return ids[index] if isinstance(index, int) and 0 <= index < len(ids or []) else ""


def build(ctx: AppContext, tab: gr.Tab) -> None:
    scope = "every visitor's runs (shared history)" if ctx.shared_runs else "your runs (this browser session's"
    scope += "" if ctx.shared_runs else ", or your account's under a login)"
    gr.Markdown(f"Runs from the app and the CLI are recorded (SQLite under the data dir). This tab lists {scope}.")
    with gr.Row():
        pipeline = gr.Dropdown([ALL, *REGISTRY], value=ALL, label="Pipeline", info="Show only this pipeline's runs")
        status = gr.Dropdown([ALL, *STATUSES], value=ALL, label="Status", info="Show only runs that ended this way")
        refresh = gr.Button("Refresh", variant="secondary")
    gallery = gr.Gallery(
        label="History (click to reopen)",
        columns=8,
        rows=1,
        height=200,
        allow_preview=False,
        object_fit="contain",
        interactive=False,
        elem_id="runs-history",
    )
    gallery_ids = gr.State([])
    runs = gr.Dataframe(headers=COLUMNS, value=[], interactive=False, wrap=True, label="Runs")
    with gr.Row():
        run_id = gr.Textbox(label="Run id (click a row or a picture)", info="Or paste an id from the CLI's output")
        open_btn = gr.Button("Reopen")
        bundle_btn = gr.Button("Download bundle (zip)")
    with gr.Row():
        pictures = gr.Gallery(
            label="The run's pictures",
            columns=4,
            height=320,
            object_fit="contain",
            interactive=False,
            elem_id="runs-pictures",
            elem_classes=[HIDE_WHEN_EMPTY],
        )
        video = gr.Video(label="The run's video", interactive=False, height=320, elem_classes=[HIDE_WHEN_EMPTY])
    mesh = model3d("The run's mesh", elem_id="runs-mesh", height=360, interactive=False)
    with gr.Accordion("The run's record: headline, metrics, config (JSON)", open=False):
        summary = gr.JSON(label="The run: headline, metrics, config")
    bundle = gr.File(label="Run bundle", interactive=False, elem_classes=[HIDE_WHEN_EMPTY])
    with gr.Row():
        metric = gr.Dropdown(
            [],
            multiselect=True,
            allow_custom_value=True,
            label="Metrics to plot across the listed runs",
            info="Each metric gets its own axis",
        )
        plot_btn = gr.Button("Plot")
    plot = gr.Plot(label="Metrics across runs (each on its own axis)", elem_classes=[HIDE_WHEN_EMPTY])

    listing = bind(list_runs, ctx=ctx)
    listed = [runs, metric, gallery, gallery_ids]
    refresh.click(listing, [pipeline, status], listed, api_name="runs_list")
    for trigger in (pipeline.change, status.change, tab.select):
        trigger(listing, [pipeline, status], listed, api_name=False)
    plot_btn.click(bind(plot_metric, ctx=ctx), [pipeline, status, metric], plot, api_name="runs_plot")
    bundle_btn.click(bind(bundle_run, ctx=ctx), run_id, bundle, api_name="runs_bundle")
    reopen = bind(open_run, ctx=ctx)
    opened = [pictures, video, mesh, summary]
    open_btn.click(reopen, run_id, opened, api_name="runs_open")
    runs.select(selected_run_id, runs, run_id, api_name=False).then(reopen, run_id, opened, api_name=False)
    gallery.select(selected_thumbnail, gallery_ids, run_id, api_name=False).then(reopen, run_id, opened, api_name=False)
    refresh_on_select(tab, mesh)
