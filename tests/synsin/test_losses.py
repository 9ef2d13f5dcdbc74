"""The studio's auxiliary parts of SynSin: the photometric warp loss (near zero with the true depth, larger with a
wrong one), the RGB skip (identity pose gives back the input; the correction starts switched off) and the depth
initialisation."""

from __future__ import annotations

import dataclasses

import torch

from pipelines.core import ddp
from pipelines.synsin import losses, rooms, train
from pipelines.synsin.model import ModelSpec, SynSin
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


def test_rgb_skip_identity_pose_returns_the_input_before_refinement():
    torch.manual_seed(0)
    spec = ModelSpec(image_size=16, ngf=8, unet_filters=4, unet_levels=4, radius_px=0.5, points_per_pixel=2,
                     noise=0.0, rgb_skip=True, min_z=0.5, max_z=8.0)  # fmt: skip
    model = SynSin(spec).train()
    image = torch.rand(2, 3, 16, 16)
    feats, _, points = model.encode(image)
    assert feats.shape[1] == spec.feature_dim + 3
    out, projected, coverage = model.render(feats, points, torch.eye(3).expand(2, 3, 3), torch.zeros(2, 3))
    rgb = projected[:, -3:] / coverage.clamp(min=1e-4)
    assert torch.allclose(rgb * 0.5 + 0.5, image, atol=1e-4) and out.shape == image.shape
    assert torch.allclose(out, image, atol=1e-4)  # the correction's gain starts at 0: the splatted input itself
    assert model.projector.eblocks[0].ch_a[2].weight_orig.shape[1] == spec.feature_dim + 4


def test_depth_initialisation_starts_near_the_requested_depth():
    cfg = dataclasses.replace(train.Config.tiny(), depth_init=2.0, min_z=0.5, max_z=8.0)
    trainer = train.make_trainer(cfg, ddp.Dist())
    with torch.no_grad():
        depth = trainer.gen.depth(torch.rand(2, 3, cfg.image_size, cfg.image_size))
    assert abs(float(depth.median()) - 2.0) < 0.6
