"""LPIPS (VGG variant) for the held-out evaluation, only when the operator supplies torchvision's VGG-16 weights.

torchmetrics ships LPIPS's small linear heads; the VGG-16 backbone needs ImageNet weights, which this studio never
downloads. With `vgg16.pth` (torchvision's state dict, or just its `features.*` tensors) in --models-dir, the
backbone is built empty and filled from that file (read weights-only); without it, LPIPS is not computed and the
results say so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torchmetrics.functional.image.lpips import _LPIPS

from pipelines.synsin.checkpoints import CheckpointError, read

LPIPS_FILE_NAMES = ("vgg16.pth", "vgg16-397923af.pth")
"""torchvision VGG-16 weights an operator may put in --models-dir to switch LPIPS on."""
SLICES = ((1, range(0, 4)), (2, range(4, 9)), (3, range(9, 16)), (4, range(16, 23)), (5, range(23, 30)))


def find_backbone(models_dir: Path | None) -> Path | None:
    for name in LPIPS_FILE_NAMES:
        if models_dir is not None and (Path(models_dir) / name).is_file():
            return Path(models_dir) / name
    return None


def load_lpips(models_dir: Path | None, device: torch.device | str = "cpu") -> Callable | None:
    """A function (pred, target) → per-image LPIPS (B,) for images in [0, 1], or None without backbone weights."""
    path = find_backbone(models_dir)
    if path is None:
        return None
    state = read(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path.name} is not a VGG-16 state dict.")
    mapped = {}
    for slice_no, indices in SLICES:
        for i in indices:
            for kind in ("weight", "bias"):
                key = f"features.{i}.{kind}"
                if key in state:
                    mapped[f"net.slice{slice_no}.{i}.{kind}"] = state[key]
    model = _LPIPS(pretrained=True, net="vgg", pnet_rand=True)  # linear heads from torchmetrics' own file
    expected = {k for k in model.state_dict() if k.startswith("net.")}
    if set(mapped) != expected:
        missing = sorted(expected - set(mapped))
        raise CheckpointError(f"{path.name} lacks {len(missing)} VGG-16 feature tensors (e.g. {missing[:2]}).")
    model.load_state_dict(mapped, strict=False)
    model = model.to(device).eval()

    def score(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(pred.clamp(0, 1), target.clamp(0, 1), normalize=True).flatten()

    return score
