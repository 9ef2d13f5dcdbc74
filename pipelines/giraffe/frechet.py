"""The Fréchet distance between two sets of image features, and the studio's documented encoder for it.

FD = |mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1^1/2 S_2 S_1^1/2)^1/2), computed in float64 through symmetric
eigendecompositions (so the matrix square root stays real). With the operator's Inception weights the GIRAFFE
tab computes the usual FID through torchmetrics; without them it uses `ProceduralEncoder` below, and the number
is labelled "procedural FD — not comparable with published FID".

The procedural encoder (version 1): images resized to 64 x 64 (bilinear, antialiased), normalised to
(x - 0.5) / 0.25, then four 4x4 stride-2 convolutions (3 -> 32 -> 64 -> 128 -> 256 channels, ReLU) with weights
drawn from N(0, 2 / fan_in) by a CPU generator seeded 2026 and no biases; the feature is the spatial mean of
the last two layers and the per-channel mean of the input (128 + 256 + 3 = 387 numbers). Random convolutional
features are a weak but fixed and reproducible embedding: the distance ranks models on the same data, and it is 0
for identical sets.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

ENCODER_NAME = "studio random-conv encoder v1 (seed 2026, 387-d)"
PROCEDURAL_LABEL = "procedural FD — not comparable with published FID"
ENCODER_SEED = 2026
ENCODER_SIZE = 64


class ProceduralEncoder(torch.nn.Module):
    """Images (B, 3, H, W) in [0, 1] -> features (B, 387), fixed random weights (see the module doc)."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(ENCODER_SEED)
        chans = [3, 32, 64, 128, 256]
        weights = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            fan_in = c_in * 16
            weights.append(torch.randn(c_out, c_in, 4, 4, generator=gen) * (2.0 / fan_in) ** 0.5)
        for i, w in enumerate(weights):
            self.register_buffer(f"w{i}", w)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float(), size=(ENCODER_SIZE, ENCODER_SIZE), mode="bilinear", antialias=True)
        feats = [x.mean((2, 3))]
        x = (x - 0.5) / 0.25
        for i in range(4):
            x = F.relu(F.conv2d(x, getattr(self, f"w{i}"), stride=2, padding=1))
            if i >= 2:
                feats.append(x.mean((2, 3)))
        return torch.cat([feats[1], feats[2], feats[0]], dim=1)


def statistics(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), float64."""
    f = features.detach().double().cpu().numpy()
    if len(f) < 2:
        raise ValueError("The Fréchet distance needs at least 2 samples per set.")
    return f.mean(0), np.cov(f, rowvar=False)


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) * 0.5)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """The Fréchet distance between the Gaussians N(mu1, s1) and N(mu2, s2)."""
    root1 = _sqrt_psd(s1)
    middle = root1 @ s2 @ root1
    vals = np.linalg.eigvalsh((middle + middle.T) * 0.5)
    tr_cross = float(np.sqrt(np.clip(vals, 0.0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_cross)


def features_in_chunks(encoder: torch.nn.Module, images: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Encoder features of images (N, 3, H, W) in [0, 1], `chunk` at a time, on the CPU."""
    out = [encoder(images[i : i + chunk].float()).cpu() for i in range(0, len(images), chunk)]
    return torch.cat(out)
