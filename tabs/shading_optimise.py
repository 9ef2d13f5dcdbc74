"""The Shading lab's optimisation sections: fit a parameter to target renders (/shading_fit) and the book's
point-set alignment exercise (/shading_points)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipelines.core.config import PRESETS, make_preset
from pipelines.core.events import Done, Preview
from pipelines.shading import fit as shading_fit
from pipelines.shading import points as shading_points
from pipelines.shading.meshes import mesh_choices

from .context import AppContext
from .stream import stream
from .widgets import RunPanel, bind, config_for, gpu_click, preset_numbers, preset_radio, run_panel, stop_button

FIT_INTRO = (
    "### Fit a parameter to target renders\nA heterogeneous batch (meshes of different sizes, one view each) is rendered at a hidden "
    "value; the optimiser starts elsewhere (seeded) and descends the mean squared RGBA error. Light positions use the hard "
    "Phong shader; translation and scale need the soft rasteriser, whose blurred edges carry gradients."
)
POINTS_INTRO = (
    "### The book's exercise: align two point sets\nPoints sampled on a surface are moved by a hidden translation (and "
    "rotation); gradient descent recovers it from the paired points [SGD lr 0.1, momentum 0.9, 200 steps, 5000 points]."
)


# ---------------------------------------------------------------------------------------------------------------
# Fit a parameter to target renders
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class FitUI:
    """What the fit updates: the run panel and the batch's description."""

    panel: RunPanel
    batch: gr.JSON


def fit_section(ctx: AppContext) -> None:
    """The fit's controls, run panel and batch description, wired to /shading_fit."""
    gr.Markdown(FIT_INTRO)
    with gr.Row():
        target = gr.Radio(
            list(shading_fit.TARGETS),
            value="light",
            label="Parameter",
            info="What the optimiser recovers: the light's position, or the meshes' translation or scale",
        )
        meshes = gr.CheckboxGroup(
            mesh_choices(),
            value=list(shading_fit.Config().meshes),
            label="Batch",
            info="Meshes of different sizes, rendered together as one heterogeneous batch",
        )
    with gr.Row():
        preset = preset_radio(ctx, "Preset")
        steps = preset_numbers(
            ctx, preset, shading_fit.Config, {"steps": "Steps"}, integers=("steps",), limits={"steps": (1, 5000)}
        )["steps"]
        lr = gr.Number(
            shading_fit.DEFAULT_LR["light"],
            label="Learning rate",
            minimum=0,
            info="The chosen parameter's own rate (light 0.05, translation and scale 0.01); change freely",
        )
        optimizer = gr.Radio(
            list(shading_fit.OPTIMIZERS), value="adam", label="Optimiser", info="SGD uses momentum 0.9"
        )
    target.change(lambda name: shading_fit.DEFAULT_LR[name], target, lr, api_name=False, queue=False)
    with gr.Row():
        button = gr.Button("Fit", variant="primary")
        stop_button(ctx, "shading_fit")
    panel = run_panel(preview_label="Targets (top), current (middle), |difference| (bottom)")
    with gr.Accordion("The batch as list, padded and packed tensors (JSON)", open=False):
        batch = gr.JSON(label="The batch as list, padded and packed tensors")
    gpu_click(
        button,
        bind(fit, ctx=ctx, ui=FitUI(panel, batch)),
        [target, meshes, preset, steps, lr, optimizer],
        [*panel.outputs, batch],
        "shading_fit",
    )


def fit(
    target: str,
    mesh_names: list[str] | None,
    preset: str | None,
    steps: float | None,
    learning_rate: float | None,
    optimizer: str,
    request: gr.Request,
    *,
    ctx: AppContext,
    ui: FitUI,
) -> Iterator[dict[Any, Any]]:
    """/shading_fit: streams the fit; metrics, comparison image and history at the end."""
    if not mesh_names:
        raise gr.Error("Pick at least one mesh for the batch.")
    if learning_rate is not None and learning_rate < 0:
        raise gr.Error("The learning rate must be positive.")
    cfg = config_for(
        ctx,
        shading_fit.Config,
        preset,
        target=target,
        meshes=tuple(mesh_names),
        optimizer=optimizer,
        steps=int(steps) if steps else None,  # an API caller's 0 or None: the preset's
        lr=float(learning_rate) if learning_rate else None,  # an API caller's 0 or None: the target's default
    )

    def on_done(done: Done) -> dict[Any, Any]:
        return {ui.batch: {"fit": done.info["result"], **done.info["batch"], "notes": done.info["notes"]}}

    yield from stream(
        ctx, ui.panel, "shading-fit", cfg, preset=preset, request=request, tab="shading_fit", on_done=on_done
    )


# ---------------------------------------------------------------------------------------------------------------
# Align two point sets
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class PointsUI:
    """What the alignment updates: the run panel and the point-cloud plot."""

    panel: RunPanel
    plot: gr.Plot


def points_section(ctx: AppContext) -> None:
    """The exercise's controls, run panel and point plot, wired to /shading_points."""
    gr.Markdown(POINTS_INTRO)
    with gr.Row():
        # Defaults to full (not the device's preset): the exercise is small, and quick and full are the book's.
        preset = gr.Radio(
            list(PRESETS),
            value="full",
            label="Preset (quick and full are the book's settings)",
            info="It runs in a second at the book's settings, so full is the default; tiny is for tests",
        )
        n_points = gr.Number(
            5000, label="Points", precision=0, minimum=3, maximum=200_000, info="Sampled on the surface (book 5000)"
        )
        steps = gr.Number(200, label="Steps", precision=0, minimum=1, maximum=10_000, info="SGD steps (book 200)")
        lr = gr.Number(0.1, label="Learning rate", minimum=0, info="SGD learning rate (book 0.1)")
        momentum = gr.Number(0.9, label="Momentum", minimum=0, maximum=0.999, info="SGD momentum (book 0.9)")
    with gr.Row():
        fit_rotation = gr.Checkbox(
            False,
            label="Also recover a rotation (so3_exp_map of a rotation vector)",
            info="The book moves the points by a translation only",
        )
        noise = gr.Number(
            0.0,
            label="Noise on the target (std)",
            minimum=0,
            maximum=1,
            info="Gaussian noise added to the moved points",
        )
    preset.change(points_preset, preset, [n_points, steps, lr, momentum], api_name=False, queue=False)
    with gr.Row():
        button = gr.Button("Align", variant="primary")
        stop_button(ctx, "shading_points")
    panel = run_panel(preview=False)
    plot = gr.Plot(label="Source (grey), current (orange), target (blue)")
    gpu_click(
        button,
        bind(align, ctx=ctx, ui=PointsUI(panel, plot)),
        [preset, n_points, steps, lr, momentum, fit_rotation, noise],
        [*panel.outputs, plot],
        "shading_points",
    )


def points_preset(preset: str) -> tuple[int, int, float, float]:
    """The exercise's points, steps, learning rate and momentum under `preset` (shown in the boxes)."""
    cfg = make_preset(shading_points.Config, preset if preset in PRESETS else "full")
    return cfg.n_points, cfg.steps, cfg.lr, cfg.momentum


def align(
    preset: str | None,
    n_points: float | None,
    steps: float | None,
    learning_rate: float | None,
    momentum: float | None,
    fit_rotation: bool,
    noise_std: float | None,
    request: gr.Request,
    *,
    ctx: AppContext,
    ui: PointsUI,
) -> Iterator[dict[Any, Any]]:
    """/shading_points: streams the alignment; the translation error at the end."""
    if not (n_points and n_points >= 3 and steps and steps >= 1):
        raise gr.Error("Use at least 3 points and 1 step.")
    if not (learning_rate and learning_rate > 0) or momentum is None or not 0 <= momentum < 1:
        raise gr.Error("The learning rate must be positive and the momentum in [0, 1).")
    cfg = config_for(
        ctx,
        shading_points.Config,
        preset or "full",
        n_points=int(n_points),
        steps=int(steps),
        lr=float(learning_rate),
        momentum=float(momentum),
        fit_rotation=bool(fit_rotation),
        noise=float(noise_std or 0),
    )
    if preset == "tiny":  # the tiny preset keeps its own size, whatever the boxes say
        tiny = shading_points.Config.tiny()
        cfg = dataclasses.replace(cfg, n_points=tiny.n_points, steps=tiny.steps)

    def on_preview(event: Preview) -> dict[Any, Any]:
        return {ui.plot: event.figure} if event.figure is not None else {}

    def on_done(done: Done) -> dict[Any, Any]:
        return {ui.plot: done.info["figure"]}

    yield from stream(
        ctx,
        ui.panel,
        "shading-points",
        cfg,
        preset=preset,
        request=request,
        tab="shading_points",
        on_preview=on_preview,
        on_done=on_done,
    )
