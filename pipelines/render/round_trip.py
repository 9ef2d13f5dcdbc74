"""Round-trip checks of the camera conversions: PyTorch3D -> OpenCV -> PyTorch3D and PyTorch3D -> OpenGL ->
PyTorch3D, with the pose and screen errors as a JSON-able report."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

import numpy as np

from pipelines.render.camera_spec import CameraSpec, view_rt
from pipelines.render.conventions import from_opencv, from_opengl, opengl_screen, to_opencv, to_opengl
from pipelines.render.projection import project, unproject_ndc, view_to_world


def round_trip_points(spec: CameraSpec, n_per_depth: int = 5) -> np.ndarray:
    """World points (3 * n_per_depth, 3) in front of the camera and inside its view: NDC xy on a small
    pattern at three view depths between the near plane and the scene, mapped back to world."""
    pattern = np.array([[0.0, 0.0], [0.5, 0.4], [-0.6, 0.3], [0.3, -0.7], [-0.4, -0.5]])[:n_per_depth]
    R, T = view_rt(spec)
    ref = float(np.linalg.norm(-R @ T)) or 2.0
    lo = spec.znear * 1.5 if spec.kind.startswith("fov-") else 0.5 * ref
    out = []
    for depth in np.linspace(max(lo, 0.25 * ref, 1e-3), max(1.5 * ref, lo * 2.0), 3):
        out.append(view_to_world(spec, unproject_ndc(spec, pattern, float(depth))))
    return np.concatenate(out)


def _pose_errors(a: CameraSpec, b: CameraSpec) -> dict[str, float]:
    Ra, Ta = view_rt(a)
    Rb, Tb = view_rt(b)
    return {"R_max_abs_err": float(np.abs(Ra - Rb).max()), "T_max_abs_err": float(np.abs(Ta - Tb).max())}


def _screen_err(a: np.ndarray, b: np.ndarray) -> float:
    d = np.abs(a - b)
    d = d[np.isfinite(d)]
    return float(d.max()) if len(d) else float("nan")


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def round_trip_report(spec: CameraSpec, points_world: np.ndarray | None = None, tol_px: float = 1e-3) -> dict:
    """JSON-able round-trip check. PyTorch3D -> OpenCV -> PyTorch3D and PyTorch3D -> OpenGL -> PyTorch3D:
    max abs error of R, T and of the screen projections (pixels) of a few points in view
    (round_trip_points unless given); also the OpenCV projection K (R X + t) and the OpenGL projection
    computed by hand against PyTorch3D's transform_points_screen ("direct_screen_err_px").
    "ok" is True when every screen error is within `tol_px` (float32 cameras: ~1e-4 px is normal).
    A conversion that does not apply (orthographic -> OpenCV) reports {"supported": False, "reason"}."""
    pts = round_trip_points(spec) if points_world is None else np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    ref = project(spec, pts)["screen"][:, :2]  # (P, 2)
    report: dict[str, Any] = {"kind": spec.kind, "image_size": list(spec.image_size), "points": pts, "tol_px": tol_px}

    try:
        cv = to_opencv(spec)
    except ValueError as exc:
        report["opencv"] = {"supported": False, "reason": str(exc)}
    else:
        back = from_opencv(cv["R"], cv["t"], cv["K"], spec.image_size)
        x_cam = pts @ cv["R"].T + cv["t"]  # (P, 3)
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = (x_cam @ cv["K"].T)[:, :2] / x_cam[:, 2:3]
        entry = {
            "supported": True,
            **cv,
            **_pose_errors(spec, back),
            "screen_err_px": _screen_err(ref, project(back, pts)["screen"][:, :2]),
            "direct_screen_err_px": _screen_err(ref, uv),
            "back": _spec_dict(back),
        }
        entry["ok"] = max(entry["screen_err_px"], entry["direct_screen_err_px"]) <= tol_px
        report["opencv"] = entry

    gl = to_opengl(spec)
    back = from_opengl(
        gl["cam_to_world"], gl["yfov"], gl["aspect"], gl["znear"], gl["zfar"], spec.image_size, ymag=gl["ymag"]
    )
    entry = {
        "supported": True,
        **gl,
        "yfov_deg": None if gl["yfov"] is None else math.degrees(gl["yfov"]),
        **_pose_errors(spec, back),
        "screen_err_px": _screen_err(ref, project(back, pts)["screen"][:, :2]),
        "direct_screen_err_px": _screen_err(ref, opengl_screen(gl, pts, spec.image_size)),
        "back": _spec_dict(back),
    }
    entry["ok"] = max(entry["screen_err_px"], entry["direct_screen_err_px"]) <= tol_px
    report["opengl"] = entry
    return _jsonable(report)


def _spec_dict(spec: CameraSpec) -> dict:
    return {f.name: getattr(spec, f.name) for f in fields(spec)}
