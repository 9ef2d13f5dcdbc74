"""The Shading lab's optimisation exercises reach small errors from seeded starts; the batch report is consistent."""

from __future__ import annotations

import dataclasses

import pytest

from pipelines.core.events import Done, Preview, Progress
from pipelines.render.mesh_convert import batch_report
from pipelines.render.procedural import procedural_mesh
from pipelines.shading import fit as shading_fit
from pipelines.shading import points as shading_points


def run_to_done(module, cfg):
    events = list(module.run(cfg))
    done = events[-1]
    assert isinstance(done, Done)
    return events, done


def test_point_sets_default_to_the_books_exercise():
    cfg = shading_points.Config()
    assert (cfg.n_points, cfg.steps, cfg.lr, cfg.momentum) == (5000, 200, 0.1, 0.9)
    assert cfg.true_translation == (3.0, 4.0, 5.0) and cfg.noise**2 == pytest.approx(0.1)
    assert cfg.meshes == ("cube", "diamond", "dodecahedron")


def test_point_sets_recover_the_translation_with_fresh_samples(device, tmp_path):
    # the book's batch, motion and optimiser with fewer points (fresh samples every step) and no noise: fast and exact
    cfg = dataclasses.replace(shading_points.Config(), n_points=300, steps=120, noise=0.0, device=device.type)
    events, done = run_to_done(shading_points, dataclasses.replace(cfg, out_dir=tmp_path))
    assert done.metrics["final_translation_error"] < 0.05, done.metrics
    assert done.metrics["final_loss"] < 1e-2 * done.metrics["initial_loss"]
    assert sum(isinstance(e, Progress) for e in events) == 120
    assert any(isinstance(e, Preview) and e.figure is not None for e in events)


def test_point_sets_recover_a_rotation_too(tmp_path):
    # the batch's shapes are symmetric, so the rotation is only known up to their common symmetries: check the fit
    cfg = dataclasses.replace(
        shading_points.Config(), n_points=300, steps=120, noise=0.0, fit_rotation=True, device="cpu", out_dir=tmp_path
    )
    _, done = run_to_done(shading_points, cfg)
    assert done.metrics["final_translation_error"] < 0.1
    assert done.metrics["final_loss"] < 1e-2 * done.metrics["initial_loss"]


def test_point_sets_are_seeded(tmp_path):
    cfg = dataclasses.replace(shading_points.Config.tiny(), device="cpu", out_dir=tmp_path, noise=0.01)
    a = run_to_done(shading_points, cfg)[1].metrics
    b = run_to_done(shading_points, cfg)[1].metrics
    assert a == b


def test_light_fit_reaches_a_small_error(device, tmp_path):
    cfg = dataclasses.replace(
        shading_fit.Config(),
        image_size=32,
        steps=60,
        lr=0.08,
        meshes=("ico-sphere", "cube"),
        device=device.type,
        out_dir=tmp_path,
    )
    events, done = run_to_done(shading_fit, cfg)
    assert done.metrics["initial_param_error"] == pytest.approx(1.5, rel=1e-5)
    assert done.metrics["final_param_error"] < 0.2
    assert all(p.image.dtype.name == "uint8" for p in events if isinstance(p, Preview))
    batch = done.info["batch"]
    assert batch["padded"]["verts_padded"] == [2, 642, 3] and batch["packed"]["verts_packed"] == [650, 3]


@pytest.mark.parametrize("target", ["translation", "scale"])
def test_geometry_fit_with_the_soft_rasteriser(target, tmp_path):
    cfg = dataclasses.replace(
        shading_fit.Config.tiny(),
        target=target,
        image_size=32,
        faces_per_pixel=3,
        steps=25,
        meshes=("ico-sphere", "cube"),
        out_dir=tmp_path,
        device="cpu",
    )
    _, done = run_to_done(shading_fit, cfg)
    assert done.metrics["final_param_error"] < 0.3 * done.metrics["initial_param_error"]


def test_batch_report_lists_padded_and_packed_shapes():
    from pytorch3d.structures import join_meshes_as_batch

    meshes = join_meshes_as_batch([procedural_mesh(n) for n in ("cube", "ico-sphere", "torus")])
    report = batch_report(meshes)
    nv = [8, 642, 1152]
    assert report["list"]["verts"] == [[n, 3] for n in nv]
    assert report["padded"]["verts_padded"] == [3, max(nv), 3]
    assert report["padded"]["padding_rows_per_mesh"] == [max(nv) - n for n in nv]
    assert report["packed"]["verts_packed"] == [sum(nv), 3]
    assert report["packed"]["mesh_to_verts_packed_first_idx"] == [0, 8, 650]
