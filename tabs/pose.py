"""Pose tab: recover a camera pose by differentiable rendering, and track an object through a synthetic sequence."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import gradio as gr
import numpy as np

from pipelines.core.config import make_preset
from pipelines.core.device import default_preset
from pipelines.pose import pipeline as pose
from pipelines.pose import track as pose_track

from .context import AppContext
from .mesh_fit import bounded_number, number_overrides
from .stream import LATEX, run_panel, stop_button, stream, upload_paths

LESSON = r"""
**The camera.** The camera sits at a point $c$ and looks at the object (at the origin) with +Y up; its world-to-view
rotation $R(c)$ follows from $c$ (PyTorch3D's `look_at_rotation`) and $T = -R^\top c$, so a world point maps to
$X_\text{view} = X_\text{world} R + T$. Only $c$ is learnt: three numbers, as in the book.

**Why a soft renderer.** A normal rasteriser gives each pixel to one face, so moving the camera a little changes the
image in jumps and the gradient is zero almost everywhere. The soft rasteriser keeps up to $K$ faces near each pixel
and turns the pixel's signed squared distance $d_j$ to face $j$ (negative inside) into a coverage probability
$$D_j = \operatorname{sigmoid}(-d_j/\sigma),\qquad A = 1 - \prod_{j} (1 - D_j),$$
where $A$ is the soft silhouette. Faces farther than the blur radius $r = \log(1/\varepsilon - 1)\,\sigma$ would add
less than $\varepsilon = 10^{-4}$ and are skipped [σ = 10⁻⁴, K = 100, 256 px in the book].

**Losses.** The *silhouette loss* compares the soft silhouette with the target mask $M$,
$L_\text{sil} = \operatorname{mean}_p (A_p - M_p)^2$. The *RGB loss* compares a soft Phong render with the target
image, $L_\text{rgb} = \operatorname{mean}_p \lVert I_p - I^\ast_p\rVert^2$, where the $K$ faces' shaded colours are
mixed with weights $\propto D_j\,e^{z_j/\gamma}$ (nearer faces dominate as $\gamma \to 0$) plus the background.
Colour helps when the silhouette alone is ambiguous (a symmetric outline) but needs the lighting to match.
Adam [lr 0.05] moves $c$ down the gradient of $w_\text{sil}L_\text{sil} + w_\text{rgb}L_\text{rgb}$.

**Fast on a CPU.** Coarse to fine: a few dozen cheap steps at 64 px find the basin, then 128 px refines. For the
silhouette the rasteriser here keeps, for each pixel, the $K$ faces *nearest the pixel* (covering faces first) —
all that $A$ depends on — so a small $K$ loses nothing, while keeping the $K$ nearest in depth (PyTorch3D's rule,
needed for shading) leaves holes unless $K$ is large. Its backward pass is plain tensor algebra. A stage ends when
its loss stops improving (patience), or when the silhouette IoU reaches a set value.

**Errors.** When the true pose is known: the rotation error is the geodesic angle
$\theta = \arccos\big((\operatorname{tr}(R_\text{est}^\top R_\text{true}) - 1)/2\big)$, and the distance error is
$\lVert c_\text{est} - c_\text{true}\rVert$ (the object is scaled to the unit sphere).

**Tracking.** In a video the object moves a little between frames, so each frame starts from the last frame's
estimate (a *warm start*) and needs only a few steps; a lost frame would drag the next ones with it, which is why the
per-frame error is tracked against a bound.
"""


def _sizes(text: str) -> tuple[int, ...] | None:
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


def _sizes_text(sizes: tuple[int, ...]) -> str:
    return ", ".join(str(s) for s in sizes)


def _save_target(ctx: AppContext, request: gr.Request | None, image: np.ndarray, mask: np.ndarray) -> tuple[str, str]:
    """Check an uploaded image and mask early (gr.Error) and save them as PNGs in the session folder."""
    from PIL import Image

    if image is None or mask is None:
        raise gr.Error("Upload both the target image and its mask (white or opaque = object).")
    if image.shape[:2] != mask.shape[:2]:
        raise gr.Error(
            f"The target image is {image.shape[1]}×{image.shape[0]} pixels but the mask is "
            f"{mask.shape[1]}×{mask.shape[0]}: they must be the same size."
        )
    folder = ctx.session_dir(getattr(request, "session_hash", None)) / f"pose-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(folder / "target.png")
    Image.fromarray(np.asarray(mask, dtype=np.uint8)).save(folder / "mask.png")
    try:
        pose.read_image_and_mask(str(folder / "target.png"), str(folder / "mask.png"))
    except ValueError as err:
        raise gr.Error(str(err)) from None
    return str(folder / "target.png"), str(folder / "mask.png")


def _common(cfg: Any, pre_sizes: str, k: Any, rate: Any, patience: Any, stop_iou: Any, loss: str) -> dict[str, Any]:
    """Overrides shared by pose and tracking, validated."""
    if loss not in pose.LOSSES:
        raise gr.Error("Pick a loss: silhouette, rgb or both.")
    changes: dict[str, Any] = {"loss": loss}
    sizes = _sizes(pre_sizes)
    if sizes:
        changes["image_sizes"] = sizes
    rows = (
        (k, "faces_per_pixel", "Faces per pixel", 1, 200),
        (rate, "lr", "The learning rate", 1e-6, 10.0),
        (patience, "patience", "Patience", 0, 10000),
        (stop_iou, "stop_iou", "The stop IoU", 0.0, 1.0),
    )
    changes.update(number_overrides(rows, whole=("faces_per_pixel", "patience")))
    return changes


def build(ctx: AppContext, tab: gr.Tab) -> None:
    preset_default = default_preset(ctx.device)
    with gr.Accordion("Lesson: soft silhouettes, losses and pose errors", open=False):
        gr.Markdown(LESSON, latex_delimiters=LATEX)
    mesh_files = gr.File(
        label="Mesh to pose (OBJ+MTL+texture, PLY, GLB, ...); empty = the procedural toy cow",
        file_count="multiple",
        file_types=[".ply", ".obj", ".mtl", ".glb", ".gltf", ".bin", ".stl", ".off", ".zip", ".png", ".jpg", ".jpeg"],
    )
    with gr.Tabs():
        with gr.Tab("Single pose"):
            _single(ctx, mesh_files, preset_default)
        with gr.Tab("Tracking"):
            _tracking(ctx, mesh_files, preset_default)
    _ = tab


def _single(ctx: AppContext, mesh_files: gr.File, preset_default: str) -> None:
    defaults = pose.Config()
    with gr.Row():
        with gr.Column():
            source = gr.Radio(
                ["hidden pose", "uploaded image"],
                value="hidden pose",
                label="Target: the mesh rendered at a hidden pose, or a photo with its mask",
            )
            with gr.Row():
                true_dist = gr.Number(defaults.true_pose[0], label="Hidden distance", minimum=0.5, maximum=20)
                true_elev = gr.Slider(-89, 89, value=defaults.true_pose[1], step=1, label="Hidden elevation (°)")
                true_azim = gr.Slider(-180, 180, value=defaults.true_pose[2], step=1, label="Hidden azimuth (°)")
            with gr.Row():
                image = gr.Image(label="Target image", type="numpy", height=200, sources=["upload"])
                mask = gr.Image(
                    label="Target mask (white/opaque = object)",
                    type="numpy",
                    image_mode="RGBA",
                    height=200,
                    sources=["upload"],
                )
        with gr.Column():
            offset = gr.Slider(
                0, 90, value=defaults.start_offset_deg, step=1, label="Start: turned this far from the hidden pose (°)"
            )
            explicit = gr.Checkbox(False, label="Set the start pose instead (always used with an uploaded image)")
            with gr.Row():
                start_dist = gr.Number(2.7, label="Start distance", minimum=0.5, maximum=20)
                start_elev = gr.Slider(-89, 89, value=0, step=1, label="Start elevation (°)")
                start_azim = gr.Slider(-180, 180, value=0, step=1, label="Start azimuth (°)")
            with gr.Row():
                loss = gr.Radio(list(pose.LOSSES), value="silhouette", label="Loss")
                preset = gr.Radio(["tiny", "quick", "full"], value=preset_default, label="Preset (full = the book's)")
            start_cfg = make_preset(pose.Config, preset_default)
            with gr.Accordion("Optimisation and stopping rule (set by the preset; change freely)", open=False):
                with gr.Row():
                    steps = gr.Number(start_cfg.steps, label="Most steps", precision=0, minimum=1, maximum=5000)
                    rate = gr.Number(start_cfg.lr, label="Adam learning rate", minimum=0)
                    sizes = gr.Textbox(
                        _sizes_text(start_cfg.image_sizes), label="Image sizes, coarse to fine, e.g. 64, 128"
                    )
                with gr.Row():
                    k = gr.Number(
                        start_cfg.faces_per_pixel, label="Faces per pixel", precision=0, minimum=1, maximum=200
                    )
                    patience = gr.Number(start_cfg.patience, label="Patience, steps (0 = off)", precision=0, minimum=0)
                    stop_iou = gr.Number(
                        start_cfg.stop_iou, label="Stop at silhouette IoU (0 = off)", minimum=0, maximum=1
                    )
            with gr.Row():
                go_btn = gr.Button("Estimate the pose", variant="primary")
                stop_button(ctx, "pose")
    panel = run_panel(preview_label="Target | current render | overlay (red = target, cyan = current, white = both)")
    with gr.Row():
        video = gr.Video(label="The optimisation (MP4)", height=240, interactive=False)
        result = gr.JSON(label="Estimated, start and true pose (R, T, centre)")

    def estimate(
        files,
        src,
        td,
        te,
        ta,
        img,
        msk,
        off,
        use_start,
        sd,
        se,
        sa,
        loss_name,
        pre,
        n_steps,
        lr_,
        sz,
        kk,
        pat,
        iou,
        request: gr.Request,
    ):
        """/pose: streams the optimisation; the pose, its error and the videos at the end."""
        cfg = make_preset(pose.Config, pre or preset_default)
        changes = _common(cfg, sz, kk, lr_, pat, iou, loss_name)
        changes.update(mesh_files=upload_paths(files), device=str(ctx.device), max_upload_mb=ctx.max_upload_mb)
        changes.update(number_overrides([(n_steps, "steps", "Steps", 1, 5000)], whole=("steps",)))
        start = (bounded_number(sd, "The start distance", 0.5, 20.0) or 2.7, float(se or 0), float(sa or 0))
        if src == "uploaded image":
            changes["target_image"], changes["target_mask"] = _save_target(ctx, request, img, msk)
            changes["start_pose"] = start
        else:
            changes["true_pose"] = (
                bounded_number(td, "The hidden distance", 0.5, 20.0) or 2.7,
                float(te or 0),
                float(ta or 0),
            )
            changes["start_offset_deg"] = bounded_number(off, "The start offset", 0.0, 180.0) or 0.0
            if use_start:
                changes["start_pose"] = start
        cfg = dataclasses.replace(cfg, **changes)

        def on_done(done) -> dict:
            return {
                video: str(done.files["mp4"]) if "mp4" in done.files else None,
                result: {k_: v for k_, v in done.info.items() if k_ != "history"},
            }

        yield from stream(ctx, panel, "pose", cfg, preset=pre, request=request, tab="pose", on_done=on_done)

    def preset_values(pre: str) -> tuple:
        cfg = make_preset(pose.Config, pre or preset_default)
        return cfg.steps, cfg.lr, _sizes_text(cfg.image_sizes), cfg.faces_per_pixel, cfg.patience, cfg.stop_iou

    preset.change(preset_values, preset, [steps, rate, sizes, k, patience, stop_iou], api_name=False)

    inputs = [
        mesh_files,
        source,
        true_dist,
        true_elev,
        true_azim,
        image,
        mask,
        offset,
        explicit,
        start_dist,
        start_elev,
        start_azim,
    ]
    inputs += [loss, preset, steps, rate, sizes, k, patience, stop_iou]
    go_btn.click(
        estimate, inputs, [*panel.outputs, video, result], api_name="pose", concurrency_id="gpu", concurrency_limit=1
    )


def _tracking(ctx: AppContext, mesh_files: gr.File, preset_default: str) -> None:
    defaults = pose_track.Config()
    gr.Markdown(
        "The object moves along a path; each frame is rendered at its true pose and the camera is fitted starting from the "
        "previous frame's estimate."
    )
    start_cfg = make_preset(pose_track.Config, preset_default)
    with gr.Row():
        path = gr.Radio(list(pose_track.PATHS), value=defaults.path, label="Path")
        frames = gr.Number(start_cfg.frames, label="Frames", precision=0, minimum=2, maximum=1000)
        step_deg = gr.Slider(0.5, 15, value=defaults.step_deg, step=0.5, label="Motion per frame (°)")
        bound = gr.Number(defaults.bound_deg, label="Error bound (°)", minimum=0)
    with gr.Row():
        loss = gr.Radio(list(pose.LOSSES), value="silhouette", label="Loss")
        preset = gr.Radio(["tiny", "quick", "full"], value=preset_default, label="Preset (full = the book's)")
        steps = gr.Number(start_cfg.steps_per_frame, label="Most steps per frame", precision=0, minimum=1, maximum=2000)
        sizes = gr.Textbox(_sizes_text(start_cfg.image_sizes), label="Image sizes, coarse to fine")
    with gr.Row():
        go_btn = gr.Button("Track", variant="primary")
        stop_button(ctx, "pose_track")
    panel = run_panel(preview_label="Target | current render | overlay")
    trajectory = gr.Plot(label="Estimated against true trajectory")
    table = gr.Dataframe(label="Per-frame errors", interactive=False, wrap=True)
    video = gr.Video(label="The tracked sequence (MP4)", height=220, interactive=False)

    def track(files, path_name, n_frames, per_frame, bound_deg, loss_name, pre, n_steps, sz, request: gr.Request):
        """/pose_track: streams the sequence; trajectory plot, per-frame table and video at the end."""
        if path_name not in pose_track.PATHS:
            raise gr.Error(f"Pick a path: {', '.join(pose_track.PATHS)}.")
        cfg = make_preset(pose_track.Config, pre or preset_default)
        changes = _common(cfg, sz, None, None, None, None, loss_name)
        changes.update(
            mesh_files=upload_paths(files), path=path_name, device=str(ctx.device), max_upload_mb=ctx.max_upload_mb
        )
        rows = (
            (n_frames, "frames", "Frames", 2, 1000),
            (per_frame, "step_deg", "Motion per frame", 0.0, 45.0),
            (bound_deg, "bound_deg", "The error bound", 0.0, 180.0),
            (n_steps, "steps_per_frame", "Steps per frame", 1, 2000),
        )
        changes.update(number_overrides(rows, whole=("frames", "steps_per_frame")))
        cfg = dataclasses.replace(cfg, **changes)

        def on_done(done) -> dict:
            import pandas as pd

            return {
                trajectory: done.info["figure"],
                table: pd.DataFrame(done.info["table"]),
                video: str(done.files["mp4"]) if "mp4" in done.files else None,
            }

        yield from stream(ctx, panel, "pose-track", cfg, preset=pre, request=request, tab="pose_track", on_done=on_done)

    def preset_values(pre: str) -> tuple:
        cfg = make_preset(pose_track.Config, pre or preset_default)
        return cfg.frames, cfg.steps_per_frame, _sizes_text(cfg.image_sizes)

    preset.change(preset_values, preset, [frames, steps, sizes], api_name=False)

    go_btn.click(
        track,
        [mesh_files, path, frames, step_deg, bound, loss, preset, steps, sizes],
        [*panel.outputs, trajectory, table, video],
        api_name="pose_track",
        concurrency_id="gpu",
        concurrency_limit=1,
    )
