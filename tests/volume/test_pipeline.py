"""Volume: the tiny preset reconstructs the procedural object (held-out PSNR, mesh near the object), bad input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.core.events import Done, Preview, Progress
from pipelines.train import multiview
from pipelines.volume import pipeline as volume

PSNR_BAR_TINY = 24.0  # dB on held-out views; the untrained grid scores about 16


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    cfg = dataclasses.replace(volume.Config.tiny(), out_dir=tmp_path_factory.mktemp("volume"), device="cpu")
    events = list(volume.run(cfg))
    return cfg, events


def test_tiny_preset_reconstructs_the_held_out_views(tiny_run):
    cfg, events = tiny_run
    done = events[-1]
    assert isinstance(done, Done)
    m = done.metrics
    assert m["psnr_heldout"] > PSNR_BAR_TINY, m
    assert m["psnr_heldout"] > m["psnr_heldout_initial"] + 6.0
    losses = [e.losses["loss"] for e in events if isinstance(e, Progress) and "loss" in e.losses]
    assert losses[-1] < 0.5 * losses[0]
    curve = [p for _, p in done.info["psnr_history"]]
    assert curve[-1] > curve[0] and len(curve) >= 2
    assert any(isinstance(e, Preview) and e.image is not None for e in events)
    assert done.info["trilinear_weights"]["bytes"] > 0, "whole-view steps train through the precomputed maps"


def test_marching_cubes_mesh_is_near_the_object(tiny_run):
    cfg, events = tiny_run
    done = events[-1]
    info = done.info["mesh"]
    assert info["faces"] > 100
    data = multiview.build(cfg, torch.device("cpu"))
    lo, hi = data.verts.min(0).values.numpy(), data.verts.max(0).values.numpy()
    slack = 2.5 * cfg.extent / cfg.grid_size + 0.05
    assert np.all(np.abs(np.array(info["bbox_min"]) - lo) < slack), (info, lo)
    assert np.all(np.abs(np.array(info["bbox_max"]) - hi) < slack), (info, hi)
    assert done.files["mesh_glb"].stat().st_size > 1000 and done.files["mesh_ply"].exists()
    _assert_outward(done.files["mesh_ply"])


def test_exports(tiny_run):
    cfg, events = tiny_run
    files = events[-1].files
    grid = np.load(files["density_grid"])
    g = cfg.grid_size
    assert grid["densities"].shape == (g, g, g) and grid["colors"].shape == (g, g, g, 3)
    first, last = grid["first_center"], grid["last_center"]
    assert np.allclose(last - first, (g - 1) * grid["voxel_size"], atol=1e-4)
    assert np.allclose(first, -last, atol=1e-4), "the grid is centred on the object"
    assert 0.0 <= grid["densities"].min() and grid["densities"].max() <= 1.0
    assert files["video"].suffix in (".mp4", ".gif") and files["video"].stat().st_size > 1000
    assert files["heldout"].exists()


def test_bounded_preset_matches_the_mask():
    model = volume.VoxelGrid(16, 2.4, -4.0, torch.device("cpu"), bound_radius=1.1)
    d = model.densities().detach()
    assert d.shape == (1, 16, 16, 16) and float(d[0, 0, 0, 0]) == 0.0 and float(d[0, 8, 8, 8]) > 0.0


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"grid_size": 4096}, "Grid size"),
        ({"image_size": 100_000}, "Image size"),
        ({"n_views": 1}, "at least 2 views"),
        ({"rays_per_image": 0, "image_size": 512, "n_pts_per_ray": 1000, "batch_cameras": 40}, "points"),
        ({"min_depth": 3.0, "max_depth": 1.0}, "min_depth"),
        ({"bound_radius": 0.5}, "bound_radius"),
    ],
)
def test_absurd_settings_fail_before_allocating(change, words, tmp_path):
    cfg = dataclasses.replace(volume.Config.tiny(), out_dir=tmp_path, device="cpu", **change)
    with pytest.raises(ValueError, match=words):
        next(volume.run(cfg))
    assert not any(tmp_path.iterdir()), "nothing written"


def _assert_outward(path) -> None:
    """Most faces of the exported mesh face away from its centre (normals out), and it is one closed surface."""
    import trimesh

    mesh = trimesh.load(path, process=False)
    to_face = mesh.triangles_center - mesh.vertices.mean(0)
    assert float((np.einsum("ij,ij->i", mesh.face_normals, to_face) > 0).mean()) > 0.8
    assert len(mesh.split(only_watertight=False)) <= 3


def test_endpoints_multiview_and_volume(client):
    """/multiview previews the data with cameras and rays; /volume streams a tiny run; bad input is a message."""
    from gradio_client.exceptions import AppError

    sheet, fig, info = client.predict("blob", [], "tiny", None, None, 15, 2.7, True, api_name="/multiview")
    assert Path(sheet).is_file() and info["views"] == 12 and info["held_out_views"] == [2, 6, 10]
    assert "rays" in json.dumps(fig)
    outputs = list(client.submit("blob", [], "tiny", None, None, 15, 2.7, None, 15, None, None, api_name="/volume"))
    status, preview, curves, metrics, files, video, data = outputs[-1]
    assert "done" in status and metrics["psnr_heldout"] > metrics["psnr_heldout_initial"]
    assert video and Path(video["video"] if isinstance(video, dict) else video).exists()
    assert len(files) >= 3 and data["views"] == 12
    with pytest.raises(AppError, match="at least 2 views|minimum value 2"):  # the box's own bound answers first
        client.predict("blob", [], "tiny", 1, None, 15, 2.7, None, 15, None, None, api_name="/volume")
    with pytest.raises(AppError, match="Grid size|maximum value"):
        client.predict("blob", [], "tiny", None, None, 15, 2.7, 100_000, 15, None, None, api_name="/volume")


def test_the_grid_renderer_matches_pytorch3ds_volume_renderer_and_its_gradients():
    """sampler.render_grid (one 4-channel grid, only the samples near the box, batch split) against VolumeRenderer."""
    from pytorch3d.renderer import (
        EmissionAbsorptionRaymarcher,
        FoVPerspectiveCameras,
        NDCMultinomialRaysampler,
        RayBundle,
        VolumeRenderer,
        look_at_view_transform,
    )
    from pytorch3d.structures import Volumes

    from pipelines.train.raymarching import GivenRays
    from pipelines.volume.sampler import render_grid

    gen = torch.Generator().manual_seed(0)
    g = 16
    dens = torch.rand(1, g, g, g, generator=gen).requires_grad_()
    cols = torch.rand(3, g, g, g, generator=gen).requires_grad_()
    R, T = look_at_view_transform(2.7, 10.0, 30.0)
    grid_rays = NDCMultinomialRaysampler(image_width=12, image_height=12, n_pts_per_ray=40, min_depth=0.1, max_depth=3)
    b = grid_rays(FoVPerspectiveCameras(R=R, T=T))
    rays = RayBundle(b.origins.reshape(1, -1, 3), b.directions.reshape(1, -1, 3), b.lengths.reshape(1, -1, 40), None)
    volumes = Volumes(densities=dens[None], features=cols[None], voxel_size=3.0 / g)
    ref = VolumeRenderer(GivenRays(), EmissionAbsorptionRaymarcher())(cameras=None, volumes=volumes, rays=rays)[0]
    ref_grads = torch.autograd.grad(ref.square().sum(), [dens, cols])
    grid = torch.cat([dens, cols])[None]
    ours = render_grid(grid, volumes, rays)
    grads = torch.autograd.grad(ours.square().sum(), [dens, cols])
    assert torch.allclose(ours, ref, atol=1e-5)
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a, b, atol=1e-4)
