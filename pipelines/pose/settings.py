"""The camera-fitting settings shared by pose and pose-track: the dataclass both Configs extend, its validation
(with the rasteriser's memory guard), and the FitOptions it becomes."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipelines.pose.fit import FitOptions
from pipelines.pose.pictures import VIDEO_FORMATS
from pipelines.render.factories import raster_bytes

# The torch rasteriser holds dense (S, S, K) fragments: sizes and K whose estimate (rendering.raster_bytes, 48 bytes a
# face slot) passes this are refused, as the Shading lab refuses over its default 2,048 MiB budget.
RASTER_BUDGET_BYTES = 2 * 2**30
LOSSES = ("silhouette", "rgb", "both")
RASTERIZERS = ("auto", "torch", "pytorch3d")


@dataclass(frozen=True)
class PoseOptimSettings:
    """The camera-fitting settings shared by pose and pose-track; each Config adds its own step budget."""

    loss: str = "silhouette"
    """silhouette (soft silhouette shader), rgb (soft Phong), or both."""
    w_silhouette: float = 1.0
    """Weight of the silhouette loss: mean squared difference between the soft silhouette and the target mask."""
    w_rgb: float = 1.0
    """Weight of the RGB loss: mean squared difference between the soft Phong render and the target image."""
    image_sizes: tuple[int, ...] = (256,)
    """Render sizes in px, used in turn (coarse to fine) in each fit (each frame, when tracking); each stage gets an
    equal share of the steps."""
    faces_per_pixel: int = 100
    """Faces blended per pixel by the soft rasteriser."""
    sigma: float = 1e-4
    """Soft edge width in squared NDC units (blur radius = log(1/1e-4 − 1)·sigma, where the edge fades to 1e-4)."""
    gamma: float = 1e-4
    """Depth sharpness of the soft Phong blend (smaller: the nearest face dominates)."""
    lr: float = 0.05
    """Adam learning rate on the camera centre (tracking starts a fresh optimiser each frame)."""
    patience: int = 0
    """Stopping rule: end a stage (at the last size: the fit, or the frame when tracking) after this many steps
    without improvement; 0 = off."""
    min_improvement: float = 0.01
    """What counts as an improvement for patience: the loss falls by this fraction of its best value."""
    stop_iou: float = 0.0
    """Stopping rule: end the fit (the frame, when tracking) once the silhouette IoU at the last size reaches this;
    0 = off."""
    reduction: str = "mean"
    """How each loss adds up its squared differences: mean (per pixel) or sum (the book)."""
    stop_loss: float = 0.0
    """End the fit once the weighted loss falls below this (the book's threshold stop); 0 = off."""
    light_location: tuple[float, float, float] = (2.0, 2.0, 2.0)
    """The point light's position in world space (the book: (2, 2, -2))."""
    rgb_background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Background colour of the RGB renders and targets (the book: white (1, 1, 1))."""
    rasterizer: str = "auto"
    """torch (the batched soft rasteriser of pipelines/pose/raster.py), pytorch3d (MeshRasterizer; on the CPU with its
    fragments recomputed in torch for correct gradients), or auto (pytorch3d on CUDA, torch elsewhere)."""
    videos: tuple[str, ...] = ("gif", "mp4")
    """Videos to write (of the optimisation, or of the tracked sequence): gif, mp4."""


def validate_optim(cfg: PoseOptimSettings, steps: int) -> None:
    """Raise ValueError with one sentence for fitting settings that cannot work (pose and pose-track)."""
    if cfg.loss not in LOSSES:
        raise ValueError(f"Unknown loss {cfg.loss!r}: choose silhouette, rgb or both.")
    if cfg.reduction not in ("mean", "sum"):
        raise ValueError(f"Unknown reduction {cfg.reduction!r}: choose mean or sum.")
    if len(cfg.light_location) != 3 or len(cfg.rgb_background) != 3 or cfg.stop_loss < 0:
        raise ValueError("The light location and background need 3 values, and stop_loss must not be negative.")
    if cfg.rasterizer not in RASTERIZERS:
        raise ValueError(f"Unknown rasterizer {cfg.rasterizer!r}: choose auto, torch or pytorch3d.")
    if not cfg.image_sizes or any(not 16 <= s <= 1024 for s in cfg.image_sizes):
        raise ValueError("Image sizes must be between 16 and 1024 px (at least one).")
    if steps < 1 or cfg.faces_per_pixel < 1:
        raise ValueError("Steps and faces per pixel must be at least 1.")
    for size in cfg.image_sizes:
        need = raster_bytes(1, size, size, cfg.faces_per_pixel)
        if need > RASTER_BUDGET_BYTES:
            raise ValueError(
                f"Rendering at {size} px with {cfg.faces_per_pixel} faces per pixel would need about "
                f"{need / 2**20:,.0f} MiB for the rasteriser, over the {RASTER_BUDGET_BYTES / 2**20:,.0f} MiB budget: "
                "lower the image size or the faces per pixel."
            )
    if not (cfg.lr > 0 and cfg.sigma > 0 and cfg.gamma > 0):
        raise ValueError("The learning rate, sigma and gamma must be positive.")
    if cfg.w_silhouette < 0 or cfg.w_rgb < 0:
        raise ValueError("Loss weights must not be negative.")
    if (cfg.loss != "rgb" and cfg.w_silhouette == 0 and (cfg.loss == "silhouette" or cfg.w_rgb == 0)) or (
        cfg.loss == "rgb" and cfg.w_rgb == 0
    ):
        raise ValueError("The chosen loss has weight 0, so nothing would move: give it a positive weight.")
    unknown = sorted(set(cfg.videos) - set(VIDEO_FORMATS))
    if unknown:
        raise ValueError(f"Unknown video format {unknown[0]!r}: choose gif or mp4.")


def backend_for(name: str, device: torch.device) -> str:
    return ("pytorch3d" if device.type == "cuda" else "torch") if name == "auto" else name


def fit_options(cfg: PoseOptimSettings, device: torch.device, steps: int) -> FitOptions:
    """FitOptions from the shared fitting settings and a step budget (a pose run's, or one tracked frame's)."""
    return FitOptions(
        image_sizes=tuple(int(s) for s in cfg.image_sizes),
        faces_per_pixel=cfg.faces_per_pixel,
        sigma=cfg.sigma,
        gamma=cfg.gamma,
        loss=cfg.loss,
        w_silhouette=cfg.w_silhouette,
        w_rgb=cfg.w_rgb,
        lr=cfg.lr,
        steps=steps,
        patience=cfg.patience,
        min_improvement=cfg.min_improvement,
        stop_iou=cfg.stop_iou,
        backend=backend_for(cfg.rasterizer, device),
        reduction=cfg.reduction,
        stop_loss=cfg.stop_loss,
    )
