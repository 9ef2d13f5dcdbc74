"""Cameras: hand-computed projections, unit conversions, validation, sample points and the frustum figure."""

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
from pytorch3d.utils import ico_sphere

from pipelines.render.camera_spec import CAMERA_KINDS, CameraSpec, build_camera, camera_center, view_rt
from pipelines.render.frustum import frustum_corners, frustum_figure
from pipelines.render.projection import default_sample_points, point_table, project
from tests.render.camera_cases import SIZES, cloud

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
    pts = cloud(0)
    a, b = project(pix, pts), project(ndc, pts)
    np.testing.assert_allclose(a["ndc"][:, :2], b["ndc"][:, :2], atol=1e-5)
    np.testing.assert_allclose(a["screen"][:, :2], b["screen"][:, :2], atol=1e-3)
    # And by hand in pixels: u = px - fx * x_view / z_view (view +X is left, screen +X right).
    v = a["view"]
    np.testing.assert_allclose(a["screen"][:, 0], px - fx * v[:, 0] / v[:, 2], atol=1e-3)
    np.testing.assert_allclose(a["screen"][:, 1], py - fy * v[:, 1] / v[:, 2], atol=1e-3)


def test_orthographic_ndc_is_affine() -> None:
    spec = CameraSpec(kind="orthographic", fx=0.8, fy=1.3, px=0.1, py=-0.2, elev=10.0, azim=-35.0, image_size=(90, 160))
    pts = cloud(1)
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
    verts = np.concatenate([cube, 0.1 * cloud(0, 50)])  # corners plus interior clutter
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
