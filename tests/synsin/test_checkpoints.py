"""SynSin weights: the official key layout loads strictly (prefix stripped, spectral norm folded), mismatches and
corrupt or code-carrying files get a sentence, and studio checkpoints round-trip."""

from __future__ import annotations

import argparse
import functools
import pickle

import pytest
import torch

from pipelines.synsin import checkpoints
from pipelines.synsin.lpips import load_lpips
from pipelines.synsin.model import ModelSpec, SynSin
from pipelines.synsin.networks import MultiscaleDiscriminator

# Keys and shapes read from facebookresearch/synsin (ZbufferModelPts with refine_model_type resnet_256W8UpDown64,
# norm_G sync:spectral_batch, ngf 64, W 256, wrapped as BaseModel(DataParallel(model))): facts, not code.
OFFICIAL_ANCHORS = {
    "model.module.encoder.gblocks.0.ch_a.0.gain.weight_orig": (3, 20),
    "model.module.encoder.gblocks.0.ch_a.2.weight_orig": (32, 3, 3, 3),
    "model.module.encoder.gblocks.3.ch_b.0.weight_orig": (64, 32, 1, 1),
    "model.module.encoder.gblocks.3.ch_a.3.bn.stored_var": (64,),
    "model.module.pts_regressor.conv1.weight_orig": (32, 3, 4, 4),
    "model.module.pts_regressor.conv8.weight_orig": (256, 256, 4, 4),
    "model.module.pts_regressor.dconv8.weight_orig": (1, 64, 3, 3),
    "model.module.pts_regressor.batch_norm8_7.running_mean": (256,),
    "model.module.pts_regressor.batch_norm.weight": (32,),
    "model.module.pts_transformer.splatter.default_feature": (1, 64, 1),
    "model.module.projector.eblocks.3.ch_a.5.weight_orig": (256, 256, 3, 3),
    "model.module.projector.eblocks.7.ch_b.0.weight_orig": (3, 128, 1, 1),
}


def official_state() -> dict[str, torch.Tensor]:
    """A fresh copy of `_official_state()` (built once; tests change their copies)."""
    return dict(_official_state())


@functools.cache
def _official_state() -> dict[str, torch.Tensor]:
    """A state dict in the official checkpoint's layout: generator under model.module., the loss's VGG, the
    geometry buffers and the discriminator under netD.netD.netD. (values random; shapes official)."""
    torch.manual_seed(0)
    gen = SynSin(ModelSpec(), spectral=True)
    state = {f"model.module.{k}": v for k, v in gen.state_dict().items()}
    state["model.module.pts_transformer.xyzs"] = torch.zeros(1, 4, 256 * 256)
    state["model.module.min_z"] = torch.tensor([0.1])
    state["model.module.max_z"] = torch.tensor([100.0])
    state["model.module.discretized_zs"] = torch.linspace(1, 100, 64)
    state["model.module.loss_function.losses.1.model.slice1.0.weight"] = torch.zeros(64, 3, 3, 3)
    for k, v in MultiscaleDiscriminator(64).state_dict().items():
        state[f"netD.netD.netD.{k}"] = v
    return state


def official_opts() -> argparse.Namespace:
    return argparse.Namespace(W=256, ngf=64, min_z=1.0, max_z=100.0, radius=4.0, pp_pixel=128, tau=1.0,
                              refine_model_type="resnet_256W8UpDown64", norm_G="sync:spectral_batch",
                              accumulation="alphacomposite", use_inverse_depth=False)  # fmt: skip


def test_official_layout_loads_strictly(tmp_path):
    state = official_state()
    for key, shape in OFFICIAL_ANCHORS.items():
        assert tuple(state[key].shape) == shape, key
    path = tmp_path / "synsin.pth"
    torch.save({"state_dict": state, "opts": official_opts(), "optimizerG": {}}, path)
    model, info = checkpoints.load_generator(path)
    assert info["kind"] == "official" and info["spec"]["max_z"] == 100.0
    assert set(info["ignored"]) >= {"loss_function", "netD", "pts_transformer", "min_z"}
    folded = model.state_dict()
    assert "encoder.gblocks.0.ch_a.2.weight" in folded and not any(k.endswith("weight_orig") for k in folded)


def test_spectral_fold_reproduces_the_normalised_layer():
    torch.manual_seed(1)
    conv = torch.nn.utils.spectral_norm(torch.nn.Conv2d(4, 6, 3, padding=1))
    conv(torch.randn(2, 4, 8, 8))  # one power iteration in training mode
    conv.eval()
    x = torch.randn(1, 4, 8, 8)
    folded = checkpoints.fold_spectral({f"c.{k}": v for k, v in conv.state_dict().items()})
    plain = torch.nn.Conv2d(4, 6, 3, padding=1)
    plain.load_state_dict({k[2:]: v for k, v in folded.items()})
    assert torch.allclose(conv(x), plain(x), atol=1e-5)


def test_mismatches_become_sentences(tmp_path):
    state = official_state()
    state.pop("model.module.projector.eblocks.2.ch_a.2.weight_orig")
    state["model.module.pts_regressor.conv1.weight_orig"] = torch.randn(16, 3, 4, 4)
    state["model.module.pts_regressor.conv1.weight_u"] = torch.randn(16)
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": state, "opts": official_opts()}, path)
    with pytest.raises(checkpoints.CheckpointError, match="missing.*other shapes"):
        checkpoints.load_generator(path)
    state["model.module.pts_regressor.conv1.weight_u"] = torch.randn(5)
    torch.save(state, path)
    with pytest.raises(checkpoints.CheckpointError, match="spectral-norm vectors"):
        checkpoints.load_generator(path)
    state = official_state()
    state["model.module.something_else.weight"] = torch.zeros(3)
    torch.save(state, path)
    with pytest.raises(checkpoints.CheckpointError, match="belong to no SynSin module"):
        checkpoints.load_generator(path)


class _Touch:
    """A pickle that would create a file when unpickled (it must be refused before that)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_code_carrying_and_corrupt_files_are_refused(tmp_path):
    target = tmp_path / "touched.txt"
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "payload": _Touch(str(target))}, evil, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(checkpoints.CheckpointError, match="nothing in it was run"):
        checkpoints.load_generator(evil)
    assert not target.exists()
    broken = tmp_path / "broken.pth"
    broken.write_bytes(evil.read_bytes()[:200])
    with pytest.raises(checkpoints.CheckpointError, match="not a readable PyTorch checkpoint"):
        checkpoints.load_generator(broken)
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    with pytest.raises(checkpoints.CheckpointError):
        checkpoints.load_generator(text)


def test_studio_checkpoint_round_trip(tmp_path):
    spec = ModelSpec(image_size=16, ngf=4, unet_filters=2, unet_levels=3, radius_px=1.5, points_per_pixel=4)
    torch.manual_seed(2)
    gen = SynSin(spec, spectral=True)
    gen(torch.rand(2, 3, 16, 16), torch.eye(3).expand(2, 3, 3), torch.zeros(2, 3))  # move the running stats
    gen.eval()
    path = checkpoints.save_studio(tmp_path / "model.pt", gen, step=3, metrics={"psnr": 1.0})
    loaded, info = checkpoints.load_generator(path)
    assert info["kind"] == "studio" and info["step"] == 3
    x, r, t = torch.rand(1, 3, 16, 16), torch.eye(3)[None], torch.tensor([[0.05, 0.0, 0.0]])
    with torch.no_grad():
        assert torch.allclose(gen(x, r, t).image, loaded(x, r, t).image, atol=1e-5)
    raw = torch.load(path, weights_only=True)  # plain values only
    assert raw["format"] == checkpoints.FORMAT


def test_lpips_only_with_operator_backbone(tmp_path):
    assert load_lpips(tmp_path) is None  # no weights: not computed
    torch.manual_seed(3)
    convs = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256), (14, 256, 256),
             (17, 256, 512), (19, 512, 512), (21, 512, 512), (24, 512, 512), (26, 512, 512), (28, 512, 512)]  # fmt: skip
    features = {}
    for i, c_in, c_out in convs:  # torchvision's VGG-16 feature layers (random values)
        features[f"features.{i}.weight"] = torch.randn(c_out, c_in, 3, 3) * (2.0 / (9 * c_in)) ** 0.5
        features[f"features.{i}.bias"] = torch.zeros(c_out)
    torch.save(features, tmp_path / "vgg16.pth")
    score = load_lpips(tmp_path)
    a, b = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    same, other = score(a, a), score(a, b)
    assert same.shape == (2,) and torch.allclose(same, torch.zeros(2), atol=1e-6) and (other > 0).all()
