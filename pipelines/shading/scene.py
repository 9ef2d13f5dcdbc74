"""The Shading lab's scene: the PyTorch3D cameras, light, material, raster settings and shader that one
`RenderSettings` makes, the mesh prepared for its shader, and rasterising it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from pytorch3d.renderer import BlendParams, TexturesVertex
from pytorch3d.renderer.cameras import CamerasBase
from pytorch3d.renderer.mesh.rasterizer import Fragments, MeshRasterizer, RasterizationSettings
from pytorch3d.structures import Meshes

from pipelines.render.factories import (
    is_soft,
    make_cameras,
    make_lights,
    make_materials,
    make_raster_settings,
    make_shader,
)
from pipelines.render.mesh_convert import texture_to_vertex_colors
from pipelines.render.procedural import with_vertex_colors
from pipelines.render.tiled_raster import TiledMeshRasterizer
from pipelines.shading.settings import RenderSettings, guard_memory

# --- the scene ------------------------------------------------------------------------------------------------


@dataclass
class Scene:
    """The PyTorch3D objects one `RenderSettings` turns into (for a batch of `n` images)."""

    settings: RenderSettings
    cameras: CamerasBase
    lights: Any
    materials: Any
    raster: RasterizationSettings
    blend: BlendParams
    shader: torch.nn.Module
    notes: list[str] = field(default_factory=list)


def build_scene(
    settings: RenderSettings,
    *,
    n: int = 1,
    device: torch.device | str = "cpu",
    light_xyz: torch.Tensor | None = None,
    azim: Sequence[float] | None = None,
    elev: Sequence[float] | None = None,
    guard: bool = True,
) -> Scene:
    """Cameras, light, material, raster settings and shader for `n` images (memory-guarded).

    `light_xyz` (3,) may be a tensor that requires grad (for fitting); `azim`/`elev` give one view per image.
    """
    device = torch.device(device)
    notes: list[str] = []
    if guard:
        settings, notes = guard_memory(settings, n)
    s = settings
    cameras = make_cameras(
        s.camera,
        s.dist,
        s.elev if elev is None else list(elev),
        s.azim if azim is None else list(azim),
        fov=s.fov,
        ortho_scale=s.ortho_scale,
        batch=n,
        device=device,
    )
    lights = make_lights(
        s.light,
        s.light_xyz if light_xyz is None else light_xyz,
        ambient=s.light_ambient,
        diffuse=s.light_diffuse,
        specular=s.light_specular,
        device=device,
    )
    materials = make_materials(
        ambient=s.material_ambient,
        diffuse=s.material_diffuse,
        specular=s.material_specular,
        shininess=s.shininess,
        device=device,
    )
    raster, raster_notes = make_raster_settings(
        s.image_size,
        blur_radius=s.blur_radius,
        faces_per_pixel=s.faces_per_pixel,
        bin_size=None if s.bin_size < 0 else s.bin_size,
        cull_backfaces=s.cull_backfaces,
        perspective_correct=s.perspective_correct and s.camera == "perspective",
        device=device,
    )
    blend = BlendParams(sigma=s.sigma, gamma=s.gamma, background_color=tuple(s.background))
    shader = make_shader(
        s.shader, cameras=cameras, lights=lights, materials=materials, blend_params=blend, device=device
    )
    if is_soft(s.shader) and s.blur_radius == 0.0 and s.faces_per_pixel == 1:
        notes.append(
            "A soft shader with blur radius 0 and 1 face per pixel draws like a hard one: try the book's soft settings."
        )
    return Scene(s, cameras, lights, materials, raster, blend, shader, notes + raster_notes)


def prepare_mesh(mesh: Meshes, settings: RenderSettings, notes: list[str] | None = None) -> Meshes:
    """Gouraud shading needs per-vertex colours: a UV texture is resampled per vertex (with a note)."""
    if "gouraud" in settings.shader and not isinstance(mesh.textures, TexturesVertex):
        if notes is not None:
            notes.append("Gouraud shading lights vertices, so the UV texture was resampled to vertex colours.")
        return texture_to_vertex_colors(mesh)
    if mesh.textures is None:
        return with_vertex_colors(mesh)
    return mesh


def rasterize(mesh: Meshes, scene: Scene, *, tiled: bool = True) -> Fragments:
    """pix_to_face (N, H, W, K), zbuf, bary_coords (N, H, W, K, 3) and dists for the scene's camera.

    `tiled` uses the tiled CPU rasteriser (same fragments, much faster on the CPU); False the library's own."""
    cls = TiledMeshRasterizer if tiled else MeshRasterizer
    return cls(cameras=scene.cameras, raster_settings=scene.raster)(mesh)
