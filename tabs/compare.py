"""Volume and NeRF side by side on the same data: the NeRF tab's last held-out view and headline beside a voxel grid
fitted on the views its data widgets describe, with its own held-out view and PSNR."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from pipelines.core.device import default_preset
from pipelines.volume import pipeline as volume

from .context import AppContext
from .multiview_data import CAMERA_DISTANCE, ELEVATION_DEG, checked, data_overrides
from .stream import stream
from .widgets import RunPanel, bind, config_for, gpu_click, run_panel

COMPARE_TAB = "nerf_compare"
"""The stop-flag key of the comparison's run (the NeRF tab's own run keeps "nerf")."""


def compare_section(ctx: AppContext, data_inputs: list[Any], nerf_panel: RunPanel) -> RunPanel:
    """Lays out the comparison in a closed accordion: the NeRF panel's picture and card mirrored on the left, a voxel
    grid's run on the right, fitted when the button is pressed on the data the NeRF tab's widgets describe."""
    with gr.Accordion("Compare: a voxel grid (Volume) on the same data, side by side", open=False):
        gr.Markdown(
            "Train the field above, then fit a voxel grid on the same views (the Volume tab's method, at this "
            "preset): both held-out views and PSNRs sit side by side."
        )
        button = gr.Button("Fit a voxel grid on these views", variant="primary", size="sm", elem_id="nerf-compare-run")
        with gr.Row():
            with gr.Column(min_width=300):
                gr.Markdown("**NeRF** (this tab's last run)")
                nerf_card = gr.HTML("", elem_classes=["studio-card"])
                nerf_picture = gr.Image(label="NeRF: target | render | error", interactive=False, height=260)
            with gr.Column(min_width=300):
                gr.Markdown("**Voxel grid** (the Volume tab's method)")
                panel = run_panel(curves=False, preview_label="Voxel grid: target | render | error", preview_height=260)
    if nerf_panel.headline is not None:
        nerf_panel.headline.change(lambda text: text, nerf_panel.headline, nerf_card, api_name=False, queue=False)
    if nerf_panel.preview is not None:
        nerf_panel.preview.change(lambda image: image, nerf_panel.preview, nerf_picture, api_name=False, queue=False)
    gpu_click(button, bind(fit_grid, ctx=ctx, panel=panel), data_inputs, panel.outputs, api_name=False)
    return panel


def fit_grid(
    object_name: str,
    mesh_files: Any = None,
    preset: str | None = None,
    n_views: float | None = None,
    image_size: float | None = None,
    elevation_deg: float = ELEVATION_DEG,
    camera_distance: float = CAMERA_DISTANCE,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    panel: RunPanel,
) -> Iterator[dict[Any, Any]]:
    """A recorded Volume run on the data the widgets describe, at the preset's grid settings."""
    preset = preset or default_preset(ctx.device)
    values = data_overrides(object_name, mesh_files, n_views, image_size, elevation_deg, camera_distance)
    cfg = checked(volume.check_config, config_for(ctx, volume.Config, preset, **values))
    yield from stream(ctx, panel, "volume", cfg, preset=preset, request=request, tab=COMPARE_TAB)
