"""The SMPL tab's SMPLify panel: keypoints (synthetic or uploaded), the fit's run panel, its stages and the fitted
body (/smplify)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from pipelines.core.config import PRESETS
from pipelines.core.events import Done
from pipelines.files.image_input import ImageFileError, read_image
from pipelines.smpl import smplify
from pipelines.smpl.keypoints import load_upload

from .context import AppContext
from .stream import stream
from .widgets import (
    IMAGE_TYPES,
    RunPanel,
    bind,
    config_for,
    gpu_click,
    model3d,
    preset_radio,
    run_panel,
    show_in_viewer,
    stop_button,
    upload_path,
    viewer_file,
)

CAMERA_NOTE = (
    "Camera: focal length 5000 px, principal point at the image centre. The pose prior is the GMM file "
    "`gmm_08.npz`/`gmm_08.pkl` when the operator puts one in --models-dir, otherwise the fallback Gaussian "
    "described in the lesson. Green rings: keypoints; red: the fitted skeleton."
)


@dataclass
class SmplifyUI:
    """What /smplify updates: the run panel, the stages picture and the fitted GLB (handed to the viewer by a
    chained event, see widgets.viewer_file)."""

    panel: RunPanel
    stages: gr.Image
    fitted_state: gr.State

    @property
    def outputs(self) -> list[Any]:
        return [*self.panel.outputs, self.stages, self.fitted_state]


def smplify_panel(ctx: AppContext) -> None:
    """Lays out the panel and wires Fit to /smplify."""
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            inputs, fit_button = _keypoint_controls(ctx)
        with gr.Column(scale=2, min_width=400):
            panel = run_panel(preview=True, curves=True, preview_label="Projected joints over the image")
            with gr.Row():
                fitted = model3d("Fitted body (GLB)", "smplify-model3d", height=400)
                stages = gr.Image(
                    label="Initial guess, after the camera stage, after stage 4, final mesh",
                    type="numpy",
                    interactive=False,
                    height=260,
                )
    ui = SmplifyUI(panel, stages, fitted_state=gr.State(None))
    event = gpu_click(fit_button, bind(fit_keypoints, ctx=ctx, ui=ui), inputs, ui.outputs, api_name="smplify")
    show_in_viewer(event, ui.fitted_state, fitted, keep_when_empty=True)


def _keypoint_controls(ctx: AppContext) -> tuple[list[Any], gr.Button]:
    """The keypoint source and its settings, the preset, Fit and Stop; returns /smplify's inputs and Fit."""
    source = gr.Radio(
        [("Synthetic: a random body, known camera", "synthetic"), ("Upload: image + OpenPose JSON", "upload")],
        value="synthetic",
        label="Keypoints",
        info="Synthetic keypoints come with the true body, so the joint error is measured",
    )
    with gr.Group(visible=True) as synthetic_group:
        seed = gr.Number(
            0,
            label="Seed (body, camera, noise)",
            info="The same seed, the same synthetic body and keypoints",
            precision=0,
            minimum=0,
            maximum=2**31 - 1,
        )
        noise = gr.Slider(
            0, 10, value=2, step=0.5, label="Keypoint noise (pixels, std)", info="Gaussian noise on the 2D keypoints"
        )
        missing = gr.Slider(
            0,
            10,
            value=2,
            step=1,
            label="Missing joints (outside the torso)",
            info="Keypoints dropped, as a detector misses them",
        )
    with gr.Group(visible=False) as upload_group:
        image = gr.File(label="Image (optional): PNG or JPEG", file_types=list(IMAGE_TYPES), type="filepath")
        keypoints = gr.File(
            label="Keypoints: OpenPose JSON (BODY_25, COCO-18) or 24 SMPL joints",
            file_types=[".json"],
            type="filepath",
        )
    preset = preset_radio(ctx, "Preset (tiny: seconds; quick: ~1 min on a CPU; full: SMPLify's iterations)")
    with gr.Row():
        fit_button = gr.Button("Fit", variant="primary", elem_id="smplify-run")
        stop_button(ctx, "smplify")
    gr.Examples(
        [[0, 2.0, 2], [7, 0.0, 0], [3, 5.0, 4]],
        [seed, noise, missing],
        label="Examples: seed, keypoint noise (px), missing joints",
        elem_id="smplify-examples",
    )
    gr.Markdown(CAMERA_NOTE)
    source.change(show_source_settings, source, [synthetic_group, upload_group], api_name=False)
    return [source, seed, noise, missing, image, keypoints, preset], fit_button


def show_source_settings(keypoint_source: str) -> tuple[Any, Any]:
    """Shows the synthetic settings or the upload boxes, whichever the source needs."""
    return gr.update(visible=keypoint_source == "synthetic"), gr.update(visible=keypoint_source == "upload")


def fit_keypoints(
    keypoint_source: str,
    seed: float | None,
    noise_std: float | None,
    missing_joints: float | None,
    image: str | None = None,
    keypoints_file: Any = None,
    preset: str | None = None,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    ui: SmplifyUI,
) -> Iterator[dict[Any, Any]]:
    """/smplify: streams the fit's stages; the overlay, stages picture, metrics and fitted mesh at the end."""
    if keypoint_source not in smplify.SOURCES:
        raise gr.Error("Choose synthetic or upload.")
    if preset not in PRESETS:
        raise gr.Error("Choose a preset: tiny, quick or full.")
    if keypoint_source == "upload":
        settings = upload_settings(image, keypoints_file)
    else:
        settings = synthetic_settings(seed, noise_std, missing_joints)
    cfg = config_for(ctx, smplify.Config, preset, source=keypoint_source, **settings)

    def on_done(done: Done) -> dict[Any, Any]:
        return {
            ui.fitted_state: viewer_file(ctx, request, done.info["mesh"]),
            ui.stages: done.info["stages_image"],
            ui.panel.preview: done.info["overlay_image"],
        }

    yield from stream(ctx, ui.panel, "smplify", cfg, preset=preset, request=request, tab="smplify", on_done=on_done)


def upload_settings(image: str | None, keypoints_file: Any) -> dict[str, Any]:
    """Config fields for uploaded keypoints (and an optional image), checked before a run starts (gr.Error)."""
    kp_path, img_path = upload_path(keypoints_file) or "", upload_path(image) or ""
    if not kp_path:
        raise gr.Error("Upload the keypoint JSON (OpenPose format) to fit.", title="Keypoints")
    if Path(kp_path).suffix.lower() != ".json":
        raise gr.Error("Keypoints must be a .json file in OpenPose's format.", title="Keypoints")
    if img_path:
        try:
            read_image(img_path)  # the size comes from the header before anything is decoded
        except ImageFileError as err:
            raise gr.Error(str(err), title="Image") from None
    try:
        load_upload(kp_path, img_path)  # cheap: every problem is reported before a run starts
    except ValueError as err:
        raise gr.Error(str(err), title="Keypoints") from None
    return {"keypoints": kp_path, "image": img_path}


def synthetic_settings(seed: float | None, noise_std: float | None, missing_joints: float | None) -> dict[str, Any]:
    """Config fields for a synthetic case: the seed (a whole number from 0), noise in pixels and missing joints."""
    if seed is None or not 0 <= float(seed) < 2**31:
        raise gr.Error("The seed must be a whole number from 0.")
    return {"seed": int(seed), "noise_px": float(noise_std or 0), "missing_joints": int(missing_joints or 0)}
