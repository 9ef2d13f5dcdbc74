"""GIRAFFE's camera conventions: z-up world, cameras on a sphere looking at the origin, pixel rays, projection.

The official code (autonomousvision/giraffe) places a camera at `radius * to_sphere(u, v)` (u turns about +z,
v = (1 - cos(polar angle)) / 2, so v = 0.25 is 30 deg above the ground plane), looks at the origin with +z up,
and uses an OpenGL-style camera frame (x right, y up, looking along -z) with focal length 1 / tan(fov / 2) for
pixel coordinates in [-1, 1] (corners included). Rays are sampled at camera-space depths, so a ray's direction
vector is (x / f, y / f, -1) in the camera frame, not a unit vector. The feature image's row 0 is the top
(y = +1) and its column 0 the left (x = -1). This module is the one place those conventions live; the procedural
scenes use `to_pytorch3d` to render with the same cameras.
"""

from __future__ import annotations

import math

import torch

# PyTorch3D's view frame is (+x left, +y up, +z forward); GIRAFFE's camera frame is (x right, y up, -z forward).
_GL_TO_P3D = torch.diag(torch.tensor([-1.0, 1.0, -1.0]))


def focal(fov_deg: float) -> float:
    """The focal length in pixel units of the [-1, 1] image for a field of view in degrees."""
    return 1.0 / math.tan(0.5 * math.radians(fov_deg))


def elevation_to_v(elevation_deg: float) -> float:
    """GIRAFFE's v for a camera `elevation_deg` above the ground plane (v = (1 - cos(polar)) / 2)."""
    polar = math.radians(90.0 - elevation_deg)
    return 0.5 * (1.0 - math.cos(polar))


def v_to_elevation(v: float) -> float:
    """The inverse of `elevation_to_v`, in degrees."""
    return 90.0 - math.degrees(math.acos(1.0 - 2.0 * v))


def camera_location(u: torch.Tensor, v: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Camera centres (B, 3) on the sphere: azimuth 2 pi u about +z, polar angle arccos(1 - 2 v)."""
    theta = 2.0 * math.pi * u
    phi = torch.arccos((1.0 - 2.0 * v).clamp(-1.0, 1.0))
    loc = torch.stack([phi.sin() * theta.cos(), phi.sin() * theta.sin(), phi.cos()], dim=-1)  # (B, 3)
    return loc * radius[:, None]


def look_at_origin(eye: torch.Tensor) -> torch.Tensor:
    """Camera-to-world rotations (B, 3, 3) whose columns are the camera's x, y, z axes; z points from the origin
    to the camera (the camera looks along -z), x = up x z with up = +z world."""
    z_axis = eye / eye.norm(dim=-1, keepdim=True).clamp_min(1e-5)
    up = torch.tensor([0.0, 0.0, 1.0], device=eye.device).expand_as(eye)
    x_axis = torch.cross(up, z_axis, dim=-1)
    x_axis = x_axis / x_axis.norm(dim=-1, keepdim=True).clamp_min(1e-5)
    y_axis = torch.cross(z_axis, x_axis, dim=-1)
    return torch.stack([x_axis, y_axis, z_axis], dim=-1)


def camera_poses(u: torch.Tensor, v: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Camera-to-world matrices (B, 4, 4) for cameras at (u, v, radius) looking at the origin."""
    eye = camera_location(u, v, radius)
    pose = torch.eye(4, device=eye.device).repeat(len(eye), 1, 1)
    pose[:, :3, :3] = look_at_origin(eye)
    pose[:, :3, 3] = eye
    return pose


def pixel_grid(res: int, centers: bool = False, device: torch.device | str = "cpu") -> torch.Tensor:
    """Image-plane points (res * res, 2), row-major from the top-left, x right, y up: the official grid puts the
    corner pixels at -1 and +1; `centers` puts pixel centres at +-(1 - 1 / res), as PyTorch3D's renders (and a
    nearest-neighbour upsampling of them) do."""
    edge = 1.0 - 1.0 / res if centers else 1.0
    lin = torch.linspace(-edge, edge, res, device=device)
    y, x = torch.meshgrid(-lin, lin, indexing="ij")  # (res, res): row r has y = 1 - 2 r / (res - 1)
    return torch.stack([x, y], dim=-1).reshape(-1, 2)


def pixel_rays(
    pose: torch.Tensor, res: int, fov_deg: float, centers: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray origins (B, 3) and direction vectors (B, res * res, 3) in the world, one per feature-image pixel.

    The direction has camera-space z = -1, so `origin + d * direction` is the point at camera depth `d`.
    """
    xy = pixel_grid(res, centers, pose.device) / focal(fov_deg)  # (P, 2)
    dirs_cam = torch.cat([xy, -torch.ones_like(xy[:, :1])], dim=-1)  # (P, 3)
    dirs_world = dirs_cam @ pose[:, :3, :3].transpose(1, 2)  # (B, P, 3): R_c2w @ d for each pixel
    return pose[:, :3, 3], dirs_world


def project(points_world: torch.Tensor, pose: torch.Tensor, fov_deg: float) -> torch.Tensor:
    """Image-plane coordinates (B, N, 2) in [-1, 1] (x right, y up) of world points (B, N, 3)."""
    rel = points_world - pose[:, None, :3, 3]
    cam = rel @ pose[:, :3, :3]  # (B, N, 3): R_c2w^T (p - eye) for row vectors
    depth = (-cam[..., 2]).clamp_min(1e-6)
    return cam[..., :2] * focal(fov_deg) / depth[..., None]


def to_pixels(xy: torch.Tensor, image_size: int) -> torch.Tensor:
    """Image-plane coordinates (.., 2) as (column, row) pixel positions of an `image_size` image whose edges are
    at -1 and +1 (PyTorch3D's renders): pixel (0, 0)'s centre is (-1 + 1 / N, 1 - 1 / N)."""
    col = (xy[..., 0] + 1.0) * 0.5 * image_size - 0.5
    row = (1.0 - xy[..., 1]) * 0.5 * image_size - 0.5
    return torch.stack([col, row], dim=-1)


def to_pytorch3d(pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch3D (R, T) for GIRAFFE camera-to-world poses: X_view = X_world @ R + T (row vectors)."""
    rot = pose[:, :3, :3] @ _GL_TO_P3D.to(pose.device)  # (B, 3, 3)
    trans = -(pose[:, None, :3, 3] @ rot)[:, 0]  # (B, 3)
    return rot, trans
