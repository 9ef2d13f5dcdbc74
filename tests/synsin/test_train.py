"""SynSin training: a short fit on identity pairs makes the losses fall and reproduces the input; resume and
the data-parallel split use the same step."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pipelines.core import ddp
from pipelines.synsin import evaluate, losses, rooms, train
from pipelines.train.generators import finish


def tiny_config(**changes) -> train.Config:
    base = dataclasses.replace(train.Config.tiny(), image_size=16, unet_levels=4, batch_size=2, lr_g=3e-3,
                               w_gan=0.0, w_feat=0.0, radius_px=1.0, points_per_pixel=2, noise=0.0)  # fmt: skip
    return dataclasses.replace(base, **changes)


def identity_pairs(cfg: train.Config) -> rooms.PairBatch:
    data = finish(rooms.build_pairs([1], 2, cfg.image_size, cfg.fov_deg, cfg.limits))
    eye = torch.eye(3).expand(len(data), 3, 3).clone()
    return rooms.PairBatch(data.src, data.src, data.src_depth, data.src_depth, eye, torch.zeros(len(data), 3))


def test_identity_fit_losses_fall_and_reproduce_the_input():
    torch.manual_seed(0)
    cfg = tiny_config()
    trainer = train.make_trainer(cfg, ddp.Dist())
    pairs = identity_pairs(cfg)
    l1 = []
    for _ in range(60):
        logs = train.train_step(trainer, pairs, None, ddp.Dist())
        assert all(torch.isfinite(v) for v in logs.values())
        l1.append(float(logs["l1"]))
    assert sum(l1[-5:]) < 0.5 * sum(l1[:5])
    train.standing_statistics(trainer, pairs)
    pred, _ = evaluate.predict(trainer.gen, pairs)
    end = float(evaluate.psnr(pred, pairs.tgt).mean())
    assert end > 18.0, end


def test_gan_terms_are_finite_and_the_discriminator_trains():
    torch.manual_seed(1)
    cfg = tiny_config(w_gan=1.0, w_feat=10.0, ndf=8, noise=1.0)
    trainer = train.make_trainer(cfg, ddp.Dist())
    pairs = identity_pairs(cfg)
    before = [p.detach().clone() for p in trainer.disc.parameters()]
    logs = train.train_step(trainer, pairs, None, ddp.Dist())
    assert {"gan_g", "feature_matching", "loss_d"} <= set(logs) and all(torch.isfinite(v) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.disc.parameters()))


def test_vgg_perceptual_loss_with_operator_weights(tmp_path):
    assert losses.load_vgg(tmp_path) is None  # no weights: the gradient-pyramid substitute is used
    torch.manual_seed(4)
    widths = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]
    state, index, c_in = {}, 0, 3
    for w in widths:  # torchvision's VGG-19 feature layers (random values of the right shapes)
        if w == "M":
            index += 1
            continue
        state[f"features.{index}.weight"] = torch.randn(w, c_in, 3, 3) * (2.0 / (9 * c_in)) ** 0.5
        state[f"features.{index}.bias"] = torch.zeros(w)
        index, c_in = index + 2, w
    torch.save(state, tmp_path / "vgg19.pth")
    vgg = losses.load_vgg(tmp_path)
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    assert float(vgg(a, a)) == 0.0 and float(vgg(a, b)) > 0.0


def test_depth_warmup_steps_move_only_the_depth_network_and_lower_its_loss():
    torch.manual_seed(2)
    cfg = tiny_config(w_photo=1.0, w_smooth=1e-3, depth_warmup_steps=5, depth_init=2.0, min_z=0.5, max_z=8.0)
    trainer = train.make_trainer(cfg, ddp.Dist())
    data = finish(rooms.build_pairs([1, 2], 2, cfg.image_size, cfg.fov_deg, cfg.limits))
    depth_net = {id(p) for p in trainer.gen.pts_regressor.parameters()}
    before = {id(p): p.detach().clone() for p in trainer.gen.parameters()}
    first = train.depth_step(trainer, data, ddp.Dist())
    assert set(first) == {"photometric", "smoothness", "loss_g"} and torch.isfinite(first["loss_g"])
    changed = {id(p) for p in trainer.gen.parameters() if not torch.equal(before[id(p)], p.detach())}
    assert changed and changed <= depth_net  # the encoder, decoder and refine gain wait
    losses_seen = [float(train.depth_step(trainer, data, ddp.Dist())["photometric"]) for _ in range(30)]
    assert min(losses_seen[-5:]) < float(first["photometric"])
    with pytest.raises(ValueError, match="photometric"):
        train.check_config(tiny_config(depth_warmup_steps=3, w_photo=0.0))
