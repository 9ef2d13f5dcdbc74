"""NeRF: the tiny preset learns the procedural object, checkpoints round-trip, fields behave, bad input fails."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.core.events import Done, Progress
from pipelines.nerf import fields
from pipelines.nerf import pipeline as nerf
from pipelines.train import multiview, raymarching
from pipelines.train.generators import finish

PSNR_BAR_TINY = 24.0  # dB on held-out views; the untrained field scores about 18


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    cfg = dataclasses.replace(nerf.Config.tiny(), out_dir=tmp_path_factory.mktemp("nerf"), device="cpu")
    events = list(nerf.run(cfg))
    return cfg, events


def test_tiny_preset_reaches_the_psnr_bar(tiny_run):
    cfg, events = tiny_run
    done = events[-1]
    assert isinstance(done, Done)
    m = done.metrics
    assert m["psnr_heldout"] > PSNR_BAR_TINY, m
    assert m["psnr_heldout"] > m["psnr_heldout_initial"] + 5.0
    losses = [e.losses["loss"] for e in events if isinstance(e, Progress) and "loss" in e.losses]
    assert losses[-1] < 0.3 * losses[0]
    steps = [s for s, _ in done.info["psnr_history"]]
    assert steps[0] == 0 and steps[-1] == cfg.steps


def test_marching_cubes_mesh_is_near_the_object(tiny_run):
    cfg, events = tiny_run
    info = events[-1].info["mesh"]
    assert info["faces"] > 100
    data = multiview.build(cfg, torch.device("cpu"))
    lo, hi = data.verts.min(0).values.numpy(), data.verts.max(0).values.numpy()
    assert np.all(np.abs(np.array(info["bbox_min"]) - lo) < 0.2), (info, lo)
    assert np.all(np.abs(np.array(info["bbox_max"]) - hi) < 0.2), (info, hi)
    _assert_outward(events[-1].files["mesh_ply"])


def test_checkpoint_round_trip_renders_the_same_image(tiny_run):
    """The saved field, loaded with weights_only, renders exactly the held-out picture the run wrote."""
    cfg, events = tiny_run
    files = events[-1].files
    field, meta = nerf.load_checkpoint(files["checkpoint"])
    assert meta["field"] == cfg.field and meta["render"]["n_pts_per_ray"] == cfg.n_pts_per_ray
    data = multiview.build(cfg, torch.device("cpu"))
    r = meta["render"]

    def render(size: int) -> torch.Tensor:
        images, _ = finish(
            raymarching.render_cameras(
                nerf.render_fn_for(field, r["bound_radius"]),
                data.cameras(data.test_idx[:1]),
                size,
                r["n_pts_per_ray"],
                r["min_depth"],
                r["max_depth"],
                4096,
                raymarching.Ticker(1e9),
                lambda: None,
                r["bound_radius"],
            )  # fmt: skip
        )
        return images

    # The picture shows the render at 256 px (the smallest multiple of the training size) and the error of the
    # training-size render, which the PSNR scores.
    scale = -(-256 // r["image_size"])
    images, large = render(r["image_size"]), render(r["image_size"] * scale)
    expected = raymarching.large_row(data.images[data.test_idx[0]], images[0], large[0])
    written = np.asarray(Image.open(files["heldout"]))[: expected.shape[0]]
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1
    # And through the public re-render function, at the same camera.
    az = float(data.azimuth[data.test_idx[0]])
    view = nerf.render_checkpoint(files["checkpoint"], azimuth=az)
    assert view.shape == (cfg.image_size, cfg.image_size, 3) and view.dtype == np.uint8
    from pipelines.core.events import to_uint8

    assert np.abs(view.astype(int) - to_uint8(images[0]).astype(int)).max() <= 1


def test_corrupt_checkpoints_give_a_clear_error(tiny_run, tmp_path):
    _, events = tiny_run
    good = events[-1].files["checkpoint"].read_bytes()
    cases = {
        "garbage.pt": b"not a checkpoint at all",
        "truncated.pt": good[: len(good) // 2],
        "empty.pt": b"",
    }
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    torch.save({"format": nerf.CHECKPOINT_FORMAT, "version": 1, "field": "grid", "field_args": {"resolutions": [4096]},
                "state_dict": {}, "render": {}}, tmp_path / "huge.pt")  # fmt: skip
    payload = torch.load(events[-1].files["checkpoint"], weights_only=True)
    payload["state_dict"] = {k: v[..., :1] for k, v in payload["state_dict"].items()}
    torch.save(payload, tmp_path / "wrong_shapes.pt")
    # Well-formed weights with render settings that would allocate absurdly, divide by zero or sample nothing.
    good_payload = torch.load(events[-1].files["checkpoint"], weights_only=True)
    for name, change in {
        "many_samples.pt": {"render": {**good_payload["render"], "n_pts_per_ray": 10**7}},
        "inverted_depths.pt": {"render": {**good_payload["render"], "min_depth": 3.0, "max_depth": 1.0}},
        "zero_fov.pt": {"render": {**good_payload["render"], "fov": 0.0}},
        "zero_bound.pt": {"field_args": {**good_payload["field_args"], "bound": 0.0}},
    }.items():
        torch.save({**good_payload, **change}, tmp_path / name)
    # A pickled object that is not plain data: weights_only refuses to build it.
    torch.save(
        {"format": nerf.CHECKPOINT_FORMAT, "object": __import__("pathlib").PurePosixPath("/etc")}, tmp_path / "code.pt"
    )
    for path in sorted(tmp_path.iterdir()):
        with pytest.raises(ValueError) as err:
            nerf.load_checkpoint(path)
        assert path.name in str(err.value) and "Traceback" not in str(err.value)
    with pytest.raises(ValueError, match="does not exist"):
        nerf.load_checkpoint(tmp_path / "missing.pt")


def test_book_mlp_field_shapes_and_size():
    field = fields.HarmonicMLPField()  # the book's: 60 harmonics, 2 x 256, density bias -1.5
    assert sum(p.numel() for p in field.parameters()) == fields.count_params("mlp", {})
    pts = torch.randn(2, 5, 7, 3)
    dirs = torch.randn(2, 5, 3)
    with torch.no_grad():
        sigma, rgb = field(pts, dirs)
    assert sigma.shape == (2, 5, 7, 1) and rgb.shape == (2, 5, 7, 3)
    assert float(sigma.max()) < 1e-3, "starts nearly empty"
    assert float(rgb.min()) >= 0 and float(rgb.max()) <= 1
    again = fields.HarmonicMLPField(seed=0)
    assert all(torch.equal(a, b) for a, b in zip(field.state_dict().values(), again.state_dict().values()))


def test_book_mlp_colour_head_split_per_ray_equals_the_concatenated_input():
    """The colour layer's direction term is computed once per ray (forward and forward_packed): the same numbers
    as the tutorial's Linear on cat([features, embedded direction]) for every sample."""
    field = fields.HarmonicMLPField(n_harmonics=8, omega0=1.0, hidden=16)
    pts, dirs = torch.randn(3, 5, 3), torch.randn(3, 3)
    with torch.no_grad():
        sigma, rgb = field(pts, dirs)
        features = field.mlp(field.embedding(pts))
        embedded = field.embedding(torch.nn.functional.normalize(dirs, dim=-1))[:, None].expand(-1, 5, -1)
        reference = field.color_layer(torch.cat([features, embedded], -1))
        packed_sigma, packed_rgb = field.forward_packed(pts.reshape(-1, 3), dirs, torch.arange(3).repeat_interleave(5))
    assert torch.allclose(rgb, reference, atol=1e-6)
    assert torch.allclose(packed_rgb, rgb.reshape(-1, 3), atol=1e-6)
    assert torch.allclose(packed_sigma, sigma.reshape(-1, 1), atol=1e-6)


def test_grid_field_is_empty_outside_its_bound():
    field = fields.GridField(resolutions=(8, 16), bound=1.0)
    assert sum(p.numel() for p in field.parameters()) == fields.count_params("grid", {"resolutions": (8, 16)})
    pts = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 1.5], [2.0, 0.0, 0.0]]])
    with torch.no_grad():
        sigma, rgb = field(pts, torch.zeros(1, 3))
    assert float(sigma[0, 0, 0]) > 0 and float(sigma[0, 1:].abs().max()) == 0.0
    assert rgb.shape == (1, 3, 3)


def test_book_mlp_trains_a_few_steps(tmp_path):
    cfg = dataclasses.replace(
        nerf.Config.tiny(), field="mlp", n_harmonics=6, omega0=1.0, hidden=32, density_bias=-1.5, lr=5e-3,
        steps=4, eval_every=4, orbit_frames=0, mesh_resolution=16, out_dir=tmp_path, device="cpu",
        monte_carlo_rays=True,
    )  # fmt: skip
    done = list(nerf.run(cfg))[-1]
    assert isinstance(done, Done) and np.isfinite(done.metrics["loss"])
    assert nerf.load_checkpoint(done.files["checkpoint"])[1]["field"] == "mlp"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"field": "mlp", "hidden": 100_000}, "hidden"),
        ({"grid_resolutions": (2048,)}, "resolutions"),
        ({"image_size": 100_000}, "Image size"),
        ({"n_views": 1}, "at least 2 views"),
        ({"rays_per_image": 1_000_000, "n_pts_per_ray": 512}, "points"),
        ({"field": "voxels"}, "Unknown field"),
        ({"mesh_resolution": 10_000}, "Mesh resolution"),
    ],
)
def test_absurd_settings_fail_before_allocating(change, words, tmp_path):
    cfg = dataclasses.replace(nerf.Config.tiny(), out_dir=tmp_path, device="cpu", **change)
    with pytest.raises(ValueError, match=words):
        next(nerf.run(cfg))
    assert not any(tmp_path.iterdir())


def _assert_outward(path) -> None:
    """Most faces of the exported mesh face away from its centre (normals out), and it is one closed surface."""
    import trimesh

    mesh = trimesh.load(path, process=False)
    to_face = mesh.triangles_center - mesh.vertices.mean(0)
    assert float((np.einsum("ij,ij->i", mesh.face_normals, to_face) > 0).mean()) > 0.8
    assert len(mesh.split(only_watertight=False)) <= 3


def test_endpoints_nerf_and_nerf_render(client, tmp_path):
    """/nerf trains a tiny field and returns its checkpoint; /nerf_render re-renders it; a corrupt file is refused."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    outputs = list(client.submit("blob", [], "tiny", None, None, 15, 2.7, "", 15, None, None, api_name="/nerf"))
    status, _, _, metrics, files, _, ckpt, data = outputs[-1]
    assert "done" in status and np.isfinite(metrics["psnr_heldout"]) and data["views"] == 12
    ckpt_path = ckpt["path"] if isinstance(ckpt, dict) else ckpt
    assert str(ckpt_path).endswith(".pt")
    image = client.predict(handle_file(ckpt_path), 45, 20, 2.7, 48, api_name="/nerf_render")
    assert np.asarray(Image.open(image)).shape[:2] == (48, 48)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(AppError, match="not a readable NeRF checkpoint"):
        client.predict(handle_file(str(bad)), 45, 20, 2.7, 48, api_name="/nerf_render")


def test_switching_field_takes_that_fields_settings():
    quick_mlp = nerf.with_field(nerf.Config.quick(), "mlp")
    book = nerf.Config()
    assert quick_mlp.field == "mlp" and (quick_mlp.lr, quick_mlp.bound_radius) == (book.lr, book.bound_radius)
    assert (quick_mlp.steps, quick_mlp.image_size) == (nerf.Config.quick().steps, nerf.Config.quick().image_size)
    back = nerf.with_field(quick_mlp, "grid")
    assert back == nerf.Config.quick()
    nerf.check_config(quick_mlp)
