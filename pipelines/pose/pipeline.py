"""Camera pose by differentiable rendering: move a camera from a start pose until its soft silhouette (and/or soft
Phong render) of a mesh matches a target, with a vectorised soft rasteriser that keeps CPU steps short.

This module holds the pipeline (Config, validate, run); the maths sits beside it: `raster` (the soft rasteriser),
`camera_math` (look-at cameras and pose errors), `meshes` (the cow and uploads), `scene` (soft renders and the
Target), `targets` (rendered and uploaded targets), `fit` (the camera fit), `pictures` (previews and videos) and
`settings` (the fitting settings shared with tracking, `track`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.core.device import resolve_device
from pipelines.core.events import Done, Event, Preview, Progress
from pipelines.core.headline import Headline
from pipelines.pose.camera_math import pose_dict, pose_errors, spherical_to_position, turn
from pipelines.pose.fit import FitOptions, FitStep, fit_camera
from pipelines.pose.meshes import load_mesh
from pipelines.pose.pictures import FINAL_PX, final_views, panel, write_videos
from pipelines.pose.scene import Scene, Target
from pipelines.pose.settings import PoseOptimSettings, fit_options, validate_optim
from pipelines.pose.targets import image_target, read_image_and_mask, render_target
from pipelines.render.book_figures import BookFigure
from pipelines.render.images import save_png

HEADLINE = (Headline("error_deg", "Pose error", "°", "start_error_deg"), Headline("final_iou", "Silhouette IoU"))
"""The result card's numbers: the pose error against the truth (from the start pose's), and the final IoU."""


FIGURES = (
    BookFigure(
        "4 (pose)",
        "Camera pose from a textured render",
        "Chapter 4 renders the cow with hard Phong shading from distance 3, elevation 50, azimuth 0 on white, takes "
        "its non-white pixels as the silhouette, and moves a camera from (3.0, 6.9, 2.5) by Adam until its soft "
        "silhouette and soft Phong render match: summed squared errors weighted 1.0 and 0.1, light at (2, 2, -2).",
        "pose",
        {
            "true_pose": (3.0, 50.0, 0.0),
            "start_position": (3.0, 6.9, 2.5),
            "target_shader": "hard",
            "loss": "both",
            "w_silhouette": 1.0,
            "w_rgb": 0.1,
            "reduction": "sum",
            "light_location": (2.0, 2.0, -2.0),
            "rgb_background": (1.0, 1.0, 1.0),
        },
        "overlay",
    ),
)
"""The book's chapter-4 experiment as a figure (sizes and steps follow the preset)."""


@dataclass(frozen=True)
class Config(PoseOptimSettings):
    mesh_files: tuple[str, ...] = ()
    """The mesh to pose: an upload (OBJ with MTL and texture, PLY, GLB, ...). Empty: the book's cow (a procedural UV-textured stand-in)."""
    mesh_detail: int = 2
    """Subdivision of the cow: 1 has 2,320 faces, 2 has 9,280 (the book's cow.obj has 5,856)."""
    max_upload_mb: float = 200.0
    """Largest mesh upload accepted."""
    target_image: str = ""
    """An uploaded target photo (PNG/JPG); needs target_mask. Empty: the mesh rendered at the hidden pose."""
    target_mask: str = ""
    """The object mask of target_image, the same size (white or opaque = object)."""
    true_pose: tuple[float, float, float] = (3.0, 50.0, 0.0)
    """The hidden pose of a rendered target: (distance, elevation°, azimuth°) of the camera, looking at the object
    (the book's 3, 50°, 0°)."""
    target_shader: str = "hard"
    """How a rendered target is made: hard (the book: a hard Phong render, mask = its non-background pixels) or soft
    (the optimised soft renderer itself, so the loss is exactly zero at the truth)."""
    start_position: tuple[float, ...] = (3.0, 6.9, 2.5)
    """The start camera centre (x, y, z) in world units (the book's (3.0, 6.9, 2.5)); empty: start_pose decides."""
    start_pose: tuple[float, ...] = ()
    """The start camera (distance, elevation°, azimuth°) when start_position is empty. Empty too: the hidden pose
    turned by start_offset_deg (with an uploaded image: (2.7, 0, 0))."""
    start_offset_deg: float = 30.0
    """How far the start camera is turned from the hidden pose (about a random axis, seeded), when start_pose is empty."""
    steps: int = 200
    """Most optimisation steps in all."""
    video_frames: int = 60
    """Most frames in the videos (steps are sampled evenly)."""
    device: str = "auto"
    """auto, cpu or cuda[:N]."""
    seed: int = 0
    """Seed of the random axis the start camera is turned about."""
    out_dir: Path | None = None
    """Where videos, the final overlay and pose.json go (the app and CLI set one per run)."""

    # The book's experiment (pp. 85-92), the defaults above and here: both losses summed over pixels, silhouette
    # weight 1 and texture weight 0.1, soft Phong with 50 faces per pixel on white, the light at (2, 2, -2), a
    # 256 px render, and a stop once the loss falls below the threshold.
    loss: str = "both"
    w_rgb: float = 0.1
    reduction: str = "sum"
    faces_per_pixel: int = 50
    light_location: tuple[float, float, float] = (2.0, 2.0, -2.0)
    rgb_background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    stop_loss: float = 200.0

    @classmethod
    def quick(cls) -> Config:
        # Coarse to fine with the torch rasteriser, whose silhouettes need few faces per pixel (see raster.py), from a
        # start turned 30° away from the book's target pose; per-pixel mean losses on black, without a stop threshold.
        return cls(
            loss="silhouette",
            w_rgb=1.0,
            reduction="mean",
            target_shader="soft",
            start_position=(),
            light_location=(2.0, 2.0, 2.0),
            rgb_background=(0.0, 0.0, 0.0),
            stop_loss=0.0,
            mesh_detail=1,
            image_sizes=(64, 128),
            faces_per_pixel=16,
            steps=120,
            patience=12,
            min_improvement=0.02,
            rasterizer="torch",
        )

    @classmethod
    def tiny(cls) -> Config:
        return dataclasses.replace(
            cls.quick(),
            patience=0,
            min_improvement=0.01,
            mesh_detail=1,
            image_sizes=(48,),
            faces_per_pixel=16,
            steps=6,
            videos=("gif",),
            video_frames=6,
            rasterizer="torch",
        )


def validate(cfg: Config) -> None:
    """Raise ValueError with one sentence for settings that cannot work."""
    validate_optim(cfg, cfg.steps)
    if len(cfg.true_pose) != 3 or cfg.true_pose[0] <= 0:
        raise ValueError("The hidden pose must be (distance > 0, elevation°, azimuth°).")
    if cfg.target_shader not in ("hard", "soft"):
        raise ValueError(f"Unknown target shader {cfg.target_shader!r}: choose hard or soft.")
    if cfg.start_position and (len(cfg.start_position) != 3 or sum(c * c for c in cfg.start_position) <= 0):
        raise ValueError("The start position must be (x, y, z) away from the object's centre, or empty.")
    if cfg.start_pose and (len(cfg.start_pose) != 3 or cfg.start_pose[0] <= 0):
        raise ValueError("The start pose must be (distance > 0, elevation°, azimuth°), or empty.")
    if bool(cfg.target_image) != bool(cfg.target_mask):
        raise ValueError("An uploaded target needs both an image and its mask.")


@dataclass(frozen=True)
class Problem:
    """What one run fits: the target, the start camera centre (3,), and the true centre (3,) when it is known."""

    target: Target
    start: torch.Tensor
    truth: torch.Tensor | None


def make_problem(cfg: Config, scene: Scene, opts: FitOptions) -> Problem:
    """An uploaded image and mask from `cfg.start_pose` (default (2.7, 0, 0)), or the mesh rendered at the hidden pose
    from a start turned `start_offset_deg` about a seeded random axis (or `cfg.start_pose`)."""
    generator = torch.Generator().manual_seed(cfg.seed)
    if cfg.target_image:
        rgb, mask = read_image_and_mask(cfg.target_image, cfg.target_mask)
        target = image_target(rgb, mask, list(opts.image_sizes), scene.device, scene.background)
        return Problem(
            target, _start(cfg) if cfg.start_position or cfg.start_pose else spherical_to_position(2.7, 0.0, 0.0), None
        )
    truth = spherical_to_position(*cfg.true_pose)
    target = render_target(scene, truth.to(scene.device)[None], opts, cfg.target_shader)
    start = _start(cfg) if cfg.start_position or cfg.start_pose else turn(truth, cfg.start_offset_deg, generator)
    return Problem(target, start, truth)


def _start(cfg: Config) -> torch.Tensor:
    """The start camera centre (3,) from start_position, else start_pose."""
    if cfg.start_position:
        return torch.tensor(cfg.start_position, dtype=torch.float32)
    return spherical_to_position(*cfg.start_pose)


def optimise(
    cfg: Config,
    scene: Scene,
    problem: Problem,
    opts: FitOptions,
    frames: list[np.ndarray],
    history: list[dict[str, float]],
) -> Generator[Event, None, FitStep]:
    """Fit the camera, streaming Progress every step and a Preview at most every 0.5 s (and at the end); append video
    frames and each step's losses to `frames` and `history`. Returns the last FitStep."""
    target, truth = problem.target, problem.truth
    frame_every = max(1, cfg.steps // max(1, cfg.video_frames))
    last_preview = -math.inf
    fit: FitStep | None = None
    for fit in fit_camera(scene, target, problem.start.to(scene.device), opts):
        losses = dict(fit.losses)
        if truth is not None:
            losses["error_deg"], losses["error_dist"] = pose_errors(fit.position, truth)
        history.append({"step": fit.step, "size": fit.size, **losses})
        is_frame = fit.step % frame_every == 0 or fit.stopped or fit.step == 1
        preview_due = time.perf_counter() - last_preview >= 0.5 or fit.stopped
        picture = None
        if is_frame or preview_due:  # the book's per-iteration pictures: the soft render and the hard one
            with torch.no_grad():
                hard = scene.hard_phong(fit.position[None], fit.size)
            picture = panel(target, fit.size, fit.alpha, fit.rgb, hard=hard)
        if is_frame:
            frames.append(picture)
        message = f"{fit.size} px · IoU {losses['iou']:.3f}" + (
            f" · error {losses['error_deg']:.1f}°" if truth is not None else ""
        )
        yield Progress(fit.step, cfg.steps, losses, message)
        if preview_due:
            last_preview = time.perf_counter()
            yield Preview(fit.step, image=picture, caption=message)
    assert fit is not None
    return fit


def write_results(
    cfg: Config,
    out_dir: Path,
    problem: Problem,
    fit: FitStep,
    frames: list[np.ndarray],
    history: list[dict[str, float]],
    warnings: list[str],
    elapsed: float,
) -> Done:
    """Write the videos, the final overlay and pose.json under `out_dir`; the Done event with metrics and files."""
    start, truth = problem.start, problem.truth
    files = write_videos(frames, out_dir, "pose_optimisation", cfg.videos)
    final_png = out_dir / "final_overlay.png"
    from PIL import Image

    Image.fromarray(frames[-1]).save(final_png)
    files["overlay"] = final_png
    info: dict[str, Any] = {
        "estimated_pose": pose_dict(fit.position),
        "start_pose": pose_dict(start),
        "true_pose": None if truth is None else pose_dict(truth),
        "stopped": fit.stopped,
        "warnings": warnings,
        "history": history,
    }
    pose_json = out_dir / "pose.json"
    pose_json.write_text(json.dumps({k: v for k, v in info.items() if k != "history"}, indent=2))
    files["pose"] = pose_json
    metrics = {
        "steps": float(fit.step),
        "time_s": elapsed,
        "final_loss": fit.losses["total"],
        "final_iou": fit.losses["iou"],
    }
    if truth is not None:
        start_err, start_dist = pose_errors(start, truth)
        err, dist = pose_errors(fit.position, truth)
        metrics.update(start_error_deg=start_err, start_error_dist=start_dist, error_deg=err, error_dist=dist)
    return Done(metrics=metrics, files=files, info=info)


def run(cfg: Config) -> Iterator[Event]:
    """Build the scene and target, optimise the camera, stream losses and overlays, write videos and pose.json."""
    validate(cfg)
    if cfg.out_dir is None:
        raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    yield Progress(0, cfg.steps, {}, "preparing the scene")
    device = resolve_device(cfg.device)
    t_start = time.perf_counter()
    mesh, warnings = load_mesh(cfg.mesh_files, out_dir, cfg.mesh_detail, device, cfg.max_upload_mb)
    scene = Scene(mesh, device, cfg.light_location, cfg.rgb_background)
    opts = fit_options(cfg, device, cfg.steps)
    problem = make_problem(cfg, scene, opts)
    yield Progress(
        0, cfg.steps, {}, f"scene ready: {mesh.faces_packed().shape[0]} faces, rendering at {opts.image_sizes} px"
    )
    frames: list[np.ndarray] = []
    history: list[dict[str, float]] = []
    fit = yield from optimise(cfg, scene, problem, opts, frames, history)
    elapsed = time.perf_counter() - t_start
    final = final_views(scene, problem.target, problem.start, problem.truth, fit.position)  # whatever the fit's size
    yield Preview(fit.step, image=final, caption=f"target | start | estimate | overlay, rendered at {FINAL_PX} px")
    done = write_results(cfg, out_dir, problem, fit, frames, history, warnings, elapsed)
    done.files["final_views"] = save_png(torch.from_numpy(final).float() / 255, out_dir / "final_views.png")
    yield done
