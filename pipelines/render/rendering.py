"""Reusable mesh rendering with PyTorch3D, re-exported from the modules that hold it (kept so that
`from pipelines.render import rendering` goes on working; new code imports from those modules):

`factories` (cameras, lights, materials, raster settings, shaders, renderer), `colors` (colour parsing),
`tiled_raster` (the CPU tiled rasteriser), `procedural` (procedural meshes, surface sampling),
`mesh_convert` (meshes from arrays and files), `images` (colour maps, grids, GIF / MP4).
"""

from __future__ import annotations

from pytorch3d.renderer import BlendParams

from pipelines.render.colors import Color, color_hex, parse_color
from pipelines.render.factories import (
    BYTES_PER_FACE_SLOT,
    CAMERAS,
    LIGHTS,
    SHADERS,
    SOFT_BLUR_FACTOR,
    FloatOrSeq,
    is_soft,
    make_cameras,
    make_lights,
    make_materials,
    make_raster_settings,
    make_renderer,
    make_shader,
    raster_bytes,
)
from pipelines.render.images import colormap, id_colors, image_grid, save_gif, save_mp4
from pipelines.render.mesh_convert import (
    batch_report,
    load_mesh_file,
    load_mesh_file_with_notes,
    mesh_from_arrays,
    texture_to_vertex_colors,
)
from pipelines.render.procedural import (
    PROCEDURAL,
    normalize_verts,
    orient_outward,
    procedural_mesh,
    sample_surface,
    torus_with_faces,
    with_vertex_colors,
)
from pipelines.render.tiled_raster import (
    MIN_TILED_FACES,
    TiledMeshRasterizer,
    edge_function,
    fragments_torch,
    rasterize_tiled,
    segment_dist2,
    tile_size,
)

__all__ = [
    "BYTES_PER_FACE_SLOT",
    "CAMERAS",
    "LIGHTS",
    "MIN_TILED_FACES",
    "PROCEDURAL",
    "SHADERS",
    "SOFT_BLUR_FACTOR",
    "BlendParams",
    "Color",
    "FloatOrSeq",
    "TiledMeshRasterizer",
    "batch_report",
    "color_hex",
    "colormap",
    "edge_function",
    "fragments_torch",
    "id_colors",
    "image_grid",
    "is_soft",
    "load_mesh_file",
    "load_mesh_file_with_notes",
    "make_cameras",
    "make_lights",
    "make_materials",
    "make_raster_settings",
    "make_renderer",
    "make_shader",
    "mesh_from_arrays",
    "normalize_verts",
    "orient_outward",
    "parse_color",
    "procedural_mesh",
    "raster_bytes",
    "rasterize_tiled",
    "sample_surface",
    "save_gif",
    "save_mp4",
    "segment_dist2",
    "texture_to_vertex_colors",
    "tile_size",
    "torus_with_faces",
    "with_vertex_colors",
]
