"""Volume tab: the multi-view data builder (views, cameras, rays) and voxel-grid reconstruction."""

from __future__ import annotations

import dataclasses
from typing import Any

import gradio as gr

from pipelines.core.config import make_preset
from pipelines.core.device import default_preset
from pipelines.train import multiview
from pipelines.volume import pipeline as volume

from .context import AppContext
from .stream import LATEX, run_panel, stop_button, stream, upload_paths, viewer_file

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


def data_controls(preset_default: str) -> dict[str, Any]:
    """The multi-view data widgets (shared by the Volume and NeRF tabs). Empty numbers mean the preset's value."""
    w: dict[str, Any] = {}
    w["object"] = gr.Dropdown(list(multiview.OBJECTS), value="blob", label="Object (when nothing is uploaded)")
    w["files"] = gr.File(
        label="…or upload a mesh: OBJ (+MTL, texture), PLY, GLB, STL, OFF, or a zip",
        file_count="multiple",
        file_types=[".obj", ".mtl", ".png", ".jpg", ".jpeg", ".ply", ".glb", ".gltf", ".bin", ".stl", ".off", ".zip"],
    )
    w["preset"] = gr.Radio(
        ["tiny", "quick", "full"],
        value=preset_default,
        label="Preset (tiny: seconds; quick: about a minute on a CPU; full: the book's settings)",
    )
    with gr.Row():
        w["n_views"] = gr.Number(None, label="Views (0: the preset's)", precision=0)
        w["image_size"] = gr.Number(None, label="Image size px (0: the preset's)", precision=0)
    with gr.Row():
        w["elevation"] = gr.Slider(-60, 60, value=15, step=1, label="Elevation (°)")
        w["distance"] = gr.Slider(1.5, 6.0, value=2.7, step=0.1, label="Camera distance")
    return w


DATA_KEYS = ("object", "files", "preset", "n_views", "image_size", "elevation", "distance")


def data_overrides(
    object_: str, files: Any, n_views: float | None, image_size: float | None, elevation: float, distance: float
) -> dict[str, Any]:
    """Config overrides from the data widgets (empty numbers keep the preset's value)."""
    values: dict[str, Any] = {
        "object": object_ or "blob",
        "files": upload_paths(files),
        "elevation": float(elevation),
        "distance": float(distance),
    }
    if given(n_views):
        values["n_views"] = int(n_views)
    if given(image_size):
        values["image_size"] = int(image_size)
    return values


def given(value: float | None) -> bool:
    """Whether a number box was filled in: browsers send an emptied gr.Number as 0 or None."""
    return value is not None and value != 0


def checked(check, cfg: Any) -> Any:
    """Run a pipeline's config check and turn its ValueError into a message for the user."""
    try:
        check(cfg)
    except ValueError as err:
        raise gr.Error(str(err), title="Check the settings") from None
    return cfg


def data_preview_handler(ctx: AppContext, config_cls: type):
    """A handler (object, files, preset, n_views, image_size, elevation, distance, rays) -> (views, figure, summary)."""

    def preview(object_, files, preset, n_views, image_size, elevation, distance, rays):
        base = make_preset(config_cls, preset or "quick")
        over = data_overrides(object_, files, n_views, image_size, elevation, distance)
        cfg = dataclasses.replace(base, **over, max_upload_mb=ctx.max_upload_mb)
        checked(multiview.check_data_config, cfg)
        try:  # an upload is staged in a fresh temporary folder, removed once the views are rendered
            data = multiview.build(cfg, ctx.device)
        except ValueError as err:
            raise gr.Error(str(err), title="Cannot build the views") from None
        fig = multiview.cameras_figure(
            data,
            rays=bool(rays),
            n_pts_per_ray=cfg.n_pts_per_ray,
            min_depth=cfg.min_depth,
            max_depth=cfg.max_depth,
        )
        return multiview.contact_sheet(data), fig, multiview.summary(data)

    return preview


def data_section(preset_default: str) -> tuple[dict[str, Any], Any, Any, Any, Any, Any]:
    """Step 1 of the Volume and NeRF tabs: the data widgets, ray-sampler switch, preview button, views sheet,
    cameras plot and data-set JSON."""
    with gr.Row():
        with gr.Column(scale=1):
            gr.Markdown("### 1. Multi-view data")
            w = data_controls(preset_default)
            show_rays = gr.Checkbox(False, label="Show the ray sampler (rays and samples of camera 0)")
            preview_btn = gr.Button("Preview the data")
        with gr.Column(scale=2):
            sheet = gr.Image(label="Views (top) and silhouettes; held-out views framed orange", interactive=False)
            cams_plot = gr.Plot(label="Cameras (blue: training, orange: held out)")
    with gr.Accordion("Data set details", open=False):
        data_info = gr.JSON(label="Data set")
    return w, show_rays, preview_btn, sheet, cams_plot, data_info


def build(ctx: AppContext, tab: gr.Tab) -> None:
    preset_default = default_preset(ctx.device)
    with gr.Accordion("Lesson: rays, the volume rendering equation, voxel grids", open=False):
        gr.Markdown(LESSON, latex_delimiters=LATEX)
    w, show_rays, preview_btn, sheet, cams_plot, data_info = data_section(preset_default)

    gr.Markdown("### 2. Fit the voxel grid")
    with gr.Row():
        grid = gr.Number(None, label="Grid size G (0: the preset's; book 128)", precision=0)
        steps = gr.Number(None, label="Steps (0: the preset's; book 300)", precision=0)
        lr = gr.Number(None, label="Learning rate (0: the preset's; book 0.1)")
        rays = gr.Number(
            None, label="Rays per view per step (0: the preset's; -1 = every pixel, the book)", precision=0
        )
    with gr.Row():
        train_btn = gr.Button("Train", variant="primary")
        stop_button(ctx, "volume")
    panel = run_panel(preview_label="Held-out view: target | render | error")
    with gr.Row():
        video = gr.Video(label="Orbit video", interactive=False, height=320)
        model = gr.Model3D(
            label="Marching-cubes mesh", height=320, clear_color=(0.93, 0.93, 0.95, 1.0), elem_id="volume-model3d"
        )
    viewer_state = gr.State(None)  # the GLB for the viewer, handed over by a chained event (see stream.viewer_file)

    data_inputs = [w[k] for k in DATA_KEYS]
    preview_btn.click(
        data_preview_handler(ctx, volume.Config),
        [*data_inputs, show_rays],
        [sheet, cams_plot, data_info],
        api_name="multiview",
        concurrency_id="gpu",
        concurrency_limit=1,
    )

    def train(object_, files, preset, n_views, image_size, elevation, distance, g, n_steps, rate, n_rays, request: gr.Request):  # fmt: skip
        """/volume: streams progress, previews and curves; the video, mesh and files at the end."""
        preset = preset or preset_default
        values = data_overrides(object_, files, n_views, image_size, elevation, distance)
        for key, value, cast in (("grid_size", g, int), ("steps", n_steps, int), ("lr", rate, float)):
            if given(value):
                values[key] = cast(value)
        if given(n_rays):
            values["rays_per_image"] = max(0, int(n_rays))  # -1 (or any negative): every pixel
        cfg = dataclasses.replace(
            make_preset(volume.Config, preset), **values, device=str(ctx.device), max_upload_mb=ctx.max_upload_mb
        )
        checked(volume.check_config, cfg)

        def on_done(done) -> dict:
            glb = done.files.get("mesh_glb")
            return {
                video: str(done.files["video"]) if "video" in done.files else None,
                viewer_state: viewer_file(ctx, request, glb) if glb else None,
                data_info: done.info.get("data"),
            }

        yield from stream(ctx, panel, "volume", cfg, preset=preset, request=request, tab="volume", on_done=on_done)

    train_btn.click(
        train,
        [*data_inputs, grid, steps, lr, rays],
        [*panel.outputs, video, data_info, viewer_state],
        api_name="volume",
        concurrency_id="gpu",
        concurrency_limit=1,
    ).then(lambda path: path, viewer_state, model, api_name=False)
    # gr.Model3D in a tab that is not the first can render collapsed (gradio issue 7632): re-send on select.
    tab.select(lambda m: m, model, model, api_name=False)
