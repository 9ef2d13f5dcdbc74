"""NeRF tab: train a radiance field on the multi-view data, watch held-out views, re-render saved checkpoints."""

from __future__ import annotations

import dataclasses

import gradio as gr

from pipelines.core.config import make_preset
from pipelines.core.device import default_preset
from pipelines.nerf import pipeline as nerf

from .context import AppContext
from .stream import LATEX, run_panel, stop_button, stream, upload_path, viewer_file
from .volume import DATA_KEYS, checked, data_overrides, data_preview_handler, data_section, given

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


def build(ctx: AppContext, tab: gr.Tab) -> None:
    preset_default = default_preset(ctx.device)
    with gr.Accordion("Lesson: radiance fields, harmonic embedding, Monte Carlo rays", open=False):
        gr.Markdown(LESSON, latex_delimiters=LATEX)
    w, show_rays, preview_btn, sheet, cams_plot, data_info = data_section(preset_default)

    gr.Markdown("### 2. Train the field")
    with gr.Row():
        field = gr.Radio([("preset's", ""), ("book MLP", "mlp"), ("fast grid field", "grid")], value="", label="Field")
        steps = gr.Number(None, label="Steps (0: the preset's; book 3000)", precision=0)
        lr = gr.Number(None, label="Learning rate (0: the preset's; book 0.001)")
        rays = gr.Number(None, label="Rays per view per step (0: the preset's; book 750)", precision=0)
    with gr.Row():
        train_btn = gr.Button("Train", variant="primary")
        stop_button(ctx, "nerf")
    panel = run_panel(preview_label="Held-out view: target | render | error")
    with gr.Row():
        video = gr.Video(label="Orbit video", interactive=False, height=320)
        model = gr.Model3D(
            label="Marching-cubes mesh", height=320, clear_color=(0.93, 0.93, 0.95, 1.0), elem_id="nerf-model3d"
        )
    viewer_state = gr.State(None)  # the GLB for the viewer, handed over by a chained event (see stream.viewer_file)

    gr.Markdown("### 3. Re-render a checkpoint")
    with gr.Row():
        with gr.Column(scale=1):
            ckpt = gr.File(label="Checkpoint (.pt; filled in after training)", file_types=[".pt"])
            azim = gr.Slider(-180, 180, value=30, step=1, label="Azimuth (°)")
            elev = gr.Slider(-60, 60, value=15, step=1, label="Elevation (°)")
            dist = gr.Slider(1.5, 6.0, value=2.7, step=0.1, label="Distance")
            size = gr.Number(None, label="Image size px (0: as trained)", precision=0)
            render_btn = gr.Button("Render")
        with gr.Column(scale=2):
            rendered = gr.Image(label="Rendered view", interactive=False, height=320)

    data_inputs = [w[k] for k in DATA_KEYS]
    preview_btn.click(
        data_preview_handler(ctx, nerf.Config),
        [*data_inputs, show_rays],
        [sheet, cams_plot, data_info],
        api_name=False,  # the same builder as /multiview in the Volume tab
        concurrency_id="gpu",
        concurrency_limit=1,
    )

    def train(object_, files, preset, n_views, image_size, elevation, distance, kind, n_steps, rate, n_rays, request: gr.Request):  # fmt: skip
        """/nerf: streams progress, held-out previews and curves; video, mesh and checkpoint at the end."""
        preset = preset or preset_default
        values = data_overrides(object_, files, n_views, image_size, elevation, distance)
        base = make_preset(nerf.Config, preset)
        if kind and kind != base.field:
            base = nerf.with_field(base, kind)
        for key, value, cast in (("steps", n_steps, int), ("lr", rate, float), ("rays_per_image", n_rays, int)):
            if given(value):
                values[key] = cast(value)
        cfg = dataclasses.replace(base, **values, device=str(ctx.device), max_upload_mb=ctx.max_upload_mb)
        checked(nerf.check_config, cfg)

        def on_done(done) -> dict:
            glb = done.files.get("mesh_glb")
            return {
                video: str(done.files["video"]) if "video" in done.files else None,
                ckpt: str(done.files["checkpoint"]),
                data_info: done.info.get("data"),
                viewer_state: viewer_file(ctx, request, glb) if glb else None,
            }

        yield from stream(ctx, panel, "nerf", cfg, preset=preset, request=request, tab="nerf", on_done=on_done)

    train_btn.click(
        train,
        [*data_inputs, field, steps, lr, rays],
        [*panel.outputs, video, ckpt, data_info, viewer_state],
        api_name="nerf",
        concurrency_id="gpu",
        concurrency_limit=1,
    ).then(lambda path: path, viewer_state, model, api_name=False)

    def render(file, azimuth, elevation, distance, image_size):
        """/nerf_render: one view of a saved field."""
        path = upload_path(file)
        if not path:
            raise gr.Error("Upload a NeRF checkpoint (.pt), or train one above first.")
        try:
            return nerf.render_checkpoint(
                path,
                azimuth=float(azimuth),
                elevation=float(elevation),
                distance=float(distance),
                image_size=int(image_size) if given(image_size) else None,
                device=ctx.device,
            )
        except ValueError as err:
            raise gr.Error(str(err), title="Cannot render this checkpoint") from None

    render_btn.click(
        render, [ckpt, azim, elev, dist, size], rendered, api_name="nerf_render", concurrency_id="gpu",
        concurrency_limit=1,
    )  # fmt: skip
    # gr.Model3D in a tab that is not the first can render collapsed (gradio issue 7632): re-send on select.
    tab.select(lambda m: m, model, model, api_name=False)
