"""The camera inspector's render: pixel convention, points drawn over the mesh, and the numpy rasteriser against
PyTorch3D's."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pytorch3d.structures import Meshes
from pytorch3d.utils import ico_sphere

from pipelines.render.camera_render import BACKGROUND, draw_points, render_mesh, render_with_points
from pipelines.render.camera_spec import CAMERA_KINDS, CameraSpec
from pipelines.render.projection import default_sample_points, project
from tests.render.camera_cases import quad


def test_render_pixel_convention_matches_screen_points() -> None:
    # A square facing the camera projects to an axis-aligned rectangle [x0, x1] x [y0, y1] in screen
    # pixels; the rasteriser covers exactly the pixels whose centres (j + 0.5, i + 0.5) lie inside.
    spec = CameraSpec(dist=2.0, elev=0.0, azim=0.0, fov=60.0, image_size=(48, 64))
    verts, faces = quad(0.5)
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
    v, f = quad(0.6)
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
