"""The camera-aligned frames of Mesh R-CNN's ShapeNet mode, as the official code defines them.

- Camera frame (what meshes, points and metrics live in): OpenGL/Blender convention, +X right, +Y up, the camera
  at the origin looking down -Z. (PyTorch3D's view frame is this with X and Z negated: see `p3d_camera`.)
- NDC: the camera frame projected by Blender's default intrinsic matrix `K` (focal 2.1875, so a 49.1° field of
  view); x right, y up, z in (0, 1) growing with depth.
- Voxel space: [-1, 1]^3 with x = NDC x, y = -NDC y (down the image, as grid_sample reads it) and z = NDC z mapped
  linearly from [zmin, zmax] to [-1, 1]. A grid of V^3 voxels holds index [z, y, x]; index i sits at
  -1 + 2i / (V - 1) (the official `_voxelize` rounds to these points). The official checkpoint uses ShapeNet's
  zmin 0.67, zmax 0.92; the studio's models store their own pair, fitted to the procedural data's depths.
"""

from __future__ import annotations

import math

import torch
from pytorch3d.renderer import FoVPerspectiveCameras

FOCAL = 2.1875
"""Blender's default focal length in NDC units (the official `get_blender_intrinsic_matrix`)."""
K_ZZ, K_ZW = -1.002002, -0.2002002
SHAPENET_ZRANGE = (0.67, 0.92)
"""The official checkpoint's NDC-z range of the voxel grid."""
FOV_DEGREES = math.degrees(2 * math.atan(1.0 / FOCAL))


def intrinsic_matrix() -> torch.Tensor:
    """Blender's default projection `K` (4, 4) (the official model keeps it as the buffer `K`)."""
    return torch.tensor([[FOCAL, 0.0, 0.0, 0.0], [0.0, FOCAL, 0.0, 0.0], [0.0, 0.0, K_ZZ, K_ZW], [0.0, 0.0, -1.0, 0.0]])


def project(verts_cam: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    """Camera-frame points (..., 3) to NDC (..., 3) by `K` (w clamped away from 0 as the official code does)."""
    w = -verts_cam[..., 2:3]
    w = torch.where(w >= 0, w.clamp(min=eps), w.clamp(max=-eps))
    x = FOCAL * verts_cam[..., 0:1] / w
    y = FOCAL * verts_cam[..., 1:2] / w
    z = (K_ZZ * verts_cam[..., 2:3] + K_ZW) / w
    return torch.cat([x, y, z], dim=-1)


def unproject(ndc: torch.Tensor) -> torch.Tensor:
    """NDC (..., 3) back to the camera frame (..., 3): the inverse of `project`."""
    x, y, z = ndc.unbind(-1)
    zc = K_ZW / (-z - K_ZZ)  # camera z (negative in front of the camera)
    return torch.stack([-zc * x / FOCAL, -zc * y / FOCAL, zc], dim=-1)


def ndc_to_voxel(ndc: torch.Tensor, zrange: tuple[float, float]) -> torch.Tensor:
    zmin, zmax = zrange
    m = 2.0 / (zmax - zmin)
    b = -2.0 * zmin / (zmax - zmin) - 1.0
    return torch.stack([ndc[..., 0], -ndc[..., 1], ndc[..., 2] * m + b], dim=-1)


def voxel_to_ndc(vox: torch.Tensor, zrange: tuple[float, float]) -> torch.Tensor:
    zmin, zmax = zrange
    m = 2.0 / (zmax - zmin)
    b = -2.0 * zmin / (zmax - zmin) - 1.0
    return torch.stack([vox[..., 0], -vox[..., 1], (vox[..., 2] - b) / m], dim=-1)


def voxel_to_camera(vox: torch.Tensor, zrange: tuple[float, float]) -> torch.Tensor:
    """Voxel-space points (..., 3) to the camera frame (the official `voxel_to_world`)."""
    return unproject(voxel_to_ndc(vox, zrange))


def camera_to_voxel(verts_cam: torch.Tensor, zrange: tuple[float, float]) -> torch.Tensor:
    return ndc_to_voxel(project(verts_cam), zrange)


def voxel_centers(size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The voxel-space position of every cell of a size^3 grid, (size, size, size, 3) indexed [z, y, x]."""
    axis = torch.linspace(-1.0, 1.0, size, device=device)
    z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
    return torch.stack([x, y, z], dim=-1)


def align_points(verts_cam: torch.Tensor) -> torch.Tensor:
    """Camera-frame points (N, V, 3) to `vert_align`'s grid coordinates (N, V, 2|3): NDC with y flipped
    (x -1 left, +1 right; y -1 top), the convention of the official refinement stage."""
    ndc = project(verts_cam)
    return ndc * torch.tensor([1.0, -1.0, 1.0], dtype=ndc.dtype, device=ndc.device)


def p3d_camera(n: int, device: torch.device | str = "cpu") -> FoVPerspectiveCameras:
    """PyTorch3D cameras that see the camera frame as `K` does: R = diag(-1, 1, -1) turns OpenGL's camera frame into
    PyTorch3D's view frame (+X left, +Z forward), and the field of view matches the focal length."""
    rot = torch.diag(torch.tensor([-1.0, 1.0, -1.0])).expand(n, 3, 3)
    return FoVPerspectiveCameras(
        R=rot, T=torch.zeros(n, 3), fov=FOV_DEGREES, znear=0.1, zfar=10.0, device=torch.device(device)
    )
