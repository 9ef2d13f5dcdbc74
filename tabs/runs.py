"""Runs tab: list and filter recorded runs, plot a metric across runs, download a run bundle."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr
import plotly.graph_objects as go

from pipelines import REGISTRY
from pipelines.core.runs import STATUSES

from .context import AppContext
from .widgets import bind

COLUMNS = ["id", "pipeline", "preset", "source", "status", "device", "started", "duration_s", "metrics", "error"]
ALL = "all"


def _metrics_text(metrics: dict) -> str:
    items = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float))][:4]
    return ", ".join(f"{k}={v:.4g}" for k, v in items)


def table(ctx: AppContext, pipeline: str, status: str) -> list[list]:
    records = ctx.store.list(pipeline=None if pipeline == ALL else pipeline, status=None if status == ALL else status)
    return [
        [
            r.id,
            r.pipeline,
            r.preset or "",
            r.source,
            r.status,
            r.device,
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started_at)),
            None if r.duration_s is None else round(r.duration_s, 2),
            _metrics_text(r.metrics),
            r.error or "",
        ]
        for r in records
    ]


def metric_figure(ctx: AppContext, run_ids: list[str], metric: str) -> go.Figure:
    """The metric's history for each run (a line per run); runs without it are left out."""
    fig = go.Figure()
    for rid in run_ids:
        rows = ctx.store.history(rid, metric)
        if rows:
            fig.add_trace(go.Scatter(x=[r[0] for r in rows], y=[r[2] for r in rows], mode="lines", name=rid))
    fig.update_layout(
        title=f"{metric} across runs" if metric else "pick a metric", xaxis_title="step", yaxis_title=metric, height=380
    )
    return fig


def list_runs(pipeline: str, status: str, *, ctx: AppContext) -> tuple[list[list], gr.Dropdown]:
    """/runs_list: the recorded runs of a pipeline with a status ("all": any), and the metric names they logged."""
    rows = table(ctx, pipeline, status)
    names = ctx.store.metric_names([r[0] for r in rows])
    return rows, gr.Dropdown(choices=names)


def plot_metric(pipeline: str, status: str, metric: str, *, ctx: AppContext) -> go.Figure:
    """/runs_plot: one metric's history across the listed runs."""
    if not metric:
        raise gr.Error("Pick a metric first.")
    return metric_figure(ctx, [r[0] for r in table(ctx, pipeline, status)], metric)


def bundle_run(run_id: str, request: gr.Request, *, ctx: AppContext) -> str:
    """/runs_bundle: a run as a zip (config, metrics and artifacts) in the session's folder."""
    run_id = (run_id or "").strip()
    try:
        ctx.store.get(run_id)
    except KeyError:
        raise gr.Error(f"No run with id {run_id!r}: copy an id from the table.") from None
    return str(ctx.store.bundle(run_id, ctx.session_dir(getattr(request, "session_hash", None)) / "bundles"))


def selected_run_id(event: gr.SelectData, rows: Any) -> str:
    """The id of the table row the user clicked, for the bundle box."""
    row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
    try:
        return str(rows.iloc[row, 0])
    except Exception:  # noqa: BLE001 - a click outside the data fills nothing
        return ""


def build(ctx: AppContext, tab: gr.Tab) -> None:
    gr.Markdown("Every run from the app or the CLI is recorded here (SQLite under the data dir) and survives restarts.")
    with gr.Row():
        pipeline = gr.Dropdown([ALL, *REGISTRY], value=ALL, label="Pipeline")
        status = gr.Dropdown([ALL, *STATUSES], value=ALL, label="Status")
        refresh = gr.Button("Refresh", variant="secondary")
    runs = gr.Dataframe(headers=COLUMNS, value=table(ctx, ALL, ALL), interactive=False, wrap=True, label="Runs")
    with gr.Row():
        metric = gr.Dropdown(
            ctx.store.metric_names(), label="Metric to plot across the listed runs", allow_custom_value=True
        )
        plot_btn = gr.Button("Plot")
    plot = gr.Plot(label="Metric across runs")
    with gr.Row():
        run_id = gr.Textbox(label="Run id (click a row to fill)")
        bundle_btn = gr.Button("Download bundle (zip)")
    bundle = gr.File(label="Run bundle", interactive=False)

    listing = bind(list_runs, ctx=ctx)
    for trigger in (refresh.click, pipeline.change, status.change, tab.select):
        trigger(
            listing, [pipeline, status], [runs, metric], api_name="runs_list" if trigger == refresh.click else False
        )
    plot_btn.click(bind(plot_metric, ctx=ctx), [pipeline, status, metric], plot, api_name="runs_plot")
    bundle_btn.click(bind(bundle_run, ctx=ctx), run_id, bundle, api_name="runs_bundle")
    runs.select(selected_run_id, runs, run_id, api_name=False)
