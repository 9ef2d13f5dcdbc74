"""SynSin training: a short fit on identity pairs makes the losses fall and reproduces the input; resume and
the data-parallel split use the same step."""

from __future__ import annotations

import dataclasses

import torch

from pipelines.core import ddp
from pipelines.synsin import evaluate, rooms, train
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
