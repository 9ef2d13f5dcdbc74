"""Tiny GIRAFFE training: finite losses, both networks move, the checkpoint round-trips and resumes; generation with
every control and the FD panel on the trained checkpoint."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pipelines.core.events import Done, Preview, Progress
from pipelines.giraffe import checkpoints, controls, fid, generate, training
from pipelines.giraffe import pipeline as train
from pipelines.giraffe.generator import sample_params


def _events(gen):
    return list(gen)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("giraffe-train")
    cfg = dataclasses.replace(train.Config.tiny(), out_dir=out, device="cpu", steps=4)
    events = _events(train.run(cfg))
    return cfg, events


def test_tiny_training_moves_both_networks_and_round_trips(trained, tmp_path):
    cfg, events = trained
    done = events[-1]
    assert isinstance(done, Done)
    losses = [e.losses for e in events if isinstance(e, Progress) and e.losses]
    assert losses and all(torch.isfinite(torch.tensor(list(v.values()))).all() for v in losses)
    assert any(isinstance(e, Preview) for e in events)
    loaded = checkpoints.load_studio(done.files["checkpoint"])
    assert loaded.payload["step"] == 4
    fresh = training.build_state(loaded.spec, cfg.d_feat, cfg.lr_g, cfg.lr_d, cfg.seed, torch.device("cpu"))
    moved = lambda a, b: any(not torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.values()))  # noqa: E731
    assert moved(fresh.generator, loaded.payload["generator"])
    assert moved(fresh.discriminator, loaded.payload["discriminator"])
    checkpoints.restore_state(fresh, loaded)
    params = sample_params(loaded.spec, 2, torch.Generator().manual_seed(0), "cpu")
    with torch.no_grad():
        a = fresh.generator_test.eval()(params)
        b = checkpoints.make_generator(loaded, torch.device("cpu"))(params)
    assert torch.equal(a, b)
    resumed = dataclasses.replace(cfg, out_dir=tmp_path, resume=done.files["checkpoint"], steps=5)
    again = _events(train.run(resumed))
    assert again[-1].metrics["steps"] == 5.0


def test_generation_controls_and_bad_requests(trained, tmp_path):
    _, events = trained
    ckpt = str(events[-1].files["checkpoint"])
    for control in ("move-horizontal", "add-remove", "elevation"):
        cfg = dataclasses.replace(generate.Config.tiny(), checkpoint=ckpt, control=control, n_objects=2,
                                  out_dir=tmp_path / control, device="cpu", measure=control == "move-horizontal")  # fmt: skip
        done = _events(generate.run(cfg))[-1]
        assert done.files["sweep_gif"].stat().st_size > 0 and done.files["background"].is_file()
    assert 0.0 <= done.metrics.get("alpha_in_box", 0.0) <= 1.0
    with pytest.raises(ValueError, match="1 to 2 objects"):
        controls.base_scene(checkpoints.load_any(ckpt).spec, 0, 5, "cpu")
    with pytest.raises(ValueError, match="places up to"):
        _events(generate.run(dataclasses.replace(cfg, n_objects=7, out_dir=tmp_path / "x")))
    with pytest.raises(ValueError, match="no checkpoint"):
        _events(generate.run(dataclasses.replace(cfg, checkpoint="/nowhere/x.pt", out_dir=tmp_path / "y")))


def test_fd_panel_without_inception_weights(trained, tmp_path):
    _, events = trained
    cfg = dataclasses.replace(fid.Config.tiny(), checkpoint=str(events[-1].files["checkpoint"]), out_dir=tmp_path,
                              device="cpu", models_dir=tmp_path)  # fmt: skip
    done = _events(fid.run(cfg))[-1]
    assert done.info["label"].startswith("procedural FD") and done.metrics["fd_untrained"] > 0
    (tmp_path / generate.INCEPTION_FILE).write_bytes(b"not the weights")
    path, why = fid.inception_status(tmp_path)
    assert path is None and "not 6726825d" in why
