"""Inspect tab, Cameras section: one camera on the inspected mesh (or an ico-sphere), where sample points land in
world, view, NDC and screen space, and the same camera in OpenCV and OpenGL/glTF conventions (endpoint /camera)."""

from __future__ import annotations

import json
from typing import Any

import gradio as gr
import numpy as np

from pipelines.render.book_figures import BOOK_CAMERAS_TEXT, book_cameras_figure
from pipelines.render.camera_render import render_with_points
from pipelines.render.camera_spec import CAMERA_KINDS, CameraSpec
from pipelines.render.conventions import to_opencv, to_opengl
from pipelines.render.frustum import frustum_figure
from pipelines.render.projection import default_sample_points, point_table
from pipelines.render.round_trip import round_trip_report

from .widgets import gpu_click

INTRO = (
    "Set up a camera and see where points land in world, view, NDC and screen space. "
    "The sample points are the corners of the inspected mesh's bounding box (or of a unit cube)."
)
RT_EXAMPLE = '{"R": [[1,0,0],[0,1,0],[0,0,1]], "T": [0,0,3]}'


def rotation_translation(text: str | None) -> dict[str, tuple]:
    """R (3x3) and T (3,) from the optional JSON box, as CameraSpec fields; {} when the box is empty (gr.Error when
    it does not parse)."""
    if not text or not text.strip():
        return {}
    try:
        parsed = json.loads(text)
        return {
            "R": tuple(tuple(float(x) for x in row) for row in parsed["R"]),
            "T": tuple(float(x) for x in parsed["T"]),
        }
    except (ValueError, KeyError, TypeError) as err:
        raise gr.Error(f"R/T must be JSON like {RT_EXAMPLE} ({err}).") from None


def show_camera(
    inspected_asset: Any,
    camera_kind: str,
    distance: float,
    elevation_deg: float,
    azimuth_deg: float,
    fov_deg: float,
    ortho_scale: float,
    znear: float,
    zfar: float,
    focal_x: float,
    focal_y: float,
    principal_x: float,
    principal_y: float,
    in_ndc_units: bool,
    image_height: float,
    image_width: float,
    rotation_translation_json: str | None = None,
) -> tuple[Any, np.ndarray, Any, dict]:
    """/camera: the frustum in the scene, a render with the projected sample points, the points' coordinates in every
    space, and the camera in OpenCV and OpenGL/glTF conventions with the round-trip check."""

    extra = rotation_translation(rotation_translation_json)
    try:
        spec = CameraSpec(
            kind=camera_kind,
            dist=float(distance),
            elev=float(elevation_deg),
            azim=float(azimuth_deg),
            fov=float(fov_deg),
            scale=float(ortho_scale),
            znear=float(znear),
            zfar=float(zfar),
            fx=float(focal_x),
            fy=float(focal_y),
            px=float(principal_x),
            py=float(principal_y),
            in_ndc=bool(in_ndc_units),
            image_size=(int(image_height or 0), int(image_width or 0)),
            **extra,
        )
    except (ValueError, TypeError) as err:
        raise gr.Error(str(err), title="Camera settings") from None
    verts = None if inspected_asset is None else inspected_asset.verts
    faces = None if inspected_asset is None else inspected_asset.faces
    pts = default_sample_points(verts)
    if verts is None or faces is None or len(faces) == 0:
        from pytorch3d.utils import ico_sphere

        sphere = ico_sphere(2)
        verts, faces = sphere.verts_packed().numpy(), sphere.faces_packed().numpy()
        pts = default_sample_points(None)
    rows = point_table(spec, pts)
    return (
        frustum_figure(spec, pts, verts, faces),
        render_with_points(spec, (verts, faces), pts),
        table_frame(rows),
        {
            "opencv": to_opencv(spec, spec.image_size),
            "opengl": to_opengl(spec),
            "round_trip": round_trip_report(spec),
        },
    )


def table_frame(rows: list[dict]) -> Any:
    """The point table as a DataFrame, vectors written as (x, y, z) with 4 decimals."""
    import pandas as pd

    def fmt(v):
        if isinstance(v, (list, tuple, np.ndarray)):
            return "(" + ", ".join(f"{float(x):.4f}" for x in v) + ")"
        return v

    return pd.DataFrame([{k: fmt(v) for k, v in r.items()} for r in rows])


def book_figure_1() -> tuple[Any, np.ndarray, Any]:
    """The book's chapter-1 cameras: the eight frusta around the cube, a render from each, the vertices' table."""
    scene, sheet, rows = book_cameras_figure()
    return scene, sheet, table_frame(rows)


def camera_inputs() -> list[Any]:
    """The camera's settings column, in /camera's parameter order (after the inspected asset)."""

    kind = gr.Radio(list(CAMERA_KINDS), value="fov-perspective", label="Camera", info="PyTorch3D's four camera classes")
    dist = gr.Slider(0.5, 20, value=2.7, step=0.1, label="Distance", info="From the origin, in world units")
    elev = gr.Slider(-89, 89, value=20, step=1, label="Elevation (°)", info="Angle above the x-z plane")
    azim = gr.Slider(-180, 180, value=30, step=1, label="Azimuth (°)", info="Angle around the y axis")
    fov = gr.Slider(5, 150, value=60, step=1, label="FoV (°) — FoV cameras", info="Vertical field of view")
    scale = gr.Slider(
        0.1, 5, value=1.0, step=0.05, label="Scale — FoV-orthographic", info="Zoom of the orthographic view"
    )
    with gr.Row():
        znear = gr.Number(0.1, label="znear", info="Near clipping depth")
        zfar = gr.Number(100.0, label="zfar", info="Far clipping depth")
    with gr.Row():
        fx = gr.Number(1.7, label="fx", info="Focal length along x")
        fy = gr.Number(1.7, label="fy", info="Focal length along y")
        px = gr.Number(0.0, label="px", info="Principal point x")
        py = gr.Number(0.0, label="py", info="Principal point y")
    in_ndc = gr.Checkbox(
        True, label="Focal length and principal point in NDC units (else pixels)", info="Screen cameras"
    )
    with gr.Row():
        height = gr.Number(256, label="Image height", precision=0, info="Pixels")
        width = gr.Number(256, label="Image width", precision=0, info="Pixels")
    rt = gr.Textbox(
        label='Optional R and T as JSON: {"R": [[..],[..],[..]], "T": [x, y, z]} (overrides dist/elev/azim)',
        lines=2,
        info="A world-to-view rotation (3×3) and translation in PyTorch3D's convention",
    )
    return [kind, dist, elev, azim, fov, scale, znear, zfar, fx, fy, px, py, in_ndc, height, width, rt]


def camera_panel(asset_state: gr.State) -> gr.Button:
    """Lays out the Cameras section and wires /camera; returns its button."""
    gr.Markdown(INTRO)
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            inputs = camera_inputs()
            button = gr.Button("Show camera", variant="primary")
        with gr.Column(scale=2, min_width=400):
            frustum = gr.Plot(label="Scene with the camera frustum")
            render = gr.Image(
                label="Render with the projected sample points", type="numpy", interactive=False, height=300
            )
    table = gr.Dataframe(label="Sample points in world, view, NDC and screen coordinates", interactive=False, wrap=True)
    conventions = gr.JSON(label="The same camera in OpenCV and OpenGL/glTF conventions, and the round-trip check")
    gpu_click(button, show_camera, [asset_state, *inputs], [frustum, render, table, conventions], api_name="camera")
    with gr.Accordion("Reproduce the book's figure 1 (a batch of 8 cameras)", open=False):
        gr.Markdown(BOOK_CAMERAS_TEXT)
        book = gr.Button("Reproduce the book's figure 1", elem_id="inspect-book-cameras")
    gpu_click(book, book_figure_1, [], [frustum, render, table], api_name=False)
    return button
