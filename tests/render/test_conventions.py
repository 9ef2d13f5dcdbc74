"""Camera conventions: OpenCV and OpenGL/glTF conversions by hand and round trips, and the round-trip report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pipelines.render.camera_spec import CAMERA_KINDS, CameraSpec, build_camera, view_rt
from pipelines.render.conventions import from_opencv, from_opengl, to_opencv, to_opengl
from pipelines.render.projection import project
from pipelines.render.round_trip import round_trip_report
from tests.render.camera_cases import cloud, random_specs, rotation

# --- OpenCV ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_opencv_round_trip_and_hand_projection(seed: int) -> None:
    pts = cloud(seed + 10)
    for spec in random_specs(seed):
        cv = to_opencv(spec)
        R_cv, t_cv, K = cv["R"], cv["t"], cv["K"]
        assert R_cv.shape == (3, 3) and t_cv.shape == (3,) and K.shape == (3, 3)
        np.testing.assert_allclose(R_cv @ R_cv.T, np.eye(3), atol=1e-6)
        # OpenCV by hand: x = K (R X + t), (u, v) = x[:2] / x[2]
        x_cam = pts @ R_cv.T + t_cv
        uv = (x_cam @ K.T)[:, :2] / x_cam[:, 2:3]
        ref = project(spec, pts)["screen"][:, :2]
        np.testing.assert_allclose(uv, ref, atol=1e-4)
        # Back to PyTorch3D: same pose, same pixels.
        back = from_opencv(R_cv, t_cv, K, spec.image_size)
        R0, T0 = view_rt(spec)
        R1, T1 = view_rt(back)
        np.testing.assert_allclose(R1, R0, atol=1e-6)
        np.testing.assert_allclose(T1, T0, atol=1e-6)
        np.testing.assert_allclose(project(back, pts)["screen"][:, :2], ref, atol=1e-4)


def test_from_opencv_hand_camera() -> None:
    h, w = 240, 320
    R = rotation(np.random.default_rng(5))
    t = np.array([0.1, -0.2, 3.0])
    K = np.array([[260.0, 0.0, 150.0], [0.0, 240.0, 130.0], [0.0, 0.0, 1.0]])
    spec = from_opencv(R, t, K, (h, w))
    assert spec.kind == "perspective" and spec.in_ndc
    pts = cloud(3)
    x_cam = pts @ R.T + t
    uv = (x_cam @ K.T)[:, :2] / x_cam[:, 2:3]
    np.testing.assert_allclose(project(spec, pts)["screen"][:, :2], uv, atol=1e-4)
    # The OpenCV camera frame is PyTorch3D's with x and y negated.
    np.testing.assert_allclose(project(spec, pts)["view"], x_cam * [-1, -1, 1], atol=1e-5)


def test_opencv_refuses_orthographic_and_skew() -> None:
    with pytest.raises(ValueError, match="orthographic"):
        to_opencv(CameraSpec(kind="orthographic"))
    with pytest.raises(ValueError, match="skew"):
        from_opencv(np.eye(3), np.zeros(3), [[100, 1.0, 50], [0, 100, 50], [0, 0, 1]], (100, 100))


def test_to_opencv_accepts_a_camera() -> None:
    spec = CameraSpec(fov=50.0, image_size=(120, 160))
    a = to_opencv(spec)
    b = to_opencv(build_camera(spec), image_size=(120, 160))
    for key in ("R", "t", "K"):
        np.testing.assert_allclose(a[key], b[key], atol=1e-5)
    # FoV focal length by hand: f_pix = (min(H, W) / 2) / tan(fov / 2), principal point at the centre.
    f = 60.0 / math.tan(math.radians(25.0))
    np.testing.assert_allclose(a["K"], [[f, 0, 80.0], [0, f, 60.0], [0, 0, 1]], atol=1e-3)


# --- OpenGL / glTF --------------------------------------------------------------------------------


def _gl_pixels_by_hand(gl: dict, pts: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """OpenGL projection from yfov and aspect only (no matrices from the module)."""
    h, w = size
    x_c = (pts - gl["cam_to_world"][:3, 3]) @ gl["cam_to_world"][:3, :3]  # (P, 3) camera frame
    tan_half = math.tan(gl["yfov"] / 2.0)
    x_ndc = x_c[:, 0] / (-x_c[:, 2]) / (gl["aspect"] * tan_half)
    y_ndc = x_c[:, 1] / (-x_c[:, 2]) / tan_half
    return np.stack([(x_ndc + 1) / 2 * w, (1 - y_ndc) / 2 * h], axis=1)


@pytest.mark.parametrize("seed", [0, 1])
def test_opengl_round_trip(seed: int) -> None:
    pts = cloud(seed + 20)
    for spec in random_specs(seed):
        gl = to_opengl(spec)
        M = gl["cam_to_world"]
        R, T = view_rt(spec)
        # Camera centre and viewing direction (GL looks down -Z; PyTorch3D's +Z forward is column 2 of R).
        np.testing.assert_allclose(M[:3, 3], build_camera(spec).get_camera_center()[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(-M[:3, 2], R[:, 2], atol=1e-9)
        np.testing.assert_allclose(M[:3, 1], R[:, 1], atol=1e-9)  # both +Y up
        np.testing.assert_allclose(M[:3, 0], -R[:, 0], atol=1e-9)  # GL +X right, PyTorch3D +X left
        ref = project(spec, pts)["screen"][:, :2]
        if gl["lossless"]:
            np.testing.assert_allclose(_gl_pixels_by_hand(gl, pts, spec.image_size), ref, atol=1e-3)
        back = from_opengl(M, gl["yfov"], gl["aspect"], gl["znear"], gl["zfar"], spec.image_size)
        R1, T1 = view_rt(back)
        np.testing.assert_allclose(R1, R, atol=1e-9)
        np.testing.assert_allclose(T1, T, atol=1e-9)
        if gl["lossless"]:
            np.testing.assert_allclose(project(back, pts)["screen"][:, :2], ref, atol=1e-3)


def test_opengl_yfov_by_hand() -> None:
    # Landscape: FoV is across the shorter side = vertical. Portrait: FoV is horizontal.
    gl = to_opengl(CameraSpec(fov=60.0, image_size=(200, 300)))
    assert gl["yfov"] == pytest.approx(math.radians(60.0))
    assert gl["aspect"] == pytest.approx(1.5)
    gl = to_opengl(CameraSpec(fov=60.0, image_size=(300, 200)))
    assert gl["yfov"] == pytest.approx(2 * math.atan(math.tan(math.radians(30.0)) * 1.5))
    back = from_opengl(gl["cam_to_world"], gl["yfov"], gl["aspect"], 0.1, 100.0, (300, 200))
    assert back.kind == "fov-perspective" and back.fov == pytest.approx(60.0)


@pytest.mark.parametrize("kind", ["fov-orthographic", "orthographic"])
def test_opengl_orthographic_round_trip(kind: str) -> None:
    spec = CameraSpec(kind=kind, scale=0.8, fx=0.8, fy=0.8, elev=25.0, azim=70.0, image_size=(120, 200))
    gl = to_opengl(spec)
    assert gl["type"] == "orthographic" and gl["yfov"] is None
    # Half-height by hand: the shorter side (H = 120) spans 2 / 0.8 world units.
    assert gl["ymag"] == pytest.approx(1.25) and gl["xmag"] == pytest.approx(1.25 * 200 / 120)
    back = from_opengl(
        gl["cam_to_world"], None, gl["aspect"], gl["znear"], gl["zfar"], spec.image_size, ymag=gl["ymag"]
    )
    pts = cloud(7)
    np.testing.assert_allclose(project(back, pts)["screen"][:, :2], project(spec, pts)["screen"][:, :2], atol=1e-3)


def test_opengl_non_square_pixels_become_perspective() -> None:
    M = np.eye(4)
    M[:3, 3] = [0.0, 0.0, 3.0]  # at +Z looking down -Z at the origin
    spec = from_opengl(M, math.radians(50.0), 1.2, 0.1, 10.0, (100, 100))
    assert spec.kind == "perspective" and spec.fx != pytest.approx(spec.fy)
    gl = to_opengl(spec)
    assert gl["aspect"] == pytest.approx(1.2) and gl["yfov"] == pytest.approx(math.radians(50.0))


# --- round-trip report ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CAMERA_KINDS)
def test_round_trip_report(kind: str) -> None:
    report = round_trip_report(CameraSpec(kind=kind, image_size=(180, 240)))
    json.dumps(report, allow_nan=False)
    assert report["opengl"]["ok"], report["opengl"]
    if kind.endswith("orthographic"):
        assert report["opencv"]["supported"] is False
    else:
        assert report["opencv"]["ok"], report["opencv"]
        assert report["opencv"]["screen_err_px"] < 1e-3


def test_round_trip_report_flags_lossy_opengl() -> None:
    report = round_trip_report(CameraSpec(kind="perspective", px=0.2, image_size=(100, 100)))
    assert report["opencv"]["ok"]
    assert report["opengl"]["lossless"] is False and report["opengl"]["ok"] is False
    assert report["opengl"]["direct_screen_err_px"] < 1e-3  # the projection matrix itself is exact
    assert report["opengl"]["screen_err_px"] == pytest.approx(10.0, abs=1e-2)  # 0.2 NDC * 50 px
