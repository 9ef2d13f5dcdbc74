"""Camera geometry of a SynSin pair, in PyTorch3D's view convention (+X left, +Y up, +Z forward; row vectors).

A relative pose moves the source camera: `yaw` turns it left (+) or right (-) about its up axis, `pitch` tilts it up
(+) or down (-), and `(right, up, forward)` moves its centre, in the source camera's own axes, in scene units.
`relative_transform` gives (R, T) with `X_target = X_source @ R + T` for view-space points; `lift` turns each pixel
and its depth into a view-space point; `project` takes view-space points to NDC x, y and depth z, the input of
PyTorch3D's point rasteriser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PoseLimits:
    """The largest relative pose the model is asked for (degrees, scene units); larger requests are clamped."""

    yaw_deg: float = 20.0
    pitch_deg: float = 10.0
    right: float = 0.6
    up: float = 0.2
    forward: float = 0.6


@dataclass(frozen=True)
class RelPose:
    """A target camera relative to the source camera (see the module docstring for signs)."""

    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    right: float = 0.0
    up: float = 0.0
    forward: float = 0.0

    def clamped(self, limits: PoseLimits) -> tuple[RelPose, list[str]]:
        """This pose with each value inside its limit, and a sentence for each value that was clamped."""
        values, notes = {}, []
        for name in ("yaw_deg", "pitch_deg", "right", "up", "forward"):
            v, lim = float(getattr(self, name)), float(getattr(limits, name))
            if not math.isfinite(v):
                v = 0.0
                notes.append(f"{name} was not a number; 0 was used.")
            elif abs(v) > lim:
                notes.append(
                    f"{name} {v:g} is beyond the trained range ±{lim:g}; clamped to {math.copysign(lim, v):g}."
                )
                v = math.copysign(lim, v)
            values[name] = v
        return RelPose(**values), notes


def _rot_y(a: float) -> torch.Tensor:
    c, s = math.cos(a), math.sin(a)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_x(a: float) -> torch.Tensor:
    c, s = math.cos(a), math.sin(a)
    return torch.tensor([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


def relative_transform(pose: RelPose) -> tuple[torch.Tensor, torch.Tensor]:
    """(R (3, 3), T (3,)) with X_target = X_source @ R + T for row-vector view-space points.

    The target camera's centre sits at c = (-right, up, forward) in source view coordinates (+X is left), and its
    axes are the source's turned by yaw then pitch; then X_target = (X_source - c) @ R.
    """
    # A yaw of +a turns the camera left: a point straight ahead of the new camera, at source direction
    # (+sin a, 0, cos a) (+X is left), must land at (0, 0, 1).
    rot = _rot_y(math.radians(pose.yaw_deg)) @ _rot_x(math.radians(pose.pitch_deg))
    centre = torch.tensor([-pose.right, pose.up, pose.forward])
    return rot, -(centre @ rot)


def compose_camera(
    r_src: torch.Tensor, t_src: torch.Tensor, r_rel: torch.Tensor, t_rel: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """World-to-view (R, T) of the target camera from the source's and the relative transform (row vectors)."""
    return r_src @ r_rel, t_src @ r_rel + t_rel


def pixel_ndc(size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """NDC (x, y) of each pixel centre of a square image, row-major: (S*S, 2); pixel (0, 0) is top-left,
    where NDC x and y are near +1 (PyTorch3D's convention)."""
    c = 1.0 - (2.0 * torch.arange(size, device=device, dtype=torch.float32) + 1.0) / size
    y, x = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1)], dim=-1)


def lift(depth: torch.Tensor, tan_half_fov: float) -> torch.Tensor:
    """View-space points of every pixel: depth (B, 1, S, S) (view z) → (B, S*S, 3)."""
    b, _, s, _ = depth.shape
    xy = pixel_ndc(s, depth.device)  # (S*S, 2)
    z = depth.reshape(b, -1, 1)  # (B, S*S, 1)
    return torch.cat([xy[None] * tan_half_fov * z, z], dim=-1)


def project(points_view: torch.Tensor, tan_half_fov: float, min_z: float = 1e-2) -> torch.Tensor:
    """View-space points (B, P, 3) → (B, P, 3) of NDC x, y and depth z. Points nearer than `min_z` (or behind the
    camera) get z = -1, which the rasteriser skips."""
    z = points_view[..., 2:3]
    valid = z > min_z
    safe_z = torch.where(valid, z, torch.ones_like(z))
    xy = points_view[..., :2] / (safe_z * tan_half_fov)
    xy = torch.where(valid, xy, torch.full_like(xy, 10.0))
    return torch.cat([xy, torch.where(valid, z, -torch.ones_like(z))], dim=-1)


def transform(points_view: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Row-vector rigid transform of (B, P, 3) points by (B, 3, 3) rotations and (B, 3) translations."""
    return torch.bmm(points_view, r) + t[:, None, :]
