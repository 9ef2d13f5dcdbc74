"""The objects that multi-view data is rendered from: the book's cow (`render.subjects`), the procedural blob (a bumpy
sphere with a procedural UV texture), the bundled textured cube, or an upload."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from pytorch3d.structures import Meshes

from pipelines.core.paths import ASSETS_DIR
from pipelines.files.types import Limits
from pipelines.files.upload import stage_upload
from pipelines.render.mesh_convert import load_mesh_file
from pipelines.render.subjects import cow_mesh
from pipelines.train.multiview_data import OBJECTS, DataConfig

# --- objects ---------------------------------------------------------------------------------------------


def blob_texture(height: int = 128, period: int = 256) -> torch.Tensor:
    """The blob's procedural texture, (height, 2 * period, 3) float: hue bands, wavy stripes and soft checks.

    The pattern repeats every `period` columns, so a face that crosses the u = 0 seam can use u + 1.
    """
    v = torch.linspace(0, 1, height)[:, None].expand(height, 2 * period)  # 0 at the top row
    u = (torch.arange(2 * period, dtype=torch.float32) / period)[None].expand(height, -1)  # [0, 2)
    two_pi = 2 * math.pi
    hue = (u + 0.35 * v) % 1.0
    stripes = 0.5 + 0.5 * torch.tanh(3.0 * torch.sin(two_pi * (5.0 * v + 0.35 * torch.sin(two_pi * 2.0 * u))))
    checks = 0.5 + 0.5 * torch.tanh(2.5 * torch.sin(two_pi * 6.0 * u) * torch.sin(two_pi * 3.0 * v))
    sat = 0.45 + 0.45 * checks
    value = 0.45 + 0.5 * stripes
    # HSV -> RGB, vectorised
    h6 = hue * 6.0
    k = torch.stack([(5.0 + h6) % 6.0, (3.0 + h6) % 6.0, (1.0 + h6) % 6.0], -1)  # (H, W, 3)
    rgb = value[..., None] - value[..., None] * sat[..., None] * (torch.minimum(k, 4.0 - k).clamp(0, 1))
    return rgb.clamp(0, 1)


def blob_mesh(level: int = 3, device: torch.device | str = "cpu") -> Meshes:
    """The default object: an ico-sphere with smooth bumps and a procedural UV texture (TexturesUV).

    Deterministic (no randomness), inside the unit sphere; 1,280 faces at level 3 (the CPU rasteriser's cost
    grows with faces x pixels, and the texture carries the detail).
    """
    from pytorch3d.renderer import TexturesUV
    from pytorch3d.utils import ico_sphere

    sphere = ico_sphere(level, torch.device("cpu"))
    unit = sphere.verts_packed()  # (V, 3) on the unit sphere
    faces = sphere.faces_packed()  # (F, 3)
    x, y, z = unit.unbind(1)
    bumps = 0.13 * torch.sin(3.0 * x + 1.0) * torch.sin(2.5 * y + 0.5) + 0.09 * torch.cos(4.0 * z - 0.7 * x)
    radius = 0.78 + bumps + 0.12 * y.clamp(min=0) ** 2  # a slightly taller top
    verts = unit * radius[:, None]
    verts = verts / verts.norm(dim=1).max()  # fits the unit sphere
    # Spherical UVs per face corner; corners of a face that straddles the seam move to u + 1.
    u = torch.atan2(x, z) / (2 * math.pi) + 0.5  # (V,) in [0, 1]
    v = 1.0 - torch.acos(y.clamp(-1, 1)) / math.pi  # (V,) 1 at the top
    corner_u = u[faces]  # (F, 3)
    straddle = (corner_u.max(1).values - corner_u.min(1).values) > 0.5
    corner_u = torch.where(straddle[:, None] & (corner_u < 0.5), corner_u + 1.0, corner_u)
    verts_uvs = torch.stack([corner_u.reshape(-1) / 2.0, v[faces].reshape(-1)], 1)  # (3F, 2)
    faces_uvs = torch.arange(3 * len(faces)).reshape(-1, 3)  # (F, 3)
    device = torch.device(device)
    tex = TexturesUV(
        maps=blob_texture()[None].to(device), faces_uvs=[faces_uvs.to(device)], verts_uvs=[verts_uvs.to(device)]
    )
    return Meshes([verts.to(device)], [faces.to(device)], textures=tex)


def load_object(cfg: DataConfig, stage_dir: Path, device: torch.device) -> Meshes:
    """The mesh to render: the upload in `cfg.files` (staged under `stage_dir`), else the built-in `cfg.object`.

    Raises ValueError (MeshFileError is one) with a user sentence: a file without faces, no file, etc.
    """

    if cfg.files:
        limits = Limits(max_upload_mb=cfg.max_upload_mb)
        main = stage_upload(list(cfg.files), stage_dir, limits)
        return load_mesh_file(main, limits=limits, device=device)
    if cfg.object == "cow":
        return cow_mesh(1, device)
    if cfg.object == "blob":
        return blob_mesh(3, device)
    if cfg.object == "textured-cube":
        path = ASSETS_DIR / "textured_cube.obj"
        if not path.is_file():
            raise ValueError(
                "The bundled textured cube is missing from assets/: run the asset script, or upload a mesh."
            )
        return load_mesh_file(path, device=device)
    raise ValueError(f"Unknown object {cfg.object!r}: choose one of {', '.join(OBJECTS)}, or upload a mesh.")
