"""Step 1 of the Volume and NeRF tabs: the multi-view data widgets, their config overrides and the data preview
(/multiview)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipelines.train import multiview
from pipelines.train.multiview_data import OBJECTS, check_data_config
from pipelines.train.multiview_figures import cameras_figure, contact_sheet, summary

from .context import AppContext
from .widgets import (
    MESH_WITH_TEXTURE_TYPES,
    bind,
    config_for,
    gpu_click,
    preset_numbers,
    preset_radio,
    upload_box,
    upload_paths,
)

ELEVATION_DEG = 15.0
"""The cameras' elevation a tab starts with."""
CAMERA_DISTANCE = 2.7
"""The cameras' distance from the object's centre a tab starts with."""
PRESET_LABEL = "Preset (tiny: seconds; quick: about a minute on a CPU; full: the book's settings)"
DEFAULT_OBJECT = "cow" if "cow" in OBJECTS else OBJECTS[0]
"""The object a tab starts with: the book's cow."""


@dataclass
class DataSection:
    """The multi-view data widgets (empty numbers mean the preset's value), the ray-sampler switch, the preview
    button, and what the preview shows: the views sheet, the cameras plot and the data-set JSON."""

    object_name: gr.Dropdown
    mesh_files: gr.File
    preset: gr.Radio
    n_views: gr.Number
    image_size: gr.Number
    elevation_deg: gr.Slider
    camera_distance: gr.Slider
    show_rays: gr.Checkbox
    preview_button: gr.Button
    sheet: gr.Image
    cameras_plot: gr.Plot
    data_info: gr.JSON

    @property
    def inputs(self) -> list[Any]:
        """The data widgets, in the order every endpoint of the Volume and NeRF tabs takes them first."""
        return [
            self.object_name,
            self.mesh_files,
            self.preset,
            self.n_views,
            self.image_size,
            self.elevation_deg,
            self.camera_distance,
        ]


def data_section(ctx: AppContext, config_cls: type | None = None) -> DataSection:
    """Lays out step 1 of the Volume and NeRF tabs in two columns: the data widgets and preview button on the left,
    the views sheet and cameras plot on the right, and the data-set JSON in a closed accordion. With `config_cls`,
    the number boxes show (and follow) that pipeline's preset values."""
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            gr.Markdown("### 1. Multi-view data")
            inputs = data_inputs(ctx, config_cls)
            show_rays, preview_button = preview_controls()
        with gr.Column(scale=2, min_width=400):
            sheet, cameras_plot, data_info = preview_outputs()
    return DataSection(*inputs, show_rays, preview_button, sheet, cameras_plot, data_info)


def data_inputs(ctx: AppContext, config_cls: type | None = None) -> tuple[Any, ...]:
    """The data widgets in `DataSection.inputs` order: object, upload, preset, views, image size, elevation, distance.
    The number boxes show the preset's values of `config_cls` (the data builder's defaults without it)."""
    object_name = gr.Dropdown(
        list(OBJECTS),
        value=DEFAULT_OBJECT,
        label="Object (when nothing is uploaded)",
        info="cow: the book's subject, textured; blob: a bumpy coloured sphere; textured-cube: the bundled asset",
    )
    mesh_files = upload_box(
        "…or upload a mesh: OBJ (+MTL, texture), PLY, GLB, STL, OFF, or a zip", MESH_WITH_TEXTURE_TYPES, height=120
    )
    preset = preset_radio(ctx, PRESET_LABEL)
    with gr.Row():
        if config_cls is None:
            n_views = gr.Number(None, label="Views", precision=0, info="Cameras on the circle (empty: the preset's)")
            image_size = gr.Number(None, label="Image size px", precision=0, info="Empty: the preset's")
        else:
            boxes = preset_numbers(
                ctx,
                preset,
                config_cls,
                {"n_views": "Views", "image_size": "Image size (px)"},
                integers=("n_views", "image_size"),
                limits={"n_views": (2, 400), "image_size": (16, 1024)},
            )
            n_views, image_size = boxes["n_views"], boxes["image_size"]
    with gr.Row():
        elevation_deg = gr.Slider(
            -60, 60, value=ELEVATION_DEG, step=1, label="Elevation (°)", info="The cameras' height angle (book: 0)"
        )
        camera_distance = gr.Slider(
            1.5, 6.0, value=CAMERA_DISTANCE, step=0.1, label="Camera distance", info="From the object's centre"
        )
    return object_name, mesh_files, preset, n_views, image_size, elevation_deg, camera_distance


def preview_controls() -> tuple[gr.Checkbox, gr.Button]:
    """The ray-sampler switch and the preview button."""
    show_rays = gr.Checkbox(
        False,
        label="Show the ray sampler (rays and samples of camera 0)",
        info="Adds camera 0's rays and their sample points to the cameras plot",
    )
    preview_button = gr.Button("Preview the data", size="sm")
    return show_rays, preview_button


def preview_outputs() -> tuple[gr.Image, gr.Plot, gr.JSON]:
    """The views sheet, the cameras plot and the data-set JSON (in a closed accordion)."""
    sheet = gr.Image(label="Views (top) and silhouettes; held-out views framed orange", interactive=False, height=320)
    cameras_plot = gr.Plot(label="Cameras (blue: training, orange: held out)")
    with gr.Accordion("Data set details (JSON)", open=False):
        data_info = gr.JSON(label="Data set")
    return sheet, cameras_plot, data_info


def data_preview_section(ctx: AppContext, inputs: tuple[Any, ...]) -> DataSection:
    """The data preview in a closed accordion below a tab's results, over data widgets laid out elsewhere."""
    with gr.Accordion("The multi-view data: views, silhouettes, cameras and rays", open=False):
        with gr.Row():
            with gr.Column(scale=1, min_width=240):
                show_rays, preview_button = preview_controls()
            with gr.Column(scale=3):
                sheet, cameras_plot, data_info = preview_outputs()
    return DataSection(*inputs, show_rays, preview_button, sheet, cameras_plot, data_info)


def object_examples(inputs: tuple[Any, ...], elem_id: str) -> gr.Examples:
    """Examples of the object widget (the first of `inputs`), the book's cow first: what the start-here card picks."""
    names = [DEFAULT_OBJECT, *(name for name in OBJECTS if name != DEFAULT_OBJECT)]
    return gr.Examples([[name] for name in names], [inputs[0]], label="Examples: pick an object", elem_id=elem_id)


def wire_preview(ctx: AppContext, data: DataSection, config_cls: type, api_name: str | bool) -> None:
    """Wires the preview button to `preview_data` with the tab's Config (the Volume tab serves it as /multiview)."""
    gpu_click(
        data.preview_button,
        bind(preview_data, ctx=ctx, config_cls=config_cls),
        [*data.inputs, data.show_rays],
        [data.sheet, data.cameras_plot, data.data_info],
        api_name=api_name,
    )


def preview_data(
    object_name: str,
    mesh_files: Any = None,
    preset: str | None = None,
    n_views: float | None = None,
    image_size: float | None = None,
    elevation_deg: float = ELEVATION_DEG,
    camera_distance: float = CAMERA_DISTANCE,
    show_rays: bool = False,
    *,
    ctx: AppContext,
    config_cls: type,
) -> tuple[Any, Any, dict]:
    """/multiview: renders the views and returns (contact sheet, cameras figure, data-set summary)."""
    overrides = data_overrides(object_name, mesh_files, n_views, image_size, elevation_deg, camera_distance)
    cfg = config_for(ctx, config_cls, preset or "quick", **overrides)
    checked(check_data_config, cfg)
    try:  # an upload is staged in a fresh temporary folder, removed once the views are rendered
        data = multiview.build(cfg, ctx.device)
    except ValueError as err:
        raise gr.Error(str(err), title="Cannot build the views") from None
    fig = cameras_figure(
        data,
        rays=bool(show_rays),
        n_pts_per_ray=cfg.n_pts_per_ray,
        min_depth=cfg.min_depth,
        max_depth=cfg.max_depth,
    )
    return contact_sheet(data), fig, summary(data)


def data_overrides(
    object_name: str,
    mesh_files: Any,
    n_views: float | None,
    image_size: float | None,
    elevation_deg: float,
    camera_distance: float,
) -> dict[str, Any]:
    """Config overrides from the data widgets (empty numbers keep the preset's value)."""
    values: dict[str, Any] = {
        "object": object_name or DEFAULT_OBJECT,
        "files": upload_paths(mesh_files),
        "elevation": float(elevation_deg),
        "distance": float(camera_distance),
    }
    values.update(filled((("n_views", n_views, int), ("image_size", image_size, int))))
    return values


def given(value: float | None) -> bool:
    """Whether a number box was filled in: browsers send an emptied gr.Number as 0 or None."""
    return value is not None and value != 0


def filled(boxes: Iterable[tuple[str, float | None, Callable[[float], Any]]]) -> dict[str, Any]:
    """Config overrides from (field, box value, cast) rows: the boxes that were filled in, cast."""
    return {field: cast(value) for field, value, cast in boxes if given(value)}


def checked(check: Callable[[Any], None], cfg: Any) -> Any:
    """Run a pipeline's config check and turn its ValueError into a message for the user."""
    try:
        check(cfg)
    except ValueError as err:
        raise gr.Error(str(err), title="Check the settings") from None
    return cfg


VIDEO_PX = 256
"""The orbit video's smallest side in the Volume and NeRF tabs: the trained grid or field is rendered at this size
(however small its training views), not a small render blown up."""


def large_orbit(cfg: Any) -> Any:
    """`cfg` with the orbit video rendered at `VIDEO_PX` px or more (its `render_scale` raised, never lowered)."""
    return dataclasses.replace(cfg, render_scale=max(cfg.render_scale, math.ceil(VIDEO_PX / cfg.image_size)))
