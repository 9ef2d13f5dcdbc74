"""The SMPL tab's "Shape and pose" panel: body model, pose and shape controls, the live preview (/smpl_preview)
and the recorded pose-and-export run (/smpl)."""

from __future__ import annotations

import json
import random
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import torch

from pipelines.core.device import default_preset
from pipelines.core.events import Done
from pipelines.smpl import body_model as smpl_body
from pipelines.smpl import pipeline as smpl
from pipelines.smpl.body_views import pose_view
from pipelines.smpl.layout import JOINT_NAMES
from pipelines.smpl.model_files import PROCEDURAL, find_models
from pipelines.smpl.poses import POSE_PRESETS, parse_betas, parse_pose, preset_pose
from pipelines.smpl.procedural_body import SHAPE_NAMES

from .context import AppContext
from .stream import stream
from .viewer import turned_in_place
from .widgets import RunPanel, bind, config_for, gpu_click, model3d, run_panel, stop_button, upload_path, viewer_file

NUM_BETA_SLIDERS = 10
"""Shape sliders shown (and taken by /smpl and /smpl_preview as beta_0 ... beta_9)."""


# ---------------------------------------------------------------------------------------------------------------
# Layout and wiring
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class BodyControls:
    """The panel's controls: body model, pose (preset, per-joint sliders, JSON), shape, heat-map joint, exports."""

    body_model: gr.Dropdown
    body_model_upload: gr.File
    pose_preset: gr.Dropdown
    joint: gr.Dropdown
    rotation: list[gr.Slider]
    """The chosen joint's axis-angle x, y, z in degrees."""
    betas: list[gr.Slider]
    reset_shape: gr.Button
    heat_map_joint: gr.Dropdown
    pose_json: gr.Textbox
    export_formats: gr.CheckboxGroup
    run_button: gr.Button

    @property
    def view_inputs(self) -> list[Any]:
        """What /smpl_preview takes, in order."""
        return [
            self.body_model,
            self.body_model_upload,
            self.pose_preset,
            self.pose_json,
            self.heat_map_joint,
            *self.betas,
        ]

    @property
    def run_inputs(self) -> list[Any]:
        """What /smpl takes, in order."""
        return [
            self.body_model,
            self.body_model_upload,
            self.pose_preset,
            self.pose_json,
            self.heat_map_joint,
            self.export_formats,
            *self.betas,
        ]


@dataclass
class BodyViews:
    """The posed body, its skeleton, the skinning-weight heat map and the body's numbers."""

    posed: gr.Model3D
    skeleton: gr.Plot
    heat: gr.Model3D
    stats: gr.JSON

    @property
    def outputs(self) -> list[Any]:
        """What /smpl_preview returns, in order."""
        return [self.posed, self.skeleton, self.heat, self.stats]


@dataclass
class SmplUI:
    """What /smpl updates: the run panel, the skeleton and numbers, and the two viewers' GLBs (handed over by a
    chained event: a streaming event leaves a Model3D empty in Gradio 6.31)."""

    panel: RunPanel
    views: BodyViews
    viewers: gr.State

    @property
    def outputs(self) -> list[Any]:
        return [*self.panel.outputs, self.views.skeleton, self.views.stats, self.viewers]


@dataclass
class LivePreview:
    """The live preview's handler, inputs and outputs, for the events that redraw the body."""

    fn: Callable[..., Any]
    inputs: list[Any]
    outputs: list[Any]

    def after(self, event: Any) -> Any:
        """Chains the preview after `event`."""
        return event.then(**self.kwargs(), api_name=False)

    def on(self, trigger: Callable[..., Any], api_name: str | bool = False) -> Any:
        """Runs the preview on `trigger` (a component's event method such as `box.submit`)."""
        return trigger(**self.kwargs(), api_name=api_name)

    def kwargs(self) -> dict[str, Any]:
        # previews run beside the GPU queue: they take milliseconds on the CPU
        return dict(
            fn=self.fn, inputs=self.inputs, outputs=self.outputs, concurrency_id="smpl_preview", concurrency_limit=2
        )


def pose_panel(ctx: AppContext) -> LivePreview:
    """Lays out and wires the panel; returns the live preview (the tab redraws the body with it on select)."""
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            controls = _body_controls(ctx)
        with gr.Column(scale=2, min_width=400):
            views = _body_views()
    panel = run_panel(preview=True, curves=False, preview_label="Renders: posed body and skinning weights")
    ui = SmplUI(panel, views, viewers=gr.State(None))
    poses = [name for name in POSE_PRESETS if name != "random"][:5]
    gr.Examples(
        [[name, pose_text(preset_pose(name))] for name in poses],
        [controls.pose_preset, controls.pose_json],
        label="Examples: a pose (then Pose and export)",
        elem_id="smpl-examples",
        example_labels=poses,
    )
    live = LivePreview(bind(preview_body, ctx=ctx), controls.view_inputs, views.outputs)
    _wire_pose_controls(controls, live)
    event = gpu_click(controls.run_button, bind(run_body, ctx=ctx, ui=ui), controls.run_inputs, ui.outputs, "smpl")
    event.then(show_body_viewers, ui.viewers, [views.posed, views.heat], api_name=False)
    return live


def _body_controls(ctx: AppContext) -> BodyControls:
    choices = model_choices(ctx)
    start = preset_pose("a-pose")
    with gr.Row():
        choice = gr.Dropdown(
            choices,
            value=choices[1] if len(choices) > 1 else PROCEDURAL,
            label="Body model (procedural, or files in --models-dir)",
            info="An SMPL .npz/.pkl in --models-dir appears here; the procedural body ships with the studio",
        )
        upload = gr.File(label="…or upload an SMPL .npz", file_types=[".npz"], type="filepath")
    pose_preset = gr.Dropdown(
        list(POSE_PRESETS), value="a-pose", label="Pose preset", info="A whole-body pose to start from"
    )
    joint = gr.Dropdown(
        list(JOINT_NAMES),
        value="left_shoulder",
        label="Joint to rotate (pelvis = global orientation)",
        info="The sliders below rotate this joint relative to its parent",
    )
    j0 = JOINT_NAMES.index("left_shoulder")
    rotation = [
        gr.Slider(
            -180,
            180,
            value=round(float(np.degrees(start[j0, k])), 1),
            step=1,
            label=f"Axis-angle {axis} (degrees)",
            info="Rotation about the joint's axis; the three form one rotation vector",
        )
        for k, axis in enumerate("xyz")
    ]
    with gr.Accordion("Shape coefficients (betas)", open=True):
        betas = [
            gr.Slider(
                -3,
                3,
                value=0,
                step=0.1,
                label=f"β{i}" + (f" ({SHAPE_NAMES[i]}, procedural body)" if i < len(SHAPE_NAMES) else ""),
                info="In standard deviations; 0 is the mean body",
            )
            for i in range(NUM_BETA_SLIDERS)
        ]
        reset_shape = gr.Button("Reset shape", size="sm")
    heat_map_joint = gr.Dropdown(
        list(JOINT_NAMES),
        value="left_shoulder",
        label="Skinning-weight heat map of joint",
        info="How much each vertex follows this joint (linear blend skinning)",
    )
    with gr.Accordion("Advanced: the whole pose as 24 × 3 axis-angle JSON (radians)", open=False):
        pose_json = gr.Textbox(
            pose_text(start),
            label="Pose: 24 × 3 axis-angle, radians (JSON; edit and press Enter)",
            info="One [x, y, z] rotation vector per joint, in SMPL's joint order",
            lines=3,
            max_lines=6,
        )
    exports = gr.CheckboxGroup(
        list(smpl.EXPORTS), value=["glb", "obj"], label="Export the posed mesh as", info="Files offered for download"
    )
    with gr.Row():
        run_button = gr.Button("Pose and export", variant="primary", elem_id="smpl-run")
        stop_button(ctx, "smpl")
    return BodyControls(
        choice, upload, pose_preset, joint, rotation, betas, reset_shape, heat_map_joint, pose_json, exports, run_button
    )


def _body_views() -> BodyViews:
    posed = model3d("Posed body (GLB)", "smpl-model3d", height=460)
    with gr.Row():
        skeleton = gr.Plot(label="Skeleton (kinematic tree)")
        heat = model3d("Skinning weights (viridis; grey = 0)", "smpl-heat3d", height=420)
    with gr.Accordion("The body's numbers (JSON)", open=False):
        stats = gr.JSON(label="Body")
    return BodyViews(posed, skeleton, heat, stats)


def _wire_pose_controls(c: BodyControls, live: LivePreview) -> None:
    """Presets, joint sliders and shape sliders edit the pose box and redraw; the pose box's Enter is
    /smpl_preview."""
    preset_chosen = c.pose_preset.input(
        pose_from_preset, [c.pose_preset, c.joint], [c.pose_json, *c.rotation], api_name=False
    )
    live.after(preset_chosen)
    c.joint.input(joint_rotation, [c.pose_json, c.pose_preset, c.joint], c.rotation, api_name=False)
    for slider in c.rotation:
        live.after(
            slider.release(
                set_joint_rotation, [c.pose_json, c.pose_preset, c.joint, *c.rotation], c.pose_json, api_name=False
            )
        )
    for slider in c.betas:
        live.on(slider.release)
    live.after(c.reset_shape.click(zero_betas, None, c.betas, api_name=False))
    live.on(c.pose_json.submit, api_name="smpl_preview")
    live.on(c.heat_map_joint.input)
    live.on(c.body_model.input)
    live.on(c.body_model_upload.change)


# ---------------------------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------------------------


def preview_body(
    body_model: str | None,
    body_model_upload: Any = None,
    pose_preset: str | None = "a-pose",
    pose_json: str | None = None,
    heat_map_joint: str = "left_shoulder",
    beta_0: float = 0.0,
    beta_1: float = 0.0,
    beta_2: float = 0.0,
    beta_3: float = 0.0,
    beta_4: float = 0.0,
    beta_5: float = 0.0,
    beta_6: float = 0.0,
    beta_7: float = 0.0,
    beta_8: float = 0.0,
    beta_9: float = 0.0,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
) -> tuple[str, Any, str, dict]:
    """/smpl_preview: the posed body and heat map (GLBs), the skeleton figure and the body's numbers, without
    recording a run."""
    setting = resolve_choice(ctx, body_model, body_model_upload)
    model = load_model(ctx, setting)
    pose = parse_pose_text(pose_json, pose_preset)
    if heat_map_joint not in JOINT_NAMES:
        raise gr.Error(f"Unknown joint {heat_map_joint!r}.")
    shape = betas_of((beta_0, beta_1, beta_2, beta_3, beta_4, beta_5, beta_6, beta_7, beta_8, beta_9), model)
    view = pose_view(model, shape, pose, heat_map_joint, fresh_view_dir(ctx, request), preview_device())
    # the GLBs are made afresh for the viewers (downloads come from /smpl's run): turned to the three-quarter view
    posed, heat = turned_in_place(view.mesh_glb), turned_in_place(view.heat_glb)
    return posed, view.figure, heat, {**model.summary(), **view.stats}


def run_body(
    body_model: str | None,
    body_model_upload: Any = None,
    pose_preset: str | None = "a-pose",
    pose_json: str | None = None,
    heat_map_joint: str = "left_shoulder",
    export_formats: Sequence[str] | None = smpl.EXPORTS,
    beta_0: float = 0.0,
    beta_1: float = 0.0,
    beta_2: float = 0.0,
    beta_3: float = 0.0,
    beta_4: float = 0.0,
    beta_5: float = 0.0,
    beta_6: float = 0.0,
    beta_7: float = 0.0,
    beta_8: float = 0.0,
    beta_9: float = 0.0,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    ui: SmplUI,
) -> Iterator[dict[Any, Any]]:
    """/smpl: a recorded run that poses the body and exports it; renders, skeleton, numbers and files at the end."""
    setting = resolve_choice(ctx, body_model, body_model_upload)
    model = load_model(ctx, setting)
    pose = parse_pose_text(pose_json, pose_preset)
    if not export_formats:
        raise gr.Error("Pick at least one export format (GLB or OBJ).")
    shape = betas_of((beta_0, beta_1, beta_2, beta_3, beta_4, beta_5, beta_6, beta_7, beta_8, beta_9), model)
    preset = default_preset(ctx.device)
    cfg = config_for(
        ctx,
        smpl.Config,
        preset,
        body_model=setting,
        pose=tuple(float(v) for v in pose.reshape(-1)),
        betas=tuple(float(v) for v in shape),
        heat_joint=heat_map_joint,
        exports=tuple(export_formats),
    )

    def on_done(done: Done) -> dict[Any, Any]:
        return {
            ui.viewers: (
                viewer_file(ctx, request, done.info["mesh"]),
                viewer_file(ctx, request, done.info["heat_mesh"]),
            ),
            ui.views.skeleton: done.info["figure"],
            ui.views.stats: done.info["model"],
            ui.panel.preview: done.info["render"],
        }

    yield from stream(ctx, ui.panel, "smpl", cfg, preset=preset, request=request, tab="smpl", on_done=on_done)


def show_body_viewers(pair: tuple[str, str] | None) -> tuple[Any, Any]:
    """The posed body's and heat map's GLBs for the two viewers; a run stopped before them leaves the viewers."""
    return tuple(pair) if pair else (gr.skip(), gr.skip())


def pose_from_preset(pose_preset: str, joint: str) -> tuple[Any, ...]:
    """The preset's pose as JSON and the chosen joint's rotation in degrees ('random' draws a new pose each time)."""
    if pose_preset not in POSE_PRESETS:
        raise gr.Error(f"Unknown pose preset {pose_preset!r}.")
    pose = preset_pose(pose_preset, seed=random.randrange(2**31))  # 'random' draws a new pose each time
    j = JOINT_NAMES.index(joint)
    return pose_text(pose), *(round(float(np.degrees(v)), 1) for v in pose[j])


def joint_rotation(pose_json: str, pose_preset: str, joint: str) -> tuple[float, ...]:
    """The joint's axis-angle in the pose box, in degrees."""
    pose = parse_pose_text(pose_json, pose_preset)
    return tuple(round(float(np.degrees(v)), 1) for v in pose[JOINT_NAMES.index(joint)])


def set_joint_rotation(pose_json: str, pose_preset: str, joint: str, x_deg: float, y_deg: float, z_deg: float) -> str:
    """The pose box with the joint's axis-angle set from the three sliders (degrees)."""
    pose = parse_pose_text(pose_json, pose_preset)
    pose[JOINT_NAMES.index(joint)] = np.radians([x_deg, y_deg, z_deg])
    return pose_text(pose)


def zero_betas() -> list[float]:
    """Every shape slider back to 0 (the mean shape)."""
    return [0.0] * NUM_BETA_SLIDERS


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------


def model_choices(ctx: AppContext) -> list[str]:
    return [PROCEDURAL, *(p.name for p in find_models(ctx.models_dir))]


def resolve_choice(ctx: AppContext, choice: str | None, upload: Any) -> str:
    """The `body_model` setting for a dropdown value and an optional upload (uploads: .npz only)."""
    up = upload_path(upload) or ""
    if up:
        if Path(up).suffix.lower() != ".npz":
            raise gr.Error(
                "Uploaded body models must be .npz files (they are loaded without pickle). "
                "An operator can put .pkl files in --models-dir.",
                title="Body model",
            )
        return up
    choice = choice or PROCEDURAL
    if choice not in model_choices(ctx):
        raise gr.Error(f"Unknown body model {choice!r}.", title="Body model")
    return choice


def load_model(ctx: AppContext, setting: str) -> smpl_body.BodyModel:
    try:
        return smpl_body.load(setting, ctx.models_dir)
    except ValueError as err:
        raise gr.Error(str(err), title="Body model") from None


def parse_pose_text(text: str | None, preset: str | None) -> np.ndarray:
    """The pose box's JSON (24 x 3 radians, nested or flat), or the preset when the box is empty."""
    if not text or not text.strip():
        return preset_pose(preset or "a-pose")
    try:
        return parse_pose(np.asarray(json.loads(text), dtype=float).reshape(-1))
    except (json.JSONDecodeError, TypeError) as err:
        raise gr.Error(f"The pose must be JSON: 24 lists of 3 numbers (radians) ({err}).", title="Pose") from None
    except ValueError as err:
        raise gr.Error(str(err), title="Pose") from None


def pose_text(pose: np.ndarray) -> str:
    return json.dumps([[round(float(v), 4) for v in row] for row in pose])


def betas_of(values: tuple[Any, ...], model: smpl_body.BodyModel) -> np.ndarray:
    """The shape sliders' values as the model's betas (empty sliders are 0; sliders beyond its betas are ignored)."""
    vals = [float(v or 0.0) for v in values][: model.num_betas]
    try:
        return parse_betas(vals, model.num_betas)
    except ValueError as err:
        raise gr.Error(str(err), title="Shape") from None


def fresh_view_dir(ctx: AppContext, request: gr.Request | None, keep: int = 4) -> Path:
    """A new folder for this session's viewer files; older ones beyond `keep` are removed."""
    root = ctx.session_dir(getattr(request, "session_hash", None)) / "smpl"
    root.mkdir(parents=True, exist_ok=True)
    old = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for p in old[: max(0, len(old) - keep + 1)]:
        shutil.rmtree(p, ignore_errors=True)
    out = root / uuid.uuid4().hex[:10]
    out.mkdir()
    return out


def preview_device() -> torch.device:
    """Live previews pose one body on the CPU: it takes milliseconds and keeps the GPU queue free."""
    return torch.device("cpu")
