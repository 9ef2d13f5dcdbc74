"""Camera models, coordinate-frame conversions and the camera inspector's views, re-exported from the modules
that hold them (kept so that `from pipelines.render import cameras` goes on working; new code imports from those
modules):

`camera_spec` (CameraSpec, pose, intrinsics, the PyTorch3D camera), `projection` (points through the camera, the
point table), `frustum` (the Plotly scene), `screen_raster` (the numpy z-buffer rasteriser), `camera_render` (the
render with the points drawn over it), `conventions` (OpenCV and OpenGL/glTF, with the written note on
conventions) and `round_trip` (the conversions' round-trip report).
"""

from __future__ import annotations

from pipelines.render.camera_render import BACKGROUND, MESH_COLOR, draw_points, render_mesh, render_with_points
from pipelines.render.camera_spec import (
    CAMERA_KINDS,
    MAX_IMAGE_SIDE,
    CameraSpec,
    build_camera,
    camera_center,
    ndc_intrinsics,
    view_rt,
)
from pipelines.render.conventions import from_opencv, from_opengl, opengl_screen, to_opencv, to_opengl
from pipelines.render.frustum import frustum_corners, frustum_figure
from pipelines.render.projection import default_sample_points, point_table, project
from pipelines.render.round_trip import round_trip_points, round_trip_report
from pipelines.render.screen_raster import FAST_RASTER_ABOVE, rasterize_screen

__all__ = [
    "BACKGROUND",
    "CAMERA_KINDS",
    "FAST_RASTER_ABOVE",
    "MAX_IMAGE_SIDE",
    "MESH_COLOR",
    "CameraSpec",
    "build_camera",
    "camera_center",
    "default_sample_points",
    "draw_points",
    "from_opencv",
    "from_opengl",
    "frustum_corners",
    "frustum_figure",
    "ndc_intrinsics",
    "opengl_screen",
    "point_table",
    "project",
    "rasterize_screen",
    "render_mesh",
    "render_with_points",
    "round_trip_points",
    "round_trip_report",
    "to_opencv",
    "to_opengl",
    "view_rt",
]
