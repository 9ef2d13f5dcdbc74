"""The SynSin generator: features and depth from one image, a feature point cloud moved to the target camera,
splatted with PyTorch3D's point rasteriser, and refined into the target view.

Submodule names follow the official `ZbufferModelPts` (`encoder`, `pts_regressor`, `pts_transformer.splatter`,
`projector`), so a state dict with the official layout (prefix `model.module.` stripped) loads. Images enter and
leave as (B, 3, S, S) in [0, 1]; the networks see [-1, 1] as the official code does with `--normalize_image`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from pipelines.synsin import geometry
from pipelines.synsin.networks import DepthUNet, FeatureEncoder, NetSpec, RefineDecoder
from pipelines.synsin.splat import SplatSettings, fill_holes, splat

RGB_SKIP_CHANNELS = 4
"""Extra decoder inputs with `rgb_skip`: the splatted RGB (normalised by coverage, [-1, 1]) and the coverage."""
HOLE_COVERAGE = 0.05
"""Below this splat coverage a pixel is a hole (filled as the spec's `hole_fill` says)."""
HOLE_FILLS = ("input", "pushpull")
"""How the RGB-skip base fills holes: the input's own pixel there, or push-pull from the splatted pixels around."""
REFINE_GAIN_INIT = 0.1
"""Start of the gain on the decoder's correction: small, so an untrained decoder adds little noise, but not 0, where
the gain and the decoder each wait for the other (a model started at 0 kept the gain at 0 for 1707 steps)."""


def fill_splat(splatted: torch.Tensor, coverage: torch.Tensor, source: torch.Tensor, hole_fill: str) -> torch.Tensor:
    """Splatted colours (B, 3, S, S) normalised by their coverage (B, 1, S, S); the holes (coverage below
    HOLE_COVERAGE) take the `source` image's own pixel ("input") or are filled by push-pull ("pushpull")."""
    rgb = splatted / coverage.clamp(min=1e-4)
    hole = coverage < HOLE_COVERAGE
    if hole_fill == "pushpull":
        return fill_holes(rgb, (~hole).to(rgb.dtype))
    return torch.where(hole, source, rgb)


@dataclass(frozen=True)
class ModelSpec:
    """Everything that fixes a SynSin model besides its weights (stored in every checkpoint)."""

    image_size: int = 256
    ngf: int = 64
    unet_filters: int = 32
    unet_levels: int = 8
    feature_dim: int = 64
    min_z: float = 1.0
    max_z: float = 100.0
    inverse_depth: bool = False
    fov_deg: float = 60.0
    radius_px: float = 4.0
    points_per_pixel: int = 128
    tau: float = 1.0
    noise: float = 1.0
    rgb_skip: bool = False
    """Studio-only (off in the official layout): splat the input RGB with the features, let the decoder see the
    coverage-normalised RGB and the coverage, and predict a correction to it."""
    hole_fill: str = "input"
    """Studio-only, with `rgb_skip`: how the base fills the splat's holes (HOLE_FILLS)."""

    @property
    def net(self) -> NetSpec:
        return NetSpec(self.ngf, self.unet_filters, self.unet_levels, self.feature_dim, self.noise,
                       RGB_SKIP_CHANNELS if self.rgb_skip else 0)  # fmt: skip

    @property
    def splat(self) -> SplatSettings:
        return SplatSettings(self.radius_px, self.points_per_pixel, self.tau)

    @property
    def tan_half_fov(self) -> float:
        return math.tan(math.radians(self.fov_deg) / 2.0)

    def as_dict(self) -> dict:
        return asdict(self)


def check_spec(spec: ModelSpec) -> None:
    """Refuse shapes the networks cannot take, with a sentence."""
    s = spec.image_size
    if s < 16 or s > 1024 or s & (s - 1):
        raise ValueError(f"Image size {s} is not supported: use a power of two from 16 to 1024.")
    if not (2 <= spec.unet_levels <= int(math.log2(s))):
        raise ValueError(f"A {s} px image allows 2 to {int(math.log2(s))} U-Net levels, not {spec.unet_levels}.")
    if spec.ngf < 2 or spec.ngf % 2 or spec.unet_filters < 1 or spec.feature_dim < 1:
        raise ValueError("ngf must be an even number >= 2; unet_filters and feature_dim at least 1.")
    if (
        not (0 < spec.min_z < spec.max_z)
        or not (0.1 <= spec.radius_px <= 16)
        or not (1 <= spec.points_per_pixel <= 256)
    ):
        raise ValueError("Need 0 < min_z < max_z, radius 0.1-16 px and 1-256 points per pixel.")
    if not (10.0 <= spec.fov_deg <= 120.0):
        raise ValueError(f"Field of view {spec.fov_deg}° is out of range: use 10 to 120°.")
    if spec.hole_fill not in HOLE_FILLS:
        raise ValueError(f"Unknown hole fill {spec.hole_fill!r}: use one of {', '.join(HOLE_FILLS)}.")


class Splatter(nn.Module):
    """Holds the official splatter's learnt default feature (kept for the key layout; the official forward does
    not use it either)."""

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.default_feature = nn.Parameter(torch.zeros(1, feature_dim, 1))


class PointsTransformer(nn.Module):
    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.splatter = Splatter(feature_dim)


@dataclass
class Synthesis:
    """One forward pass: the refined view, what came before refinement, and the depth (all batched, NCHW)."""

    image: torch.Tensor  # (B, 3, S, S) in [0, 1]
    depth: torch.Tensor  # (B, 1, S, S) view-space z of the source pixels
    features: torch.Tensor  # (B, C, S*S) source features (the point cloud's)
    points_view: torch.Tensor  # (B, S*S, 3) the cloud in the source camera
    projected: torch.Tensor  # (B, C, S, S) splatted features in the target view
    coverage: torch.Tensor  # (B, 1, S, S)


class SynSin(nn.Module):
    """Generator. `forward(image, r_rel, t_rel)` with image (B, 3, S, S) in [0, 1], r_rel (B, 3, 3), t_rel (B, 3)."""

    def __init__(self, spec: ModelSpec, spectral: bool = True) -> None:
        super().__init__()
        check_spec(spec)
        self.spec = spec
        self.encoder = FeatureEncoder(spec.net, spectral)
        self.pts_regressor = DepthUNet(spec.unet_filters, spec.unet_levels, spectral)
        self.pts_transformer = PointsTransformer(spec.feature_dim)
        self.projector = RefineDecoder(spec.net, spectral)
        if spec.rgb_skip:
            # The decoder's correction enters through a learnt gain (REFINE_GAIN_INIT): at full strength an
            # untrained decoder only adds noise (measured: -1.3 dB after 200 steps).
            self.refine_gain = nn.Parameter(torch.full((1,), REFINE_GAIN_INIT))

    def depth(self, image01: torch.Tensor) -> torch.Tensor:
        """Depth (B, 1, S, S) of each pixel: a sigmoid into [min_z, max_z], or the official inverse-depth map."""
        logits = self.pts_regressor(image01 * 2.0 - 1.0)
        if self.spec.inverse_depth:
            return 1.0 / (torch.sigmoid(logits) * 10.0 + 0.01)
        return torch.sigmoid(logits) * (self.spec.max_z - self.spec.min_z) + self.spec.min_z

    def encode(self, image01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(features (B, C, S*S), depth (B, 1, S, S), points in the source view (B, S*S, 3)). With `rgb_skip`
        the input's RGB in [-1, 1] is appended as the last 3 feature channels (C = feature_dim + 3)."""
        b = image01.shape[0]
        feats = self.encoder(image01 * 2.0 - 1.0).reshape(b, self.spec.feature_dim, -1)
        if self.spec.rgb_skip:
            feats = torch.cat([feats, image01.reshape(b, 3, -1) * 2.0 - 1.0], dim=1)
        depth = self.depth(image01)
        return feats, depth, geometry.lift(depth, self.spec.tan_half_fov)

    def render(
        self, feats: torch.Tensor, points_view: torch.Tensor, r_rel: torch.Tensor, t_rel: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(refined image in [0, 1], projected features, coverage) of a cloud seen from the target camera."""
        moved = geometry.transform(points_view, r_rel, t_rel)
        pts_ndc = geometry.project(moved, self.spec.tan_half_fov)
        projected, coverage = splat(pts_ndc, feats, self.spec.image_size, self.spec.splat)
        if not self.spec.rgb_skip:
            return self.projector(projected) * 0.5 + 0.5, projected, coverage
        base = self.base(feats, projected, coverage)
        correction = self.projector(torch.cat([projected[:, :-3], base, coverage], dim=1))
        return (base + self.refine_gain * correction) * 0.5 + 0.5, projected, coverage

    def base(self, feats: torch.Tensor, projected: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
        """The RGB-skip base in [-1, 1]: the splatted input RGB normalised by coverage, holes filled."""
        source = feats[:, -3:].reshape(-1, 3, self.spec.image_size, self.spec.image_size)
        return fill_splat(projected[:, -3:], coverage, source, self.spec.hole_fill).clamp(-1, 1)

    def forward(self, image01: torch.Tensor, r_rel: torch.Tensor, t_rel: torch.Tensor) -> Synthesis:
        feats, depth, points = self.encode(image01)
        image, projected, coverage = self.render(feats, points, r_rel, t_rel)
        return Synthesis(image, depth, feats, points, projected, coverage)
