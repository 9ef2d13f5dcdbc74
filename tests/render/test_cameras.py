"""Cameras: hand-computed projections, unit conversions, OpenCV/OpenGL round trips, validation, render overlay."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from pytorch3d.renderer import (
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    OrthographicCameras,
    PerspectiveCameras,
)
from pytorch3d.structures import Meshes
from pytorch3d.utils import ico_sphere

from pipelines.render.cameras import (
    BACKGROUND,
    CAMERA_KINDS,
    CameraSpec,
    build_camera,
    camera_center,
    default_sample_points,
    draw_points,
    from_opencv,
    from_opengl,
    frustum_corners,
    frustum_figure,
    point_table,
    project,
    render_mesh,
    render_with_points,
    round_trip_report,
    to_opencv,
    to_opengl,
    view_rt,
)

SIZES = [(200, 300), (300, 200), (128, 128)]  # (H, W): landscape, portrait, square


def _rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniform random rotation (3, 3) from a normalised quaternion, det +1."""
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _random_specs(seed: int, count: int = 4) -> list[CameraSpec]:
    """Seeded random poses looking roughly at the origin from 2.5-4 units, several kinds and sizes."""
    rng = np.random.default_rng(seed)
    specs = []
    for k in range(count):
        R = _rotation(rng)
        T = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(2.5, 4.0)])
        size = SIZES[k % len(SIZES)]
        specs.append(CameraSpec(kind="fov-perspective", R=R, T=T, fov=float(rng.uniform(30, 90)), image_size=size))
        specs.append(
            CameraSpec(
                kind="perspective",
                R=R,
                T=T,
                fx=float(rng.uniform(1.0, 2.5)),
                fy=float(rng.uniform(1.0, 2.5)),
                px=float(rng.uniform(-0.2, 0.2)),
                py=float(rng.uniform(-0.2, 0.2)),
                image_size=size,
            )
        )
        specs.append(
            CameraSpec(
                kind="perspective",
                R=R,
                T=T,
                in_ndc=False,
                fx=float(rng.uniform(150, 300)),
                fy=float(rng.uniform(150, 300)),
                px=size[1] / 2 + float(rng.uniform(-20, 20)),
                py=size[0] / 2 + float(rng.uniform(-20, 20)),
                image_size=size,
            )
        )
    return specs


def _cloud(seed: int, n: int = 20) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, size=(n, 3))


# --- hand-computed projections -------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_fov_perspective_hand_values(size: tuple[int, int]) -> None:
    h, w = size
    spec = CameraSpec(kind="fov-perspective", dist=2.0, elev=0.0, azim=0.0, fov=60.0, image_size=size)
    # Camera at (0, 0, 2) looking at the origin: R = diag(-1, 1, -1), T = (0, 0, 2) (look_at by hand).
    R, T = view_rt(spec)
    np.testing.assert_allclose(R, np.diag([-1.0, 1.0, -1.0]), atol=1e-6)
    np.testing.assert_allclose(T, [0.0, 0.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(camera_center(spec), [0.0, 0.0, 2.0], atol=1e-6)

    world = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.25, 0.5], [-0.3, -0.2, 1.0]])
    rows = point_table(spec, world)
    t = math.tan(math.radians(30.0))
    zn, zf = 0.1, 100.0
    s = min(h, w) / 2.0
    for row, (x, y, z) in zip(rows, world, strict=True):
        xv, yv, zv = -x, y, 2.0 - z  # view frame: +X left, +Y up, +Z forward
        ndc_x, ndc_y = xv / (zv * t), yv / (zv * t)
        ndc_z = zf / (zf - zn) - zf * zn / ((zf - zn) * zv)
        # screen: origin top-left, +X right, +Y down; NDC (0, 0) is exactly (W/2, H/2)
        sx, sy = w / 2.0 - s * ndc_x, h / 2.0 - s * ndc_y
        got = [row[k] for k in ("view_x", "view_y", "view_z", "ndc_x", "ndc_y", "ndc_z", "screen_x", "screen_y")]
        np.testing.assert_allclose(got, [xv, yv, zv, ndc_x, ndc_y, ndc_z, sx, sy], atol=2e-4)
        assert row["in_view"]
    # The origin lands on the image centre (not (W-1)/2: PyTorch3D's pixel j covers [j, j+1)).
    assert rows[0]["screen_x"] == pytest.approx(w / 2.0, abs=1e-4)
    assert rows[0]["screen_y"] == pytest.approx(h / 2.0, abs=1e-4)
    # World +X seen from +Z: view x < 0 (view +X is left), so NDC x < 0 and it appears RIGHT of centre.
    assert rows[1]["ndc_x"] == pytest.approx(-0.5 / (2.0 * t), abs=1e-5)
    assert rows[1]["screen_x"] > w / 2.0
    # World +Y is up: NDC y > 0, screen y above the centre.
    assert rows[2]["ndc_y"] > 0 and rows[2]["screen_y"] < h / 2.0


def test_in_view_flags() -> None:
    spec = CameraSpec(dist=2.0, elev=0.0, azim=0.0, fov=60.0, image_size=(100, 200))
    # (0, 0, 3) is behind the camera; (1.5, 0, 0) is off the left/right edge of a square image but
    # inside this wide one (|NDC x| = 0.866 * 1.5 = 1.3 < W / min = 2); (0, 1.5, 0) is above the image.
    rows = point_table(spec, np.array([[0, 0, 0], [0, 0, 3.0], [1.5, 0, 0], [0, 1.5, 0], [0, 0, 1.95]]))
    assert [r["in_view"] for r in rows] == [True, False, True, False, False]  # last: nearer than znear
    assert abs(rows[2]["ndc_x"]) > 1.0
    json.dumps(rows, allow_nan=False)


def test_point_on_camera_plane_gives_none() -> None:
    spec = CameraSpec(dist=2.0, elev=0.0, azim=0.0)
    rows = point_table(spec, np.array([[0.3, 0.0, 2.0]]))  # z_view = 0
    assert rows[0]["in_view"] is False
    json.dumps(rows, allow_nan=False)


@pytest.mark.parametrize("size", SIZES)
def test_perspective_pixels_equal_ndc(size: tuple[int, int]) -> None:
    h, w = size
    s = min(h, w) / 2.0
    fx, fy, px, py = 180.0, 150.0, w / 2 - 12.0, h / 2 + 7.0  # pixels, OpenCV-like principal point
    pix = CameraSpec(kind="perspective", in_ndc=False, fx=fx, fy=fy, px=px, py=py, dist=3.0, image_size=size)
    # Hand conversion: f_ndc = f / s; p_ndc = (W/2 - px) / s (NDC +X is left).
    ndc = CameraSpec(
        kind="perspective", fx=fx / s, fy=fy / s, px=(w / 2 - px) / s, py=(h / 2 - py) / s, dist=3.0, image_size=size
    )
    pts = _cloud(0)
    a, b = project(pix, pts), project(ndc, pts)
    np.testing.assert_allclose(a["ndc"][:, :2], b["ndc"][:, :2], atol=1e-5)
    np.testing.assert_allclose(a["screen"][:, :2], b["screen"][:, :2], atol=1e-3)
    # And by hand in pixels: u = px - fx * x_view / z_view (view +X is left, screen +X right).
    v = a["view"]
    np.testing.assert_allclose(a["screen"][:, 0], px - fx * v[:, 0] / v[:, 2], atol=1e-3)
    np.testing.assert_allclose(a["screen"][:, 1], py - fy * v[:, 1] / v[:, 2], atol=1e-3)


def test_orthographic_ndc_is_affine() -> None:
    spec = CameraSpec(kind="orthographic", fx=0.8, fy=1.3, px=0.1, py=-0.2, elev=10.0, azim=-35.0, image_size=(90, 160))
    pts = _cloud(1)
    out = project(spec, pts)
    v = out["view"]
    np.testing.assert_allclose(out["ndc"][:, 0], 0.8 * v[:, 0] + 0.1, atol=1e-5)
    np.testing.assert_allclose(out["ndc"][:, 1], 1.3 * v[:, 1] - 0.2, atol=1e-5)
    fov_ortho = CameraSpec(kind="fov-orthographic", scale=0.7, elev=10.0, azim=-35.0, image_size=(90, 160))
    out = project(fov_ortho, pts)
    np.testing.assert_allclose(out["ndc"][:, :2], 0.7 * out["view"][:, :2], atol=1e-5)


@pytest.mark.parametrize("kind", CAMERA_KINDS)
def test_build_camera_kinds(kind: str, device: torch.device) -> None:
    cam = build_camera(CameraSpec(kind=kind), device)
    expected = {
        "fov-perspective": FoVPerspectiveCameras,
        "perspective": PerspectiveCameras,
        "fov-orthographic": FoVOrthographicCameras,
        "orthographic": OrthographicCameras,
    }[kind]
    assert isinstance(cam, expected)
    assert cam.R.shape == (1, 3, 3) and cam.device.type == device.type
    np.testing.assert_allclose(
        cam.get_camera_center()[0].cpu().numpy(), camera_center(CameraSpec(kind=kind)), atol=1e-5
    )


@pytest.mark.parametrize("kind", CAMERA_KINDS)
@pytest.mark.parametrize("size", [(200, 300), (300, 200)])
def test_frustum_corners_project_to_image_corners(kind: str, size: tuple[int, int]) -> None:
    h, w = size
    spec = CameraSpec(kind=kind, px=0.1, py=-0.05, fx=1.4, fy=1.1, image_size=size)
    corners = frustum_corners(spec, 2.0)
    screen = project(spec, corners)["screen"][:, :2]
    np.testing.assert_allclose(screen, [[0, 0], [w, 0], [w, h], [0, h]], atol=1e-3)
    np.testing.assert_allclose(project(spec, corners)["view"][:, 2], 2.0, atol=1e-5)


# --- OpenCV ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_opencv_round_trip_and_hand_projection(seed: int) -> None:
    pts = _cloud(seed + 10)
    for spec in _random_specs(seed):
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
    R = _rotation(np.random.default_rng(5))
    t = np.array([0.1, -0.2, 3.0])
    K = np.array([[260.0, 0.0, 150.0], [0.0, 240.0, 130.0], [0.0, 0.0, 1.0]])
    spec = from_opencv(R, t, K, (h, w))
    assert spec.kind == "perspective" and spec.in_ndc
    pts = _cloud(3)
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
    pts = _cloud(seed + 20)
    for spec in _random_specs(seed):
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
    pts = _cloud(7)
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


# --- validation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"dist": float("nan")}, "finite"),
        ({"fov": float("inf")}, "finite"),
        ({"znear": 5.0, "zfar": 5.0}, "znear"),
        ({"znear": 10.0, "zfar": 1.0}, "znear"),
        ({"image_size": (5000, 100)}, "Image size"),
        ({"image_size": (0, 100)}, "Image size"),
        ({"image_size": (10.5, 100)}, "whole"),
        ({"fov": 180.0}, "Field of view"),
        ({"kind": "fisheye"}, "Unknown camera kind"),
        ({"fx": -1.0}, "positive"),
        ({"R": ((1, 0, 0), (0, 1, 0), (0, 0, 1))}, "both R and T"),
        ({"R": ((1, 0.1, 0), (0, 1, 0), (0, 0, 1)), "T": (0, 0, 2)}, "rotation"),
        ({"R": ((-1, 0, 0), (0, 1, 0), (0, 0, 1)), "T": (0, 0, 2)}, "rotation"),  # reflection, det -1
        ({"R": ((1, 0, 0), (0, 1, 0)), "T": (0, 0, 2)}, "shape"),
        ({"R": np.eye(3), "T": (0, float("nan"), 2)}, "NaN"),
        ({"dist": 0.0}, "distance"),
    ],
)
def test_spec_validation(fields: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CameraSpec(**fields)


def test_spec_snaps_nearly_orthonormal_rotation() -> None:
    c = round(math.cos(math.radians(45)), 4)  # typed with four decimals
    spec = CameraSpec(R=[[c, 0, c], [0, 1, 0], [-c, 0, c]], T=[0, 0, 3])
    R = np.array(spec.R)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert isinstance(spec.R, tuple) and hash(spec)


# --- sample points, figure, render -------------------------------------------------------------------


def test_default_sample_points() -> None:
    cube = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=float)
    verts = np.concatenate([cube, 0.1 * _cloud(0, 50)])  # corners plus interior clutter
    pts = default_sample_points(verts, 8)
    assert {tuple(p) for p in pts} == {tuple(p) for p in cube}
    unit = default_sample_points(None, 8)
    np.testing.assert_allclose(np.abs(unit), 0.5)
    assert default_sample_points(None, 20).shape == (20, 3)
    assert default_sample_points(verts[:3], 8).shape == (3, 3)


def test_frustum_figure() -> None:
    mesh = ico_sphere(2)
    v, f = mesh.verts_packed().numpy(), mesh.faces_packed().numpy()
    spec = CameraSpec(image_size=(120, 200))
    fig = frustum_figure(spec, default_sample_points(v, 6), v, f, max_faces=100)
    names = [t.name for t in fig.data]
    assert {"world X", "world Y", "world Z", "frustum", "camera centre", "sample points"} <= set(names)
    mesh3d = [t for t in fig.data if t.type == "mesh3d"]
    assert len(mesh3d) == 1 and len(mesh3d[0].i) == 100
    kept = np.stack([mesh3d[0].x, mesh3d[0].y, mesh3d[0].z], axis=1)
    assert len(kept) <= 300 and np.max([mesh3d[0].i, mesh3d[0].j, mesh3d[0].k]) == len(kept) - 1
    assert (((kept[:, None] - v[None]) ** 2).sum(-1).min(axis=1) < 1e-10).all()  # real vertices only
    assert fig.layout.scene.aspectmode == "data"
    centre = next(t for t in fig.data if t.name == "camera centre")
    np.testing.assert_allclose([centre.x[0], centre.y[0], centre.z[0]], camera_center(spec), atol=1e-9)
    for kind in CAMERA_KINDS:  # every kind draws without error, with and without points
        frustum_figure(CameraSpec(kind=kind))
        frustum_figure(CameraSpec(kind=kind), default_sample_points(None))


def _quad(half: float) -> tuple[np.ndarray, np.ndarray]:
    verts = np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0], [-half, half, 0]], dtype=np.float32)
    return verts, np.array([[0, 1, 2], [0, 2, 3]])


def test_render_pixel_convention_matches_screen_points() -> None:
    # A square facing the camera projects to an axis-aligned rectangle [x0, x1] x [y0, y1] in screen
    # pixels; the rasteriser covers exactly the pixels whose centres (j + 0.5, i + 0.5) lie inside.
    spec = CameraSpec(dist=2.0, elev=0.0, azim=0.0, fov=60.0, image_size=(48, 64))
    verts, faces = _quad(0.5)
    verts = verts + np.array([0.013, 0.007, 0.0], dtype=np.float32)  # keep the diagonal off pixel centres
    screen = project(spec, verts)["screen"]
    x0, x1 = screen[:, 0].min(), screen[:, 0].max()
    y0, y1 = screen[:, 1].min(), screen[:, 1].max()
    # by hand: s = 24, half-width in pixels = 24 * 0.5 / (2 tan 30deg) = 10.392; world +X is screen right
    half = 24 * 0.5 / (2 * math.tan(math.radians(30)))
    shift = 24 * 0.013 / (2 * math.tan(math.radians(30)))
    assert (x0, x1) == (pytest.approx(32.0 - half + shift, abs=1e-4), pytest.approx(32.0 + half + shift, abs=1e-4))
    _, pix_to_face, zbuf = render_mesh(spec, (verts, faces))
    cols = np.arange(64) + 0.5
    rows = np.arange(48) + 0.5
    in_rows = (rows >= y0) & (rows <= y1)  # (48,)
    in_cols = (cols >= x0) & (cols <= x1)  # (64,)
    covered = pix_to_face >= 0
    np.testing.assert_array_equal(covered, in_rows[:, None] & in_cols[None])
    np.testing.assert_allclose(zbuf[covered], 2.0, atol=1e-5)  # view depth of the plane


@pytest.mark.parametrize("kind", CAMERA_KINDS)
def test_render_with_points(kind: str, device: torch.device) -> None:
    mesh = ico_sphere(2)
    f = 1.2 if kind == "perspective" else 0.7
    spec = CameraSpec(kind=kind, scale=0.7, fx=f, fy=f, image_size=(96, 128))
    pts = default_sample_points(mesh.verts_packed().numpy(), 8)
    out = render_with_points(spec, mesh, pts, device=device)
    assert out.shape == (96, 128, 3) and out.dtype == np.uint8
    # The mesh's projected centroid is covered, the corner is background.
    centroid = mesh.verts_packed().mean(0, keepdim=True).numpy()
    sx, sy = project(spec, centroid)["screen"][0, :2]
    image, _, _ = render_mesh(spec, mesh, device)
    bg = np.array(BACKGROUND)
    assert np.abs(image[int(sy), int(sx)] - bg).max() > 0.05
    np.testing.assert_allclose(image[0, 0], bg, atol=1e-6)
    # Markers were drawn: red (visible) and orange (behind the sphere) pixels exist.
    red = (out[..., 0] == 220) & (out[..., 1] == 20) & (out[..., 2] == 60)
    orange = (out[..., 0] == 255) & (out[..., 1] == 140) & (out[..., 2] == 0)
    assert red.any() and orange.any()


def test_render_accepts_arrays_and_meshes() -> None:
    spec = CameraSpec(image_size=(32, 32))
    v, f = _quad(0.6)
    a = render_with_points(spec, (v, f), np.zeros((0, 3)))
    b = render_with_points(spec, Meshes([torch.tensor(v)], [torch.tensor(f)]), np.zeros((0, 3)))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="outside"):
        render_with_points(spec, (v, f + 10), np.zeros((0, 3)))


def test_draw_points_centres_on_floor_pixel() -> None:
    img = np.full((32, 32, 3), 255, np.uint8)
    out = draw_points(img, np.array([[10.7, 20.2]]), labels=False)
    assert tuple(out[20, 10]) == (220, 20, 60)
    assert tuple(out[0, 0]) == (255, 255, 255)


@pytest.mark.parametrize("kind", CAMERA_KINDS)
@pytest.mark.parametrize("size", [(72, 96), (96, 72)])
def test_fast_rasterizer_matches_pytorch3d(kind: str, size: tuple[int, int]) -> None:
    f = 1.3 if kind == "perspective" else 0.7
    spec = CameraSpec(kind=kind, scale=0.7, fx=f, fy=f * 0.9, px=0.05, py=-0.03, elev=15.0, azim=40.0, image_size=size)
    mesh = ico_sphere(2)
    ref_img, ref_p2f, ref_z = render_mesh(spec, mesh, rasterizer="pytorch3d")
    img, p2f, z = render_mesh(spec, mesh, rasterizer="fast")
    assert (p2f == ref_p2f).mean() > 0.995  # ties on shared edges may go either way
    same = (p2f == ref_p2f) & (p2f >= 0)
    np.testing.assert_allclose(z[same], ref_z[same], atol=1e-3)
    np.testing.assert_allclose(img[same], ref_img[same], atol=1e-3)
