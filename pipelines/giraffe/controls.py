"""Controllable generation: edit one scene's parameters along a sweep, as in the GIRAFFE paper's figures.

Every control maps a value t in [0, 1] to an edit of one scene (`base_scene`): move an object horizontally or in
depth, rotate it, scale it, change its shape or appearance code, interpolate both codes towards another object's,
add or remove objects, rotate the background, change the camera elevation. A sweep holds everything else fixed
(same codes, same seed), so the frames differ only by the edit.
"""

from __future__ import annotations

import math

import torch

from pipelines.giraffe import camera
from pipelines.giraffe.generator import GeneratorSpec, SceneParams, sample_params

CONTROLS: dict[str, str] = {
    "move-horizontal": "move the object left to right (across the prior's range)",
    "move-depth": "move the object away from the camera",
    "rotate": "turn the object a full turn about the vertical",
    "scale": "grow the object from the prior's smallest to its largest size",
    "shape": "blend the object's shape code into another one",
    "appearance": "blend the object's appearance code into another one",
    "interpolate": "blend both codes of the object into another object's (spherical)",
    "add-remove": "add the objects one by one, then remove them",
    "background": "turn the background a full turn",
    "elevation": "raise the camera from the lowest to the highest elevation of the range",
}
"""Control name -> what it does."""


def base_scene(spec: GeneratorSpec, seed: int, n_objects: int, device: torch.device | str) -> SceneParams:
    """One scene from `seed` with the first `n_objects` slots present (1 to the model's number of boxes)."""
    if not (1 <= n_objects <= spec.boxes.n_boxes):
        raise ValueError(f"This model places 1 to {spec.boxes.n_boxes} objects; {n_objects} were asked for.")
    params = sample_params(spec, 1, torch.Generator().manual_seed(seed), "cpu")
    params.boxes.present[:] = torch.arange(spec.boxes.n_boxes)[None] < n_objects
    return params.to(device)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of codes a, b (..., D) at t (F,) -> (F, ..., D); linear when they are parallel."""
    t = t.reshape(-1, *([1] * a.dim()))
    cos = (a * b).sum(-1, keepdim=True) / (a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True)).clamp_min(1e-8)
    omega = torch.arccos(cos.clamp(-1 + 1e-6, 1 - 1e-6))
    so = omega.sin()
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / so


def _range(lo: float, hi: float, t: torch.Tensor) -> torch.Tensor:
    return lo + t * (hi - lo)


def sweep(spec: GeneratorSpec, scene: SceneParams, control: str, k: int, t: torch.Tensor, seed: int) -> SceneParams:
    """Frames (F scenes) of `control` applied to object `k` of a one-scene batch at values `t` (F,) in [0, 1]."""
    if control not in CONTROLS:
        raise ValueError(f"Unknown control {control!r}: choose one of {', '.join(CONTROLS)}.")
    if not (0 <= k < spec.boxes.n_boxes):
        raise ValueError(f"Object {k} does not exist: this model has objects 0 to {spec.boxes.n_boxes - 1}.")
    t = t.to(scene.pose.device)
    frames = scene.index(torch.zeros(len(t), dtype=torch.long, device=t.device))  # copies of the scene
    prior, b, lat = spec.boxes, frames.boxes, frames.latents
    other = sample_params(spec, 1, torch.Generator().manual_seed(seed + 99991), t.device)
    if control in ("move-horizontal", "move-depth"):
        axis = 1 if control == "move-horizontal" else 0
        b.translation[:, k, axis] = _range(prior.translation_min[axis], prior.translation_max[axis], t)
    elif control == "rotate":
        b.yaw[:, k] = b.yaw[:, k] + 2 * math.pi * t
    elif control == "scale":
        lo, hi = torch.tensor(prior.scale_min, device=t.device), torch.tensor(prior.scale_max, device=t.device)
        b.scale[:, k] = lo + t[:, None] * (hi - lo)
        if prior.on_plane:
            b.translation[:, k, 2] = prior.plane_z + b.scale[:, k, 2]
    elif control == "shape":
        lat.z_shape[:, k] = slerp(scene.latents.z_shape[0, k], other.latents.z_shape[0, 0], t)
    elif control == "appearance":
        lat.z_app[:, k] = slerp(scene.latents.z_app[0, k], other.latents.z_app[0, 0], t)
    elif control == "interpolate":
        lat.z_shape[:, k] = slerp(scene.latents.z_shape[0, k], other.latents.z_shape[0, 0], t)
        lat.z_app[:, k] = slerp(scene.latents.z_app[0, k], other.latents.z_app[0, 0], t)
    elif control == "add-remove":
        # t in [0, 0.5] adds slots one by one, t in (0.5, 1] removes them again.
        n = prior.n_boxes
        up = torch.where(t <= 0.5, t * 2, 2 - t * 2)
        count = torch.round(up * n).long()  # 0..n objects
        b.present[:] = torch.arange(n, device=t.device)[None] < count[:, None]
    elif control == "background":
        frames.bg_yaw[:] = scene.bg_yaw[0] + 2 * math.pi * t
    elif control == "elevation":
        lo, hi = spec.range_v
        if hi - lo < 0.02:  # a model trained at one elevation: show +-0.08 of v around it
            lo, hi = max(0.01, lo - 0.08), min(0.49, hi + 0.08)
        v = _range(lo, hi, t)
        u = torch.full_like(t, sum(spec.range_u) / 2)
        r = torch.full_like(t, sum(spec.range_radius) / 2)
        frames.pose[:] = camera.camera_poses(u, v, r)
    return frames
