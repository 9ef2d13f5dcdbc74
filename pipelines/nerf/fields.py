"""Radiance fields for NeRF: the book's harmonic-embedding MLP, and a fast multi-resolution grid field for CPUs.

A field maps world points (..., 3) and ray directions (..., 3) to a raw density sigma >= 0 (..., 1) and a colour
in [0, 1] (..., 3). The renderer turns sigma into the opacity of one sample as the book does,
alpha = 1 - exp(-sigma), so a field is tied to the sample spacing it was trained with (kept in checkpoints).
Parameters are initialised from a CPU `torch.Generator`, then moved, so every device starts the same.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from pytorch3d.renderer import HarmonicEmbedding

FIELDS = ("mlp", "grid")
MAX_PARAMS = 200_000_000


def _init_linear(layer: torch.nn.Linear, generator: torch.Generator) -> None:
    """PyTorch's default Linear initialisation (uniform +-1/sqrt(fan_in)), drawn from `generator`."""
    bound = 1.0 / math.sqrt(layer.in_features)
    with torch.no_grad():
        layer.weight.copy_(torch.empty(layer.weight.shape).uniform_(-bound, bound, generator=generator))
        layer.bias.copy_(torch.empty(layer.bias.shape).uniform_(-bound, bound, generator=generator))


class HarmonicMLPField(torch.nn.Module):
    """The book's NeuralRadianceField: points -> harmonic embedding (sin, cos of `n_harmonics` octaves starting
    at `omega0`) -> 2 x `hidden` Softplus(beta=10) layers -> density head (bias `density_bias`) and a colour head
    that also sees the embedded ray direction (view-dependent colour)."""

    def __init__(
        self, n_harmonics: int = 60, omega0: float = 0.1, hidden: int = 256, density_bias: float = -1.5, seed: int = 0
    ) -> None:
        super().__init__()
        self.embedding = HarmonicEmbedding(n_harmonics, omega_0=omega0, logspace=True, append_input=False)
        dim = n_harmonics * 2 * 3
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(dim, hidden),
            torch.nn.Softplus(beta=10.0),
            torch.nn.Linear(hidden, hidden),
            torch.nn.Softplus(beta=10.0),
        )
        self.color_layer = torch.nn.Sequential(
            torch.nn.Linear(hidden + dim, hidden),
            torch.nn.Softplus(beta=10.0),
            torch.nn.Linear(hidden, 3),
            torch.nn.Sigmoid(),
        )
        self.density_layer = torch.nn.Sequential(torch.nn.Linear(hidden, 1), torch.nn.Softplus(beta=10.0))
        gen = torch.Generator().manual_seed(seed)
        for module in self.modules():
            if isinstance(module, torch.nn.Linear):
                _init_linear(module, gen)
        with torch.no_grad():
            self.density_layer[0].bias.fill_(density_bias)  # start nearly transparent

    def forward(self, points: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """points (..., P, 3), directions (..., 3) -> sigma (..., P, 1), rgb (..., P, 3)."""
        features = self.mlp(self.embedding(points))  # (..., P, hidden)
        return self.density_layer(features), self._color(features, self.direction_term(directions)[..., None, :])

    def forward_packed(
        self, points: torch.Tensor, directions: torch.Tensor, ray: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples of several rays, packed: points (N, 3), the rays' directions (M, 3) and each point's ray (N,)
        -> sigma (N, 1), rgb (N, 3); the same values as `forward`, with each ray's direction term computed once."""
        features = self.mlp(self.embedding(points))  # (N, hidden)
        return self.density_layer(features), self._color(features, self.direction_term(directions)[ray])

    def direction_term(self, directions: torch.Tensor) -> torch.Tensor:
        """(..., 3) -> (..., hidden): the colour layer's first Linear on the embedded direction, with its bias.
        The layer sees cat([features, embedded direction]), so it is W_f @ features + (W_d @ direction + b): the
        second part depends on the ray only and is computed once per ray, not once per sample (same result)."""
        layer, width = self.color_layer[0], self.mlp[2].out_features
        embedded = self.embedding(F.normalize(directions, dim=-1))
        return F.linear(embedded, layer.weight[:, width:], layer.bias)

    def _color(self, features: torch.Tensor, direction_term: torch.Tensor) -> torch.Tensor:
        layer, width = self.color_layer[0], features.shape[-1]
        return self.color_layer[1:](F.linear(features, layer.weight[:, :width]) + direction_term)


class GridField(torch.nn.Module):
    """A fast field for CPUs: dense feature grids at several resolutions over the cube [-bound, bound]^3,
    sampled trilinearly (`grid_sample`), concatenated, and decoded by a small MLP into sigma and a
    view-independent colour. Sigma is zero outside the sphere of radius `bound`."""

    def __init__(
        self,
        resolutions: tuple[int, ...] = (16, 32, 64),
        features: int = 4,
        hidden: int = 32,
        bound: float = 1.1,
        density_bias: float = -4.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.bound = float(bound)
        self.grids = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(1, features, r, r, r, generator=gen) * 0.1) for r in resolutions]
        )
        self.head = torch.nn.Sequential(
            torch.nn.Linear(features * len(resolutions), hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 4)
        )
        for module in self.head.modules():
            if isinstance(module, torch.nn.Linear):
                _init_linear(module, gen)
        self.density_bias = float(density_bias)

    def forward(self, points: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """points (..., P, 3), directions (..., 3) (unused) -> sigma (..., P, 1), rgb (..., P, 3)."""
        shape = points.shape[:-1]
        coords = (points / self.bound).reshape(1, -1, 1, 1, 3)  # grid_sample wants (x, y, z) in [-1, 1]
        feats = [
            F.grid_sample(g, coords, mode="bilinear", padding_mode="zeros", align_corners=True).reshape(g.shape[1], -1)
            for g in self.grids
        ]
        out = self.head(torch.cat(feats, 0).T)  # (N, 4)
        inside = (points.reshape(-1, 3).square().sum(-1) <= self.bound**2)[:, None]
        sigma = torch.where(inside, F.softplus(out[:, :1] + self.density_bias), torch.zeros_like(out[:, :1]))
        return sigma.reshape(*shape, 1), torch.sigmoid(out[:, 1:]).reshape(*shape, 3)


def make_field(kind: str, args: dict[str, Any]) -> torch.nn.Module:
    """A field from its kind and constructor arguments (what checkpoints store), after size checks."""
    if kind not in FIELDS:
        raise ValueError(f"Unknown field {kind!r}: choose one of {', '.join(FIELDS)}.")
    n = count_params(kind, args)
    if n > MAX_PARAMS:
        raise ValueError(
            f"This {kind} field would have {n / 1e6:.0f}M parameters; the limit is {MAX_PARAMS / 1e6:.0f}M: "
            "use a narrower network or smaller grids."
        )
    if kind == "mlp":
        return HarmonicMLPField(**args)
    if not 0.0 < float(args.get("bound", 1.1)) <= 10.0:
        raise ValueError(f"The grid field's bound must be in (0, 10] (got {args.get('bound')}).")
    args = dict(args)
    args["resolutions"] = tuple(int(r) for r in args.get("resolutions", (16, 32, 64)))
    return GridField(**args)


def count_params(kind: str, args: dict[str, Any]) -> int:
    """Parameter count of a field, computed from its arguments without building it."""
    if kind == "mlp":
        n, h = int(args.get("n_harmonics", 60)), int(args.get("hidden", 256))
        if n < 1 or n > 128 or h < 1 or h > 8192:
            raise ValueError("MLP field: n_harmonics must be 1-128 and hidden 1-8192.")
        d = 6 * n
        return (d + 1) * h + (h + 1) * h + (h + d + 1) * h + (h + 1) * 3 + (h + 1)
    res = [int(r) for r in args.get("resolutions", (16, 32, 64))]
    f, h = int(args.get("features", 4)), int(args.get("hidden", 32))
    if not res or any(r < 2 or r > 512 for r in res) or not (1 <= f <= 64) or not (1 <= h <= 4096):
        raise ValueError("Grid field: resolutions must be 2-512, features 1-64, hidden 1-4096.")
    return sum(f * r**3 for r in res) + (f * len(res) + 1) * h + (h + 1) * 4
