"""Pose tracking: a synthetic sequence of an object moving along a path, each frame's camera warm-started from the
last frame's estimate and refined by differentiable rendering (pipelines/pose/fit.py)."""

from __future__ import annotations

import csv
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
from pipelines.pose.camera_math import pose_errors, position_to_spherical, spherical_to_position, turn
from pipelines.pose.fit import FitOptions, FitStep, fit_camera
from pipelines.pose.meshes import load_mesh
from pipelines.pose.pictures import panel, write_videos
from pipelines.pose.scene import Scene, Target
from pipelines.pose.settings import PoseOptimSettings, fit_options, validate_optim
from pipelines.pose.targets import render_target

HEADLINE = (Headline("mean_error_deg", "Mean pose error", "°"), Headline("max_error_deg", "worst frame", "°"))
"""The result card's numbers: mean and worst per-frame pose error."""

PATHS = ("orbit", "figure8", "approach")


def path_poses(
    path: str, frames: int, start: tuple[float, float, float], step_deg: float
) -> list[tuple[float, float, float]]:
    """The true (distance, elevation°, azimuth°) of the camera relative to the object at each frame.

    orbit: the object turns about its vertical axis by `step_deg` a frame while bobbing up and down;
    figure8: it swings left-right and up-down (peak speed about `step_deg` a frame); approach: it turns while
    coming 30% closer. Moving the object and moving the camera are the same thing to the renderer.
    """
    d0, e0, a0 = start
    poses = []
    for i in range(frames):
        phase = 2 * math.pi * i / max(frames, 1)
        if path == "orbit":
            bob = min(20.0, 0.5 * step_deg * frames / (2 * math.pi))  # elevation changes at most step_deg / 2 a frame
            poses.append((d0, e0 + bob * math.sin(phase), a0 + step_deg * i))
        elif path == "figure8":
            amp = min(60.0, step_deg * frames / (2 * math.pi))
            poses.append((d0, e0 + 0.3 * amp * math.sin(2 * phase), a0 + amp * math.sin(phase)))
        elif path == "approach":
            poses.append((d0 * (1 - 0.3 * i / max(frames - 1, 1)), e0, a0 + step_deg * i))
        else:
            raise ValueError(f"Unknown path {path!r}: choose {', '.join(PATHS)}.")
    return poses


@dataclass(frozen=True)
class Config(PoseOptimSettings):
    mesh_files: tuple[str, ...] = ()
    """The mesh to track: an upload (OBJ with MTL and texture, PLY, GLB, ...). Empty: the book's cow (a procedural UV-textured stand-in)."""
    mesh_detail: int = 2
    """Subdivision of the cow: 1 has 2,320 faces, 2 has 9,280 (the book's cow.obj has 5,856)."""
    max_upload_mb: float = 200.0
    """Largest mesh upload accepted."""
    path: str = "orbit"
    """How the object moves: orbit (turns and bobs), figure8 (swings), approach (turns while coming closer)."""
    frames: int = 30
    """Frames in the sequence."""
    step_deg: float = 4.0
    """How far the object turns between frames, in degrees."""
    first_pose: tuple[float, float, float] = (2.7, 15.0, 20.0)
    """The camera at the first frame: (distance, elevation°, azimuth°)."""
    first_offset_deg: float = 10.0
    """The first frame starts this far from its truth (a rough initial detection); later frames start from the last
    estimate."""
    steps_per_frame: int = 60
    """Most optimisation steps per frame."""
    bound_deg: float = 5.0
    """The error bound reported: how many frames stay within it."""
    device: str = "auto"
    """auto, cpu or cuda[:N]."""
    seed: int = 0
    """Seed of the first frame's start offset direction."""
    out_dir: Path | None = None
    """Where the trajectory CSV, figure and videos go (the app and CLI set one per run)."""

    @classmethod
    def quick(cls) -> Config:
        return cls(
            mesh_detail=1,
            frames=24,
            image_sizes=(64,),
            faces_per_pixel=16,
            steps_per_frame=30,
            patience=6,
            min_improvement=0.02,
            rasterizer="torch",
        )

    @classmethod
    def tiny(cls) -> Config:
        return cls(
            mesh_detail=1,
            frames=4,
            step_deg=3.0,
            first_offset_deg=5.0,
            image_sizes=(48,),
            faces_per_pixel=16,
            steps_per_frame=10,
            videos=("gif",),
            rasterizer="torch",
        )


def validate(cfg: Config) -> None:
    validate_optim(cfg, cfg.steps_per_frame)
    if cfg.path not in PATHS:
        raise ValueError(f"Unknown path {cfg.path!r}: choose {', '.join(PATHS)}.")
    if not 2 <= cfg.frames <= 1000:
        raise ValueError("The sequence needs between 2 and 1000 frames.")
    if len(cfg.first_pose) != 3 or cfg.first_pose[0] <= 0:
        raise ValueError("The first pose must be (distance > 0, elevation°, azimuth°).")


def trajectory_figure(rows: list[dict[str, Any]], bound_deg: float) -> Any:
    """Plotly: estimated against true camera centres in 3D, and elevation, azimuth, distance and error per frame."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    frames = [r["frame"] for r in rows]
    fig = make_subplots(
        rows=2,
        cols=2,
        specs=[[{"type": "scene", "rowspan": 2}, {"type": "xy"}], [None, {"type": "xy"}]],
        subplot_titles=("Camera centres (object at the origin)", "Angles per frame", "Error per frame"),
        column_widths=[0.5, 0.5],
    )
    for who, color in (("true", "#2e9d5b"), ("est", "#d0452c")):
        xyz = np.array([r[f"{who}_position"] for r in rows])
        fig.add_trace(
            go.Scatter3d(
                x=xyz[:, 0],
                y=xyz[:, 1],
                z=xyz[:, 2],
                mode="lines+markers",
                name=f"{who} centre",
                line=dict(color=color),
                marker=dict(size=3, color=color),
            ),
            row=1,
            col=1,
        )
        for key, dash in (("elev", "solid"), ("azim", "dot")):
            fig.add_trace(
                go.Scatter(
                    x=frames,
                    y=[r[f"{who}_{key}_deg"] for r in rows],
                    name=f"{who} {key}",
                    line=dict(color=color, dash=dash),
                ),
                row=1,
                col=2,
            )
    fig.add_trace(
        go.Bar(x=frames, y=[r["error_deg"] for r in rows], name="error (°)", marker_color="#5470c6"), row=2, col=2
    )
    fig.add_trace(
        go.Scatter(
            x=frames, y=[bound_deg] * len(frames), name="bound", mode="lines", line=dict(color="#888", dash="dash")
        ),
        row=2,
        col=2,
    )
    fig.update_xaxes(title_text="frame", row=2, col=2)
    fig.update_layout(height=520, margin=dict(l=10, r=10, t=40, b=30), legend=dict(orientation="h"))
    return fig


def fit_frame(
    cfg: Config,
    scene: Scene,
    opts: FitOptions,
    index: int,
    truth: torch.Tensor,
    estimate: torch.Tensor,
    last_preview: float,
) -> Generator[Event, None, tuple[FitStep, Target, float]]:
    """Frame `index`: render its target at `truth` (3,) and fit the camera from `estimate` (3,), with Progress every
    step and a Preview at most every 0.5 s after `last_preview`. Returns (the last FitStep, the target, the time of
    the last Preview)."""
    total = cfg.frames * cfg.steps_per_frame
    target = render_target(scene, truth.to(scene.device)[None], opts)
    fit = None
    for fit in fit_camera(scene, target, estimate.to(scene.device), opts):
        step = index * cfg.steps_per_frame + fit.step
        yield Progress(
            step, total, {"loss": fit.losses["total"], "iou": fit.losses["iou"]}, f"frame {index + 1}/{cfg.frames}"
        )
        now = time.perf_counter()
        if now - last_preview >= 0.5:
            last_preview = now
            image = panel(target, fit.size, fit.alpha, fit.rgb)
            yield Preview(step, image=image, caption=f"frame {index + 1}/{cfg.frames}, step {fit.step}")
    assert fit is not None
    return fit, target, last_preview


def frame_row(
    index: int,
    truth: torch.Tensor,
    estimate: torch.Tensor,
    fit: FitStep,
    start_err: float,
    err: float,
    dist: float,
    seconds: float,
) -> dict[str, Any]:
    """One frame of the trajectory table: true and estimated (distance, elevation°, azimuth°), errors, IoU, steps,
    time, and both camera centres (the `_position` columns stay out of the CSV and the table)."""
    est_sph, true_sph = position_to_spherical(estimate), position_to_spherical(truth)
    return {
        "frame": index,
        "true_distance": round(true_sph[0], 4),
        "true_elev_deg": round(true_sph[1], 3),
        "true_azim_deg": round(true_sph[2], 3),
        "est_distance": round(est_sph[0], 4),
        "est_elev_deg": round(est_sph[1], 3),
        "est_azim_deg": round(est_sph[2], 3),
        "start_error_deg": round(start_err, 3),
        "error_deg": round(err, 3),
        "error_dist": round(dist, 4),
        "iou": round(fit.losses["iou"], 4),
        "steps": fit.step,
        "time_s": round(seconds, 3),
        "true_position": [round(float(v), 5) for v in truth],
        "est_position": [round(float(v), 5) for v in estimate],
    }


def write_results(
    cfg: Config,
    out_dir: Path,
    frames: list[np.ndarray],
    rows: list[dict[str, Any]],
    warnings: list[str],
    elapsed: float,
) -> Done:
    """Write the video, trajectory.csv and trajectory.html under `out_dir`; the Done event with the error metrics."""
    files = write_videos(frames, out_dir, "tracking", cfg.videos, fps=6)
    table_path = out_dir / "trajectory.csv"
    columns = [k for k in rows[0] if not k.endswith("_position")]
    with table_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    files["trajectory"] = table_path
    figure = trajectory_figure(rows, cfg.bound_deg)
    figure_path = out_dir / "trajectory.html"
    figure.write_html(figure_path, include_plotlyjs="cdn")
    files["figure"] = figure_path
    errors = np.array([r["error_deg"] for r in rows])
    dists = np.array([r["error_dist"] for r in rows])
    metrics = {
        "mean_error_deg": float(errors.mean()),
        "max_error_deg": float(errors.max()),
        "mean_error_dist": float(dists.mean()),
        "max_error_dist": float(dists.max()),
        "frames_within_bound": float((errors <= cfg.bound_deg).mean()),
        "time_s": elapsed,
        "time_per_frame_s": elapsed / cfg.frames,
    }
    table = [{k: v for k, v in r.items() if not k.endswith("_position")} for r in rows]
    return Done(
        metrics=metrics, files=files, info={"table": table, "figure": figure, "warnings": warnings, "rows": rows}
    )


def run(cfg: Config) -> Iterator[Event]:
    """Render each frame at its true pose, fit the camera from the previous estimate, and report per-frame errors."""
    validate(cfg)
    if cfg.out_dir is None:
        raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    total = cfg.frames * cfg.steps_per_frame
    yield Progress(0, total, {}, "preparing the scene")
    device = resolve_device(cfg.device)
    t_start = time.perf_counter()
    mesh, warnings = load_mesh(cfg.mesh_files, out_dir, cfg.mesh_detail, device, cfg.max_upload_mb)
    scene = Scene(mesh, device, cfg.light_location, cfg.rgb_background)
    opts = fit_options(cfg, device, cfg.steps_per_frame)
    truths = [spherical_to_position(*p) for p in path_poses(cfg.path, cfg.frames, cfg.first_pose, cfg.step_deg)]
    estimate = turn(truths[0], cfg.first_offset_deg, torch.Generator().manual_seed(cfg.seed))
    rows: list[dict[str, Any]] = []
    frames: list[np.ndarray] = []
    last_preview = -math.inf
    for index, truth in enumerate(truths):
        t_frame = time.perf_counter()
        start_err, _ = pose_errors(estimate, truth)
        fit, target, last_preview = yield from fit_frame(cfg, scene, opts, index, truth, estimate, last_preview)
        estimate = fit.position.cpu()
        err, dist = pose_errors(estimate, truth)
        frames.append(panel(target, fit.size, fit.alpha, fit.rgb))
        rows.append(frame_row(index, truth, estimate, fit, start_err, err, dist, time.perf_counter() - t_frame))
        step = (index + 1) * cfg.steps_per_frame
        yield Progress(
            step, total, {"frame_error_deg": err, "frame_error_dist": dist}, f"frame {index + 1}: error {err:.2f}°"
        )
    elapsed = time.perf_counter() - t_start
    yield write_results(cfg, out_dir, frames, rows, warnings, elapsed)
