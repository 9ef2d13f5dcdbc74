"""World points through a CameraSpec: view, NDC and screen coordinates, the inspector's point table and sample
points, and the way back from NDC at a given depth to world points."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from pipelines.render.camera_spec import CameraSpec, build_camera, ndc_intrinsics, view_rt


def _points_tensor(points_world: np.ndarray, device: torch.device | str) -> torch.Tensor:
    pts = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    if not np.isfinite(pts).all():
        raise ValueError("Sample points must be finite numbers.")
    return torch.tensor(pts, dtype=torch.float32, device=device)[None]  # (1, P, 3)


def project(spec: CameraSpec, points_world: np.ndarray, device: torch.device | str = "cpu") -> dict[str, np.ndarray]:
    """World points (P, 3) -> {"view", "ndc", "screen"} each (P, 3) float64, through PyTorch3D:
    get_world_to_view_transform, transform_points_ndc, transform_points_screen."""
    cam = build_camera(spec, device)
    pts = _points_tensor(points_world, device)  # (1, P, 3)
    with torch.no_grad():
        view = cam.get_world_to_view_transform().transform_points(pts)  # (1, P, 3)
        ndc = cam.transform_points_ndc(pts)  # (1, P, 3)
        screen = cam.transform_points_screen(pts, image_size=(spec.image_size,))  # (1, P, 3)
    return {k: v[0].double().cpu().numpy() for k, v in (("view", view), ("ndc", ndc), ("screen", screen))}


def in_view_mask(spec: CameraSpec, view: np.ndarray, screen: np.ndarray) -> np.ndarray:
    """(P,) bool: in front of the camera (z_view > 0; within [znear, zfar] for the FoV kinds, which
    clip there) and inside the image rectangle [0, W] x [0, H] in screen pixels."""
    h, w = spec.image_size
    z = view[:, 2]
    front = z > 0
    if spec.kind.startswith("fov-"):
        front &= (z >= spec.znear) & (z <= spec.zfar)
    with np.errstate(invalid="ignore"):
        inside = (screen[:, 0] >= 0) & (screen[:, 0] <= w) & (screen[:, 1] >= 0) & (screen[:, 1] <= h)
    return front & inside & np.isfinite(screen[:, :2]).all(axis=1)


def _num(x: float, digits: int = 6) -> float | None:
    return round(float(x), digits) if math.isfinite(float(x)) else None


def point_table(spec: CameraSpec, points_world: np.ndarray) -> list[dict]:
    """One flat, JSON-able row per point (ready for a DataFrame):
    "point" (index), "world_x/y/z", "view_x/y/z" (get_world_to_view_transform), "ndc_x/y/z"
    (transform_points_ndc: the same as transform_points / get_full_projection_transform for NDC-defined
    cameras; for a screen-defined camera (in_ndc False) those two return f * x/z + p, which is neither
    NDC nor pixels, so the table uses the NDC transform), "screen_x/y" (transform_points_screen, pixels,
    origin top-left, pixel centres at +0.5), "in_view" (see below). Non-finite values (points on the
    camera plane) become None.

    in_view: z_view > 0 (and znear <= z_view <= zfar for the FoV kinds) and the screen point lies in
    [0, W] x [0, H]; for square images that is NDC [-1, 1]^2, for others the longer side spans [-u, u].
    ndc_z is the camera's own depth encoding (FoV kinds: 0 at znear, 1 at zfar; perspective: 1 / z_view;
    orthographic: z_view)."""
    pts = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    proj = project(spec, pts)
    in_view = in_view_mask(spec, proj["view"], proj["screen"])
    rows = []
    for i in range(len(pts)):
        row: dict[str, Any] = {"point": i}
        for name, arr, axes in (
            ("world", pts, "xyz"),
            ("view", proj["view"], "xyz"),
            ("ndc", proj["ndc"], "xyz"),
            ("screen", proj["screen"], "xy"),
        ):
            for k, axis in enumerate(axes):
                row[f"{name}_{axis}"] = _num(arr[i, k])
        row["in_view"] = bool(in_view[i])
        rows.append(row)
    return rows


def default_sample_points(verts: np.ndarray | None, n: int = 8) -> np.ndarray:
    """(n, 3) float64 sample points. With mesh vertices: n vertices spread by farthest-point sampling
    (starting from the vertex farthest from the centroid), so the points lie on the mesh and the render's
    crosses can be checked against it (a cube gives its corners). Without: the corners of the unit cube
    [-0.5, 0.5]^3, then its centre and face centres, then seeded random points inside it."""
    n = int(n)
    if n < 1:
        raise ValueError("Ask for at least one sample point.")
    if verts is not None:
        v = np.asarray(verts, dtype=np.float64).reshape(-1, 3)
        v = v[np.isfinite(v).all(axis=1)]
        if len(v) > 0:
            chosen = [int(np.argmax(((v - v.mean(axis=0)) ** 2).sum(axis=1)))]
            d = ((v - v[chosen[0]]) ** 2).sum(axis=1)  # (V,) squared distance to the chosen set
            while len(chosen) < min(n, len(v)):
                nxt = int(np.argmax(d))
                if d[nxt] <= 0:  # only duplicates left
                    break
                chosen.append(nxt)
                d = np.minimum(d, ((v - v[nxt]) ** 2).sum(axis=1))
            return v[chosen].copy()
    corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    extra = np.concatenate([np.zeros((1, 3)), 0.5 * np.concatenate([np.eye(3), -np.eye(3)])])
    pts = np.concatenate([corners, extra])  # (15, 3)
    if n > len(pts):
        gen = np.random.default_rng(0)
        pts = np.concatenate([pts, gen.uniform(-0.5, 0.5, size=(n - len(pts), 3))])
    return pts[:n]


def unproject_ndc(spec: CameraSpec, ndc_xy: np.ndarray, depth: float) -> np.ndarray:
    """Points in the VIEW frame (K, 3) whose NDC xy is `ndc_xy` (K, 2), at view depth `depth`."""
    fx, fy, px, py = ndc_intrinsics(spec)
    u = (ndc_xy[:, 0] - px) / fx
    v = (ndc_xy[:, 1] - py) / fy
    if spec.kind in ("fov-perspective", "perspective"):
        u, v = u * depth, v * depth
    return np.stack([u, v, np.full_like(u, depth)], axis=1)


def view_to_world(spec: CameraSpec, pts_view: np.ndarray) -> np.ndarray:
    """World points (K, 3) from VIEW-frame points (K, 3)."""
    R, T = view_rt(spec)
    return (pts_view - T) @ R.T  # inverse of X_view = X_world @ R + T
