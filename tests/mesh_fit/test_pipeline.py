"""Mesh fitting: point-set metrics against slow references, the fit itself, the book's experiments, bad input."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from pipelines.core.events import Done, Preview
from pipelines.mesh_fit import pipeline as mesh_fit
from pipelines.mesh_fit.targets import check_points, load_target
from pipelines.train import metrics


def run_to_done(cfg) -> tuple[Done, list]:
    events = list(mesh_fit.run(cfg))
    assert isinstance(events[-1], Done)
    return events[-1], events


# ---------------------------------------------------------------------------------------------------------------
# metrics.py
# ---------------------------------------------------------------------------------------------------------------


def _brute_nearest(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a.double(), b.double()).min(dim=1).values  # (Pa,) unsquared


def test_chamfer_matches_brute_force(device):
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(300, 3, generator=g), torch.rand(200, 3, generator=g) * 1.5
    expected = (_brute_nearest(a, b) ** 2).mean() + (_brute_nearest(b, a) ** 2).mean()
    got = metrics.chamfer_distance(a.to(device), b.to(device))
    assert got.shape == (1,)
    assert float(got) == pytest.approx(float(expected), rel=1e-4)
    from pytorch3d.loss import chamfer_distance

    assert float(got) == pytest.approx(float(chamfer_distance(a[None], b[None])[0]), rel=1e-4)


def test_chamfer_gradient_matches_pytorch3d():
    from pytorch3d.loss import chamfer_distance

    g = torch.Generator().manual_seed(3)
    grads = []
    for fn in (lambda a, b: metrics.chamfer_distance(a, b)[0], lambda a, b: chamfer_distance(a[None], b[None])[0]):
        a = torch.rand(500, 3, generator=g).requires_grad_(True)
        b = (torch.rand(300, 3, generator=g) * 1.2).requires_grad_(True)
        fn(a, b).backward()
        grads.append((a.grad, b.grad))
        g.manual_seed(3)
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-6) and torch.allclose(grads[0][1], grads[1][1], atol=1e-6)


def test_f1_and_normal_consistency_against_references():
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(400, 3, generator=g), torch.rand(350, 3, generator=g)
    tau = 0.08
    precision = float((_brute_nearest(a, b) <= tau).double().mean())
    recall = float((_brute_nearest(b, a) <= tau).double().mean())
    f1, p, r = metrics.f1_score(a, b, tau)
    assert float(p) == pytest.approx(precision) and float(r) == pytest.approx(recall)
    assert float(f1) == pytest.approx(2 * precision * recall / (precision + recall))
    # identical sets: perfect scores; normals flipped still count as consistent (|cos|)
    normals = torch.nn.functional.normalize(torch.randn(400, 3, generator=g), dim=1)
    report = metrics.compare_point_sets(a, a, normals, -normals, taus=(0.01,))
    assert report["chamfer"] == pytest.approx(0.0, abs=1e-10)
    assert report["normal_consistency"] == pytest.approx(1.0)
    assert report["f1@0.01"] == pytest.approx(1.0)


def test_padded_batches_ignore_padding():
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(2, 50, 3, generator=g), torch.rand(2, 40, 3, generator=g)
    la, lb = torch.tensor([50, 30]), torch.tensor([40, 25])
    batched = metrics.chamfer_distance(a, b, la, lb)
    single = metrics.chamfer_distance(a[1, :30], b[1, :25])
    assert float(batched[1]) == pytest.approx(float(single[0]), rel=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# The fit
# ---------------------------------------------------------------------------------------------------------------


def test_sphere_to_shape_cuts_chamfer_tenfold(tmp_path):
    cfg = dataclasses.replace(mesh_fit.Config.tiny(), target="figure", out_dir=tmp_path, device="cpu", seed=0)
    done, events = run_to_done(cfg)
    m = done.metrics
    assert m["chamfer"] < 0.1 * m["start_chamfer"], m
    assert m["f1@0.05"] > 0.3 and 0.0 < m["normal_consistency"] <= 1.0
    assert any(isinstance(e, Preview) and e.image is not None for e in events)
    assert {"obj", "glb", "picture"} <= set(done.files)


def test_the_default_target_is_the_books_sparse_pedestrian_scan(tmp_path):
    target = load_target(mesh_fit.Config(out_dir=tmp_path), torch.Generator().manual_seed(0))
    assert target.points.shape == (239, 3) and "pedestrian" in target.source
    assert float(target.points.norm(dim=1).amax()) == pytest.approx(1.0, abs=1e-5)
    again = load_target(mesh_fit.Config(out_dir=tmp_path, seed=5), torch.Generator().manual_seed(5))
    assert torch.equal(target.points, again.points)  # one scan, whatever the seed


def test_only_the_final_preview_carries_a_mesh(tmp_path):
    cfg = dataclasses.replace(mesh_fit.Config.tiny(), out_dir=tmp_path, device="cpu", steps=3, preview_every_s=0.0)
    done, events = run_to_done(cfg)
    previews = [e for e in events if isinstance(e, Preview)]
    assert len(previews) > 1 and all(e.mesh is None for e in previews[:-1])
    assert previews[-1].mesh == done.files["glb"] and not (tmp_path / "live").exists()
    assert "mesh_every_s" not in {f.name for f in dataclasses.fields(mesh_fit.Config)}


def test_book_experiments_regularisers_even_out_edges(tmp_path):
    cfg = dataclasses.replace(mesh_fit.Config.tiny(), out_dir=tmp_path, device="cpu", experiment="book")
    done, events = run_to_done(cfg)
    m = done.metrics
    for name in ("none", "edge", "all"):
        assert m[f"{name}_chamfer"] < m[f"{name}_start_chamfer"]
        assert (tmp_path / f"fitted_{name}.obj").exists()
    assert m["all_edge_length_cv"] < m["none_edge_length_cv"], m
    assert [row["experiment"] for row in done.info["table"]] == ["none", "edge", "all"]
    assert done.info["picture"].shape[1] == 4 * done.info["picture"].shape[0]  # target + three fits


def test_upload_is_normalised_and_mapped_back(tmp_path):
    """A big, shifted point cloud: subsampled, fitted in the unit sphere, exported in the file's own frame."""
    import trimesh

    g = np.random.default_rng(0)
    pts = g.normal(size=(30_000, 3))
    pts = pts / np.linalg.norm(pts, axis=1, keepdims=True) * np.array([2.0, 1.0, 1.0]) * 5.0 + np.array([10.0, 0, 0])
    path = tmp_path / "scan.ply"
    trimesh.PointCloud(pts.astype(np.float32)).export(path)
    cfg = dataclasses.replace(
        mesh_fit.Config.tiny(),
        out_dir=tmp_path / "out",
        device="cpu",
        target_files=(str(path),),
        noise_std=0.01,
        outlier_fraction=0.02,
    )
    done, _ = run_to_done(cfg)
    assert any("drawn at random" in w for w in done.info["warnings"])
    fitted = trimesh.load(done.files["obj"], process=False)
    centre = (fitted.vertices.max(0) + fitted.vertices.min(0)) / 2
    assert np.allclose(centre, [10.0, 0, 0], atol=1.0)
    assert fitted.vertices[:, 0].max() - fitted.vertices[:, 0].min() > 12.0  # about 20 wide, not 2


@pytest.mark.parametrize("laplacian", ["cot", "cotcurv"])
def test_cotangent_laplacians_run(tmp_path, laplacian):
    cfg = dataclasses.replace(
        mesh_fit.Config.tiny(), out_dir=tmp_path, device="cpu", steps=5, laplacian=laplacian, exports=("ply",)
    )
    done, _ = run_to_done(cfg)
    assert np.isfinite(done.metrics["chamfer"])


# ---------------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (np.zeros((0, 3)), "empty: it has no points"),
        (np.zeros((1, 3)), "only 1 point;"),
        (np.array([[0.0, 0.0, np.nan]] + [[1.0, 2.0, 3.0]] * 20), "NaN or infinite"),
        (np.ones((50, 3)), "lie at one spot"),
    ],
)
def test_bad_point_clouds_have_clear_messages(points, message):
    with pytest.raises(ValueError, match=message):
        check_points(points, "The target point cloud")


def _write_text(path, text: str):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "one.ply",
            "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\nend_header\n0 0 0\n",
            "only 1 point",
        ),
        (
            "nan.ply",
            "ply\nformat ascii 1.0\nelement vertex 12\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
            + "nan 0 0\n"
            + "1 2 3\n" * 11,
            "NaN",
        ),
        ("nofaces.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n", "only 4 points"),
        ("flat.obj", "".join(f"v {i} 0 0\n" for i in range(12)) + "f 1 2 3\nf 4 5 6\n", "no surface area"),
    ],
)
def test_bad_uploads_have_clear_messages(tmp_path, name, text, message):
    path = _write_text(tmp_path / name, text)
    cfg = dataclasses.replace(mesh_fit.Config.tiny(), out_dir=tmp_path / "out", device="cpu", target_files=(path,))
    with pytest.raises(ValueError, match=message):
        list(mesh_fit.run(cfg))


def test_a_mesh_without_faces_is_fitted_as_a_point_cloud_with_a_warning(tmp_path):
    g = np.random.default_rng(1)
    pts = g.normal(size=(500, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    path = _write_text(tmp_path / "cloud.obj", "".join(f"v {x:.5f} {y:.5f} {z:.5f}\n" for x, y, z in pts))
    cfg = dataclasses.replace(
        mesh_fit.Config.tiny(), out_dir=tmp_path / "out", device="cpu", target_files=(path,), steps=5
    )
    done, _ = run_to_done(cfg)
    assert any("no faces" in w for w in done.info["warnings"])


def test_bad_settings_are_refused(tmp_path):
    for change, message in (
        ({"laplacian": "fancy"}, "Unknown Laplacian"),
        ({"experiment": "x"}, "Unknown experiment"),
        ({"lr": 0.0}, "learning rate"),
    ):
        cfg = dataclasses.replace(mesh_fit.Config.tiny(), out_dir=tmp_path, **change)
        with pytest.raises(ValueError, match=message):
            list(mesh_fit.run(cfg))


def test_empty_point_cloud_upload(tmp_path):
    header = (
        "ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
    )
    path = _write_text(tmp_path / "zero.ply", header)
    cfg = dataclasses.replace(mesh_fit.Config.tiny(), out_dir=tmp_path / "out", device="cpu", target_files=(path,))
    with pytest.raises(ValueError, match="no vertices"):
        list(mesh_fit.run(cfg))


# ---------------------------------------------------------------------------------------------------------------
# Through the app: the endpoints the tab wires
# ---------------------------------------------------------------------------------------------------------------


def _tab_inputs(files, steps: int) -> tuple:
    # files, target, noise, outliers, preset, ico level, steps, lr, momentum, w_chamfer, w_edge, w_normal, w_lap, lap
    return (files, "figure", 0.01, 0.02, "tiny", 2, steps, 1.0, 0.9, 1.0, 1.0, 0.01, 0.1, "uniform")


def test_mesh_fit_endpoints(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    # outputs: status, preview, curves, metrics, files, side-by-side picture, chamfer plot, table, notes
    status, preview, curves, result, files, picture, plot, table, notes = client.predict(
        *_tab_inputs(None, 30), api_name="/mesh_fit"
    )
    assert 'data-state="done"' in status and result["chamfer"] < 0.3 * result["start_chamfer"], result  # noisy target
    assert {"chamfer", "edge", "normal", "laplacian"} <= {t["name"] for t in json.loads(curves["plot"])["data"]}
    assert any(str(f).endswith(".obj") for f in files) and any(str(f).endswith(".glb") for f in files)
    assert "figure" in notes
    out = client.predict(*_tab_inputs(None, 4), api_name="/mesh_fit_experiments")
    assert [row[0] for row in out[7]["data"]] == ["none", "edge", "all"]
    bad = _write_text(
        tmp_path / "one.ply",
        "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\nend_header\n0 0 0\n",
    )
    with pytest.raises(AppError, match="only 1 point") as err:
        client.predict(*_tab_inputs([handle_file(bad)], 4), api_name="/mesh_fit")
    assert "Traceback" not in str(err.value)
