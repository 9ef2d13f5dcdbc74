"""Look-at cameras for pose: world-to-view from a camera centre, spherical (distance, elevation°, azimuth°)
conversions, random turns, and pose errors (geodesic rotation angle, centre distance) and pose JSON."""

from __future__ import annotations

import math
from typing import Any

import torch

_UP = (0.0, 1.0, 0.0)


def look_at(camera_position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World-to-view (R (N, 3, 3), T (N, 3)) of cameras at `camera_position` (N, 3) looking at the origin, +Y up."""
    from pytorch3d.renderer import look_at_rotation

    up = torch.tensor([_UP], dtype=camera_position.dtype, device=camera_position.device)
    R = look_at_rotation(camera_position, up=up, device=camera_position.device)  # (N, 3, 3)
    T = -torch.bmm(R.transpose(1, 2), camera_position[:, :, None])[:, :, 0]  # (N, 3)
    return R, T


def make_cameras(camera_position: torch.Tensor) -> Any:
    from pytorch3d.renderer import FoVPerspectiveCameras

    R, T = look_at(camera_position)
    return FoVPerspectiveCameras(R=R, T=T, device=camera_position.device)


def spherical_to_position(dist: float, elev: float, azim: float) -> torch.Tensor:
    """Camera centre (3,) at distance `dist`, elevation and azimuth in degrees (PyTorch3D's convention)."""
    e, a = math.radians(elev), math.radians(azim)
    return torch.tensor([dist * math.cos(e) * math.sin(a), dist * math.sin(e), dist * math.cos(e) * math.cos(a)])


def position_to_spherical(position: torch.Tensor) -> tuple[float, float, float]:
    """(distance, elevation°, azimuth°) of a camera centre (3,)."""
    x, y, z = (float(v) for v in position.reshape(3))
    dist = math.sqrt(x * x + y * y + z * z)
    return dist, math.degrees(math.asin(max(-1.0, min(1.0, y / max(dist, 1e-12))))), math.degrees(math.atan2(x, z))


def rotation_error_deg(R_a: torch.Tensor, R_b: torch.Tensor) -> torch.Tensor:
    """Geodesic angle in degrees between rotations (N, 3, 3): arccos((trace(R_aᵀ R_b) − 1) / 2)."""
    cos = ((R_a.transpose(-1, -2) @ R_b).diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0
    return torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))


def turn(position: torch.Tensor, angle_deg: float, generator: torch.Generator) -> torch.Tensor:
    """`position` (3,) rotated about the origin by `angle_deg` around a random axis perpendicular to it."""
    from pytorch3d.transforms import axis_angle_to_matrix

    pos = position.reshape(3).double()
    axis = torch.randn(3, generator=generator, dtype=torch.float64)
    axis = axis - (axis @ pos) * pos / (pos @ pos)
    axis = axis / axis.norm().clamp(min=1e-12)
    return (axis_angle_to_matrix(axis * math.radians(angle_deg)) @ pos).to(position.dtype)


def pose_dict(position: torch.Tensor) -> dict[str, Any]:
    """A camera centre as JSON: position, (distance, elevation°, azimuth°), and the world-to-view R and T."""
    pos = position.detach().reshape(1, 3).float().cpu()
    R, T = look_at(pos)
    dist, elev, azim = position_to_spherical(pos)
    return {
        "position": [round(float(v), 6) for v in pos[0]],
        "distance": round(dist, 6),
        "elevation_deg": round(elev, 4),
        "azimuth_deg": round(azim, 4),
        "R": [[round(float(v), 6) for v in row] for row in R[0]],
        "T": [round(float(v), 6) for v in T[0]],
    }


def pose_errors(estimate: torch.Tensor, truth: torch.Tensor) -> tuple[float, float]:
    """(rotation error in degrees, camera-centre distance) between two look-at cameras."""
    est, tru = estimate.detach().reshape(1, 3).float().cpu(), truth.detach().reshape(1, 3).float().cpu()
    return float(rotation_error_deg(look_at(est)[0], look_at(tru)[0])[0]), float((est - tru).norm())
