"""SMPL tab: shape and pose the body model (sliders, presets, skeleton, skinning heat map, export) and SMPLify."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import uuid
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from pipelines.core.config import make_preset
from pipelines.core.device import default_preset
from pipelines.smpl import body_model, smplify
from pipelines.smpl import pipeline as smpl
from pipelines.smpl.body_model import JOINT_NAMES, PROCEDURAL, SHAPE_NAMES

from .context import AppContext
from .stream import LATEX, run_panel, stop_button, stream, upload_path, viewer_file

NUM_BETA_SLIDERS = 10
LESSON = r"""
**The body model.** SMPL describes a body by a template mesh $\bar T$ (6,890 vertices in the official model) that
three linear ingredients deform before skinning:

- *shape*: $T_S(\beta) = \bar T + \sum_k \beta_k S_k$, where each column $S_k$ of `shapedirs` moves every vertex
  a little (taller, heavier, ...), one standard deviation per unit of $\beta_k$;
- *joints*: the rest joints are a fixed linear function of the shaped vertices, $J(\beta) = \mathcal J\, T_S(\beta)$
  (`J_regressor`), so a taller body gets a taller skeleton automatically;
- *pose correctives*: $T_P = T_S + \sum_n \big(\mathrm{vec}(R(\theta)) - \mathrm{vec}(I)\big)_n P_n$ over the
  207 entries of the 23 non-root rotation matrices (`posedirs`), which fix elbow and knee collapse. The
  procedural body here has none (they are zero), so it is skinned by LBS alone.

**Linear blend skinning.** Each joint $j$ gets a rotation $R_j = \exp([\theta_j]_\times)$ from its axis-angle
$\theta_j$ (Rodrigues), relative to its parent $p(j)$ in the kinematic tree. Walking down the tree gives each
joint's world transform,
$$G_j = G_{p(j)} \begin{bmatrix} R_j & J_j - J_{p(j)} \\ 0 & 1 \end{bmatrix}, \qquad G_0 = \begin{bmatrix} R_0 & J_0 \\ 0 & 1 \end{bmatrix},$$
and, after removing the rest position, $G'_j = G_j \begin{bmatrix} I & -J_j \\ 0 & 1 \end{bmatrix}$. A vertex is moved
by the blend of its joints' transforms with its skinning weights $w_{ij}$ (`weights`, each row sums to 1):
$$v'_i = \Big(\sum_j w_{ij}\, G'_j\Big) \begin{bmatrix} t_{P,i} \\ 1 \end{bmatrix}.$$
Rotating one joint therefore moves only the vertices weighted to it or to its descendants (pick a joint in the
heat map to see its weights).

**SMPLify** recovers $\beta$, $\theta$ and the camera translation $t$ from 2D keypoints $x_i$ with confidences
$c_i$, for a pinhole camera $\Pi$ with focal length $f = 5000$ px and the principal point at the image centre. It
minimises
$$E = \sum_i c_i^2\, \rho_\sigma\big(\Pi(J_i(\beta, \theta) + t) - x_i\big) + \lambda_\theta^2 E_\theta(\theta)
+ \lambda_a^2 \sum_{\text{elbows, knees}} e^{2 s_i \theta_i} + \lambda_\beta^2 \lVert\beta\rVert^2,$$
with the Geman-McClure function $\rho_\sigma(r) = \sigma^2 r^2 / (\sigma^2 + r^2)$ ($\sigma = 100$ px), which stops
a wrong keypoint from dragging the fit; $E_\theta$ is the negative log-likelihood of the body pose under a Gaussian
mixture learnt from motion capture (the best component: $\min_k \tfrac12 (\theta-\mu_k)^\top \Sigma_k^{-1}
(\theta-\mu_k) - \log w_k + \tfrac12 \log|\Sigma_k|$), or, without that file, one Gaussian around a relaxed pose
whose standard deviations let knees and elbows bend only about their hinge axis. The exponential term punishes
elbows and knees bent backwards.

*Initialisation*: by similar triangles the depth is $t_z = f\, L_\text{3D} / L_\text{2D}$, the model's
shoulder-to-hip length over the keypoints'. *Stage 0* fits $t$ and the global orientation to the torso keypoints
only. Then four stages with $\lambda_\theta = 404, 404, 57.4, 4.78$, $\lambda_\beta = 100, 50, 10, 5$ and
$\lambda_a = 0.317\,\lambda_\theta$: the prior first holds the pose near the mean while the body turns and
scales into place, then lets the limbs follow the keypoints. We report the mean 2D error in pixels and, for
synthetic cases with known truth, the 3D joint error in mm after aligning the pelvis (MPJPE) and after the best
similarity transform (PA-MPJPE).
"""


def model_choices(ctx: AppContext) -> list[str]:
    return [PROCEDURAL, *(p.name for p in body_model.find_models(ctx.models_dir))]


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


def load_model(ctx: AppContext, setting: str) -> body_model.BodyModel:
    try:
        return body_model.load(setting, ctx.models_dir)
    except ValueError as err:
        raise gr.Error(str(err), title="Body model") from None


def parse_pose_text(text: str | None, preset: str | None) -> np.ndarray:
    """The pose box's JSON (24 x 3 radians, nested or flat), or the preset when the box is empty."""
    if not text or not text.strip():
        return smpl.preset_pose(preset or "a-pose")
    try:
        return smpl.parse_pose(np.asarray(json.loads(text), dtype=float).reshape(-1))
    except (json.JSONDecodeError, TypeError) as err:
        raise gr.Error(f"The pose must be JSON: 24 lists of 3 numbers (radians) ({err}).", title="Pose") from None
    except ValueError as err:
        raise gr.Error(str(err), title="Pose") from None


def pose_text(pose: np.ndarray) -> str:
    return json.dumps([[round(float(v), 4) for v in row] for row in pose])


def _betas(values: tuple[Any, ...], model: body_model.BodyModel) -> np.ndarray:
    vals = [float(v or 0.0) for v in values][: model.num_betas]
    try:
        return smpl.parse_betas(vals, model.num_betas)
    except ValueError as err:
        raise gr.Error(str(err), title="Shape") from None


def _fresh_dir(ctx: AppContext, request: gr.Request | None, keep: int = 4) -> Path:
    """A new folder for this session's viewer files; older ones beyond `keep` are removed."""
    root = ctx.session_dir(getattr(request, "session_hash", None)) / "smpl"
    root.mkdir(parents=True, exist_ok=True)
    old = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for p in old[: max(0, len(old) - keep + 1)]:
        shutil.rmtree(p, ignore_errors=True)
    out = root / uuid.uuid4().hex[:10]
    out.mkdir()
    return out


def build(ctx: AppContext, tab: gr.Tab) -> None:
    with gr.Accordion("Lesson: SMPL, linear blend skinning and SMPLify", open=False):
        gr.Markdown(LESSON, latex_delimiters=LATEX)
    gr.Markdown(
        f"**Body model in use by default:** {body_model.model_in_use(ctx.models_dir)}.", elem_id="smpl-model-in-use"
    )
    with gr.Tabs():
        with gr.Tab("Shape and pose"):
            refresh = _pose_panel(ctx)
        with gr.Tab("SMPLify"):
            _smplify_panel(ctx)
    # gr.Model3D in a tab that is not the first can render collapsed (gradio issue 7632): re-send on select.
    fn, inputs, outputs = refresh
    tab.select(fn, inputs, outputs, api_name=False)


def _pose_panel(ctx: AppContext) -> tuple:
    choices = model_choices(ctx)
    default_model = choices[1] if len(choices) > 1 else PROCEDURAL
    start = smpl.preset_pose("a-pose")
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            with gr.Row():
                choice = gr.Dropdown(
                    choices, value=default_model, label="Body model (procedural, or files in --models-dir)"
                )
                upload = gr.File(label="…or upload an SMPL .npz", file_types=[".npz"], type="filepath")
            preset = gr.Dropdown(list(smpl.POSE_PRESETS), value="a-pose", label="Pose preset")
            joint = gr.Dropdown(
                list(JOINT_NAMES), value="left_shoulder", label="Joint to rotate (pelvis = global orientation)"
            )
            j0 = JOINT_NAMES.index("left_shoulder")
            rot = [
                gr.Slider(
                    -180,
                    180,
                    value=round(float(np.degrees(start[j0, k])), 1),
                    step=1,
                    label=f"Axis-angle {axis} (degrees)",
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
                    )
                    for i in range(NUM_BETA_SLIDERS)
                ]
                reset = gr.Button("Reset shape", size="sm")
            heat_joint = gr.Dropdown(
                list(JOINT_NAMES), value="left_shoulder", label="Skinning-weight heat map of joint"
            )
            pose_box = gr.Textbox(
                pose_text(start),
                label="Pose: 24 × 3 axis-angle, radians (JSON; edit and press Enter)",
                lines=3,
                max_lines=6,
            )
            exports = gr.CheckboxGroup(list(smpl.EXPORTS), value=["glb", "obj"], label="Export the posed mesh as")
            with gr.Row():
                go_btn = gr.Button("Pose and export", variant="primary")
                stop_button(ctx, "smpl")
        with gr.Column(scale=2):
            posed = gr.Model3D(
                label="Posed body (GLB)", height=460, clear_color=(0.95, 0.95, 0.96, 1.0), elem_id="smpl-model3d"
            )
            with gr.Row():
                skeleton = gr.Plot(label="Skeleton (kinematic tree)")
                heat = gr.Model3D(
                    label="Skinning weights (viridis; grey = 0)",
                    height=420,
                    clear_color=(0.95, 0.95, 0.96, 1.0),
                    elem_id="smpl-heat3d",
                )
            stats = gr.JSON(label="Body", open=False)
    panel = run_panel(preview=True, curves=False, preview_label="Renders: posed body and skinning weights")
    # A streaming event leaves a Model3D empty in Gradio 6.31: the run hands the GLBs over through a chained event.
    viewers = gr.State(None)

    def _preview(request: gr.Request, choice_v, upload_v, preset_v, text, heat_v, *beta_v):
        setting = resolve_choice(ctx, choice_v, upload_v)
        model = load_model(ctx, setting)
        pose = parse_pose_text(text, preset_v)
        if heat_v not in JOINT_NAMES:
            raise gr.Error(f"Unknown joint {heat_v!r}.")
        view = smpl.pose_view(model, _betas(beta_v, model), pose, heat_v, _fresh_dir(ctx, request), _preview_device())
        return str(view.mesh_glb), view.figure, str(view.heat_glb), {**model.summary(), **view.stats}

    view_inputs = [choice, upload, preset, pose_box, heat_joint, *betas]
    view_outputs = [posed, skeleton, heat, stats]
    live = dict(
        fn=_preview, inputs=view_inputs, outputs=view_outputs, concurrency_id="smpl_preview", concurrency_limit=2
    )

    def _from_preset(name: str, joint_name: str):
        if name not in smpl.POSE_PRESETS:
            raise gr.Error(f"Unknown pose preset {name!r}.")
        pose = smpl.preset_pose(name, seed=random.randrange(2**31))  # 'random' draws a new pose each time
        j = JOINT_NAMES.index(joint_name)
        return pose_text(pose), *(round(float(np.degrees(v)), 1) for v in pose[j])

    def _joint_values(text: str, preset_v: str, joint_name: str):
        pose = parse_pose_text(text, preset_v)
        return tuple(round(float(np.degrees(v)), 1) for v in pose[JOINT_NAMES.index(joint_name)])

    def _set_joint(text: str, preset_v: str, joint_name: str, x: float, y: float, z: float) -> str:
        pose = parse_pose_text(text, preset_v)
        pose[JOINT_NAMES.index(joint_name)] = np.radians([x, y, z])
        return pose_text(pose)

    preset.input(_from_preset, [preset, joint], [pose_box, *rot], api_name=False).then(**live, api_name=False)
    joint.input(_joint_values, [pose_box, preset, joint], rot, api_name=False)
    for slider in rot:
        slider.release(_set_joint, [pose_box, preset, joint, *rot], pose_box, api_name=False).then(
            **live, api_name=False
        )
    for ctrl in betas:
        ctrl.release(**live, api_name=False)
    reset.click(lambda: [0.0] * NUM_BETA_SLIDERS, None, betas, api_name=False).then(**live, api_name=False)
    pose_box.submit(**live, api_name="smpl_preview")
    heat_joint.input(**live, api_name=False)
    choice.input(**live, api_name=False)
    upload.change(**live, api_name=False)

    def _run(request: gr.Request, choice_v, upload_v, preset_v, text, heat_v, export_v, *beta_v):
        setting = resolve_choice(ctx, choice_v, upload_v)
        model = load_model(ctx, setting)
        pose = parse_pose_text(text, preset_v)
        if not export_v:
            raise gr.Error("Pick at least one export format (GLB or OBJ).")
        preset_name = default_preset(ctx.device)
        cfg = dataclasses.replace(
            make_preset(smpl.Config, preset_name),
            body_model=setting,
            models_dir=ctx.models_dir,
            pose=tuple(float(v) for v in pose.reshape(-1)),
            betas=tuple(float(v) for v in _betas(beta_v, model)),
            heat_joint=heat_v,
            exports=tuple(export_v),
        )

        def on_done(done) -> dict:
            return {
                viewers: (
                    viewer_file(ctx, request, done.info["mesh"]),
                    viewer_file(ctx, request, done.info["heat_mesh"]),
                ),
                skeleton: done.info["figure"],
                stats: done.info["model"],
                panel.preview: done.info["render"],
            }

        yield from stream(ctx, panel, "smpl", cfg, preset=preset_name, request=request, tab="smpl", on_done=on_done)

    go_btn.click(
        _run,
        [choice, upload, preset, pose_box, heat_joint, exports, *betas],
        [*panel.outputs, skeleton, stats, viewers],
        api_name="smpl",
        concurrency_id="gpu",
        concurrency_limit=1,
    ).then(lambda pair: tuple(pair) if pair else (gr.skip(), gr.skip()), viewers, [posed, heat], api_name=False)
    return (_preview, view_inputs, view_outputs)


def _preview_device():
    """Live previews pose one body on the CPU: it takes milliseconds and keeps the GPU queue free."""
    import torch

    return torch.device("cpu")


def _smplify_panel(ctx: AppContext) -> None:
    preset_default = default_preset(ctx.device)
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            source = gr.Radio(
                [("Synthetic: a random body, known camera", "synthetic"), ("Upload: image + OpenPose JSON", "upload")],
                value="synthetic",
                label="Keypoints",
            )
            with gr.Group(visible=True) as syn_group:
                seed = gr.Number(0, label="Seed (body, camera, noise)", precision=0, minimum=0, maximum=2**31 - 1)
                noise = gr.Slider(0, 10, value=2, step=0.5, label="Keypoint noise (pixels, std)")
                missing = gr.Slider(0, 10, value=2, step=1, label="Missing joints (outside the torso)")
            with gr.Group(visible=False) as up_group:
                image = gr.Image(label="Image (optional)", type="filepath", height=220)
                keypoints = gr.File(
                    label="Keypoints: OpenPose JSON (BODY_25, COCO-18) or 24 SMPL joints",
                    file_types=[".json"],
                    type="filepath",
                )
            preset = gr.Radio(
                ["tiny", "quick", "full"],
                value=preset_default,
                label="Preset (tiny: seconds; quick: ~1 min on a CPU; full: SMPLify's iterations)",
            )
            with gr.Row():
                fit_btn = gr.Button("Fit", variant="primary")
                stop_button(ctx, "smplify")
            gr.Markdown(
                "Camera: focal length 5000 px, principal point at the image centre. The pose prior is the GMM file "
                "`gmm_08.npz`/`gmm_08.pkl` when the operator puts one in --models-dir, otherwise the fallback Gaussian "
                "described in the lesson. Green rings: keypoints; red: the fitted skeleton."
            )
        with gr.Column(scale=2):
            panel = run_panel(preview=True, curves=True, preview_label="Projected joints over the image")
            with gr.Row():
                fitted = gr.Model3D(
                    label="Fitted body (GLB)",
                    height=400,
                    clear_color=(0.95, 0.95, 0.96, 1.0),
                    elem_id="smplify-model3d",
                )
                stages = gr.Image(
                    label="Initial guess, after the camera stage, after stage 4, final mesh",
                    type="numpy",
                    interactive=False,
                    height=260,
                )

    fitted_state = gr.State(None)  # the fitted GLB, handed to the viewer by a chained event (see stream.viewer_file)

    def _toggle(src: str):
        return gr.update(visible=src == "synthetic"), gr.update(visible=src == "upload")

    source.change(_toggle, source, [syn_group, up_group], api_name=False)

    def _fit(src, seed_v, noise_v, missing_v, image_v, kp_v, preset_v, request: gr.Request):
        if src not in smplify.SOURCES:
            raise gr.Error("Choose synthetic or upload.")
        if preset_v not in ("tiny", "quick", "full"):
            raise gr.Error("Choose a preset: tiny, quick or full.")
        cfg = make_preset(smplify.Config, preset_v)
        extra: dict[str, Any] = {}
        if src == "upload":
            kp_path, img_path = upload_path(kp_v) or "", upload_path(image_v) or ""
            if not kp_path:
                raise gr.Error("Upload the keypoint JSON (OpenPose format) to fit.", title="Keypoints")
            if Path(kp_path).suffix.lower() != ".json":
                raise gr.Error("Keypoints must be a .json file in OpenPose's format.", title="Keypoints")
            try:
                smplify.load_upload(kp_path, img_path)  # cheap: every problem is reported before a run starts
            except ValueError as err:
                raise gr.Error(str(err), title="Keypoints") from None
            extra = {"keypoints": kp_path, "image": img_path}
        else:
            if seed_v is None or not 0 <= float(seed_v) < 2**31:
                raise gr.Error("The seed must be a whole number from 0.")
            extra = {"seed": int(seed_v), "noise_px": float(noise_v or 0), "missing_joints": int(missing_v or 0)}
        cfg = dataclasses.replace(cfg, source=src, models_dir=ctx.models_dir, **extra)

        def on_done(done) -> dict:
            return {
                fitted_state: viewer_file(ctx, request, done.info["mesh"]),
                stages: done.info["stages_image"],
                panel.preview: done.info["overlay_image"],
            }

        yield from stream(ctx, panel, "smplify", cfg, preset=preset_v, request=request, tab="smplify", on_done=on_done)

    fit_btn.click(
        _fit,
        [source, seed, noise, missing, image, keypoints, preset],
        [*panel.outputs, stages, fitted_state],
        api_name="smplify",
        concurrency_id="gpu",
        concurrency_limit=1,
    ).then(lambda path: path or gr.skip(), fitted_state, fitted, api_name=False)
