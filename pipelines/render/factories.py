"""PyTorch3D render factories: cameras from dist/elev/azim, lights, materials, raster settings (with the memory
estimate), shaders and the renderer.

Conventions are PyTorch3D's (+X left, +Y up, +Z into the screen; row vectors). Images are float in [0, 1],
channels last. Every factory takes `device=` and builds its tensors there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from pytorch3d.renderer import (
    AmbientLights,
    BlendParams,
    DirectionalLights,
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    HardFlatShader,
    HardGouraudShader,
    HardPhongShader,
    Materials,
    MeshRenderer,
    PointLights,
    RasterizationSettings,
    SoftGouraudShader,
    SoftPhongShader,
    SoftSilhouetteShader,
    look_at_view_transform,
)
from pytorch3d.renderer.cameras import CamerasBase

from pipelines.render.tiled_raster import TiledMeshRasterizer

SHADERS = ("hard-phong", "soft-phong", "hard-gouraud", "soft-gouraud", "hard-flat", "soft-silhouette")
LIGHTS = ("point", "directional", "ambient")
CAMERAS = ("perspective", "orthographic")

FloatOrSeq = float | Sequence[float] | torch.Tensor

# Where the book's soft silhouette settings come from: a face's probability falls to 1e-4 at the blur radius.
SOFT_BLUR_FACTOR = math.log(1.0 / 1e-4 - 1.0)


def is_soft(shader: str) -> bool:
    """Soft shaders blend the K nearest faces per pixel; hard ones keep the nearest."""
    return shader.startswith("soft-")


def _batch(value: FloatOrSeq, n: int, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float32).reshape(-1)
    return (t.expand(n) if t.numel() == 1 else t).to(device)


def make_cameras(
    kind: str,
    dist: FloatOrSeq,
    elev: FloatOrSeq,
    azim: FloatOrSeq,
    *,
    fov: float = 60.0,
    ortho_scale: float = 1.0,
    znear: float = 0.1,
    zfar: float = 100.0,
    batch: int = 1,
    device: torch.device | str = "cpu",
) -> CamerasBase:
    """A batch of FoV-perspective or FoV-orthographic cameras looking at the origin from (dist, elev, azim).

    Angles are degrees; elevation is above the XZ plane, azimuth turns about +Y from +Z. `dist`, `elev`,
    `azim` may each be one value or `batch` values. `ortho_scale` magnifies the orthographic view
    (1 shows the cube [-1, 1]^2 across the shorter image side).
    """
    if kind not in CAMERAS:
        raise ValueError(f"Unknown camera {kind!r}: choose one of {', '.join(CAMERAS)}.")
    device = torch.device(device)
    n = max(batch, *(torch.as_tensor(v).numel() for v in (dist, elev, azim)))
    R, T = look_at_view_transform(
        _batch(dist, n, device), _batch(elev, n, device), _batch(azim, n, device), device=device
    )
    if kind == "perspective":
        return FoVPerspectiveCameras(R=R, T=T, fov=fov, znear=znear, zfar=zfar, device=device)
    scale = torch.full((n, 3), float(ortho_scale), device=device)
    return FoVOrthographicCameras(R=R, T=T, scale_xyz=scale, znear=znear, zfar=zfar, device=device)


def make_lights(
    kind: str,
    xyz: Sequence[float] | torch.Tensor,
    *,
    ambient: Sequence[float] = (0.5, 0.5, 0.5),
    diffuse: Sequence[float] = (0.3, 0.3, 0.3),
    specular: Sequence[float] = (0.2, 0.2, 0.2),
    device: torch.device | str = "cpu",
) -> PointLights | DirectionalLights | AmbientLights:
    """One light: `point` at location `xyz`, `directional` along direction `xyz` (towards the light), or
    `ambient` (only its ambient colour counts). `xyz` may be a tensor that requires grad, shape (3,) or (N, 3)."""
    device = torch.device(device)

    def rgb(c: Sequence[float]) -> torch.Tensor:
        return torch.as_tensor(c, dtype=torch.float32, device=device).reshape(1, 3)

    if kind == "ambient":
        return AmbientLights(ambient_color=rgb(ambient), device=device)
    where = torch.as_tensor(xyz, dtype=torch.float32).to(device).reshape(-1, 3)
    if kind == "point":
        return PointLights(
            location=where,
            ambient_color=rgb(ambient),
            diffuse_color=rgb(diffuse),
            specular_color=rgb(specular),
            device=device,
        )
    if kind == "directional":
        if float(where.detach().norm()) < 1e-8:
            raise ValueError("A directional light needs a non-zero direction.")
        return DirectionalLights(
            direction=where,
            ambient_color=rgb(ambient),
            diffuse_color=rgb(diffuse),
            specular_color=rgb(specular),
            device=device,
        )
    raise ValueError(f"Unknown light {kind!r}: choose one of {', '.join(LIGHTS)}.")


def make_materials(
    *,
    ambient: Sequence[float] = (1.0, 1.0, 1.0),
    diffuse: Sequence[float] = (1.0, 1.0, 1.0),
    specular: Sequence[float] = (1.0, 1.0, 1.0),
    shininess: float = 64.0,
    device: torch.device | str = "cpu",
) -> Materials:
    """Phong material reflectances (k_a, k_d, k_s per channel) and the specular exponent."""
    return Materials(
        ambient_color=(tuple(ambient),),
        diffuse_color=(tuple(diffuse),),
        specular_color=(tuple(specular),),
        shininess=float(shininess),
        device=device,
    )


BYTES_PER_FACE_SLOT = 48
"""The guard's rule of thumb for one face slot of one pixel: N * H * W * K * 48 bytes. The fragments alone take 28
(int64 face index, depth, three barycentrics, distance); bench/render.py measures about 170-250 bytes per slot
for a whole soft Phong render on the CPU, so the budget is a budget for the estimate, not the process."""


def raster_bytes(n: int, height: int, width: int, faces_per_pixel: int) -> int:
    """The memory guards' estimate of the rasteriser's memory: N * H * W * K * 48 bytes."""
    return int(n) * int(height) * int(width) * int(faces_per_pixel) * BYTES_PER_FACE_SLOT


def make_raster_settings(
    image_size: int | tuple[int, int],
    *,
    blur_radius: float = 0.0,
    faces_per_pixel: int = 1,
    bin_size: int | None = None,
    cull_backfaces: bool = False,
    perspective_correct: bool | None = None,
    device: torch.device | str = "cpu",
) -> tuple[RasterizationSettings, list[str]]:
    """Rasterisation settings plus notes. `bin_size` None (or < 0) is PyTorch3D's heuristic, 0 naive;
    `perspective_correct` None follows the camera.

    Binned (coarse-to-fine) rasterisation has no CPU kernel, so on the CPU a positive bin size falls back
    to naive rasterisation and a note says so.
    """
    notes: list[str] = []
    if bin_size is not None and bin_size < 0:
        bin_size = None
    if bin_size and torch.device(device).type == "cpu":
        notes.append(f"Bin size {bin_size} ignored: binned rasterisation needs CUDA, so the CPU rasterises naively.")
        bin_size = 0
    if bin_size:
        side = max(image_size) if isinstance(image_size, tuple) else image_size
        bins = 1 + (side - 1) // bin_size
        if bins >= 22:
            raise ValueError(
                f"Bin size {bin_size} is too small for {side} px: PyTorch3D allows at most 21 bins per side."
            )
    settings = RasterizationSettings(
        image_size=image_size,
        blur_radius=float(blur_radius),
        faces_per_pixel=int(faces_per_pixel),
        bin_size=bin_size,
        cull_backfaces=bool(cull_backfaces),
        perspective_correct=perspective_correct,
    )
    return settings, notes


def make_shader(
    name: str,
    *,
    cameras: CamerasBase,
    lights: Any,
    materials: Materials,
    blend_params: BlendParams,
    device: torch.device | str = "cpu",
) -> torch.nn.Module:
    """The PyTorch3D shader for one of `SHADERS`."""
    device = torch.device(device)
    if name == "soft-silhouette":
        return SoftSilhouetteShader(blend_params=blend_params)
    classes = {
        "hard-phong": HardPhongShader,
        "soft-phong": SoftPhongShader,
        "hard-gouraud": HardGouraudShader,
        "soft-gouraud": SoftGouraudShader,
        "hard-flat": HardFlatShader,
    }
    if name not in classes:
        raise ValueError(f"Unknown shader {name!r}: choose one of {', '.join(SHADERS)}.")
    return classes[name](device=device, cameras=cameras, lights=lights, materials=materials, blend_params=blend_params)


def make_renderer(cameras: CamerasBase, raster: RasterizationSettings, shader: torch.nn.Module) -> MeshRenderer:
    """A MeshRenderer with the tiled rasteriser (faster on the CPU, the library's everywhere else)."""
    return MeshRenderer(rasterizer=TiledMeshRasterizer(cameras=cameras, raster_settings=raster), shader=shader)
