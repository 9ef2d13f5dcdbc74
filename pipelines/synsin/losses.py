"""SynSin's training losses: L1 + perceptual + hinge GAN + discriminator feature matching [1 / 10 / 1 / 10].

The perceptual term is VGG-19's (relu1_1 ... relu5_1, weights 1/32 ... 1) when the operator supplies torchvision
VGG-19 weights; otherwise a documented substitute that needs no pretrained network: the L1 distance between
image gradients (finite differences of x and y) over a three-level image pyramid, which, like the VGG term,
rewards sharp edges and texture in the right places rather than a blurred average.

Studio auxiliary terms (not in the official recipe; weight 0 there): a monodepth-style photometric loss that
teaches the depth network without depth labels — lift the source pixels with the predicted depth, move them into
the target camera, sample the target image there and compare with the source (0.85 · (1 - SSIM) / 2 + 0.15 · L1,
only where the projection lands inside the target image) — and an edge-aware smoothness of the mean-normalised
inverse depth. Both give dense gradients to the depth, unlike the few-pixel splat discs.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pipelines.synsin import geometry

VGG_FILE_NAMES = ("vgg19.pth", "vgg19-dcbb9e9d.pth")
"""torchvision VGG-19 state dicts an operator may put in --models-dir for the perceptual loss."""
VGG_LAYER_ENDS = (2, 7, 12, 21, 30)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 in vgg19.features
VGG_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def gradient_pyramid_loss(pred: torch.Tensor, target: torch.Tensor, levels: int = 3) -> torch.Tensor:
    """The perceptual substitute: mean L1 between x/y finite differences of pred and target (B, 3, H, W) at
    `levels` scales (each half the last, average-pooled)."""
    total = pred.new_zeros(())
    for level in range(levels):
        if level:
            pred, target = F.avg_pool2d(pred, 2), F.avg_pool2d(target, 2)
        for dim in (2, 3):
            total = total + (torch.diff(pred, dim=dim) - torch.diff(target, dim=dim)).abs().mean()
    return total / levels


class VggPerceptual(nn.Module):
    """The official perceptual loss over torchvision's VGG-19 features (frozen; ImageNet-normalised input)."""

    def __init__(self, state_dict: dict[str, torch.Tensor]) -> None:
        super().__init__()
        import torchvision

        vgg = torchvision.models.vgg19(weights=None)
        missing, unexpected = vgg.load_state_dict(state_dict, strict=False)
        if any(k.startswith("features.") for k in missing):
            raise ValueError(f"The VGG-19 file lacks {len(missing)} feature weights (e.g. {missing[0]}).")
        self.features = vgg.features[: VGG_LAYER_ENDS[-1]].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406])[None, :, None, None])
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225])[None, :, None, None])

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = torch.cat([pred, target]).sub(self.mean).div(self.std)
        total, start = x.new_zeros(()), 0
        for end, w in zip(VGG_LAYER_ENDS, VGG_WEIGHTS):
            x = self.features[start:end](x)
            start = end
            a, b = x.chunk(2)
            total = total + w * (a - b.detach()).abs().mean()
        return total


def load_vgg(models_dir: Path | None) -> VggPerceptual | None:
    """The VGG perceptual loss from the first VGG-19 file in `models_dir`, or None (the substitute is used)."""
    if models_dir is None:
        return None
    for name in VGG_FILE_NAMES:
        path = Path(models_dir) / name
        if path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)
            return VggPerceptual(state)
    return None


def hinge_d(pred_fake: list[list[torch.Tensor]], pred_real: list[list[torch.Tensor]]) -> torch.Tensor:
    """Discriminator hinge loss, averaged over scales: E[relu(1 - D(real))] + E[relu(1 + D(fake))]."""
    loss = sum(F.relu(1.0 - r[-1]).mean() + F.relu(1.0 + f[-1]).mean() for f, r in zip(pred_fake, pred_real))
    return loss / len(pred_fake)


def hinge_g(pred_fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Generator hinge loss: -E[D(fake)], averaged over scales."""
    return sum(-f[-1].mean() for f in pred_fake) / len(pred_fake)


def feature_matching(pred_fake: list[list[torch.Tensor]], pred_real: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between the discriminator's intermediate features of fake and (detached) real, summed over layers,
    averaged over scales (the weight is applied by the caller)."""
    total = pred_fake[0][0].new_zeros(())
    for f, r in zip(pred_fake, pred_real):
        for a, b in zip(f[:-1], r[:-1]):
            total = total + (a - b.detach()).abs().mean()
    return total / len(pred_fake)


def ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM (B, C, H, W) over 3x3 windows (reflection padding), as monodepth uses it."""
    x, y = F.pad(x, (1, 1, 1, 1), mode="reflect"), F.pad(y, (1, 1, 1, 1), mode="reflect")
    mx, my = F.avg_pool2d(x, 3, 1), F.avg_pool2d(y, 3, 1)
    vx = F.avg_pool2d(x * x, 3, 1) - mx * mx
    vy = F.avg_pool2d(y * y, 3, 1) - my * my
    cxy = F.avg_pool2d(x * y, 3, 1) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def warp_target(
    tgt: torch.Tensor, depth: torch.Tensor, r_rel: torch.Tensor, t_rel: torch.Tensor, tan_half_fov: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The target image (B, 3, S, S) sampled where each source pixel, lifted with `depth` (B, 1, S, S), lands in the
    target camera: (warped (B, 3, S, S), valid (B, 1, S, S) where it lands inside the image, in front)."""
    b, _, s, _ = depth.shape
    pts = geometry.project(geometry.transform(geometry.lift(depth, tan_half_fov), r_rel, t_rel), tan_half_fov)
    grid = -pts[..., :2].reshape(b, s, s, 2)  # NDC +x is left and +y up; grid_sample's -1 is left and top
    warped = F.grid_sample(tgt, grid, mode="bilinear", padding_mode="border", align_corners=False)
    valid = (grid.abs() < 1.0).all(-1) & (pts[..., 2].reshape(b, s, s) > 0)
    return warped, valid[:, None].to(tgt.dtype)


def photometric_loss(
    src: torch.Tensor, tgt: torch.Tensor, depth: torch.Tensor, r_rel: torch.Tensor, t_rel: torch.Tensor,
    tan_half_fov: float, alpha: float = 0.85, blurs: tuple[int, ...] = (1,),
) -> torch.Tensor:  # fmt: skip
    """Mean of alpha · (1 - SSIM) / 2 + (1 - alpha) · L1 between the source and the warped target, over the
    pixels whose projection lands in the target image (see `warp_target`), averaged over the images box-blurred
    with each odd width in `blurs` (1 = sharp): blurred copies widen the basin a wrong depth can descend from,
    as monodepth's coarse scales do, without changing the geometry."""
    total = src.new_zeros(())
    for k in blurs:
        s, t = (
            (src, tgt)
            if k == 1
            else (F.avg_pool2d(F.pad(x, (k // 2,) * 4, mode="replicate"), k, 1) for x in (src, tgt))
        )
        warped, valid = warp_target(t, depth, r_rel, t_rel, tan_half_fov)
        diff = alpha * ((1.0 - ssim_map(warped, s)) / 2.0).clamp(0, 1) + (1.0 - alpha) * (warped - s).abs()
        total = total + (diff.mean(1, keepdim=True) * valid).sum() / valid.sum().clamp(min=1.0)
    return total / len(blurs)


def smoothness_loss(depth: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Edge-aware smoothness of the mean-normalised inverse depth: |∂d| · exp(-|∂I|), in x and y."""
    disp = 1.0 / depth.clamp(min=1e-3)
    disp = disp / disp.mean((2, 3), keepdim=True)
    total = depth.new_zeros(())
    for dim in (2, 3):
        weight = torch.exp(-torch.diff(image, dim=dim).abs().mean(1, keepdim=True))
        total = total + (torch.diff(disp, dim=dim).abs() * weight).mean()
    return total
