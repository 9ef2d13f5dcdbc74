"""The GIRAFFE network against the official layout (key names and shapes written out from the official modules'
formulas), the renderer's output shapes, the compositing maths on a hand-computed case, and the geometry of a
translation edit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pytorch3d.renderer import FoVPerspectiveCameras

from pipelines.giraffe import camera, checkpoints, controls, evaluation, specs
from pipelines.giraffe.generator import Generator, composite, sample_params, volume_weights
from pipelines.giraffe.networks2d import DCDiscriminator


def _linear(prefix: str, n_out: int, n_in: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (n_out, n_in), f"{prefix}.bias": (n_out,)}


def _field(prefix: str, hidden: int, n_blocks: int, z: int, feat: int, skips: int) -> dict[str, tuple[int, ...]]:
    keys = {**_linear(f"{prefix}.fc_in", hidden, 60), **_linear(f"{prefix}.fc_z", hidden, z)}
    for i in range(n_blocks - 1):
        keys.update(_linear(f"{prefix}.blocks.{i}", hidden, hidden))
    for i in range(skips):
        keys.update(_linear(f"{prefix}.fc_z_skips.{i}", hidden, z))
        keys.update(_linear(f"{prefix}.fc_p_skips.{i}", hidden, 60))
    keys.update(_linear(f"{prefix}.sigma_out", 1, hidden))
    keys.update(_linear(f"{prefix}.fc_z_view", hidden, z))
    keys.update(_linear(f"{prefix}.feat_view", hidden, hidden))
    keys.update(_linear(f"{prefix}.fc_view", hidden, 24))
    keys.update(_linear(f"{prefix}.feat_out", feat, hidden))
    return keys


def official_layout(size: int) -> dict[str, tuple[int, ...]]:
    """The official GIRAFFE state dict's keys and shapes for the 64 or 256 px configuration (model.state_dict())."""
    feat = 128 if size == 64 else 256
    gen = {**_field("decoder", 128, 8, 256, feat, 1), **_field("background_generator", 64, 4, 128, feat, 0)}
    n_blocks = int(math.log2(size) - 4)
    widths = [feat] + [max(feat // 2 ** (i + 1), 32) for i in range(n_blocks)]
    for i in range(n_blocks):
        c_in = feat if i == 0 else widths[i]
        c_out = feat // 2 if i == 0 else widths[i + 1]
        gen[f"neural_renderer.conv_layers.{i}.weight"] = (c_out, c_in, 3, 3)
        gen[f"neural_renderer.conv_layers.{i}.bias"] = (c_out,)
    for i in range(n_blocks + 1):
        gen[f"neural_renderer.conv_rgb.{i}.weight"] = (3, widths[i], 3, 3)
        gen[f"neural_renderer.conv_rgb.{i}.bias"] = (3,)
    gen["neural_renderer.upsample_rgb.1.f"] = (3,)
    n_layers = int(math.log2(size) - 2)
    disc = {"blocks.0.weight": (512 // 2 ** (n_layers - 1), 3, 4, 4)}
    for i in range(1, n_layers):
        disc[f"blocks.{i}.weight"] = (512 // 2 ** (n_layers - i - 1), 512 // 2 ** (n_layers - i), 4, 4)
    disc["conv_out.weight"] = (1, 512, 4, 4)
    layout = {f"generator.{k}": v for k, v in gen.items()}
    layout.update({f"generator_test.{k}": v for k, v in gen.items()})
    layout.update({f"discriminator.{k}": v for k, v in disc.items()})
    return layout


def _official_file(path, size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    model = {k: torch.randn(shape, generator=gen) * 0.05 for k, shape in official_layout(size).items()}
    for prefix in ("generator", "generator_test"):
        model[f"{prefix}.neural_renderer.upsample_rgb.1.f"] = torch.tensor([1.0, 2.0, 1.0])
    torch.save({"model": model, "it": 1000, "epoch_it": 3, "loss_val_best": np.float64(16.2)}, path)
    return model


@pytest.mark.parametrize(
    "name,size", [("checkpoint_compcars64-e85060a0.pt", 64), ("checkpoint_clevr2256-96bd7074.pt", 256)]
)
def test_official_layout_loads_strictly(tmp_path, name, size):
    model = _official_file(tmp_path / name, size)
    loaded = checkpoints.load_any(tmp_path / name)
    assert loaded.source.startswith("official")
    generator = checkpoints.make_generator(loaded, torch.device("cpu"))
    ours = {f"generator_test.{k}": v for k, v in generator.state_dict().items()}
    assert set(ours) == {k for k in model if k.startswith("generator_test.")}
    assert all(torch.equal(ours[k], model[k]) for k in ours)
    disc = DCDiscriminator(size)
    assert {f"discriminator.{k}": tuple(v.shape) for k, v in disc.state_dict().items()} == {
        k: v for k, v in official_layout(size).items() if k.startswith("discriminator.")
    }


@pytest.mark.parametrize("config,size,feat", [("cars64", 64, 128), ("clevr2_256", 256, 256)])
def test_renderer_output_shapes(config, size, feat):
    generator = Generator(specs.official_spec(config)).eval()
    feats = torch.zeros(2, feat, 16, 16)
    assert generator.neural_renderer(feats).shape == (2, 3, size, size)
    if size == 64:  # one whole forward pass of the official 64 px generator
        with torch.no_grad():
            params = sample_params(generator.spec, 1, torch.Generator().manual_seed(0), "cpu")
            image = generator(params)
        assert image.shape == (1, 3, 64, 64) and 0.0 <= float(image.min()) and float(image.max()) <= 1.0


def test_mismatched_official_file_names_what_differs(tmp_path):
    path = tmp_path / "checkpoint_clevr2256-96bd7074.pt"  # a 256 px name holding 64 px weights
    _official_file(path, 64)
    with pytest.raises(checkpoints.CheckpointError, match="another shape"):
        checkpoints.load_any(path)


def test_compositing_matches_a_hand_computed_case():
    sigma = torch.tensor([2.0, 0.0, 1.0]).reshape(3, 1, 1, 1)  # two objects and a background at one sample
    feat = torch.tensor([[1.0, 0.0], [5.0, 5.0], [0.0, 1.0]]).reshape(3, 1, 1, 1, 2)
    total, mixed = composite(sigma, feat)
    assert float(total) == pytest.approx(3.0)
    assert mixed.reshape(2).tolist() == pytest.approx([2 / 3, 1 / 3])
    empty_total, empty_mix = composite(torch.zeros(2, 1, 1, 1), torch.ones(2, 1, 1, 1, 2))
    assert float(empty_total) == 0.0 and empty_mix.abs().sum() == 0.0
    # Two samples 0.5 apart on a ray of length-2 direction: alpha_1 = 1 - exp(-1 * 0.5 * 2), then the rest.
    di = torch.tensor([[[1.0, 1.5]]])
    rays_d = torch.tensor([[[0.0, 0.0, 2.0]]])
    w = volume_weights(di, rays_d, torch.tensor([[[1.0, 3.0]]]))
    a1 = 1 - math.exp(-1.0)
    assert w.reshape(2).tolist() == pytest.approx([a1, (1 - a1 + 1e-10) * 1.0], rel=1e-5)


def test_camera_projection_and_pytorch3d_agree():
    pose = camera.camera_poses(torch.tensor([0.0]), torch.tensor([0.3]), torch.tensor([2.732]))
    rot, trans = camera.to_pytorch3d(pose)
    cams = FoVPerspectiveCameras(R=rot, T=trans, fov=30.0)
    pts = torch.tensor([[[0.2, -0.3, 0.1], [0.0, 0.4, 0.3]]])
    ndc = cams.transform_points(pts)[..., :2]  # PyTorch3D: +x left
    ours = camera.project(pts, pose, 30.0)
    assert torch.allclose(ours[..., 0], -ndc[..., 0], atol=1e-5) and torch.allclose(
        ours[..., 1], ndc[..., 1], atol=1e-5
    )


def _solid_box_generator() -> Generator:
    """A generator whose objects are solid boxes (constant high density), so alpha shows the box geometry."""
    spec = specs.studio_spec(32, 8, 32, hidden=16, n_blocks=2, z_dim=8, feat_dim=8, n_boxes=1, min_feat=4)
    generator = Generator(spec).eval()
    with torch.no_grad():
        generator.decoder.sigma_out.weight.zero_()
        generator.decoder.sigma_out.bias.fill_(50.0)
    return generator


def test_translation_edit_moves_the_alpha_centroid_the_right_way():
    generator = _solid_box_generator()
    spec = generator.spec
    scene = controls.base_scene(spec, 0, 1, "cpu")
    frames = controls.sweep(spec, scene, "move-horizontal", 0, torch.tensor([0.0, 1.0]), 0)
    _, alpha = evaluation.object_views(generator, frames)
    centroid, mass = evaluation.alpha_centroids(alpha[:, 0], spec)
    assert float(mass.min()) > 0.5
    assert float(centroid[1, 0] - centroid[0, 0]) > 0.2  # world +y is image right for cameras at azimuth 0
    metrics = evaluation.translation_sweep(generator, n_scenes=2)
    assert metrics["centroid_r2"] > 0.95 and metrics["alpha_in_box"] > 0.95
