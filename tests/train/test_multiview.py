"""The multi-view data builder: views and cameras, the held-out split, rays, bounded sampling, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pytorch3d.renderer import EmissionAbsorptionRaymarcher, RayBundle, VolumeRenderer
from pytorch3d.structures import Volumes

from pipelines.train import multiview as mv
from pipelines.train import raymarching as rm
from pipelines.train.generators import finish
from pipelines.train.multiview_data import DataConfig, MultiviewData, check_data_config, split_indices, view_azimuths
from pipelines.train.multiview_figures import cameras_figure, contact_sheet, summary
from pipelines.train.multiview_render import ray_grid, render_views, view_cameras

TINY = DataConfig(object="blob", n_views=12, image_size=32, holdout_every=4)


@pytest.fixture(scope="module")
def data() -> MultiviewData:
    return mv.build(TINY, torch.device("cpu"))


def test_split_holds_out_every_nth_view_and_never_nothing():
    train, test = split_indices(40, 8)
    assert test == [4, 12, 20, 28, 36] and len(train) == 35
    assert not set(train) & set(test)
    for n in range(2, 30):
        for every in range(2, 12):
            train, test = split_indices(n, every)
            assert test and train and sorted(train + test) == list(range(n))


def test_azimuths_cover_a_circle_without_repeating_a_view():
    az = view_azimuths(40, 180.0)
    assert len(az) == 40 and float(az[0]) == -180.0 and float(az[-1]) == pytest.approx(171.0)
    assert len(set(torch.remainder(az, 360).tolist())) == 40
    part = view_azimuths(5, 90.0)
    assert part.tolist() == [-90.0, -45.0, 0.0, 45.0, 90.0]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"n_views": 1}, "at least 2 views"),
        ({"n_views": 100_000}, "at most"),
        ({"image_size": 100_000}, "Image size"),
        ({"image_size": 2}, "Image size"),
        ({"holdout_every": 1}, "holdout_every"),
        ({"distance": 0.5}, "distance"),
        ({"object": "teapot"}, "Unknown object"),
    ],
)
def test_bad_data_settings_are_refused_with_a_sentence(change, words):
    import dataclasses

    with pytest.raises(ValueError, match=words):
        check_data_config(dataclasses.replace(TINY, **change))


def test_views_silhouettes_and_cameras(data):
    n, s = TINY.n_views, TINY.image_size
    assert data.images.shape == (n, s, s, 3) and data.silhouettes.shape == (n, s, s)
    assert set(torch.unique(data.silhouettes).tolist()) <= {0.0, 1.0}
    coverage = data.silhouettes.mean((1, 2))
    assert bool(((coverage > 0.1) & (coverage < 0.6)).all()), "the object fills part of every view"
    background = data.images[data.silhouettes == 0]
    assert float(background.abs().max()) == 0.0, "black background (the book's)"
    assert float(data.images[data.silhouettes == 1].mean()) > 0.2, "a lit, coloured object"
    centres = data.cameras().get_camera_center()
    assert torch.allclose(centres.norm(dim=1), torch.full((n,), TINY.distance), atol=1e-4)
    elevation = torch.rad2deg(torch.asin(centres[:, 1] / TINY.distance))
    assert torch.allclose(elevation, torch.full((n,), TINY.elevation), atol=1e-3)
    assert data.test_idx.tolist() == split_indices(n, TINY.holdout_every)[1]


def test_the_object_is_colourful(data):
    rgb = data.images[data.silhouettes == 1]  # (P, 3)
    hue_spread = (rgb.max(1).values - rgb.min(1).values).mean()
    assert float(hue_spread) > 0.15 and float(rgb.std(0).mean()) > 0.1


def test_the_default_object_is_the_books_cow():
    cow = mv.build(DataConfig(n_views=4, image_size=48, holdout_every=2), torch.device("cpu"))
    coverage = cow.silhouettes.mean((1, 2))
    assert bool(((coverage > 0.03) & (coverage < 0.6)).all())
    rgb = cow.images[cow.silhouettes == 1]  # (P, 3): cream hide, black patches, brown head
    assert float(rgb.mean(1).amax()) > 0.6 and float(rgb.mean(1).amin()) < 0.15


def _ray_hits_triangles(o: torch.Tensor, d: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """Slow reference (Moller-Trumbore): does each ray (M, 3) hit any triangle (F, 3, 3) in front of it? (M,)"""
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]  # (F, 3)
    p = torch.cross(d[:, None].expand(-1, len(tri), 3), e2[None].expand(len(d), -1, 3), dim=-1)
    det = (e1[None] * p).sum(-1)
    s = o[:, None] - tri[None, :, 0]
    u = (s * p).sum(-1) / det
    q = torch.cross(s, e1[None].expand_as(s), dim=-1)
    v = (d[:, None] * q).sum(-1) / det
    t = (e2[None] * q).sum(-1) / det
    return ((u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0) & (det.abs() > 1e-9)).any(1)


def test_ray_grid_matches_the_renders():
    """Each pixel's ray hits an off-centre tetrahedron exactly where PyTorch3D's render shows it (not mirrored)."""
    from pytorch3d.renderer import TexturesVertex
    from pytorch3d.structures import Meshes

    verts = torch.tensor([[0.2, 0.1, 0.0], [0.9, 0.2, 0.1], [0.3, 0.8, 0.0], [0.4, 0.3, 0.7]])
    faces = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    mesh = Meshes([verts], [faces], textures=TexturesVertex([torch.ones(4, 3)]))
    cams = view_cameras(torch.tensor([0.0, 70.0, 200.0]), 20.0, 2.7, torch.device("cpu"))
    _, sil = render_views(mesh, cams, 32)
    grid = ray_grid(cams, 32, 8, 0.1, 3.0)
    hits = _ray_hits_triangles(grid.origins.reshape(-1, 3), grid.directions.reshape(-1, 3), verts[faces])
    hits = hits.reshape(3, 32, 32)
    mask = sil > 0

    def iou(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a & b).sum() / (a | b).sum())

    assert float(sil.mean()) > 0.02
    assert iou(hits, mask) > 0.9 and iou(hits.flip(2), mask) < 0.5 and iou(hits.flip(1), mask) < 0.5
    assert grid.lengths.shape[-1] == 8 and float(grid.lengths[0, 0, 0, 0]) == pytest.approx(0.1)


def test_sphere_crossings_against_sampling():
    gen = torch.Generator().manual_seed(0)
    o = torch.randn(200, 3, generator=gen) * 3
    d = torch.randn(200, 3, generator=gen)
    near, far, hits = rm.sphere_crossings(o, d, 1.0)
    ts = torch.linspace(-20, 20, 40001)
    inside = (o[:, None] + d[:, None] * ts[None, :, None]).norm(dim=-1) <= 1.0  # (M, T)
    assert torch.equal(hits, inside.any(1)) or (hits != inside.any(1)).sum() <= 1  # grazing rays may differ
    for i in torch.nonzero(hits & inside.any(1))[:20, 0]:
        t_in = ts[inside[i]]
        assert float(near[i]) == pytest.approx(float(t_in.min()), abs=2e-3)
        assert float(far[i]) == pytest.approx(float(t_in.max()), abs=2e-3)


def test_bounded_samples_are_the_books_samples_inside_the_sphere(data):
    rays = rm.PixelRays(data, bound_radius=1.1)
    view = torch.zeros(rays.pixels_per_view, dtype=torch.long)
    pix = torch.arange(rays.pixels_per_view)
    bounded = rays.bundle(view, pix, 64, 1.6, 3.8).lengths[0]  # (M, K)
    book = torch.linspace(1.6, 3.8, 64)
    used = bounded < rm.SENTINEL_DEPTH
    assert bounded.shape[1] <= 64
    # Every used depth is one of the book's depths, and together they are exactly those inside the sphere.
    gap = (bounded[used][:, None] - book[None]).abs().min(1).values
    assert float(gap.max()) < 1e-4
    o, d = rays.origins[0], rays.directions[0]
    pts = o[:, None] + d[:, None] * book[None, :, None]
    inside_count = (pts.norm(dim=-1) <= 1.1).sum(1)
    assert torch.equal(used.sum(1), inside_count)


def test_bounded_render_equals_the_whole_ray_render_of_a_masked_volume(data):
    """The fast path against the slow reference: same picture, fewer samples."""
    g, extent, radius = 24, 2.4, 1.2
    gen = torch.Generator().manual_seed(1)
    dens = torch.rand(1, 1, g, g, g, generator=gen) * 0.3
    cols = torch.rand(1, 3, g, g, g, generator=gen)
    vols = Volumes(densities=dens, features=cols, voxel_size=extent / g)
    centres = vols.get_coord_grid(world_coordinates=True)[0]
    dens = dens * (centres.norm(dim=-1) <= radius - math.sqrt(3) * extent / g)[None, None].float()
    vols = Volumes(densities=dens, features=cols, voxel_size=extent / g)
    renderer = VolumeRenderer(raysampler=rm.GivenRays(), raymarcher=EmissionAbsorptionRaymarcher())

    def fn(bundle: RayBundle):
        out, _ = renderer(cameras=None, volumes=vols, rays=bundle)
        return out[..., :3], out[..., 3]

    cams = data.cameras([0, 3])
    ticker = rm.Ticker(1e9)
    full, full_a = finish(rm.render_cameras(fn, cams, 32, 48, 1.2, 4.2, 4096, ticker, lambda: None, 0.0))
    fast, fast_a = finish(rm.render_cameras(fn, cams, 32, 48, 1.2, 4.2, 4096, ticker, lambda: None, radius))
    assert float(full_a.max()) > 0.3
    assert torch.allclose(full, fast, atol=1e-5) and torch.allclose(full_a, fast_a, atol=1e-5)


def test_sampling_is_seeded_and_draws_only_rays_that_hit_the_bound(data):
    rays = rm.PixelRays(data, bound_radius=1.0)
    views = data.train_idx[:3]
    a = rays.sample(views, 100, torch.Generator().manual_seed(5))
    b = rays.sample(views, 100, torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert bool(rays.hits[a[0], a[1]].all())
    every = rays.sample(views, 0, torch.Generator())
    assert len(every[0]) == int(rays.hits[views].sum())


def test_monte_carlo_rays_at_pixel_centres_are_the_pixels_rays_and_colours(data):
    """The book's continuous ray positions: at a pixel centre the ray and its bilinear target are that pixel's;
    with a bound, rays that miss the sphere are left out but still counted in the mean."""
    s = data.image_size
    views = data.train_idx[:2]
    pix = torch.tensor([0, 5, s * 7 + 20, s * s - 1])
    row, col = pix // s, pix % s
    xy = torch.stack([1 - (2 * col + 1) / s, 1 - (2 * row + 1) / s], -1).float()  # NDC +X left, +Y up
    batch = rm.rays_at(data, views, xy[None].expand(2, -1, -1), (16, 1.6, 3.8, 0.0))
    rays = rm.PixelRays(data)
    view = views[:, None].expand(-1, len(pix)).reshape(-1)
    p = pix.repeat(2)
    assert torch.allclose(batch.bundle.origins[0], rays.origins[view, p], atol=1e-4)
    assert torch.allclose(batch.bundle.directions[0], rays.directions[view, p], atol=1e-4)
    assert torch.allclose(batch.colors, rays.colors[view, p], atol=1e-5)
    assert torch.allclose(batch.silhouettes, rays.silhouettes[view, p], atol=1e-5)
    drawn = rm.monte_carlo_rays(data, views, 300, torch.Generator().manual_seed(0), (16, 1.6, 3.8, 1.05))
    assert drawn.drawn == 600 and 0 < len(drawn.view) < 600
    assert float(drawn.silhouettes.sum()) > 0 and bool((drawn.pix == -1).all())


def test_pictures(data):
    sheet = contact_sheet(data)
    assert sheet.dtype == np.uint8 and sheet.ndim == 3 and sheet.shape[2] == 3
    fig = cameras_figure(data, rays=True, n_pts_per_ray=40, min_depth=1.6, max_depth=3.8)
    names = [t.name for t in fig.data]
    assert names[0] == "object" and "training cameras" in names and "held-out cameras" in names
    assert "rays" in names and any(n.startswith("samples") for n in names)
    assert summary(data)["held_out_views"] == data.test_idx.tolist()


def test_loss_and_metric():
    x = torch.tensor([0.0, 0.01, 1.0])
    h = rm.pseudo_huber(x, torch.zeros(3))
    assert float(h[0]) == 0.0
    assert float(h[1]) == pytest.approx(0.01**2 / (2 * 0.1), rel=1e-2)  # quadratic near 0
    assert float(h[2]) == pytest.approx(1.0 - 0.1, rel=2e-2)  # linear far away
    a = torch.zeros(4, 4, 3)
    assert rm.psnr(a + 0.1, a) == pytest.approx(20.0, abs=1e-4)


def test_upload_without_faces_is_refused(tmp_path):
    import dataclasses

    ply = tmp_path / "points.ply"
    pts = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    header = f"ply\nformat ascii 1.0\nelement vertex {len(pts)}\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
    ply.write_text(header + "\n".join(" ".join(f"{v:.4f}" for v in p) for p in pts) + "\n")
    with pytest.raises(ValueError, match="no faces"):
        mv.build(dataclasses.replace(TINY, files=(str(ply),)), torch.device("cpu"), tmp_path / "stage")


def test_an_uploaded_mesh_is_normalised_and_rendered(tmp_path):
    import dataclasses

    obj = tmp_path / "tetra.obj"
    obj.write_text("v 0 0 0\nv 4 0 0\nv 0 4 0\nv 0 0 4\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n")
    data = mv.build(dataclasses.replace(TINY, n_views=4, files=(str(obj),)), torch.device("cpu"), tmp_path / "s")
    assert float(data.verts.norm(dim=1).max()) == pytest.approx(1.0, abs=1e-4)
    assert float(data.silhouettes.mean()) > 0.02


def test_an_uploaded_textured_obj_keeps_its_texture(tmp_path):
    """OBJ corners carry their own UV indices (`face_uvs`): the views must show the texture, not a flat colour."""
    import dataclasses
    from pathlib import Path

    assets = Path(__file__).resolve().parents[2] / "assets"
    files = tuple(str(assets / f"textured_cube.{ext}") for ext in ("obj", "mtl", "png"))
    data = mv.build(dataclasses.replace(TINY, n_views=4, files=files), torch.device("cpu"), tmp_path / "s")
    covered = data.images[data.silhouettes > 0.5]  # (P, 3) colours of the object's pixels
    assert len(covered) > 100
    # Without its texture the cube renders in a neutral grey (saturation about 0.02); the texture is colourful.
    saturation = (covered.max(dim=1).values - covered.min(dim=1).values).mean()
    assert float(saturation) > 0.15
