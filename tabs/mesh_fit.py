"""Mesh fitting tab: deform an ico-sphere onto a point cloud or mesh; one fit, or the book's three experiments."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipelines.core.events import Done
from pipelines.core.headline import significant
from pipelines.mesh_fit import pipeline as mesh_fit
from pipelines.mesh_fit.targets import TARGETS

from .context import AppContext
from .plots import readable_layout, set_log_axis
from .stream import stream
from .widgets import (
    LATEX,
    MESH_TYPES,
    RunPanel,
    bind,
    config_for,
    gpu_click,
    model3d,
    number_overrides,
    number_value,
    preset_numbers,
    preset_radio,
    refresh_on_select,
    run_panel,
    show_in_viewer,
    stop_button,
    upload_box,
    upload_paths,
    viewer_file,
)

LESSON = r"""
**The idea.** Start from an ico-sphere with vertices $v_i$ and learn one offset $\Delta v_i$ per vertex, so the mesh
$v_i + \Delta v_i$ matches a target point set $Q$. Each step samples a fresh set $P$ of points on the current surface
(faces drawn by area, a random point in each), so the loss sees the whole surface, not just the vertices.

**Chamfer distance** between the samples $P$ and the target $Q$: every point looks for its nearest neighbour in the
other set, both ways round,
$$d_\text{CD}(P, Q) = \frac{1}{|P|}\sum_{p \in P}\min_{q \in Q}\lVert p-q\rVert^2 + \frac{1}{|Q|}\sum_{q \in Q}\min_{p \in P}\lVert q-p\rVert^2 .$$
The first term pulls stray surface onto the target; the second makes sure no part of the target is left uncovered.
Alone it lets vertices bunch up, faces fold and spikes grow, because it only sees points, not the surface between them.

**Regularisers** keep the mesh a well-behaved surface:
- *edge length* $L_\text{edge} = \frac{1}{|E|}\sum_{(i,j)\in E}\lVert v_i - v_j\rVert^2$ keeps edges short and even;
- *normal consistency* $L_\text{normal} = \frac{1}{|E'|}\sum (1 - \cos\angle(n_f, n_g))$ over pairs of faces $f, g$
  sharing an edge, which penalises creases;
- *Laplacian smoothing* $L_\text{lap} = \frac{1}{|V|}\sum_i \big\lVert \sum_{j \in N(i)} w_{ij}(v_j - v_i)\big\rVert$
  pulls each vertex towards a weighted average of its neighbours: uniform weights $w_{ij} = 1/|N(i)|$; *cot* weights
  $\propto \cot\alpha_{ij} + \cot\beta_{ij}$ (the two angles opposite the edge), which follow the surface's geometry;
  *cotcurv* divides by the vertex's area, which approximates mean curvature (its values are much larger: give it
  a weight near 0.001, not 0.1).

**The objective** is $L = w_\text{c}\,d_\text{CD} + w_\text{e}L_\text{edge} + w_\text{n}L_\text{normal} + w_\text{l}L_\text{lap}$,
[1.0 / 1.0 / 0.01 / 0.1 in the book], minimised by SGD with momentum [lr 1.0, 0.9, 2000 steps].

**The three experiments** (one click): without regularisers the mesh reaches the points but its triangles turn
irregular and tangled; the edge loss alone keeps triangles even; all losses together give the smoothest surface,
at a slightly higher chamfer distance. The spread of edge lengths (std / mean) measures the difference.

**Measuring the result** against the clean target (before noise and outliers), in the unit-sphere frame the target is
scaled into: chamfer distance; *normal consistency*, the mean $|\cos|$ between each point's normal and its nearest
neighbour's; and *F1@τ*: precision $P$ = share of mesh samples within τ of the target, recall $R$ = share of target
points within τ of the mesh, $F_1 = 2PR/(P+R)$. The mesh you download is mapped back to the target's own frame.
"""


@dataclass
class MeshFitUI:
    """The components /mesh_fit and /mesh_fit_experiments update by component, besides the run panel."""

    panel: RunPanel
    viewer_state: gr.State  # the fitted GLB, handed to the viewer by a chained event (see widgets.viewer_file)
    comparison: gr.Image
    comparison_plot: gr.Plot
    table: gr.Dataframe
    notes: gr.Markdown

    @property
    def outputs(self) -> list[Any]:
        """The endpoints' outputs, in order."""
        return [*self.panel.outputs, self.viewer_state, self.comparison, self.comparison_plot, self.table, self.notes]


def fit_config(
    ctx: AppContext,
    target_files: Any,
    procedural_target: str | None,
    noise_std: float | None,
    outlier_fraction: float | None,
    preset: str | None,
    ico_level: float | None,
    steps: float | None,
    learning_rate: float | None,
    momentum: float | None,
    w_chamfer: float | None,
    w_edge: float | None,
    w_normal: float | None,
    w_laplacian: float | None,
    laplacian: str | None,
    experiment: str = "single",
) -> mesh_fit.Config:
    """Validate the widgets (gr.Error) and build the pipeline Config; an empty value keeps the preset's."""
    if procedural_target is not None and procedural_target not in TARGETS:
        raise gr.Error(f"Pick a procedural target: {', '.join(TARGETS)}.")
    if laplacian is not None and laplacian not in mesh_fit.LAPLACIANS:
        raise gr.Error("Pick a Laplacian: uniform, cot or cotcurv.")
    rows = (
        (ico_level, "ico_level", "The ico-sphere level", 0, 6),
        (steps, "steps", "Steps", 1, 20000),
        (learning_rate, "lr", "The learning rate", 1e-6, 100.0),
        (momentum, "momentum", "Momentum", 0.0, 0.999),
        (w_chamfer, "w_chamfer", "w chamfer", 0.0, 1e4),
        (w_edge, "w_edge", "w edge", 0.0, 1e4),
        (w_normal, "w_normal", "w normal", 0.0, 1e4),
        (w_laplacian, "w_laplacian", "w Laplacian", 0.0, 1e4),
    )
    return config_for(
        ctx,
        mesh_fit.Config,
        preset,
        target=procedural_target,
        target_files=upload_paths(target_files),
        noise_std=number_value(noise_std, "Noise", 0.0, 0.5) or 0.0,
        outlier_fraction=number_value(outlier_fraction, "The outlier share", 0.0, 0.9) or 0.0,
        laplacian=laplacian,
        experiment=experiment,
        **number_overrides(rows, whole=("ico_level", "steps")),
    )


def fit(
    target_files: Any = None,
    procedural_target: str | None = None,
    noise_std: float | None = None,
    outlier_fraction: float | None = None,
    preset: str | None = None,
    ico_level: float | None = None,
    steps: float | None = None,
    learning_rate: float | None = None,
    momentum: float | None = None,
    w_chamfer: float | None = None,
    w_edge: float | None = None,
    w_normal: float | None = None,
    w_laplacian: float | None = None,
    laplacian: str | None = None,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    ui: MeshFitUI,
    experiment: str = "single",
) -> Iterator[dict]:
    """/mesh_fit: one fit with the chosen weights, or (experiment="book", /mesh_fit_experiments) the book's three
    experiments one after the other; streams losses and renders of the current mesh.

    No target file fits the procedural target; any other empty value keeps the preset's."""
    cfg = fit_config(
        ctx,
        target_files,
        procedural_target,
        noise_std,
        outlier_fraction,
        preset,
        ico_level,
        steps,
        learning_rate,
        momentum,
        w_chamfer,
        w_edge,
        w_normal,
        w_laplacian,
        laplacian,
        experiment,
    )
    on_done = functools.partial(fit_results, request=request, ctx=ctx, ui=ui)
    yield from stream(ctx, ui.panel, "mesh-fit", cfg, preset=preset, request=request, tab="mesh_fit", on_done=on_done)


def fit_results(done: Done, *, request: gr.Request | None, ctx: AppContext, ui: MeshFitUI) -> dict:
    """The tab's updates from a finished fit: the viewer file, the side-by-side picture, curves, table and notes."""

    warn = done.info.get("warnings") or []
    text = f"Target: {done.info['target']}." + (
        "\n\n**Warnings**\n" + "\n".join(f"- {w}" for w in warn) if warn else ""
    )
    return {
        ui.viewer_state: viewer_file(ctx, request, done.info["mesh"]),
        ui.comparison: done.info["picture"],
        ui.comparison_plot: histories_figure(done.info["histories"]),
        ui.table: rounded_table(done.info["table"]),
        ui.notes: text,
    }


def histories_figure(histories: dict[str, dict[str, list[float]]]) -> Any:
    """Chamfer distance per step for each run, on a log scale (the experiments side by side)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    everything: list[float] = []
    for name, history in histories.items():
        values = history["chamfer"]
        everything.extend(values)
        fig.add_trace(go.Scatter(x=list(range(1, len(values) + 1)), y=values, mode="lines", name=f"{name}: chamfer"))
    fig.update_layout(xaxis_title="step", yaxis_title="chamfer (noisy target)")
    readable_layout(fig, 320)
    if everything and all(v > 0 for v in everything):
        set_log_axis(fig, everything)
    return fig


def rounded_table(rows: list[dict[str, Any]]) -> Any:
    """Result rows as a table with 3 significant figures."""
    import pandas as pd

    return pd.DataFrame([{k: significant(v) if isinstance(v, float) else v for k, v in row.items()} for row in rows])


def build(ctx: AppContext, tab: gr.Tab) -> None:
    with gr.Accordion("Lesson: chamfer distance and the regularisers", open=False):
        gr.Markdown(LESSON, latex_delimiters=LATEX)
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            inputs, fit_button, book_button = _settings_column(ctx)
        with gr.Column(scale=1, min_width=400):
            model = model3d("Current mesh (GLB, the target's frame)", "mesh-fit-model3d", height=440, interactive=False)
    ui = _results()
    # The fitted GLB reaches the viewer through a chained event: a streaming event leaves a Model3D empty in Gradio
    # 6.31 (see widgets.viewer_file). While the fit runs, the preview image shows the current mesh.
    # /mesh_fit_experiments is the same handler with experiment="book": no regulariser, edge only, all losses.
    for button, experiment, api_name in (
        (fit_button, "single", "mesh_fit"),
        (book_button, "book", "mesh_fit_experiments"),
    ):
        handler = bind(fit, ctx=ctx, ui=ui, experiment=experiment)
        event = gpu_click(button, handler, inputs, ui.outputs, api_name=api_name)
        show_in_viewer(event, ui.viewer_state, model, keep_when_empty=True)
    refresh_on_select(tab, model)


def _settings_column(ctx: AppContext) -> tuple[list[Any], gr.Button, gr.Button]:
    """The target and settings column: the endpoints' inputs, in order, and the Fit and experiments buttons."""
    defaults = mesh_fit.Config()
    with gr.Group():
        files = upload_box(
            "Target: a point cloud (PLY) or a mesh (OBJ+MTL, PLY, GLB, STL, OFF); empty = procedural shape", MESH_TYPES
        )
        shape = gr.Dropdown(
            list(TARGETS),
            value=defaults.target,
            label="Procedural target",
            info="The shape the sphere is deformed onto when nothing is uploaded",
        )
        with gr.Row():
            noise = gr.Slider(
                0.0,
                0.1,
                value=0.0,
                step=0.005,
                label="Gaussian noise (std, unit sphere)",
                info="Noise added to the target points",
            )
            outliers = gr.Slider(
                0.0,
                0.3,
                value=0.0,
                step=0.01,
                label="Outliers (share of points)",
                info="Share of target points replaced by random points in the box",
            )
    with gr.Row():
        preset = preset_radio(ctx)
        level = _preset_integer(ctx, preset, "ico_level", "Ico-sphere level", 0, 6)
    with gr.Row():
        steps = _preset_integer(ctx, preset, "steps", "Steps", 1, 20000)
        lr = gr.Number(defaults.lr, label="SGD learning rate", info="The book: 1.0", minimum=0)
        momentum = gr.Number(defaults.momentum, label="Momentum", info="The book: 0.9", minimum=0, maximum=0.999)
    with gr.Accordion("Loss weights (the book's 1.0 / 1.0 / 0.01 / 0.1)", open=False):
        with gr.Row():
            w_chamfer = gr.Number(
                defaults.w_chamfer, label="w chamfer", minimum=0, info="Pulls the surface onto the points"
            )
            w_edge = gr.Number(defaults.w_edge, label="w edge", minimum=0, info="Keeps edges short and even")
            w_normal = gr.Number(defaults.w_normal, label="w normal", minimum=0, info="Penalises creases")
            w_laplacian = gr.Number(defaults.w_laplacian, label="w Laplacian", minimum=0, info="Smooths the surface")
        laplacian = gr.Radio(
            list(mesh_fit.LAPLACIANS), value=defaults.laplacian, label="Laplacian", info="cot follows the geometry"
        )
    with gr.Row():
        fit_button = gr.Button("Fit", variant="primary", elem_id="mesh_fit-run")
        book_button = gr.Button("Run the book's three experiments", size="sm")
        stop_button(ctx, "mesh_fit")
    weights = [w_chamfer, w_edge, w_normal, w_laplacian]
    inputs = [files, shape, noise, outliers, preset, level, steps, lr, momentum, *weights, laplacian]
    rows = [[name, 0.0, 0.0] for name in TARGETS[:3]] + [[TARGETS[0], 0.02, 0.05]]
    gr.Examples(rows, [shape, noise, outliers], label="Examples: target, noise, outliers", elem_id="mesh_fit-examples")
    return inputs, fit_button, book_button


def _preset_integer(ctx: AppContext, preset: gr.Radio, field: str, label: str, low: int, high: int) -> gr.Number:
    """A whole-number box for a Config field that shows and follows the preset's value."""
    boxes = preset_numbers(ctx, preset, mesh_fit.Config, {field: label}, integers=(field,), limits={field: (low, high)})
    return boxes[field]


def _results() -> MeshFitUI:
    """Lays out the results below the settings: the run panel, notes, the side-by-side picture, curves and table."""
    panel = run_panel(preview_label="Target points (left) and the current mesh (right)")
    notes = gr.Markdown(label="Notes")
    with gr.Row():
        comparison = gr.Image(label="Side by side", type="numpy", interactive=False, height=260)
        comparison_plot = gr.Plot(label="Chamfer distance per run")
    table = gr.Dataframe(label="Results per run (unit-sphere frame)", interactive=False, wrap=True)
    return MeshFitUI(panel, gr.State(None), comparison, comparison_plot, table, notes)
