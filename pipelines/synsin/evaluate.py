"""Held-out evaluation of a SynSin model against three baselines on the same pairs, and of its depth against the
true depth (which only rendered data allows).

Baselines: copy the input; splat the input's RGB at one constant depth (the data set's median true depth); splat it
with the true z-buffer depth. The splat baselines normalise by the rendered coverage and fill uncovered pixels
with the input's own pixel, or (the `_pushpull` rows) by push-pull from the splatted pixels around them, as the
studio model's base does. PSNR (dB, per image, then averaged) and SSIM (torchmetrics, 11-px Gaussian window).
Depth: AbsRel after per-image median scaling, mean |s·d - d*| / d* with s = median(d*) / median(d).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from pipelines.synsin import geometry
from pipelines.synsin.model import SynSin, fill_splat
from pipelines.synsin.rooms import PairBatch
from pipelines.synsin.splat import splat

METHODS = ("synsin", "copy_input", "splat_constant_depth", "splat_true_depth", "splat_constant_depth_pushpull",
           "splat_true_depth_pushpull")
"""The model and the baselines; the `_pushpull` splats fill holes as a `hole_fill="pushpull"` model's base does."""


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of (B, 3, H, W) images in [0, 1]: (B,)."""
    mse = (pred.clamp(0, 1) - target).pow(2).flatten(1).mean(1).clamp(min=1e-10)
    return -10.0 * torch.log10(mse)


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (B,) of (B, 3, H, W) images in [0, 1]."""
    return structural_similarity_index_measure(pred.clamp(0, 1), target, data_range=1.0, reduction="none")


def abs_rel(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Per-image AbsRel (B,) after median scaling, over pixels with a true depth > 0."""
    out = []
    for p, t in zip(pred.flatten(1), true.flatten(1)):
        valid = t > 0
        p, t = p[valid], t[valid]
        s = t.median() / p.median().clamp(min=1e-6)
        out.append(((s * p - t).abs() / t).mean())
    return torch.stack(out)


def splat_rgb(
    model_or_spec, src: torch.Tensor, depth: torch.Tensor, r: torch.Tensor, t: torch.Tensor, fill: str = "input"
) -> torch.Tensor:
    """The input RGB splatted into the target view with the given depth (B, 1, S, S), normalised by coverage,
    holes filled with the input's pixel (`fill="input"`) or by push-pull (`"pushpull"`): (B, 3, S, S)."""
    spec = getattr(model_or_spec, "spec", model_or_spec)
    pts = geometry.project(geometry.transform(geometry.lift(depth, spec.tan_half_fov), r, t), spec.tan_half_fov)
    out, cov = splat(pts, src.flatten(2), spec.image_size, spec.splat)
    return fill_splat(out, cov, src, fill).clamp(0, 1)


def predict(model: SynSin, batch: PairBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(refined view, depth) under no_grad, in eval mode."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(batch.src, batch.r_rel, batch.t_rel)
    model.train(was_training)
    return out.image.clamp(0, 1), out.depth


def evaluate_steps(
    model: SynSin, data: PairBatch, chunk: int = 8, baselines: bool = True, lpips: Callable | None = None
) -> Iterator[str]:
    """A generator (a message per chunk) that returns {metric: value} over all pairs of `data` and the first
    chunk's predictions (for pictures). Metric keys: psnr_<method>, ssim_<method> (lpips_<method> when an LPIPS
    function is given), depth_absrel and depth_absrel_constant (a constant depth map scores this after median
    scaling: the floor to read the learned depth against)."""
    sums: dict[str, float] = {}
    constant = float(data.src_depth[data.src_depth > 0].median())
    first = None
    for start in range(0, len(data), chunk):
        b = data.take(slice(start, start + chunk))
        pred, depth = predict(model, b)
        images = {"synsin": pred}
        if baselines:
            with torch.no_grad():
                images["copy_input"] = b.src
                flat = torch.full_like(b.src_depth, constant)
                for fill, suffix in (("input", ""), ("pushpull", "_pushpull")):
                    images[f"splat_constant_depth{suffix}"] = splat_rgb(model, b.src, flat, b.r_rel, b.t_rel, fill)
                    images[f"splat_true_depth{suffix}"] = splat_rgb(model, b.src, b.src_depth, b.r_rel, b.t_rel, fill)
        scores = {"psnr": psnr, "ssim": ssim, **({"lpips": lpips} if lpips is not None else {})}
        for name, img in images.items():
            for metric, fn in scores.items():
                key = f"{metric}_{name}"
                sums[key] = sums.get(key, 0.0) + float(fn(img, b.tgt).sum())
        flat = torch.ones_like(depth)
        for key, d in (("depth_absrel", depth), ("depth_absrel_constant", flat)):
            sums[key] = sums.get(key, 0.0) + float(abs_rel(d, b.src_depth).sum())
        if first is None:
            first = {**images, "depth": depth, "target": b.tgt, "source": b.src, "true_depth": b.src_depth}
        yield f"evaluated {min(start + chunk, len(data))}/{len(data)} held-out pairs"
    metrics = {k: v / len(data) for k, v in sums.items()}
    return metrics, first


def comparison_table(metrics: dict[str, float]) -> list[list]:
    """Rows [method, PSNR dB, SSIM, LPIPS or "not computed"] for the methods present in `metrics`."""
    rows = []
    for name in METHODS:
        if f"psnr_{name}" in metrics:
            lp = metrics.get(f"lpips_{name}")
            rows.append([name.replace("_", " "), round(metrics[f"psnr_{name}"], 2), round(metrics[f"ssim_{name}"], 3),
                         "not computed" if lp is None else round(lp, 3)])  # fmt: skip
    return rows
