"""SynSin's networks with the official module names and shapes: the noise-conditioned ResNet blocks of the feature
encoder and refinement decoder, the U-Net depth regressor and the multi-scale PatchGAN discriminator.

Every convolution and linear layer of the generator is spectrally normalised when `spectral=True` (training; the
state dict then holds `weight_orig`, `weight_u`, `weight_v`, exactly as the official checkpoints do). With
`spectral=False` the same modules hold a plain `weight`: the layout a folded checkpoint loads into for inference
(see `checkpoints.fold_spectral`). Images are (B, 3, H, W) in [-1, 1] inside these modules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

NOISE_SIZE = 20
"""Width of the noise vector each noise-conditioned batch norm maps to a per-channel gain and bias."""


@dataclass(frozen=True)
class NetSpec:
    """What fixes the generator's shapes: `ngf` (the ResNet width; 64 official), `unet_filters` (32 official),
    `unet_levels` (8 official, for 256 px; log2 of the input size at most), `feature_dim` (64) and `noise`, the
    scale of the conditional norms' noise (1 official; 0 makes them plain batch norms, same weights);
    `decoder_extra` extra decoder input channels (0 official; the studio's RGB skip adds 4)."""

    ngf: int = 64
    unet_filters: int = 32
    unet_levels: int = 8
    feature_dim: int = 64
    noise: float = 1.0
    decoder_extra: int = 0


def _sn(module: nn.Module, spectral: bool) -> nn.Module:
    # The hook-based spectral norm stores weight_orig/weight_u/weight_v: the official checkpoints' key layout.
    return nn.utils.spectral_norm(module) if spectral else module


def conv(c_in: int, c_out: int, k: int, pad: int, stride: int, spectral: bool) -> nn.Module:
    return _sn(nn.Conv2d(c_in, c_out, kernel_size=k, padding=pad, stride=stride), spectral)


class StoredStatsNorm(nn.Module):
    """Batch normalisation without its own affine terms (the gain and bias come from outside), with running
    statistics in buffers named as the official checkpoints name them."""

    def __init__(self, channels: int, momentum: float | None = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps  # momentum None: a plain average over the batches seen
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))
        self.register_buffer("accumulation_counter", torch.zeros(1))

    def forward(self, x: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean = x.mean(dim=(0, 2, 3))
            var = (x * x).mean(dim=(0, 2, 3)) - mean * mean
            with torch.no_grad():
                self.accumulation_counter += 1
                weight = self.momentum if self.momentum is not None else 1.0 / float(self.accumulation_counter)
                self.stored_mean.lerp_(mean.detach(), weight)
                self.stored_var.lerp_(var.detach(), weight)
        else:
            mean, var = self.stored_mean, self.stored_var
        scale = torch.rsqrt(var.clamp(min=0) + self.eps)[None, :, None, None] * gain
        return (x - mean[None, :, None, None]) * scale + bias


class NoiseNorm(nn.Module):
    """BigGAN-style conditional batch norm: a random vector per sample sets each channel's gain and bias.

    In training the noise is fresh each call; in eval it comes from `seed` (so a view is reproducible and the
    sweep does not flicker), drawn on the CPU and moved, the same on every device.
    """

    def __init__(self, channels: int, spectral: bool, seed: int = 0, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale  # 1 = the official noise; 0 = plain batch norm (the same weights, never used)
        self.gain = _sn(nn.Linear(NOISE_SIZE, channels, bias=False), spectral)
        self.bias = _sn(nn.Linear(NOISE_SIZE, channels, bias=False), spectral)
        self.bn = StoredStatsNorm(channels)
        self.seed = seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        if self.scale == 0:
            return self.bn(x, x.new_ones(1, x.shape[1], 1, 1), x.new_zeros(1, x.shape[1], 1, 1))
        if self.training:
            noise = torch.randn(b, NOISE_SIZE, device=x.device) * self.scale
        else:
            gen = torch.Generator().manual_seed(self.seed)
            noise = (torch.randn(1, NOISE_SIZE, generator=gen) * self.scale).expand(b, -1).to(x.device)
        gain = (1.0 + self.gain(noise))[:, :, None, None]  # (B, C, 1, 1)
        bias = self.bias(noise)[:, :, None, None]
        return self.bn(x, gain, bias)


class ResBlock(nn.Module):
    """Two 3x3 convolutions after noise-norm + ReLU, a 1x1 shortcut when the width or resolution changes; `resample`
    is None, "down" (3x3 average pool, stride 2) or "up" (bilinear x2). Submodule indices match the official."""

    def __init__(
        self, c_in: int, c_out: int, resample: str | None, spectral: bool, seed: int, noise: float = 1.0
    ) -> None:
        super().__init__()
        resampler: nn.Module = nn.Identity()
        if resample == "down":
            resampler = nn.AvgPool2d(kernel_size=3, stride=2, padding=1)
        elif resample == "up":
            resampler = nn.Upsample(scale_factor=2, mode="bilinear")
        self.ch_a = nn.Sequential(
            NoiseNorm(c_in, spectral, seed, noise),
            nn.ReLU(),
            conv(c_in, c_out, 3, 1, 1, spectral),
            NoiseNorm(c_out, spectral, seed + 1, noise),
            nn.ReLU(),
            conv(c_out, c_out, 3, 1, 1, spectral),
            resampler,
        )
        if resample or c_in != c_out:
            self.ch_b: nn.Module = nn.Sequential(conv(c_in, c_out, 1, 0, 1, spectral), resampler)
        else:
            self.ch_b = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ch_a(x) + self.ch_b(x)


def encoder_widths(ngf: int, feature_dim: int) -> list[int]:
    """The official "256W8UpDown64" encoder: 8 blocks at full resolution, 3 → ngf/2 (x3) → ngf (x4) → features."""
    return [3, ngf // 2, ngf // 2, ngf // 2, ngf, ngf, ngf, ngf, feature_dim]


def decoder_plan(ngf: int, feature_dim: int) -> tuple[list[int], list[str | None]]:
    """The official decoder: widths and per-block resampling (two halvings, two doublings)."""
    widths = [feature_dim, ngf, ngf * 2, ngf * 4, ngf * 4, ngf * 2, ngf * 2, ngf * 2, 3]
    resample = [None, "down", "down", None, "up", "up", None, None]
    return widths, resample


class FeatureEncoder(nn.Module):
    """RGB (B, 3, H, W) → features (B, feature_dim, H, W) through 8 ResNet blocks (module path `gblocks.i`)."""

    def __init__(self, spec: NetSpec, spectral: bool) -> None:
        super().__init__()
        w = encoder_widths(spec.ngf, spec.feature_dim)
        self.gblocks = nn.Sequential(
            *(ResBlock(w[i], w[i + 1], None, spectral, 100 + 2 * i, spec.noise) for i in range(8))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gblocks(x)


class RefineDecoder(nn.Module):
    """Projected features (B, feature_dim, H, W) → RGB in [-1, 1] (module path `eblocks.i`, then tanh)."""

    def __init__(self, spec: NetSpec, spectral: bool) -> None:
        super().__init__()
        w, resample = decoder_plan(spec.ngf, spec.feature_dim + spec.decoder_extra)
        self.eblocks = nn.Sequential(
            *(ResBlock(w[i], w[i + 1], resample[i], spectral, 200 + 2 * i, spec.noise) for i in range(8))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.eblocks(x))


def unet_channels(filters: int, levels: int) -> list[int]:
    """Encoder widths of the U-Net: f, 2f, 4f, then 8f for every deeper level."""
    return [filters * min(2**i, 8) for i in range(levels)]


def unet_norm_names(filters: int, levels: int) -> tuple[list[str], list[str]]:
    """Names of the batch norms after encoder levels 2..L-1 and decoder steps 1..L-1, numbered per width as the
    official 8-level U-Net numbers them (batch_norm2_0, batch_norm8_4, ...; width f is plain `batch_norm`)."""
    chans = unet_channels(filters, levels)
    counters: dict[int, int] = {}

    def name(c: int) -> str:
        mult = c // filters
        if mult == 1:
            return "batch_norm"
        k = counters.get(mult, 0)
        counters[mult] = k + 1
        return f"batch_norm{mult}_{k}"

    enc = [name(chans[i]) for i in range(1, levels - 1)]
    dec = [name(chans[levels - 1 - j]) for j in range(1, levels)]
    return enc, dec


class DepthUNet(nn.Module):
    """The official U-Net (4x4 stride-2 encoder convs, bilinear up + 3x3 decoder convs, skip connections), with
    `levels` halvings (8 for 256 px, as published; fewer for small images): (B, 3, S, S) → (B, 1, S, S) logits."""

    def __init__(self, filters: int, levels: int, spectral: bool, c_in: int = 3, c_out: int = 1) -> None:
        super().__init__()
        chans = unet_channels(filters, levels)
        self.levels = levels
        for i in range(levels):
            setattr(self, f"conv{i + 1}", conv(c_in if i == 0 else chans[i - 1], chans[i], 4, 1, 2, spectral))
        for j in range(1, levels + 1):
            c_from = chans[-1] if j == 1 else 2 * chans[levels - j]
            c_to = chans[levels - 1 - j] if j < levels else c_out
            setattr(self, f"dconv{j}", conv(c_from, c_to, 3, 1, 1, spectral))
        enc_names, dec_names = unet_norm_names(filters, levels)
        self.enc_norms, self.dec_norms = enc_names, dec_names
        for i, n in enumerate(enc_names):
            setattr(self, n, nn.BatchNorm2d(chans[i + 1]))
        for j, n in enumerate(dec_names):
            setattr(self, n, nn.BatchNorm2d(chans[levels - 2 - j]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.conv1(x)]  # e1
        for i in range(2, self.levels + 1):
            h = getattr(self, f"conv{i}")(F.leaky_relu(skips[-1], 0.2))
            if i < self.levels:  # no norm on the innermost code
                h = getattr(self, self.enc_norms[i - 2])(h)
            skips.append(h)
        d = skips[-1]
        for j in range(1, self.levels + 1):
            up = F.interpolate(F.relu(d), scale_factor=2, mode="bilinear")
            d = getattr(self, f"dconv{j}")(up)
            if j < self.levels:
                d = torch.cat((getattr(self, self.dec_norms[j - 1])(d), skips[self.levels - 1 - j]), 1)
        return d


class PatchDiscriminator(nn.Module):
    """pix2pixHD's 4-layer PatchGAN (spectral norm + instance norm in the middle layers): returns every layer's
    output, the last being the real/fake map (module names `model0`..`model4` as in the official code)."""

    def __init__(self, ndf: int, c_in: int = 3) -> None:
        super().__init__()
        self.model0 = nn.Sequential(nn.Conv2d(c_in, ndf, 4, stride=2, padding=2), nn.LeakyReLU(0.2))
        nf = ndf
        for n in range(1, 4):
            prev, nf = nf, min(nf * 2, 512)
            layer = nn.utils.spectral_norm(nn.Conv2d(prev, nf, 4, stride=1 if n == 3 else 2, padding=2, bias=False))
            block = nn.Sequential(nn.Sequential(layer, nn.InstanceNorm2d(nf, affine=False)), nn.LeakyReLU(0.2))
            setattr(self, f"model{n}", block)
        self.model4 = nn.Sequential(nn.Conv2d(nf, 1, 4, stride=1, padding=2))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i in range(5):
            x = getattr(self, f"model{i}")(x)
            outs.append(x)
        return outs


class MultiscaleDiscriminator(nn.Module):
    """Two PatchGANs, the second on a 2x average-pooled image: a list (per scale) of per-layer outputs."""

    def __init__(self, ndf: int = 64, num_d: int = 2) -> None:
        super().__init__()
        self.num_d = num_d
        for i in range(num_d):
            setattr(self, f"discriminator_{i}", PatchDiscriminator(ndf))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                w = getattr(m, "weight_orig", m.weight)
                nn.init.xavier_normal_(w.data, gain=0.02)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        result = []
        for i in range(self.num_d):
            result.append(getattr(self, f"discriminator_{i}")(x))
            x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)
        return result


def refresh_statistics(model: nn.Module, batches: Iterable[tuple]) -> None:
    """Re-estimate every batch norm's running statistics as a plain average over `batches` (argument tuples for
    `model`), in training mode without gradients: BigGAN's "standing statistics", so eval mode matches what the
    weights now produce rather than a lagging moving average. Momenta are restored afterwards."""
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, StoredStatsNorm))]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = None
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
        else:
            m.stored_mean.zero_()
            m.stored_var.fill_(1.0)
            m.accumulation_counter.zero_()
    was_training = model.training
    model.train()
    with torch.no_grad():
        for args in batches:
            model(*args)
    model.train(was_training)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
