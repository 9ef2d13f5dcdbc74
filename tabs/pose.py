"""Pose tab: recover a camera pose by differentiable rendering, and track an object through a synthetic sequence."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from pipelines.core.config import make_preset
from pipelines.core.device import default_preset
from pipelines.core.events import Done
from pipelines.files.image_input import ImageFileError, read_image
from pipelines.pose import pipeline as pose
from pipelines.pose import track as pose_track
from pipelines.pose.settings import LOSSES
from pipelines.pose.targets import read_image_and_mask

from .context import AppContext
from .plots import cameras_figure
from .pose_lessons import LESSON
from .stream import stream
from .widgets import (
    IMAGE_TYPES,
    LATEX,
    MESH_WITH_TEXTURE_TYPES,
    RunPanel,
    bind,
    config_for,
    gpu_click,
    number_overrides,
    number_value,
    preset_radio,
    run_panel,
    show_when_filled,
    shown_file,
    stop_button,
    upload_box,
    upload_path,
    upload_paths,
    user_errors,
)

Updates = dict[Any, Any]


def build(ctx: AppContext, tab: gr.Tab) -> None:
    """The lesson, one mesh upload shared by both sections, then the single pose and the tracking sections."""
    with gr.Accordion("Lesson: soft silhouettes, losses and pose errors", open=False):
        gr.Markdown(LESSON, latex_delimiters=LATEX)
    mesh_files = upload_box(
        "Mesh to pose (OBJ+MTL+texture, PLY, GLB, ...); empty = the book's cow", MESH_WITH_TEXTURE_TYPES, height=120
    )
    with gr.Tabs():
        with gr.Tab("Single pose"):
            single_pose_section(ctx, mesh_files)
        with gr.Tab("Tracking"):
            tracking_section(ctx, mesh_files)
    _ = tab


# ---------------------------------------------------------------------------------------------------------------
# Checking the user's numbers
# ---------------------------------------------------------------------------------------------------------------


def parse_sizes(text: str | None) -> tuple[int, ...] | None:
    """'64, 128' -> (64, 128); empty -> None (the preset's)."""
    if not text or not text.strip():
        return None
    try:
        sizes = tuple(int(t) for t in text.replace(";", ",").split(",") if t.strip())
    except ValueError:
        raise gr.Error("Image sizes must be whole numbers separated by commas, e.g. 64, 128.") from None
    if not sizes or any(not 16 <= s <= 1024 for s in sizes):
        raise gr.Error("Image sizes must be between 16 and 1024 px.")
    return sizes


def sizes_text(sizes: tuple[int, ...]) -> str:
    return ", ".join(str(s) for s in sizes)


def fit_overrides(
    image_sizes: str | None,
    faces_per_pixel: Any,
    learning_rate: Any,
    patience: Any,
    stop_iou: Any,
    loss: str,
) -> dict[str, Any]:
    """Overrides shared by pose and tracking, validated."""
    if loss not in LOSSES:
        raise gr.Error("Pick a loss: silhouette, rgb or both.")
    changes: dict[str, Any] = {"loss": loss}
    sizes = parse_sizes(image_sizes)
    if sizes:
        changes["image_sizes"] = sizes
    rows = (
        (faces_per_pixel, "faces_per_pixel", "Faces per pixel", 1, 200),
        (learning_rate, "lr", "The learning rate", 1e-6, 10.0),
        (patience, "patience", "Patience", 0, 10000),
        (stop_iou, "stop_iou", "The stop IoU", 0.0, 1.0),
    )
    changes.update(number_overrides(rows, whole=("faces_per_pixel", "patience")))
    return changes


def save_target(ctx: AppContext, request: gr.Request | None, image: Any, mask: Any) -> tuple[str, str]:
    """Check an uploaded image and mask early (gr.Error) and copy them into the session folder.

    Each picture's size is read from its header before anything is decoded (`read_image`), so a truncated file or
    a 20k×20k header gets a sentence rather than a decoder's error."""
    image_path, mask_path = upload_path(image), upload_path(mask)
    if not image_path or not mask_path:
        raise gr.Error("Upload both the target image and its mask (white or opaque = object).")
    for path, what in ((image_path, "image"), (mask_path, "mask")):
        try:
            read_image(path)
        except ImageFileError as err:
            raise gr.Error(f"The target {what}: {err}") from None
    folder = ctx.session_dir(getattr(request, "session_hash", None)) / f"pose-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for path, name in ((image_path, "target"), (mask_path, "mask")):
        dest = folder / f"{name}{Path(path).suffix.lower()}"
        shutil.copyfile(path, dest)
        saved.append(str(dest))
    read_image_and_mask(saved[0], saved[1])  # a ValueError (sizes differ, empty mask) reaches the user
    return saved[0], saved[1]


# ---------------------------------------------------------------------------------------------------------------
# Single pose
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class PoseUI:
    """What the pose run updates: the run panel, the optimisation video and the poses."""

    panel: RunPanel
    video: gr.Video
    result: gr.JSON


def single_pose_section(ctx: AppContext, mesh_files: gr.File) -> None:
    """The target and start poses, the loss, preset and optimisation settings, wired to /pose."""
    defaults = pose.Config()
    with gr.Row():
        with gr.Column(min_width=400):
            target = _target_inputs(defaults)
        with gr.Column(min_width=400):
            start = _start_inputs(defaults)
            with gr.Row():
                loss = gr.Radio(
                    list(LOSSES),
                    value="silhouette",
                    label="Loss",
                    info="Silhouette: the soft mask only; RGB: the Phong render; both: their sum",
                )
                preset = preset_radio(ctx)
            optimisation = _optimisation_inputs(make_preset(pose.Config, default_preset(ctx.device)))
            with gr.Row():
                button = gr.Button("Estimate the pose", variant="primary", elem_id="pose-run")
                stop_button(ctx, "pose")
    panel = run_panel(
        preview_label="Target | soft, hard render | overlay (red: target, cyan: estimate); last: target | start | estimate",
        stacked=True,
    )
    video = gr.Video(label="The optimisation (MP4)", height=300, interactive=False, visible=False)
    show_when_filled(video)
    cameras = gr.Plot(label="Cameras in 3D: start (grey), true (green), estimated (red)", visible=False)
    with gr.Accordion("Estimated, start and true pose (R, T, centre; JSON)", open=False):
        result = gr.JSON(label="Estimated, start and true pose (R, T, centre)")
    result.change(poses_figure, result, cameras, api_name=False, queue=False)
    gr.Examples(
        [[50.0, 0.0, 30.0], [20.0, 120.0, 45.0], [-10.0, -60.0, 20.0]],
        [target[2], target[3], start[0]],
        label="Examples: hidden elevation, azimuth and start offset",
        elem_id="pose-examples",
    )
    preset.change(bind(pose_preset_values, ctx=ctx), preset, optimisation, api_name=False)
    gpu_click(
        button,
        bind(estimate, ctx=ctx, ui=PoseUI(panel, video, result)),
        [mesh_files, *target, *start, loss, preset, *optimisation],
        [*panel.outputs, video, result],
        "pose",
    )


def _target_inputs(defaults: pose.Config) -> list[Any]:
    """Source, hidden distance, elevation and azimuth, target image and mask."""
    source = gr.Radio(
        ["hidden pose", "uploaded image"],
        value="hidden pose",
        label="Target: the mesh rendered at a hidden pose, or a photo with its mask",
        info="A hidden pose has a known answer, so the error is measured in degrees",
    )
    with gr.Row():
        distance = gr.Number(
            defaults.true_pose[0], label="Hidden distance", minimum=0.5, maximum=20, info="The book's is 3"
        )
        elevation = gr.Slider(
            -89, 89, value=defaults.true_pose[1], step=1, label="Hidden elevation (°)", info="The book's is 50°"
        )
        azimuth = gr.Slider(
            -180, 180, value=defaults.true_pose[2], step=1, label="Hidden azimuth (°)", info="The book's is 0°"
        )
    with gr.Row(visible=False) as uploads:  # shown for an uploaded target only
        image = upload_box("Target image (PNG or JPEG)", IMAGE_TYPES, multiple=False)
        mask = upload_box("Target mask, same size (white or opaque = object)", IMAGE_TYPES, multiple=False)
    source.change(lambda s: gr.update(visible=s == "uploaded image"), source, uploads, api_name=False, queue=False)
    return [source, distance, elevation, azimuth, image, mask]


def _start_inputs(defaults: pose.Config) -> list[Any]:
    """Start offset, whether to use the explicit start pose, and its distance, elevation and azimuth."""
    offset = gr.Slider(
        0,
        90,
        value=defaults.start_offset_deg,
        step=1,
        label="Start: turned this far from the hidden pose (°)",
        info="Larger starts are harder; the fit can fall into a wrong minimum beyond ~60°",
    )
    explicit = gr.Checkbox(
        False,
        label="Set the start pose instead (always used with an uploaded image)",
        info="Give the starting camera by distance, elevation and azimuth",
    )
    with gr.Row():
        distance = gr.Number(
            2.7, label="Start distance", info="From the object's centre, in world units", minimum=0.5, maximum=20
        )
        elevation = gr.Slider(-89, 89, value=0, step=1, label="Start elevation (°)", info="Above the horizontal")
        azimuth = gr.Slider(-180, 180, value=0, step=1, label="Start azimuth (°)", info="Around the vertical axis")
    return [offset, explicit, distance, elevation, azimuth]


def _optimisation_inputs(start: pose.Config) -> list[Any]:
    """Steps, learning rate, image sizes, faces per pixel, patience and stop IoU, showing the preset's values."""
    with gr.Accordion("Optimisation and stopping rule (set by the preset; change freely)", open=False):
        with gr.Row():
            steps = gr.Number(
                start.steps,
                label="Most steps",
                info="Adam steps at most (the book: 200); the stopping rule may end sooner",
                precision=0,
                minimum=1,
                maximum=5000,
            )
            rate = gr.Number(start.lr, label="Adam learning rate", info="The book: 0.05", minimum=0)
            sizes = gr.Textbox(
                sizes_text(start.image_sizes),
                label="Image sizes, coarse to fine, e.g. 64, 128",
                info="The fit runs at each size in turn, the steps split between them",
            )
        with gr.Row():
            k = gr.Number(
                start.faces_per_pixel,
                label="Faces per pixel",
                info="Faces blended per pixel by the soft rasteriser (the book: 100)",
                precision=0,
                minimum=1,
                maximum=200,
            )
            patience = gr.Number(
                start.patience,
                label="Patience, steps (0 = off)",
                info="Stop after this many steps without improvement",
                precision=0,
                minimum=0,
            )
            stop_iou = gr.Number(
                start.stop_iou,
                label="Stop at silhouette IoU (0 = off)",
                info="Stop once the masks overlap this well",
                minimum=0,
                maximum=1,
            )
    return [steps, rate, sizes, k, patience, stop_iou]


def pose_preset_values(preset: str | None, *, ctx: AppContext) -> tuple[Any, ...]:
    """The optimisation boxes' values under `preset` (they follow the preset radio)."""
    cfg = make_preset(pose.Config, preset or default_preset(ctx.device))
    return cfg.steps, cfg.lr, sizes_text(cfg.image_sizes), cfg.faces_per_pixel, cfg.patience, cfg.stop_iou


def poses_figure(poses: dict | None) -> Any:
    """The start, true and estimated cameras of a finished run in 3D (hidden before a run)."""
    named = {
        name: pose["position"]
        for name, key in (("start", "start_pose"), ("true", "true_pose"), ("estimated", "estimated_pose"))
        if isinstance(poses, dict) and isinstance(pose := poses.get(key), dict) and "position" in pose
    }
    if not named:
        return gr.update(visible=False)
    return gr.update(value=cameras_figure(named), visible=True)


@user_errors("Check the target")
def estimate(
    mesh_files: Any = None,
    target_source: str | None = None,
    target_distance: float | None = None,
    target_elevation_deg: float | None = None,
    target_azimuth_deg: float | None = None,
    target_image: Any = None,
    target_mask: Any = None,
    start_offset_deg: float | None = None,
    use_start_pose: bool | None = None,
    start_distance: float | None = None,
    start_elevation_deg: float | None = None,
    start_azimuth_deg: float | None = None,
    loss: str | None = None,
    preset: str | None = None,
    steps: float | None = None,
    learning_rate: float | None = None,
    image_sizes: str | None = None,
    faces_per_pixel: float | None = None,
    patience: float | None = None,
    stop_iou: float | None = None,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    ui: PoseUI,
) -> Iterator[Updates]:
    """/pose: streams the optimisation; the pose, its error and the videos at the end."""
    changes = fit_overrides(image_sizes, faces_per_pixel, learning_rate, patience, stop_iou, loss)
    changes["mesh_files"] = upload_paths(mesh_files)
    changes.update(number_overrides([(steps, "steps", "Steps", 1, 5000)], whole=("steps",)))
    start = (
        number_value(start_distance, "The start distance", 0.5, 20.0) or 2.7,
        float(start_elevation_deg or 0),
        float(start_azimuth_deg or 0),
    )
    if target_source == "uploaded image":
        changes["target_image"], changes["target_mask"] = save_target(ctx, request, target_image, target_mask)
        changes["start_pose"] = start
    else:
        changes["true_pose"] = (
            number_value(target_distance, "The hidden distance", 0.5, 20.0) or 2.7,
            float(target_elevation_deg or 0),
            float(target_azimuth_deg or 0),
        )
        changes["start_offset_deg"] = number_value(start_offset_deg, "The start offset", 0.0, 180.0) or 0.0
        if use_start_pose:
            changes["start_pose"] = start
    cfg = config_for(ctx, pose.Config, preset, **changes)

    def on_done(done: Done) -> Updates:
        return {
            ui.video: shown_file(done.files.get("mp4")),
            ui.result: {k: v for k, v in done.info.items() if k != "history"},
        }

    yield from stream(ctx, ui.panel, "pose", cfg, preset=preset, request=request, tab="pose", on_done=on_done)


# ---------------------------------------------------------------------------------------------------------------
# Tracking
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class TrackUI:
    """What the tracking run updates: the run panel, the trajectory plot, the per-frame table and the video."""

    panel: RunPanel
    trajectory: gr.Plot
    table: gr.Dataframe
    video: gr.Video


def tracking_section(ctx: AppContext, mesh_files: gr.File) -> None:
    """The path, frames, motion, bound, loss, preset and per-frame settings, wired to /pose_track."""
    defaults = pose_track.Config()
    gr.Markdown(
        "The object moves along a path; each frame is rendered at its true pose and the camera is fitted starting from the "
        "previous frame's estimate."
    )
    start = make_preset(pose_track.Config, default_preset(ctx.device))
    with gr.Row():
        path = gr.Radio(
            list(pose_track.PATHS), value=defaults.path, label="Path", info="How the object moves from frame to frame"
        )
        frames = gr.Number(
            start.frames, label="Frames", info="Frames of the path", precision=0, minimum=2, maximum=1000
        )
        step_deg = gr.Slider(
            0.5,
            15,
            value=defaults.step_deg,
            step=0.5,
            label="Motion per frame (°)",
            info="How far it turns between frames",
        )
        bound = gr.Number(
            defaults.bound_deg,
            label="Error bound (°)",
            info="A frame counts as tracked when its error is below this",
            minimum=0,
        )
    with gr.Row():
        loss = gr.Radio(
            list(LOSSES),
            value="silhouette",
            label="Loss",
            info="Silhouette: the soft mask only; RGB: the Phong render; both: their sum",
        )
        preset = preset_radio(ctx)
        steps = gr.Number(
            start.steps_per_frame,
            label="Most steps per frame",
            info="Each frame starts from the previous frame's pose",
            precision=0,
            minimum=1,
            maximum=2000,
        )
        sizes = gr.Textbox(
            sizes_text(start.image_sizes), label="Image sizes, coarse to fine", info="The fit runs at each size in turn"
        )
    with gr.Row():
        button = gr.Button("Track", variant="primary", elem_id="pose_track-run")
        stop_button(ctx, "pose_track")
    panel = run_panel(preview_label="Target | current render | overlay", stacked=True)
    trajectory = gr.Plot(label="Estimated against true trajectory")
    table = gr.Dataframe(label="Per-frame errors", interactive=False, wrap=True)
    video = gr.Video(label="The tracked sequence (MP4)", height=220, interactive=False)
    gr.Examples(
        [[name, 4.0] for name in pose_track.PATHS],
        [path, step_deg],
        label="Examples: a path and the motion per frame",
        elem_id="pose_track-examples",
    )
    preset.change(bind(track_preset_values, ctx=ctx), preset, [frames, steps, sizes], api_name=False)
    gpu_click(
        button,
        bind(track, ctx=ctx, ui=TrackUI(panel, trajectory, table, video)),
        [mesh_files, path, frames, step_deg, bound, loss, preset, steps, sizes],
        [*panel.outputs, trajectory, table, video],
        "pose_track",
    )


def track_preset_values(preset: str | None, *, ctx: AppContext) -> tuple[Any, ...]:
    """The frames, steps-per-frame and image-size boxes' values under `preset`."""
    cfg = make_preset(pose_track.Config, preset or default_preset(ctx.device))
    return cfg.frames, cfg.steps_per_frame, sizes_text(cfg.image_sizes)


def track(
    mesh_files: Any = None,
    motion_path: str | None = None,
    frames: float | None = None,
    motion_per_frame_deg: float | None = None,
    error_bound_deg: float | None = None,
    loss: str | None = None,
    preset: str | None = None,
    steps_per_frame: float | None = None,
    image_sizes: str | None = None,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    ui: TrackUI,
) -> Iterator[Updates]:
    """/pose_track: streams the sequence; trajectory plot, per-frame table and video at the end."""
    if motion_path not in pose_track.PATHS:
        raise gr.Error(f"Pick a path: {', '.join(pose_track.PATHS)}.")
    changes = fit_overrides(image_sizes, None, None, None, None, loss)
    changes.update(mesh_files=upload_paths(mesh_files), path=motion_path)
    rows = (
        (frames, "frames", "Frames", 2, 1000),
        (motion_per_frame_deg, "step_deg", "Motion per frame", 0.0, 45.0),
        (error_bound_deg, "bound_deg", "The error bound", 0.0, 180.0),
        (steps_per_frame, "steps_per_frame", "Steps per frame", 1, 2000),
    )
    changes.update(number_overrides(rows, whole=("frames", "steps_per_frame")))
    cfg = config_for(ctx, pose_track.Config, preset, **changes)

    def on_done(done: Done) -> Updates:
        import pandas as pd

        return {
            ui.trajectory: done.info["figure"],
            ui.table: pd.DataFrame(done.info["table"]),
            ui.video: str(done.files["mp4"]) if "mp4" in done.files else None,
        }

    yield from stream(
        ctx, ui.panel, "pose-track", cfg, preset=preset, request=request, tab="pose_track", on_done=on_done
    )
