"""NeRF tab: train a radiance field on the multi-view data, watch held-out views, re-render saved checkpoints."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np

from pipelines.core.config import make_preset
from pipelines.core.device import default_preset
from pipelines.core.events import Done
from pipelines.nerf import pipeline as nerf

from .compare import compare_section
from .context import AppContext
from .multiview_data import (
    CAMERA_DISTANCE,
    ELEVATION_DEG,
    checked,
    data_inputs,
    data_overrides,
    data_preview_section,
    filled,
    given,
    large_orbit,
    object_examples,
    wire_preview,
)
from .stream import stream
from .widgets import (
    LATEX,
    RunPanel,
    bind,
    config_for,
    gpu_click,
    model3d,
    preset_numbers,
    refresh_on_select,
    run_panel,
    show_in_viewer,
    show_when_filled,
    shown_file,
    stop_button,
    upload_path,
    user_errors,
    viewer_file,
)

LESSON = r"""
**A field instead of a grid.** NeRF replaces the voxel grid by a function: a small network
$F_\theta(\mathbf x, \mathbf d) = (\sigma, \mathbf c)$ that gives a density and a colour for any point $\mathbf x$
seen along direction $\mathbf d$. Images are made with the same volume rendering sum as in the Volume tab:
$$C(\mathbf r) = \sum_i \Big(\prod_{j<i} (1-\alpha_j)\Big)\,\alpha_i\,\mathbf c_i,\qquad \alpha_i = 1 - e^{-\sigma_i},$$
where, as in the book, the network's $\sigma$ already stands for density times the sample spacing.

**Harmonic embedding.** An MLP fed raw coordinates only learns smooth functions, so each coordinate is expanded into
sines and cosines of growing frequency, $\gamma(x) = \big(\sin(2^k\omega_0 x), \cos(2^k\omega_0 x)\big)_{k<L}$
[$L = 60$, $\omega_0 = 0.1$]. Two Softplus layers of 256 make a feature; one head gives $\sigma$ (its bias starts at
$-1.5$, an almost empty scene), the other the colour from the feature and the embedded ray direction.

**Training.** Each step picks 6 training cameras and 750 random pixels in each (Monte Carlo ray sampling), renders
only those rays with 128 samples between depths 0.1 and 3.0, and compares colour and opacity with the pixels and the
silhouette (pseudo-Huber loss). Full images are rendered in chunks of rays so memory stays bounded.

**The grid field** (quick preset) keeps features on dense grids of $16^3$, $32^3$ and $64^3$ voxels, reads them by
trilinear interpolation and decodes them with a 32-wide MLP. Most of the work is a memory lookup instead of a
matrix product, so it trains in about a minute on a CPU where the book's MLP needs many seconds per step.
The density is zero outside a bound sphere, so only the samples inside it are evaluated.

**Checkpoints** hold the weights, the field's settings and the sample spacing; they are loaded with
`torch.load(weights_only=True)`, so opening one runs no code.
"""


@dataclass
class NerfUI:
    """What /nerf updates besides the run panel: the orbit video, the checkpoint box (which /nerf_render reads),
    the data-set JSON and the viewer's GLB."""

    panel: RunPanel
    video: gr.Video
    checkpoint: gr.File
    data_info: gr.JSON
    viewer_state: gr.State

    @property
    def outputs(self) -> list[Any]:
        return [*self.panel.outputs, self.video, self.checkpoint, self.data_info, self.viewer_state]


def build(ctx: AppContext, tab: gr.Tab) -> None:
    """Results first: data and field settings with Train on the left, the run's results on the right; examples; the
    orbit of a trained field; the data preview in a closed accordion."""
    with gr.Accordion("Lesson: radiance fields, harmonic embedding, Monte Carlo rays", open=False):
        gr.Markdown(LESSON, latex_delimiters=LATEX)
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            inputs = data_inputs(ctx, nerf.Config)
            train_inputs = _field_inputs(ctx, inputs[2])
            with gr.Row():
                train_button = gr.Button("Train", variant="primary", elem_id="nerf-run")
                stop_button(ctx, "nerf")
            object_examples(inputs, "nerf-examples")
        with gr.Column(scale=2, min_width=400):
            panel = run_panel(preview_label="Held-out view: target | render | error", preview_height=300, stacked=True)
            with gr.Row():
                video = gr.Video(label="Orbit video", interactive=False, height=300, visible=False)
                show_when_filled(video)
                model = model3d("Marching-cubes mesh", "nerf-model3d", height=300, interactive=False)
    checkpoint = _render_section(ctx)
    compare_section(ctx, list(inputs), panel)
    data = data_preview_section(ctx, inputs)
    wire_preview(ctx, data, nerf.Config, api_name=False)  # the same builder as /multiview in the Volume tab
    viewer_state = gr.State(None)  # the GLB for the viewer, handed over by a chained event (see widgets.viewer_file)
    ui = NerfUI(panel, video, checkpoint, data.data_info, viewer_state)
    event = gpu_click(train_button, bind(train, ctx=ctx, ui=ui), [*data.inputs, *train_inputs], ui.outputs, "nerf")
    show_in_viewer(event, viewer_state, model)
    refresh_on_select(tab, model)


def _field_inputs(ctx: AppContext, preset: gr.Radio) -> list[Any]:
    """The field and its optimisation settings (the inputs /nerf takes after the data's), showing the preset's
    values; picking another field shows that field's learning rate."""
    with gr.Accordion("Field and optimisation (the preset's values; change freely)", open=False):
        field_type = gr.Radio(
            [("preset's", ""), ("book MLP", "mlp"), ("fast grid field", "grid")],
            value="",
            label="Field",
            info="The book's MLP is faithful but slow on a CPU; the grid field trains in about a minute",
        )
        boxes = preset_numbers(
            ctx,
            preset,
            nerf.Config,
            {
                "steps": "Steps (book 3000)",
                "lr": "Learning rate (book 0.001)",
                "rays_per_image": "Rays per view per step (book 750)",
            },
            integers=("steps", "rays_per_image"),
            limits={"steps": (1, 100_000), "lr": (1e-7, 1.0), "rays_per_image": (1, 1 << 20)},
        )
    field_type.change(bind(field_rate, ctx=ctx), [preset, field_type], boxes["lr"], api_name=False, queue=False)
    return [field_type, *boxes.values()]


def field_rate(preset: str | None, field_type: str, *, ctx: AppContext) -> float:
    """The learning rate the chosen field trains at under `preset` (the field's own, see nerf.with_field)."""
    cfg = make_preset(nerf.Config, preset or default_preset(ctx.device))
    return (nerf.with_field(cfg, field_type) if field_type else cfg).lr


def _render_section(ctx: AppContext) -> gr.File:
    """Orbit a trained field: sliders re-render the checkpoint (/nerf_render) when released; returns the checkpoint
    box (filled in after training, or an upload)."""
    gr.Markdown("### Orbit the trained field")
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            checkpoint = gr.File(label="Checkpoint (.pt; filled in after training, or upload one)", file_types=[".pt"])
            azimuth_deg = gr.Slider(-180, 180, value=30, step=1, label="Orbit: azimuth (°)", info="Release to render")
            elevation_deg = gr.Slider(-60, 60, value=15, step=1, label="Elevation (°)", info="Release to render")
            camera_distance = gr.Slider(1.5, 6.0, value=2.7, step=0.1, label="Distance", info="Release to render")
            image_size = gr.Number(256, label="Image size (px)", precision=0, info="0: the size it was trained at")
            render_button = gr.Button("Render", size="sm")
        with gr.Column(scale=2, min_width=400):
            rendered = gr.Image(label="Rendered view", interactive=False, height=320)
    inputs = [checkpoint, azimuth_deg, elevation_deg, camera_distance, image_size]
    gpu_click(render_button, bind(render, ctx=ctx), inputs, rendered, api_name="nerf_render")
    orbit = bind(orbit_render, ctx=ctx)
    for trigger in (azimuth_deg.release, elevation_deg.release, camera_distance.release, checkpoint.change):
        trigger(orbit, inputs, rendered, api_name=False, concurrency_id="gpu", concurrency_limit=1)
    return checkpoint


def orbit_render(
    checkpoint: Any,
    azimuth_deg: float,
    elevation_deg: float,
    camera_distance: float,
    image_size: float | None = None,
    *,
    ctx: AppContext,
) -> Any:
    """`render` when there is a checkpoint; otherwise leaves the picture as it is (a slider moved before training)."""
    if not upload_path(checkpoint):
        return gr.skip()
    return render(checkpoint, azimuth_deg, elevation_deg, camera_distance, image_size, ctx=ctx)


def train(
    object_name: str,
    mesh_files: Any = None,
    preset: str | None = None,
    n_views: float | None = None,
    image_size: float | None = None,
    elevation_deg: float = ELEVATION_DEG,
    camera_distance: float = CAMERA_DISTANCE,
    field_type: str = "",
    steps: float | None = None,
    learning_rate: float | None = None,
    rays_per_view: float | None = None,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    ui: NerfUI,
) -> Iterator[dict[Any, Any]]:
    """/nerf: streams progress, held-out previews and curves; video, mesh and checkpoint at the end."""
    preset = preset or default_preset(ctx.device)
    values = data_overrides(object_name, mesh_files, n_views, image_size, elevation_deg, camera_distance)
    base = config_for(ctx, nerf.Config, preset)
    if field_type and field_type != base.field:
        base = nerf.with_field(base, field_type)
    values.update(filled((("steps", steps, int), ("lr", learning_rate, float), ("rays_per_image", rays_per_view, int))))
    cfg = large_orbit(checked(nerf.check_config, dataclasses.replace(base, **values)))

    def on_done(done: Done) -> dict[Any, Any]:
        glb = done.files.get("mesh_glb")
        return {
            ui.video: shown_file(done.files.get("video")),
            ui.checkpoint: str(done.files["checkpoint"]),
            ui.data_info: done.info.get("data"),
            ui.viewer_state: viewer_file(ctx, request, glb) if glb else None,
        }

    yield from stream(ctx, ui.panel, "nerf", cfg, preset=preset, request=request, tab="nerf", on_done=on_done)


@user_errors("Cannot render this checkpoint")
def render(
    checkpoint: Any,
    azimuth_deg: float,
    elevation_deg: float,
    camera_distance: float,
    image_size: float | None = None,
    *,
    ctx: AppContext,
) -> np.ndarray:
    """/nerf_render: one view of a saved field."""
    path = upload_path(checkpoint)
    if not path:
        raise gr.Error("Upload a NeRF checkpoint (.pt), or train one above first.")
    return nerf.render_checkpoint(
        path,
        azimuth=float(azimuth_deg),
        elevation=float(elevation_deg),
        distance=float(camera_distance),
        image_size=int(image_size) if given(image_size) else None,
        device=ctx.device,
    )
