"""The camera inspector's camera: CameraSpec (validated on construction), its pose and intrinsics, and the
PyTorch3D camera it builds.

Conventions are PyTorch3D's; the written note on them, and the conversions to OpenCV and OpenGL, are in
`pipelines.render.conventions`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from pytorch3d.renderer import (
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    OrthographicCameras,
    PerspectiveCameras,
    look_at_view_transform,
)
from pytorch3d.renderer.cameras import CamerasBase

CAMERA_KINDS = ("fov-perspective", "perspective", "fov-orthographic", "orthographic")

MAX_IMAGE_SIDE = 4096
ROTATION_TOL = 1e-3  # tolerance on |R R^T - I| and |det R - 1| for user-typed rotations


def nested_floats(value: Any, shape: tuple[int, ...], name: str) -> tuple:
    """Nested tuple of floats of the given shape, or ValueError with a user sentence."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers of shape {shape}.") from exc
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}.")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return tuple(map(tuple, arr.tolist())) if arr.ndim == 2 else tuple(arr.tolist())


@dataclass(frozen=True)
class CameraSpec:
    """One camera, as the inspector edits it. Validated on construction (ValueError with a sentence).

    Pose: `R`, `T` (PyTorch3D row-vector world->view, X_view = X_world @ R + T) when both are given,
    otherwise `look_at_view_transform(dist, elev, azim)` around the world origin (degrees).
    A nearly orthonormal R (within 1e-3, e.g. typed with four decimals) is snapped to the nearest
    rotation; anything further off is refused.
    Intrinsics by kind:
      fov-perspective   `fov` (degrees) across the shorter image side, `znear`, `zfar`.
      perspective       fx, fy, px, py: NDC units if `in_ndc`, else pixels (principal point in
                        image coordinates, +X right, +Y down, like OpenCV's cx, cy).
      fov-orthographic  `scale` (scale_xyz), `znear`, `zfar`; the shorter side spans 2 / scale world units.
      orthographic      fx, fy, px, py as for perspective; NDC x = fx * x_view + px.
    `image_size` is (H, W).
    """

    kind: str = "fov-perspective"  # one of CAMERA_KINDS
    dist: float = 2.7  # look-at distance to the world origin (used when R, T are not given)
    elev: float = 20.0  # look-at elevation, degrees
    azim: float = 30.0  # look-at azimuth, degrees
    R: tuple | None = None  # (3, 3) world->view rotation, row-vector convention
    T: tuple | None = None  # (3,) world->view translation
    fov: float = 60.0  # degrees across the shorter image side (fov-perspective)
    znear: float = 0.1  # near clipping depth (FoV kinds)
    zfar: float = 100.0  # far clipping depth (FoV kinds)
    fx: float = 1.0  # focal length x (perspective / orthographic)
    fy: float = 1.0  # focal length y
    px: float = 0.0  # principal point x
    py: float = 0.0  # principal point y
    in_ndc: bool = True  # fx, fy, px, py in NDC units (True) or pixels (False)
    scale: float = 1.0  # fov-orthographic scale_xyz
    image_size: tuple[int, int] = (256, 256)  # (H, W) pixels, each side 1..4096

    def __post_init__(self) -> None:
        if self.kind not in CAMERA_KINDS:
            raise ValueError(f"Unknown camera kind {self.kind!r}; choose one of {', '.join(CAMERA_KINDS)}.")
        for f in fields(self):
            if f.name in ("kind", "R", "T", "image_size", "in_ndc"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise ValueError(f"Camera field {f.name} must be a number, got {value!r}.")
            if not math.isfinite(float(value)):
                raise ValueError(f"Camera field {f.name} must be a finite number, got {value}.")
            object.__setattr__(self, f.name, float(value))
        object.__setattr__(self, "in_ndc", bool(self.in_ndc))

        try:
            h, w = (int(v) for v in self.image_size)
        except (TypeError, ValueError) as exc:
            raise ValueError("Image size must be two integers (height, width).") from exc
        if not all(float(a) == b for a, b in zip(self.image_size, (h, w), strict=True)):
            raise ValueError("Image size must be whole numbers of pixels.")
        if not (0 < h <= MAX_IMAGE_SIDE and 0 < w <= MAX_IMAGE_SIDE):
            raise ValueError(f"Image size must be between 1 and {MAX_IMAGE_SIDE} pixels per side, got {h} x {w}.")
        object.__setattr__(self, "image_size", (h, w))

        if not self.znear < self.zfar:
            raise ValueError(f"znear ({self.znear}) must be smaller than zfar ({self.zfar}).")
        if self.kind == "fov-perspective" and self.znear <= 0:
            raise ValueError("A perspective camera needs znear > 0.")
        if not 0.0 < self.fov < 180.0:
            raise ValueError(f"Field of view must be between 0 and 180 degrees, got {self.fov}.")
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError("Focal lengths fx and fy must be positive.")
        if self.scale <= 0:
            raise ValueError("The orthographic scale must be positive.")

        if (self.R is None) != (self.T is None):
            raise ValueError("Give both R and T, or neither (then dist/elev/azim place the camera).")
        if self.R is None:
            if self.dist <= 0:
                raise ValueError("Camera distance must be positive.")
            return
        R = np.asarray(nested_floats(self.R, (3, 3), "R"))
        T = nested_floats(self.T, (3,), "T")
        if np.abs(R @ R.T - np.eye(3)).max() > ROTATION_TOL or abs(np.linalg.det(R) - 1.0) > ROTATION_TOL:
            raise ValueError("R must be a rotation matrix (orthonormal rows, determinant +1).")
        u, _, vt = np.linalg.svd(R)  # snap to the nearest rotation (polar decomposition)
        object.__setattr__(self, "R", tuple(map(tuple, (u @ vt).tolist())))
        object.__setattr__(self, "T", T)


# ---------------------------------------------------------------------------------------------
# Building cameras and reading their pose


def view_rt(spec: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
    """(R (3, 3), T (3,)) float64 in PyTorch3D's convention: from the spec or from dist/elev/azim."""
    if spec.R is not None:
        return np.array(spec.R, dtype=np.float64), np.array(spec.T, dtype=np.float64)
    R, T = look_at_view_transform(dist=spec.dist, elev=spec.elev, azim=spec.azim)  # (1, 3, 3), (1, 3)
    return R[0].double().numpy(), T[0].double().numpy()


def camera_center(spec: CameraSpec) -> np.ndarray:
    """Camera centre in world coordinates, (3,): C = -R T (column form)."""
    R, T = view_rt(spec)
    return -R @ T


def build_camera(spec: CameraSpec, device: torch.device | str = "cpu") -> CamerasBase:
    """The PyTorch3D camera (batch of 1) for a spec, with image_size set where the class takes one."""
    R, T = view_rt(spec)
    R_t = torch.tensor(R, dtype=torch.float32, device=device)[None]  # (1, 3, 3)
    T_t = torch.tensor(T, dtype=torch.float32, device=device)[None]  # (1, 3)
    size = (spec.image_size,)
    if spec.kind == "fov-perspective":
        return FoVPerspectiveCameras(
            znear=spec.znear, zfar=spec.zfar, fov=spec.fov, degrees=True, R=R_t, T=T_t, device=device
        )
    if spec.kind == "fov-orthographic":
        return FoVOrthographicCameras(
            znear=spec.znear, zfar=spec.zfar, scale_xyz=((spec.scale,) * 3,), R=R_t, T=T_t, device=device
        )
    cls = PerspectiveCameras if spec.kind == "perspective" else OrthographicCameras
    return cls(
        focal_length=((spec.fx, spec.fy),),
        principal_point=((spec.px, spec.py),),
        R=R_t,
        T=T_t,
        in_ndc=spec.in_ndc,
        image_size=size,
        device=device,
    )


def ndc_intrinsics(spec: CameraSpec) -> tuple[float, float, float, float]:
    """(fx, fy, px, py) in PyTorch3D NDC units for any kind: NDC x = fx * x' + px, where
    x' = x_view / z_view for perspective kinds and x' = x_view for orthographic ones.
    Screen-unit values convert with s = min(H, W) / 2: f_ndc = f_pix / s, p_ndc = (W/2 - p_pix) / s."""
    h, w = spec.image_size
    s = min(h, w) / 2.0
    if spec.kind == "fov-perspective":
        f = 1.0 / math.tan(math.radians(spec.fov) / 2.0)
        return f, f, 0.0, 0.0
    if spec.kind == "fov-orthographic":
        return spec.scale, spec.scale, 0.0, 0.0
    if spec.in_ndc:
        return spec.fx, spec.fy, spec.px, spec.py
    return spec.fx / s, spec.fy / s, (w / 2.0 - spec.px) / s, (h / 2.0 - spec.py) / s
