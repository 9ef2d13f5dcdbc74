"""GIRAFFE's 2D networks: the neural renderer (feature image -> RGB) and the DCGAN-style discriminator.

Parameter names follow the official modules (im2scene/giraffe/models/neural_renderer.py, im2scene/discriminator/
conv.py, im2scene/layers.py) so their state dicts load strictly: `conv_layers.*`, `conv_rgb.*`, the blur kernel
buffer `upsample_rgb.1.f`, and `blocks.*` / `conv_out` for the discriminator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Blur(nn.Module):
    """The separable [1, 2, 1] x [1, 2, 1] blur (normalised to sum 1), per channel, reflect-padded."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("f", torch.tensor([1.0, 2.0, 1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.f[None, :] * self.f[:, None]
        kernel = (kernel / kernel.sum()).expand(x.shape[1], 1, 3, 3)
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), kernel, groups=x.shape[1])


def renderer_blocks(image_size: int, feature_res: int) -> int:
    """Upsampling blocks from the feature image to the output (the official log2(size) - 4 for 16 px features)."""
    ratio = image_size // feature_res
    if ratio < 1 or ratio * feature_res != image_size or ratio & (ratio - 1):
        raise ValueError(
            f"The image size ({image_size}) must be the feature resolution ({feature_res}) times a power of two."
        )
    return int(math.log2(ratio))


class NeuralRenderer(nn.Module):
    """Feature image (B, input_dim, r, r) -> RGB (B, 3, r 2^n, r 2^n) in (0, 1).

    Each block upsamples the features (nearest) and applies a 3x3 conv + LeakyReLU, halving channels down to
    `min_feat`; an RGB skip path starts from a 3x3 conv of the input and, at each block, is upsampled (bilinear +
    blur) and adds a 3x3 conv of the block's features. A sigmoid ends it.
    """

    def __init__(self, n_blocks: int, n_feat: int = 128, input_dim: int = 128, min_feat: int = 32) -> None:
        super().__init__()
        if n_feat != input_dim:
            self.conv_in = nn.Conv2d(input_dim, n_feat, 1, 1, 0)
        widths = [n_feat] + [max(n_feat // 2 ** (i + 1), min_feat) for i in range(n_blocks)]
        # The official first layer halves n_feat without the floor; the later ones use the floor on both sides.
        self.conv_layers = nn.ModuleList(
            [nn.Conv2d(n_feat, n_feat // 2, 3, 1, 1)]
            + [nn.Conv2d(widths[i + 1], widths[i + 2], 3, 1, 1) for i in range(n_blocks - 1)]
        )
        self.conv_rgb = nn.ModuleList(
            [nn.Conv2d(input_dim, 3, 3, 1, 1)] + [nn.Conv2d(widths[i + 1], 3, 3, 1, 1) for i in range(n_blocks)]
        )
        self.upsample_rgb = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), Blur())

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        net = self.conv_in(feats) if hasattr(self, "conv_in") else feats
        rgb = self.upsample_rgb(self.conv_rgb[0](feats))
        for idx, layer in enumerate(self.conv_layers):
            net = F.leaky_relu(layer(F.interpolate(net, scale_factor=2.0, mode="nearest")), 0.2)
            rgb = rgb + self.conv_rgb[idx + 1](net)
            if idx < len(self.conv_layers) - 1:
                rgb = self.upsample_rgb(rgb)
        return torch.sigmoid(rgb)


class DCDiscriminator(nn.Module):
    """Image (B, 3, S, S) -> logit (B, 1): log2(S) - 2 stride-2 4x4 convs (no bias) with LeakyReLU(0.2), doubling
    channels up to `n_feat`, then a 4x4 conv to one logit."""

    def __init__(self, image_size: int = 64, n_feat: int = 512) -> None:
        super().__init__()
        n_layers = int(math.log2(image_size) - 2)
        if 2 ** (n_layers + 2) != image_size or n_layers < 1:
            raise ValueError(f"The discriminator needs a power-of-two image size of at least 8, got {image_size}.")
        chans = [3] + [n_feat // 2 ** (n_layers - 1 - i) for i in range(n_layers)]
        self.blocks = nn.ModuleList([nn.Conv2d(chans[i], chans[i + 1], 4, 2, 1, bias=False) for i in range(n_layers)])
        self.conv_out = nn.Conv2d(n_feat, 1, 4, 1, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.blocks:
            x = F.leaky_relu(layer(x), 0.2)
        return self.conv_out(x).reshape(len(x), 1)
