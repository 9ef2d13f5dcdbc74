"""The studio's auxiliary parts of SynSin: the photometric warp loss (near zero with the true depth, larger with a
wrong one), the RGB skip (identity pose gives back the input; the correction starts small), the push-pull hole fill
and the depth initialisation."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pipelines.core import ddp
from pipelines.synsin import losses, rooms, train
from pipelines.synsin.model import REFINE_GAIN_INIT, ModelSpec, SynSin
from pipelines.synsin.splat import fill_holes
from pipelines.train.generators import finish


def _pairs(size: int = 32) -> rooms.PairBatch:
    cfg = train.Config.quick()
    return finish(rooms.build_pairs([rooms.heldout_seed(3)], 3, size, cfg.fov_deg, cfg.limits))


def test_photometric_loss_is_small_with_the_true_depth_and_larger_with_a_wrong_one():
    pairs = _pairs()
    tan = ModelSpec(image_size=32).tan_half_fov

    def loss(depth: torch.Tensor) -> float:
        return float(losses.photometric_loss(pairs.src, pairs.tgt, depth, pairs.r_rel, pairs.t_rel, tan))

    true = loss(pairs.src_depth)
    constant = loss(torch.full_like(pairs.src_depth, float(pairs.src_depth.median())))
    assert true < 0.09, true
    assert constant > 2 * true and loss(pairs.src_depth * 1.5) > 2 * true and loss(pairs.src_depth * 0.7) > 2 * true
    blurred = float(losses.photometric_loss(pairs.src, pairs.tgt, pairs.src_depth, pairs.r_rel, pairs.t_rel, tan,
                                            blurs=train.PHOTO_BLURS))  # fmt: skip
    assert blurred < 0.09 and blurred < 0.5 * float(
        losses.photometric_loss(
            pairs.src, pairs.tgt, pairs.src_depth * 1.5, pairs.r_rel, pairs.t_rel, tan, blurs=train.PHOTO_BLURS
        )  # fmt: skip
    )
    warped, valid = losses.warp_target(pairs.tgt, pairs.src_depth, pairs.r_rel, pairs.t_rel, tan)
    assert warped.shape == pairs.src.shape and 0.3 < float(valid.mean()) <= 1.0


def test_photometric_gradient_moves_a_wrong_depth_towards_the_truth():
    pairs = _pairs()
    tan = ModelSpec(image_size=32).tan_half_fov
    scale = torch.tensor(1.4, requires_grad=True)
    losses.photometric_loss(pairs.src, pairs.tgt, pairs.src_depth * scale, pairs.r_rel, pairs.t_rel, tan).backward()
    assert float(scale.grad) > 0  # descending lowers the too-far depth


@pytest.mark.parametrize("hole_fill", ["input", "pushpull"])
def test_rgb_skip_identity_pose_returns_the_input_before_refinement(hole_fill):
    torch.manual_seed(0)
    spec = ModelSpec(image_size=16, ngf=8, unet_filters=4, unet_levels=4, radius_px=0.5, points_per_pixel=2,
                     noise=0.0, rgb_skip=True, min_z=0.5, max_z=8.0, hole_fill=hole_fill)  # fmt: skip
    model = SynSin(spec).train()
    image = torch.rand(2, 3, 16, 16)
    feats, _, points = model.encode(image)
    assert feats.shape[1] == spec.feature_dim + 3
    with torch.no_grad():
        out, projected, coverage = model.render(feats, points, torch.eye(3).expand(2, 3, 3), torch.zeros(2, 3))
    assert torch.allclose(model.base(feats, projected, coverage) * 0.5 + 0.5, image, atol=1e-4)
    assert out.shape == image.shape and model.refine_gain.item() == pytest.approx(REFINE_GAIN_INIT)
    # an untrained decoder's correction (tanh, scaled by the starting gain) moves a pixel by at most gain / 2
    assert float((out - image).abs().max()) <= REFINE_GAIN_INIT / 2 + 1e-4
    assert float((out - image).abs().max()) > 1e-4  # and does move it: the gain is not a dead 0
    assert model.projector.eblocks[0].ch_a[2].weight_orig.shape[1] == spec.feature_dim + 4


def test_pushpull_fill_keeps_known_pixels_and_fills_holes_from_their_neighbours():
    image = torch.linspace(0, 1, 32).expand(1, 3, 32, 32).clone()  # brightness rises left to right
    known = torch.ones(1, 1, 32, 32)
    known[..., 20:] = 0  # the right part is a hole
    filled = fill_holes(image, known)
    assert torch.equal(filled[..., :20], image[..., :20])
    edge = float(image[0, 0, 0, 19])
    assert float((filled[..., 20:] - edge).abs().max()) < 0.2  # continues the nearby known colour
    assert float(filled[..., 20:].max()) <= float(image[..., :20].max()) + 1e-6  # never invents brighter values
    flat = fill_holes(torch.full((1, 3, 16, 16), 0.3), (torch.rand(1, 1, 16, 16) > 0.7).float())
    assert torch.allclose(flat, torch.full_like(flat, 0.3), atol=1e-5)
    image.requires_grad_(True)
    fill_holes(image, known)[..., 20:].sum().backward()
    assert float(image.grad[..., :20].abs().sum()) > 0 and float(image.grad[..., 20:].abs().sum()) == 0


def test_unknown_hole_fill_is_refused_with_a_sentence():
    with pytest.raises(ValueError, match="hole fill"):
        SynSin(ModelSpec(image_size=16, ngf=8, unet_filters=4, unet_levels=4, rgb_skip=True, hole_fill="magic"))


def test_depth_initialisation_starts_near_the_requested_depth():
    cfg = dataclasses.replace(train.Config.tiny(), depth_init=2.0, min_z=0.5, max_z=8.0)
    trainer = train.make_trainer(cfg, ddp.Dist())
    with torch.no_grad():
        depth = trainer.gen.depth(torch.rand(2, 3, cfg.image_size, cfg.image_size))
    assert abs(float(depth.median()) - 2.0) < 0.6
