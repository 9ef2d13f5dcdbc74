"""Pictures of Mesh R-CNN predictions: meshes rendered from the input camera (alone and over the image), the voxel
prediction's silhouette, and the preview strip the training streams."""

from __future__ import annotations

import numpy as np
import torch
from pytorch3d.renderer import (
    BlendParams,
    DirectionalLights,
    HardPhongShader,
    RasterizationSettings,
    TexturesVertex,
)
from pytorch3d.structures import Meshes
from torch.nn import functional as F

from pipelines.core.events import to_uint8
from pipelines.meshrcnn import frame
from pipelines.render.images import image_grid
from pipelines.render.tiled_raster import TiledMeshRasterizer

MESH_COLOR = (0.62, 0.74, 0.93)


def render_meshes(
    meshes: Meshes, size: int, color: tuple[float, float, float] = MESH_COLOR
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shaded renders (N, S, S, 3) in [0, 1] on white and coverage masks (N, S, S) of camera-frame meshes, seen by
    the input image's camera."""
    n, device = len(meshes), meshes.device
    feats = [torch.tensor(color, device=device).expand(len(v), 3) for v in meshes.verts_list()]
    mesh = Meshes(meshes.verts_list(), meshes.faces_list(), textures=TexturesVertex(feats))
    cameras = frame.p3d_camera(n, device)
    lights = DirectionalLights(direction=((0.3, 0.6, 0.75),), ambient_color=((0.4,) * 3,), device=device)
    raster = TiledMeshRasterizer(cameras=cameras, raster_settings=RasterizationSettings(image_size=size))
    fragments = raster(mesh)
    shader = HardPhongShader(
        device=device, cameras=cameras, lights=lights, blend_params=BlendParams(background_color=(1.0, 1.0, 1.0))
    )
    return shader(fragments, mesh)[..., :3].clamp(0, 1), fragments.pix_to_face[..., 0] >= 0


def upsample(images: torch.Tensor, size: int, mode: str = "nearest") -> torch.Tensor:
    """(N, H, W, C) -> (N, size, size, C)."""
    x = F.interpolate(images.permute(0, 3, 1, 2).float(), size=(size, size), mode=mode)
    return x.permute(0, 2, 3, 1)


def overlay(images: torch.Tensor, renders: torch.Tensor, masks: torch.Tensor, alpha: float = 0.65) -> torch.Tensor:
    """The renders blended over the (upsampled) images where the mesh covers them: (N, S, S, 3)."""
    base = upsample(images, renders.shape[1], "bilinear")
    a = masks[..., None].float() * alpha
    return base * (1 - a) + renders * a


def voxel_silhouette(occupancy: torch.Tensor) -> torch.Tensor:
    """(N, V, V, V) [z, y, x] occupancy -> (N, V, V, 3) grey picture of its depth-max projection, near = dark."""
    occ = occupancy.float()
    v = occ.shape[1]
    depth = torch.linspace(1.0, 0.0, v, device=occ.device).view(1, v, 1, 1)
    near = (occ * depth).amax(1)  # (N, y, x): 1 at the nearest bin, 0 at the far one
    shade = torch.where(occ.amax(1) > 0, 0.15 + 0.6 * (1 - near), torch.ones_like(near))
    return shade[..., None].expand(-1, -1, -1, 3)


def preview_strip(
    images: torch.Tensor, voxel_probs: torch.Tensor, thresh: float, cubified: Meshes, refined: Meshes, size: int = 128
) -> np.ndarray:
    """uint8 rows of [image | voxel silhouette | cubified mesh | refined mesh over the image], one row per sample."""
    n = images.shape[0]
    vox = upsample(voxel_silhouette(voxel_probs > thresh), size)
    cub, _ = render_meshes(cubified, size)
    ref, ref_mask = render_meshes(refined, size)
    tiles = []
    for i in range(n):
        tiles += [
            upsample(images[i : i + 1], size, "bilinear")[0],
            vox[i],
            cub[i],
            overlay(images[i : i + 1], ref[i : i + 1], ref_mask[i : i + 1])[0],
        ]
    return to_uint8(image_grid([t.cpu() for t in tiles], cols=4))
