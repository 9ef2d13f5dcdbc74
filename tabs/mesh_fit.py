"""Mesh fitting tab: deform an ico-sphere onto a point cloud or mesh; one fit, or the book's three experiments."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import gradio as gr

from pipelines.core.config import make_preset
from pipelines.core.device import default_preset
from pipelines.mesh_fit import pipeline as mesh_fit

from .context import AppContext
from .stream import LATEX, run_panel, stop_button, stream, upload_paths, viewer_file

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


def bounded_number(value: Any, name: str, low: float, high: float) -> float | None:
    """A user number checked against [low, high]; None when left empty."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{name} must be a number.") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise gr.Error(f"{name} must be between {low:g} and {high:g}.")
    return number


def number_overrides(rows: Iterable[tuple[Any, str, str, float, float]], whole: tuple[str, ...] = ()) -> dict[str, Any]:
    """Config overrides from number boxes, given as (value, field, label, low, high) rows checked in turn (gr.Error).
    Empty boxes are left out; the fields named in `whole` become ints."""
    changes: dict[str, Any] = {}
    for value, field, label, low, high in rows:
        number = bounded_number(value, label, low, high)
        if number is not None:
            changes[field] = int(number) if field in whole else number
    return changes


def histories_figure(histories: dict[str, dict[str, list[float]]]) -> Any:
    """Chamfer distance per step for each run, on a log scale (the experiments side by side)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, history in histories.items():
        values = history["chamfer"]
        fig.add_trace(go.Scatter(x=list(range(1, len(values) + 1)), y=values, mode="lines", name=f"{name}: chamfer"))
    fig.update_layout(
        xaxis_title="step",
        yaxis_title="chamfer (noisy target)",
        yaxis_type="log",
        height=320,
        margin=dict(l=40, r=10, t=30, b=40),
        legend=dict(orientation="h"),
    )
    return fig


def build(ctx: AppContext, tab: gr.Tab) -> None:
    preset_default = default_preset(ctx.device)
    defaults = mesh_fit.Config()
    with gr.Accordion("Lesson: chamfer distance and the regularisers", open=False):
        gr.Markdown(
            LESSON,
            latex_delimiters=LATEX,
        )
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Group():
                files = gr.File(
                    label="Target: a point cloud (PLY) or a mesh (OBJ+MTL, PLY, GLB, STL, OFF); empty = procedural shape",
                    file_count="multiple",
                    file_types=[".ply", ".obj", ".mtl", ".glb", ".gltf", ".bin", ".stl", ".off", ".zip"],
                )
                shape = gr.Dropdown(list(mesh_fit.TARGETS), value=defaults.target, label="Procedural target")
                with gr.Row():
                    noise = gr.Slider(0.0, 0.1, value=0.0, step=0.005, label="Gaussian noise (std, unit sphere)")
                    outliers = gr.Slider(0.0, 0.3, value=0.0, step=0.01, label="Outliers (share of points)")
            start = make_preset(mesh_fit.Config, preset_default)
            with gr.Row():
                preset = gr.Radio(["tiny", "quick", "full"], value=preset_default, label="Preset (full = the book's)")
                level = gr.Number(start.ico_level, label="Ico-sphere level", precision=0, minimum=0, maximum=6)
            with gr.Row():
                steps = gr.Number(start.steps, label="Steps", precision=0, minimum=1, maximum=20000)
                lr = gr.Number(defaults.lr, label="SGD learning rate", minimum=0)
                momentum = gr.Number(defaults.momentum, label="Momentum", minimum=0, maximum=0.999)
            with gr.Row():
                w_chamfer = gr.Number(defaults.w_chamfer, label="w chamfer", minimum=0)
                w_edge = gr.Number(defaults.w_edge, label="w edge", minimum=0)
                w_normal = gr.Number(defaults.w_normal, label="w normal", minimum=0)
                w_laplacian = gr.Number(defaults.w_laplacian, label="w Laplacian", minimum=0)
            laplacian = gr.Radio(list(mesh_fit.LAPLACIANS), value=defaults.laplacian, label="Laplacian")
            with gr.Row():
                fit_btn = gr.Button("Fit", variant="primary")
                book_btn = gr.Button("Run the book's three experiments")
                stop_button(ctx, "mesh_fit")
        with gr.Column(scale=1):
            model = gr.Model3D(
                label="Current mesh (GLB, the target's frame)",
                height=440,
                clear_color=(0.93, 0.93, 0.95, 1.0),
                elem_id="mesh-fit-model3d",
                interactive=False,
            )
    panel = run_panel(preview_label="Target points (left) and the current mesh (right)")
    notes = gr.Markdown()
    with gr.Row():
        comparison = gr.Image(label="Side by side", type="numpy", interactive=False, height=260)
        comparison_plot = gr.Plot(label="Chamfer distance per run")
    table = gr.Dataframe(label="Results per run (unit-sphere frame)", interactive=False, wrap=True)

    def make_config(file_list, name, sd, out, pre, lvl, n_steps, rate, mom, wc, we, wn, wl, lap) -> mesh_fit.Config:
        """Validate the widgets (gr.Error) and build the pipeline Config."""
        if name not in mesh_fit.TARGETS:
            raise gr.Error(f"Pick a procedural target: {', '.join(mesh_fit.TARGETS)}.")
        if lap not in mesh_fit.LAPLACIANS:
            raise gr.Error("Pick a Laplacian: uniform, cot or cotcurv.")
        cfg = make_preset(mesh_fit.Config, pre or preset_default)
        changes: dict[str, Any] = {
            "target": name,
            "target_files": upload_paths(file_list),
            "noise_std": bounded_number(sd, "Noise", 0.0, 0.5) or 0.0,
            "outlier_fraction": bounded_number(out, "The outlier share", 0.0, 0.9) or 0.0,
            "laplacian": lap,
            "device": str(ctx.device),
            "max_upload_mb": ctx.max_upload_mb,
        }
        rows = (
            (lvl, "ico_level", "The ico-sphere level", 0, 6),
            (n_steps, "steps", "Steps", 1, 20000),
            (rate, "lr", "The learning rate", 1e-6, 100.0),
            (mom, "momentum", "Momentum", 0.0, 0.999),
            (wc, "w_chamfer", "w chamfer", 0.0, 1e4),
            (we, "w_edge", "w edge", 0.0, 1e4),
            (wn, "w_normal", "w normal", 0.0, 1e4),
            (wl, "w_laplacian", "w Laplacian", 0.0, 1e4),
        )
        changes.update(number_overrides(rows, whole=("ico_level", "steps")))
        return dataclasses.replace(cfg, **changes)

    # The fitted GLB reaches the viewer through a chained event: a streaming event leaves a Model3D empty in Gradio
    # 6.31 (see stream.viewer_file). While the fit runs, the preview image shows the current mesh.
    viewer_state = gr.State(None)

    def on_done(done, request: gr.Request | None) -> dict:
        import pandas as pd

        warn = done.info.get("warnings") or []
        text = f"Target: {done.info['target']}." + (
            "\n\n**Warnings**\n" + "\n".join(f"- {w}" for w in warn) if warn else ""
        )
        return {
            viewer_state: viewer_file(ctx, request, done.info["mesh"]),
            comparison: done.info["picture"],
            comparison_plot: histories_figure(done.info["histories"]),
            table: pd.DataFrame(done.info["table"]),
            notes: text,
        }

    def run(cfg: mesh_fit.Config, pre: str, request: gr.Request):
        yield from stream(
            ctx,
            panel,
            "mesh-fit",
            cfg,
            preset=pre,
            request=request,
            tab="mesh_fit",
            on_done=lambda done: on_done(done, request),
        )

    def fit(file_list, name, sd, out, pre, lvl, n_steps, rate, mom, wc, we, wn, wl, lap, request: gr.Request):
        """/mesh_fit: one fit with the chosen weights; streams losses and renders of the current mesh."""
        cfg = make_config(file_list, name, sd, out, pre, lvl, n_steps, rate, mom, wc, we, wn, wl, lap)
        yield from run(cfg, pre, request)

    def experiments(file_list, name, sd, out, pre, lvl, n_steps, rate, mom, wc, we, wn, wl, lap, request: gr.Request):
        """/mesh_fit_experiments: no regulariser, edge only, all losses, one after the other, shown side by side."""
        cfg = make_config(file_list, name, sd, out, pre, lvl, n_steps, rate, mom, wc, we, wn, wl, lap)
        cfg = dataclasses.replace(cfg, experiment="book")
        yield from run(cfg, pre, request)

    def preset_values(pre: str) -> tuple[int, int]:
        cfg = make_preset(mesh_fit.Config, pre or preset_default)
        return cfg.ico_level, cfg.steps

    preset.change(preset_values, preset, [level, steps], api_name=False)

    inputs = [
        files,
        shape,
        noise,
        outliers,
        preset,
        level,
        steps,
        lr,
        momentum,
        w_chamfer,
        w_edge,
        w_normal,
        w_laplacian,
        laplacian,
    ]
    outputs = [*panel.outputs, viewer_state, comparison, comparison_plot, table, notes]
    fit_btn.click(fit, inputs, outputs, api_name="mesh_fit", concurrency_id="gpu", concurrency_limit=1).then(
        lambda path: path or gr.skip(), viewer_state, model, api_name=False
    )
    book_btn.click(
        experiments, inputs, outputs, api_name="mesh_fit_experiments", concurrency_id="gpu", concurrency_limit=1
    ).then(lambda path: path or gr.skip(), viewer_state, model, api_name=False)
    # gr.Model3D in a tab that is not the first can render collapsed (gradio issue 7632): re-send on select.
    tab.select(lambda m: m, model, model, api_name=False)
