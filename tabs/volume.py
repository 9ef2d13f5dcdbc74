"""Volume tab: the multi-view data builder (views, cameras, rays) and voxel-grid reconstruction."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipelines.core.device import default_preset
from pipelines.core.events import Done
from pipelines.volume import pipeline as volume

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
    viewer_file,
)

LESSON = r"""
**The data.** The object (fitted into the unit sphere) is rendered by PyTorch3D from $N$ cameras on a circle at a
fixed elevation, looking at its centre. Every view gives colours and a 0/1 silhouette; every 8th view is kept aside
and only used to measure how well the reconstruction predicts views it never saw (held-out PSNR,
$-10\log_{10}\text{MSE}$ in dB).

**Rays.** Each pixel defines a ray $\mathbf r(t) = \mathbf o + t\,\mathbf d$ from the camera centre $\mathbf o$
through the pixel; `NDCMultinomialRaysampler` places $K$ samples $t_1 < \dots < t_K$ evenly between a near and a
far depth.

**Volume rendering.** Think of the scene as a fog with a density $\sigma(\mathbf x)$ (how much light it stops per
unit length) and a colour $\mathbf c(\mathbf x)$. Light that leaves depth $t$ reaches the camera with probability
$T(t) = \exp\!\big(-\int_0^t \sigma(\mathbf r(s))\,ds\big)$ (the *transmittance*: nothing in front absorbed it),
so the pixel's colour is the colour emitted along the ray, weighted by how much is absorbed there and how much
of it survives on the way back:
$$C(\mathbf r) = \int T(t)\,\sigma(\mathbf r(t))\,\mathbf c(\mathbf r(t))\,dt .$$
With samples, each one stops a fraction $\alpha_i$ of the light that reaches it, and
$$C = \sum_i w_i\,\mathbf c_i,\qquad w_i = \alpha_i \prod_{j<i} (1-\alpha_j),\qquad
A = \sum_i w_i = 1 - \prod_i (1 - \alpha_i),$$
where $A$ is the pixel's opacity, compared with the silhouette. This is PyTorch3D's
`EmissionAbsorptionRaymarcher`; for samples $\delta$ apart, $\alpha = 1 - e^{-\sigma\delta}$.

**The voxel grid.** Here $\alpha$ and $\mathbf c$ are stored directly on a $G^3$ grid (through a sigmoid, so they
stay in $[0, 1]$) and read at each sample by trilinear interpolation (`VolumeRenderer`). Both are learnt by Adam on
a robust (pseudo-Huber) loss $\rho(x) = s\big(\sqrt{1 + x^2/s^2} - 1\big)$, $s = 0.1$, on colours and silhouettes.
Afterwards marching cubes draws the surface where the density crosses a level.

**Bounded sampling** (quick preset): the grid is emptied outside a sphere around the object, so rays that miss the
sphere are black for free and only samples inside it are evaluated: the same picture for a fraction of the work.
"""


@dataclass
class VolumeUI:
    """What /volume updates besides the run panel: the orbit video, the data-set JSON and the viewer's GLB."""

    panel: RunPanel
    video: gr.Video
    data_info: gr.JSON
    viewer_state: gr.State

    @property
    def outputs(self) -> list[Any]:
        return [*self.panel.outputs, self.video, self.data_info, self.viewer_state]


def build(ctx: AppContext, tab: gr.Tab) -> None:
    """Results first: the data and grid settings with Train on the left, the run's results on the right; examples
    below; the data preview (/multiview) in a closed accordion."""
    with gr.Accordion("Lesson: rays, the volume rendering equation, voxel grids", open=False):
        gr.Markdown(LESSON, latex_delimiters=LATEX)
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            inputs = data_inputs(ctx, volume.Config)
            grid = _grid_inputs(ctx, inputs[2])
            with gr.Row():
                train_button = gr.Button("Train", variant="primary", elem_id="volume-run")
                stop_button(ctx, "volume")
            object_examples(inputs, "volume-examples")
        with gr.Column(scale=2, min_width=400):
            panel = run_panel(preview_label="Held-out view: target | render | error", preview_height=300, stacked=True)
            with gr.Row():
                video = gr.Video(label="Orbit video", interactive=False, height=300, visible=False)
                show_when_filled(video)
                model = model3d("Marching-cubes mesh", "volume-model3d", height=300, interactive=False)
    data = data_preview_section(ctx, inputs)
    wire_preview(ctx, data, volume.Config, api_name="multiview")
    viewer_state = gr.State(None)  # the GLB for the viewer, handed over by a chained event (see widgets.viewer_file)
    ui = VolumeUI(panel, video, data.data_info, viewer_state)
    event = gpu_click(train_button, bind(train, ctx=ctx, ui=ui), [*data.inputs, *grid], ui.outputs, api_name="volume")
    show_in_viewer(event, viewer_state, model)
    refresh_on_select(tab, model)


def _grid_inputs(ctx: AppContext, preset: gr.Radio) -> list[gr.Number]:
    """Grid size, steps, learning rate and rays per view, showing (and following) the preset's values."""
    with gr.Accordion("Grid and optimisation (the preset's values; change freely)", open=False):
        boxes = preset_numbers(
            ctx,
            preset,
            volume.Config,
            {
                "grid_size": "Grid size G (book 128)",
                "steps": "Steps (book 300)",
                "lr": "Learning rate (book 0.1)",
                "rays_per_image": "Rays per view per step (0: every pixel, the book)",
            },
            integers=("grid_size", "steps", "rays_per_image"),
            limits={"grid_size": (4, 320), "steps": (1, 100_000), "lr": (1e-6, 10.0), "rays_per_image": (0, 1 << 20)},
        )
    return list(boxes.values())


def train(
    object_name: str,
    mesh_files: Any = None,
    preset: str | None = None,
    n_views: float | None = None,
    image_size: float | None = None,
    elevation_deg: float = ELEVATION_DEG,
    camera_distance: float = CAMERA_DISTANCE,
    grid_size: float | None = None,
    steps: float | None = None,
    learning_rate: float | None = None,
    rays_per_view: float | None = None,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    ui: VolumeUI,
) -> Iterator[dict[Any, Any]]:
    """/volume: streams progress, previews and curves; the video, mesh and files at the end."""
    preset = preset or default_preset(ctx.device)
    values = data_overrides(object_name, mesh_files, n_views, image_size, elevation_deg, camera_distance)
    values.update(filled((("grid_size", grid_size, int), ("steps", steps, int), ("lr", learning_rate, float))))
    if given(rays_per_view):
        values["rays_per_image"] = max(0, int(rays_per_view))  # -1 (or any negative): every pixel
    cfg = large_orbit(checked(volume.check_config, config_for(ctx, volume.Config, preset, **values)))

    def on_done(done: Done) -> dict[Any, Any]:
        glb = done.files.get("mesh_glb")
        return {
            ui.video: shown_file(done.files.get("video")),
            ui.viewer_state: viewer_file(ctx, request, glb) if glb else None,
            ui.data_info: done.info.get("data"),
        }

    yield from stream(ctx, ui.panel, "volume", cfg, preset=preset, request=request, tab="volume", on_done=on_done)
