"""The camera fit shared by pose and tracking: Adam on a look-at camera centre, coarse to fine over image sizes,
with patience and IoU stopping rules."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from pipelines.pose.scene import Scene, SoftSettings, Target


@dataclass(frozen=True)
class FitOptions:
    """How one camera is optimised (copied from a pipeline Config)."""

    image_sizes: tuple[int, ...]
    faces_per_pixel: int
    sigma: float
    gamma: float
    loss: str
    w_silhouette: float
    w_rgb: float
    lr: float
    steps: int
    patience: int
    min_improvement: float
    stop_iou: float
    backend: str
    reduction: str = "mean"
    """mean (per pixel) or sum (the book's summed squared errors) of each loss's squared differences."""
    stop_loss: float = 0.0
    """End the fit once the weighted loss falls below this (the book's threshold stop); 0 = off."""

    def settings(self) -> list[SoftSettings]:
        return [SoftSettings(s, self.sigma, self.gamma, self.faces_per_pixel, self.backend) for s in self.image_sizes]

    @property
    def needs_rgb(self) -> bool:
        return self.loss in ("rgb", "both")


@dataclass
class FitStep:
    """One optimisation step: losses as floats, the camera after the step, and the render that was scored."""

    step: int
    stage: int
    size: int
    losses: dict[str, float]
    position: torch.Tensor  # (3,) camera centre after the step, detached
    alpha: torch.Tensor  # (S, S) soft silhouette before the step, detached
    rgb: torch.Tensor | None  # (S, S, 3) soft Phong render before the step, detached
    stopped: str = ""  # why the run ends after this step ("" while it goes on)


def stage_budgets(steps: int, n: int) -> list[int]:
    """Steps per coarse-to-fine stage: equal shares, the remainder to the last."""
    base = steps // n
    return [base] * (n - 1) + [steps - base * (n - 1)]


def scored_render(
    scene: Scene, target: Target, position: torch.Tensor, s: SoftSettings, opts: FitOptions
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor | None]:
    """The losses `opts.loss` asks for at one size, with the renders they scored: (losses, alpha (S, S), rgb (S, S, 3)
    or None when the loss uses no colour)."""
    losses: dict[str, torch.Tensor] = {}
    rgb = None
    if opts.needs_rgb:
        rgb, alpha = scene.phong(position, s)
        losses["rgb"] = _reduce((rgb - target.rgbs[s.image_size]) ** 2, opts.reduction)
    else:
        alpha = scene.silhouette(position, s)
    if opts.loss in ("silhouette", "both"):
        losses["silhouette"] = _reduce((alpha - target.masks[s.image_size]) ** 2, opts.reduction)
    return losses, alpha, rgb


def _reduce(squared: torch.Tensor, reduction: str) -> torch.Tensor:
    return squared.sum() if reduction == "sum" else squared.mean()


def silhouette_iou(alpha: torch.Tensor, mask: torch.Tensor) -> float:
    """IoU of the soft silhouette (S, S) and the target mask (S, S), both cut at 0.5."""
    with torch.no_grad():
        hard = alpha > 0.5
        union = (hard | (mask > 0.5)).sum().clamp(min=1)
        return float((hard & (mask > 0.5)).sum() / union)


def stop_reason(
    opts: FitOptions, last_stage: bool, iou: float, since_best: int, budget_spent: bool, loss: float = math.inf
) -> str:
    """Why the fit ends after this step ("" while it goes on): only the last (finest) stage can end it."""
    if last_stage and opts.stop_loss > 0 and loss < opts.stop_loss:
        return f"loss {loss:.4g} fell below {opts.stop_loss:g}"
    if last_stage and opts.stop_iou > 0 and iou >= opts.stop_iou:
        return f"IoU {iou:.3f} reached {opts.stop_iou:g}"
    if last_stage and opts.patience > 0 and since_best >= opts.patience:
        return f"no improvement for {opts.patience} steps"
    if last_stage and budget_spent:
        return "step budget spent"
    return ""


def fit_camera(scene: Scene, target: Target, start: torch.Tensor, opts: FitOptions) -> Iterator[FitStep]:
    """Adam on the camera centre (look-at origin, +Y up) from `start` (3,), coarse to fine over `opts.image_sizes`.

    A stage ends when its step budget is spent or, with `patience` > 0, when its loss has not improved by a
    fraction `min_improvement` of the best for `patience` steps; with `stop_iou` > 0 the run ends once the
    silhouette IoU at the finest size reaches it. Yields one FitStep per step (outside no_grad).
    """
    position = start.reshape(1, 3).to(scene.device).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([position], lr=opts.lr)
    settings = opts.settings()
    budgets = stage_budgets(opts.steps, len(settings))
    step = 0
    for stage, (s, budget) in enumerate(zip(settings, budgets, strict=True)):
        mask = target.masks[s.image_size]
        best, since_best = math.inf, 0
        last_stage = stage == len(settings) - 1
        for i in range(budget):
            losses, alpha, rgb = scored_render(scene, target, position, s, opts)
            total = opts.w_silhouette * losses.get("silhouette", 0.0) + opts.w_rgb * losses.get("rgb", 0.0)
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            step += 1
            iou = silhouette_iou(alpha, mask)
            value = float(total.detach())
            report = {k: float(v.detach()) for k, v in losses.items()} | {"total": value, "iou": iou}
            if not math.isfinite(value):
                raise ValueError("The loss became NaN or infinite: lower the learning rate or change the start pose.")
            if value < best * (1.0 - opts.min_improvement):
                best, since_best = value, 0
            else:
                since_best += 1
            stopped = stop_reason(opts, last_stage, iou, since_best, i == budget - 1, value)
            yield FitStep(
                step,
                stage,
                s.image_size,
                report,
                position.detach()[0].clone(),
                alpha.detach(),
                None if rgb is None else rgb.detach(),
                stopped,
            )
            if stopped:
                return
            if opts.patience > 0 and since_best >= opts.patience:
                break  # plateau: on to the next (finer) stage
