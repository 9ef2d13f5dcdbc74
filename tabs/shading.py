"""Shading lab tab: shaders, lights, materials, cameras and raster settings; buffers, lighting terms, A/B, fitting,
rotations and turntables.

The controls column and the mesh live in `shading_settings`, the optimisation sections in `shading_optimise`, the
lesson in `shading_lessons`; this module lays out the result views and holds their handlers."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np

from pipelines.core.events import Done, to_uint8
from pipelines.core.headline import significant
from pipelines.render import rotations
from pipelines.render.images import image_grid
from pipelines.shading import lab
from pipelines.shading import turntable as shading_turntable
from pipelines.shading.meshes import mesh_choices
from pipelines.shading.settings import RenderSettings

from .context import AppContext
from .headline import parts_html
from .shading_lessons import LESSON, TERMS_FORMULA
from .shading_optimise import fit_section, points_section
from .shading_settings import (
    MeshSource,
    SettingsPanel,
    parse_settings,
    refresh_settings,
    settings_column,
    settings_from_widgets,
    wire_settings,
)
from .stream import stream
from .widgets import (
    LATEX,
    RunPanel,
    bind,
    config_for,
    gpu_click,
    gpu_then,
    preset_radio,
    run_panel,
    stop_button,
    user_errors,
)

BUFFER_CAPTIONS = {
    "depth": "depth (zbuf, near = bright)",
    "pix_to_face": "pix_to_face (a colour per face)",
    "barycentric": "barycentric coordinates as RGB",
    "normals": "world normals, (n + 1) / 2",
    "silhouette": "silhouette alpha (sigmoid blend)",
}
TERM_CAPTIONS = ("ambient", "diffuse", "specular", "background", "sum")

Gallery = list[tuple[np.ndarray, str]]


def build(ctx: AppContext, tab: gr.Tab) -> None:
    """The controls column on the left; the result views (render, buffers, A/B, optimisation, rotations and
    turntable) in tabs on the right."""
    source = MeshSource(ctx)
    with gr.Accordion("Lesson: rasterising, Lambert and Phong, soft blending, rotations", open=False):
        gr.Markdown(LESSON, latex_delimiters=LATEX)
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            panel = settings_column()
        with gr.Column(scale=2, min_width=400):
            with gr.Tabs():
                with gr.Tab("Render"):
                    render_view(ctx, panel, source)
                with gr.Tab("Buffers and terms"):
                    buffers_view(ctx, panel, source)
                with gr.Tab("A/B compare"):
                    compare_view(ctx, panel, source)
                with gr.Tab("Optimisation"):
                    fit_section(ctx)
                    points_section(ctx)
                with gr.Tab("Rotations"):
                    rotations_view(ctx, panel, source)
                with gr.Tab("Turntable"):
                    turntable_view(ctx, panel, source)
    wire_settings(panel)
    _ = tab


# ---------------------------------------------------------------------------------------------------------------
# Render (button and live)
# ---------------------------------------------------------------------------------------------------------------


def render_view(ctx: AppContext, panel: SettingsPanel, source: MeshSource) -> None:
    """/render on the button; the same render, unnamed, whenever the settings or the mesh change (when live)."""
    button = gr.Button("Render", variant="primary", elem_id="shading-run")
    image = gr.Image(label="Render", type="numpy", interactive=False, height=460, elem_id="shading-image")
    card = gr.HTML("", visible=False, elem_classes=["studio-card"], label="Result")
    with gr.Accordion("Render info (time, memory estimate, notes)", open=False):
        info = gr.JSON(label="Render info (time, memory estimate, notes)", elem_id="shading-info")
    info.change(render_card, info, card, api_name=False, queue=False)
    gr.Examples(
        [[name] for name in _example_meshes(panel)],
        [panel.mesh],
        label="Examples: a subject (re-renders at once)",
        elem_id="shading-examples",
    )
    mesh_inputs = [panel.mesh, panel.files, panel.settings_json]
    gpu_then(
        refresh_settings(button, panel), bind(render, ctx=ctx, source=source), mesh_inputs, [image, info], "render"
    )
    gr.on(
        [panel.settings_json.change, panel.mesh.change, panel.files.change],
        bind(live_render, ctx=ctx, source=source),
        [panel.live, *mesh_inputs],
        [image, info],
        api_name=False,
        concurrency_id="gpu",
        trigger_mode="always_last",
        show_progress="minimal",
    )


def _example_meshes(panel: SettingsPanel) -> list[str]:
    """The subjects worth a first look (the book's cow and teapot when present), then the other choices."""
    choices = [c[1] if isinstance(c, tuple) else c for c in panel.mesh.choices]
    first = [name for name in ("cow", "teapot") if name in choices]
    return (first + [c for c in choices if c not in first])[:5]


@user_errors("Cannot render")
def render(
    mesh_name: str | None,
    mesh_files: Any = None,
    settings: Any = None,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    source: MeshSource,
) -> tuple[np.ndarray, dict[str, Any]]:
    """/render: mesh name (or uploaded files) and a settings dict -> image (uint8) and info."""
    s = parse_settings(settings)
    meshes, notes = source.load(mesh_name, mesh_files, request)
    result = lab.render(meshes, s, device=ctx.device)
    out = result.info()
    out["notes"] = notes + out["notes"]
    out["faces"] = int(meshes.num_faces_per_mesh()[0])
    out["vertices"] = int(meshes.num_verts_per_mesh()[0])
    return to_uint8(result.image[0]), out


def render_card(info: dict | None) -> Any:
    """The render's headline: picture size, time and faces (hidden before the first render)."""
    if not isinstance(info, dict) or "image_size" not in info:
        return gr.update(visible=False)
    h, w = info["image_size"]
    parts = [("Rendered", f"{w}×{h} px", ""), ("in", f"{significant(1000 * info['render_seconds'])} ms", "")]
    if "faces" in info:
        parts.append(("faces", f"{info['faces']:,}", ""))
    return gr.update(value=parts_html(parts), visible=True)


def live_render(
    live: bool,
    mesh_name: str | None,
    mesh_files: Any = None,
    settings: Any = None,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    source: MeshSource,
) -> tuple[Any, Any]:
    """`render` when live re-rendering is on; otherwise leaves the image as it is."""
    if not live:
        return gr.skip(), gr.skip()
    return render(mesh_name, mesh_files, settings, request, ctx=ctx, source=source)


# ---------------------------------------------------------------------------------------------------------------
# Buffers and lighting terms
# ---------------------------------------------------------------------------------------------------------------


def buffers_view(ctx: AppContext, panel: SettingsPanel, source: MeshSource) -> None:
    button = gr.Button("Show buffers and lighting terms", variant="primary")
    buffers = gr.Gallery(label="Rasteriser buffers", columns=5, height=260, object_fit="contain")
    gr.Markdown(TERMS_FORMULA, latex_delimiters=LATEX)
    terms = gr.Gallery(label="Lighting terms (they sum to the render)", columns=5, height=260, object_fit="contain")
    with gr.Accordion("Buffer statistics and the terms' reconstruction error", open=False):
        info = gr.JSON(label="Buffer statistics and the terms' reconstruction error")
    gpu_then(
        refresh_settings(button, panel),
        bind(render_buffers, ctx=ctx, source=source),
        [panel.mesh, panel.files, panel.settings_json],
        [buffers, terms, info],
        "render_buffers",
    )


@user_errors("Cannot render")
def render_buffers(
    mesh_name: str | None,
    mesh_files: Any = None,
    settings: Any = None,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    source: MeshSource,
) -> tuple[Gallery, Gallery, dict[str, Any]]:
    """/render_buffers: buffers gallery, lighting-terms gallery and statistics."""
    s = parse_settings(settings)
    meshes, notes = source.load(mesh_name, mesh_files, request)
    buf = lab.buffers(meshes, s, device=ctx.device)
    terms = None if s.shader == "soft-silhouette" else lab.shading_terms(meshes, s, device=ctx.device)
    gallery = [(to_uint8(img), BUFFER_CAPTIONS[k]) for k, img in buf["images"].items()]
    summary = {**buf["summary"], "notes": notes + buf["summary"]["notes"]}
    term_gallery = []
    if terms is None:
        summary["terms"] = "The silhouette shader has no lighting terms: pick a Phong, Gouraud or flat shader."
    else:
        t = terms["terms"]
        term_gallery = [(to_uint8(t[k]), k if k != "sum" else "sum = the render") for k in TERM_CAPTIONS]
        summary["terms_max_abs_error_vs_shader"] = float(f"{float((t['sum'] - t['final']).abs().max()):.3g}")
        summary["terms_mean"] = {
            k: round(float(t[k].mean()), 5) for k in ("ambient", "diffuse", "specular", "background")
        }
    return gallery, term_gallery, summary


# ---------------------------------------------------------------------------------------------------------------
# A/B compare
# ---------------------------------------------------------------------------------------------------------------


def compare_view(ctx: AppContext, panel: SettingsPanel, source: MeshSource) -> None:
    gr.Markdown("Freeze the current settings as A, change something, freeze them as B, compare on the same mesh.")
    with gr.Row():
        set_a = gr.Button("Current settings → A")
        set_b = gr.Button("Current settings → B")
    with gr.Row():
        settings_a = gr.JSON(RenderSettings().to_dict(), label="A", open=False)
        settings_b = gr.JSON(RenderSettings(shader="hard-gouraud").to_dict(), label="B", open=False)
    gain = gr.Slider(
        1, 20, value=4, step=1, label="Difference gain", info="Multiplies |A − B| so small differences show"
    )
    button = gr.Button("Compare", variant="primary")
    with gr.Row():
        image_a = gr.Image(label="A", type="numpy", interactive=False)
        image_b = gr.Image(label="B", type="numpy", interactive=False)
        image_diff = gr.Image(label="|A − B| × gain", type="numpy", interactive=False)
    with gr.Accordion("Difference", open=False):
        info = gr.JSON(label="Difference")
    set_a.click(settings_from_widgets, panel.inputs, settings_a, queue=False, api_name=False)
    set_b.click(settings_from_widgets, panel.inputs, settings_b, queue=False, api_name=False)
    gpu_click(
        button,
        bind(render_compare, ctx=ctx, source=source),
        [panel.mesh, panel.files, settings_a, settings_b, gain],
        [image_a, image_b, image_diff, info],
        "render_compare",
    )


@user_errors("Cannot compare")
def render_compare(
    mesh_name: str | None,
    mesh_files: Any = None,
    settings_a: Any = None,
    settings_b: Any = None,
    difference_gain: float | None = None,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    source: MeshSource,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """/render_compare: images A, B, |A - B| x gain, and statistics."""
    a, b = parse_settings(settings_a), parse_settings(settings_b)
    meshes, _ = source.load(mesh_name, mesh_files, request)
    out = lab.compare(meshes, a, b, gain=float(difference_gain or 1.0), device=ctx.device)
    return to_uint8(out["a"]), to_uint8(out["b"]), to_uint8(out["diff"]), out["stats"]


# ---------------------------------------------------------------------------------------------------------------
# Rotations
# ---------------------------------------------------------------------------------------------------------------


def rotations_view(ctx: AppContext, panel: SettingsPanel, source: MeshSource) -> None:
    gr.Markdown(
        "Type a rotation in any form; see it in every form, the round-trip errors, and the mesh before and after `Transform3d`."
    )
    with gr.Row():
        mesh = gr.Dropdown(
            mesh_choices(),
            value="torus",
            label="Mesh (an upload above takes precedence)",
            info="The mesh the rotation is applied to",
        )
        representation = gr.Radio(
            list(rotations.REPRESENTATIONS),
            value="euler",
            label="Representation",
            info="The form you type the rotation in; the others are computed from it",
        )
        convention = gr.Dropdown(
            list(rotations.EULER_CONVENTIONS),
            value="XYZ",
            label="Euler convention",
            info="The order of the axes for Euler angles (XYZ: about x, then y, then z)",
        )
    values = gr.Textbox(
        "30, 45, 0",
        label="Values: axis-angle 3 (rotation vector, rad) or 4 (axis, angle °); matrix 9 (rows); quaternion w x y z; Euler 3 (°)",
        info="Numbers separated by commas or spaces",
    )
    translation = gr.Textbox(
        "0, 0, 0",
        label="Translation x, y, z (applied after the rotation)",
        info="World units; the mesh fits in the unit sphere",
    )
    button = gr.Button("Convert and apply", variant="primary")
    image = gr.Image(label="Before | after", type="numpy", interactive=False)
    with gr.Accordion("The rotation in every form, and round-trip errors", open=False):
        info = gr.JSON(label="The rotation in every form, and round-trip errors")
    gpu_then(
        refresh_settings(button, panel),
        bind(rotate, ctx=ctx, source=source),
        [mesh, panel.files, panel.settings_json, representation, values, convention, translation],
        [image, info],
        "rotations",
    )


@user_errors("Cannot render")
def rotate(
    mesh_name: str | None,
    mesh_files: Any = None,
    settings: Any = None,
    representation: str | None = None,
    rotation_values: str | None = None,
    euler_convention: str | None = None,
    translation: str | None = None,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    source: MeshSource,
) -> tuple[np.ndarray, dict[str, Any]]:
    """/rotations: before | after image and the rotation in every representation."""
    s = parse_settings(settings)
    try:
        matrix, notes = rotations.to_matrix(representation, rotation_values or "", euler_convention or "XYZ")
        t = rotations.parse_numbers(translation or "0, 0, 0")
        if len(t) != 3:
            raise ValueError("The translation takes three numbers x, y, z.")
        described = rotations.describe(matrix, euler_convention or "XYZ", t)
    except ValueError as err:
        raise gr.Error(str(err), title="Rotation") from None
    meshes, _ = source.load(mesh_name, mesh_files, request)
    moved = rotations.apply_to_mesh(meshes.to(ctx.device), matrix.to(ctx.device), t)
    before = lab.render(meshes, s, device=ctx.device).image[0]
    after = lab.render(moved, s, device=ctx.device).image[0]
    described["notes"] = notes
    return to_uint8(image_grid([before, after], cols=2, pad=4, fill=0.5)), described


# ---------------------------------------------------------------------------------------------------------------
# Turntable
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class TurntableUI:
    """What the turntable run updates: the run panel, the MP4 and the GIF."""

    panel: RunPanel
    video: gr.Video
    gif: gr.Image


def turntable_view(ctx: AppContext, panel: SettingsPanel, source: MeshSource) -> None:
    with gr.Row():
        preset = preset_radio(ctx, "Preset (frames and size; full keeps the image size)")
        frames = gr.Slider(4, 120, value=36, step=1, label="Frames per turn", info="Views on the full 360° turn")
        fps = gr.Slider(2, 30, value=12, step=1, label="Frames per second", info="Playback speed of the GIF and MP4")
    formats = gr.CheckboxGroup(
        list(shading_turntable.FORMATS),
        value=list(shading_turntable.FORMATS),
        label="Formats",
        info="Which files to write",
    )
    with gr.Row():
        button = gr.Button("Render turntable", variant="primary")
        stop_button(ctx, "shading_turntable")
    run = run_panel(curves=False, preview_label="Latest frame")
    with gr.Row():
        video = gr.Video(label="MP4", interactive=False, height=320)
        gif = gr.Image(label="GIF", type="filepath", interactive=False, height=320)
    ui = TurntableUI(run, video, gif)
    gpu_then(
        refresh_settings(button, panel),
        bind(turntable, ctx=ctx, source=source, ui=ui),
        [panel.mesh, panel.files, panel.settings_json, preset, frames, fps, formats],
        [*run.outputs, video, gif],
        "turntable",
    )


def turntable(
    mesh_name: str | None,
    mesh_files: Any = None,
    settings: Any = None,
    preset: str | None = None,
    frames_per_turn: float | None = None,
    frames_per_second: float | None = None,
    formats: list[str] | None = None,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    source: MeshSource,
    ui: TurntableUI,
) -> Iterator[dict[Any, Any]]:
    """/turntable: streams frames; GIF and MP4 at the end."""
    s = parse_settings(settings)
    if not formats:
        raise gr.Error("Pick at least one format (gif or mp4).")
    cfg = config_for_turntable(
        ctx, preset, source.path(mesh_name, mesh_files, request), s, frames_per_turn, frames_per_second, formats
    )

    def on_done(done: Done) -> dict[Any, Any]:
        return {
            ui.video: str(done.files["mp4"]) if "mp4" in done.files else None,
            ui.gif: str(done.files["gif"]) if "gif" in done.files else None,
        }

    yield from stream(
        ctx,
        ui.panel,
        "shading-turntable",
        cfg,
        preset=preset,
        request=request,
        tab="shading_turntable",
        on_done=on_done,
    )


def config_for_turntable(
    ctx: AppContext,
    preset: str | None,
    mesh: str,
    settings: RenderSettings,
    frames_per_turn: float,
    frames_per_second: float,
    formats: list[str],
) -> shading_turntable.Config:
    """The turntable's Config: the preset's, with the lab's mesh, settings, frames, rate and formats."""
    cfg = config_for(
        ctx,
        shading_turntable.Config,
        preset,
        mesh=mesh,
        settings=json.dumps(settings.to_dict()),
        frames=int(frames_per_turn),
        fps=float(frames_per_second),
        formats=tuple(formats),
    )
    if preset == "full":
        cfg = dataclasses.replace(cfg, image_size=0)
    return cfg
