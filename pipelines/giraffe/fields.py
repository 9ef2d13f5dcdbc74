"""GIRAFFE's feature field: an MLP from a positionally encoded point, a view direction and shape/appearance codes to
a density and a feature vector. The same class is the objects' decoder and the background field.

Parameter names and shapes follow the official `Decoder` (autonomousvision/giraffe, im2scene/giraffe/models/
decoder.py), so its state dict loads strictly: `fc_in`, `fc_z`, `blocks.*`, `fc_z_skips.*`, `fc_p_skips.*`,
`sigma_out`, `fc_z_view`, `feat_view`, `fc_view`, `feat_out` (one view-dependent layer, as in every official model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class FieldSpec:
    """The shape of one feature field (the official Decoder's arguments)."""

    hidden: int = 128
    """Width of every hidden layer."""
    n_blocks: int = 8
    """Hidden layers of the density trunk (fc_in plus n_blocks - 1 blocks)."""
    skips: tuple[int, ...] = (4,)
    """After which blocks the shape code and the encoded point are added again."""
    n_freq: int = 10
    """Octaves of the positional encoding of points (L = 10)."""
    n_freq_views: int = 4
    """Octaves of the positional encoding of view directions (L = 4)."""
    z_dim: int = 256
    """Size of the shape and of the appearance code."""
    feat_dim: int = 128
    """Size of the output feature (rgb_out_dim)."""
    downscale: float = 2.0
    """Points are divided by this before the encoding (objects: 2, background: 12)."""


def encode(p: torch.Tensor, n_freq: int) -> torch.Tensor:
    """Positional encoding (.., 3) -> (.., 6 n_freq): [sin(2^i pi p), cos(2^i pi p)] for i < n_freq, in that
    order (the official layout: each octave's sines then cosines)."""
    parts = []
    for i in range(n_freq):
        arg = (2.0**i) * math.pi * p
        parts += [torch.sin(arg), torch.cos(arg)]
    return torch.cat(parts, dim=-1)


class FeatureField(nn.Module):
    """(points, view directions, shape code, appearance code) -> (features, density before ReLU)."""

    def __init__(self, spec: FieldSpec) -> None:
        super().__init__()
        self.spec = spec
        h, dim_p, dim_d = spec.hidden, 6 * spec.n_freq, 6 * spec.n_freq_views
        self.fc_in = nn.Linear(dim_p, h)
        self.fc_z = nn.Linear(spec.z_dim, h)
        self.blocks = nn.ModuleList([nn.Linear(h, h) for _ in range(spec.n_blocks - 1)])
        n_skips = sum(i in spec.skips for i in range(spec.n_blocks - 1))
        if n_skips > 0:
            self.fc_z_skips = nn.ModuleList([nn.Linear(spec.z_dim, h) for _ in range(n_skips)])
            self.fc_p_skips = nn.ModuleList([nn.Linear(dim_p, h) for _ in range(n_skips)])
        self.sigma_out = nn.Linear(h, 1)
        self.fc_z_view = nn.Linear(spec.z_dim, h)
        self.feat_view = nn.Linear(h, h)
        self.fc_view = nn.Linear(dim_d, h)
        self.feat_out = nn.Linear(h, spec.feat_dim)

    def forward(
        self,
        points: torch.Tensor,
        dirs: torch.Tensor,
        z_shape: torch.Tensor,
        z_app: torch.Tensor,
        batch_index: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Packed evaluation: `points` and `dirs` (M, 3) belong to scenes `batch_index` (M,) whose codes are
        `z_shape`, `z_app` (B, z_dim). Returns features (M, feat_dim) and raw densities (M,)."""
        spec = self.spec
        p = encode(points / spec.downscale, spec.n_freq)  # (M, 6 L)
        z_s = z_shape[batch_index]  # (M, z_dim)
        net = F.relu(self.fc_in(p) + self.fc_z(z_s))
        skip = 0
        for idx, layer in enumerate(self.blocks):
            net = F.relu(layer(net))
            if (idx + 1) in spec.skips and idx < len(self.blocks) - 1:
                net = net + self.fc_z_skips[skip](z_s) + self.fc_p_skips[skip](p)
                skip += 1
        sigma = self.sigma_out(net)[:, 0]
        net = self.feat_view(net) + self.fc_z_view(z_app)[batch_index]
        d = encode(dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-8), spec.n_freq_views)
        net = F.relu(net + self.fc_view(d))
        return self.feat_out(net), sigma
