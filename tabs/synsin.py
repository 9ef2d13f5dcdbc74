"""SynSin tab: move a camera through one picture with the shipped (or an official) model (/synsin), and train
SynSin from scratch on procedural rooms (/synsin_train)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipelines.core.config import PRESETS
from pipelines.core.events import Done
from pipelines.files.image_input import ImageFileError, read_image
from pipelines.synsin import train as synsin_train
from pipelines.synsin import view as synsin_view

from .context import AppContext
from .stream import stream
from .widgets import (
    LATEX,
    RunPanel,
    bind,
    config_for,
    gpu_click,
    preset_numbers,
    preset_radio,
    run_panel,
    stop_button,
    upload_box,
    upload_path,
)

IMAGE_UPLOAD_TYPES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm")
CHECKPOINT_TYPES = (".pt", ".pth")
LESSON = r"""
**One picture, a moved camera.** SynSin predicts, from a single image, a feature vector $\mathbf f_i$ (64 numbers,
from a spectrally normalised ResNet) and a depth $d_i$ (a U-Net, squashed into $[z_{min}, z_{max}]$ by a sigmoid) for
every pixel $i$. Each pixel becomes a 3D point $\mathbf X_i = d_i K^{-1} (u_i, v_i, 1)^\top$ in the source camera;
the relative pose moves the cloud into the target camera, $\mathbf X'_i = R\,\mathbf X_i + \mathbf t$.

**A differentiable point renderer.** PyTorch3D's point rasteriser finds, for every target pixel, the $K$ nearest
points (by depth) whose disc of radius $r$ covers it, with squared distance $\delta_{ik}^2$ to the pixel centre;
each gets $\alpha_{ik} = \big(1 - \sqrt{\delta_{ik}^2 / r^2}\big)^{\tau}$ and the features are alpha-composited
front to back: $\mathbf F = \sum_k \alpha_k \prod_{j<k}(1-\alpha_j)\,\mathbf f_k$ [$r$ = 4 px at 256, $K$ = 128,
$\tau$ = 1]. Because $\alpha$ depends on where the points land, the image loss also teaches the depth network.

**Refinement and losses.** A ResNet decoder turns the projected features (holes included) into the target image.
Training: $\mathcal L = \lambda_{1}\lVert\hat I - I\rVert_1 + \lambda_p \mathcal L_{perc} + \lambda_g \mathcal L_{GAN}
+ \lambda_f \mathcal L_{FM}$ [1 / 10 / 1 / 10], hinge GAN with a two-scale PatchGAN, Adam $\beta = (0, 0.9)$. The
perceptual term is VGG-19's when the operator supplies its weights; otherwise image-gradient differences over a
three-level pyramid stand in (this studio downloads nothing).

**What the studio adds for a CPU budget** (off in the official `full` preset, so official checkpoints still load).
*RGB skip:* the input's colours are splatted with the features; the decoder sees them (normalised by coverage,
holes filled by push-pull: a pyramid of coverage-weighted averages of the splatted colours, each hole taking the
finest level that reaches it) and predicts a correction, $\hat I = \tilde I_{splat} + g\,\Delta$ with a learnt
gain $g$ that starts small (0.1), so the output is sharp from the first step. *Photometric loss:* each source pixel is lifted with its predicted depth, moved into
the target camera, and the target image is sampled there; $\mathcal L_{ph} = 0.85\,\frac{1-\mathrm{SSIM}}{2} +
0.15\,\lVert I_s - I_t\langle\pi(R\,\mathbf X_i + \mathbf t)\rangle\rVert_1$ over the pixels that land inside the
image (and on blurred copies), plus a small edge-aware smoothness of $1/d$ — a dense depth signal without depth
labels, as in self-supervised monocular depth.

**What we can measure here.** The rooms are rendered, so the true target view and the true depth are known: held-out
PSNR/SSIM sit beside copying the input and splatting its colours at a constant depth or at the true depth, and the
predicted depth is scored by AbsRel after median scaling. LPIPS is shown only with operator-supplied backbone
weights (not computed otherwise).
"""
CONTEXT = (
    "The shipped model is a small 64 px SynSin with the studio's RGB skip, trained for 40 minutes on one CPU thread "
    "(assets/synsin/MODEL_CARD.md): on held-out rooms it scores 22.9 dB / SSIM 0.68 where copying the input scores "
    "17.4 dB / 0.37 and splatting the input at a constant depth 21.0 dB / 0.58 (22.2 dB / 0.63 with the same "
    "push-pull hole filling as the model), at the true depth 22.8 dB / 0.74 (25.0 dB / 0.79 with push-pull); its "
    "depth (AbsRel 0.087) beats a constant map (0.122). Its refinement decoder learnt almost no correction, so the "
    "view is the input splatted with the predicted depth, holes filled by push-pull. Context only (other data): the "
    "book's KITTI figures PSNR 16.70 dB / SSIM 0.52, the repository's RealEstate10K figures 22.31 dB / 0.74."
)


@dataclass
class ViewUI:
    """What /synsin updates besides its run panel (whose picture is the refined view): depth, projected features,
    true view, sweep GIF, the feature cloud and the notes."""

    panel: RunPanel
    depth: gr.Image
    projected: gr.Image
    truth: gr.Image
    sweep: gr.Image
    cloud: gr.Plot
    notes: gr.Markdown

    @property
    def outputs(self) -> list[Any]:
        extras = [self.truth, self.depth, self.projected, self.sweep, self.cloud, self.notes]
        return [*self.panel.outputs, *extras]


def build(ctx: AppContext, tab: gr.Tab) -> None:
    """Results first: the input and camera on the left, the refined view and its parts on the right; examples;
    training from scratch in an accordion below."""
    with gr.Accordion("Lesson: SynSin, point splatting, what is measured", open=False):
        gr.Markdown(LESSON, latex_delimiters=LATEX)
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            inputs, button = _view_controls(ctx)
        with gr.Column(scale=2, min_width=400):
            ui = _view_outputs()
    gr.Examples(
        examples=[["held-out room", 0, 12, 0, 0.0, 0.3], ["held-out room", 3, -15, 5, 0.3, 0.0],
                  ["held-out room", 7, 0, 0, -0.4, 0.5], ["held-out room", 11, 18, -6, 0.2, 0.2]],
        inputs=[inputs[0], inputs[1], *inputs[3:7]],
        label="Examples: held-out rooms and camera moves",
        elem_id="synsin-examples",
    )  # fmt: skip
    gpu_click(button, bind(render_view, ctx=ctx, ui=ui), inputs, ui.outputs, "synsin")
    with gr.Accordion("Train SynSin from scratch on procedural rooms", open=False):
        _train_section(ctx)
    gr.Markdown(CONTEXT)


def _view_controls(ctx: AppContext) -> tuple[list[Any], gr.Button]:
    source = gr.Radio(["held-out room", "upload"], value="held-out room", label="Input picture",
                      info="A procedural room the model never saw in training, or your own picture")  # fmt: skip
    room = gr.Number(0, label="Held-out room (0-999; never seen in training)", precision=0, minimum=0, maximum=999,
                     info="Which held-out room; its true new view is shown beside the prediction")  # fmt: skip
    image = upload_box("Your picture (PNG, JPEG, ...; centre-cropped)", IMAGE_UPLOAD_TYPES, multiple=False)
    beyond = "beyond the trained range it is clamped, and the note says so"
    yaw = gr.Slider(-45, 45, value=12, step=1, label="Turn left (+) / right (-), degrees (trained ±20)",
                    info=f"The new camera's turn; {beyond}")  # fmt: skip
    pitch = gr.Slider(-30, 30, value=0, step=1, label="Tilt up (+) / down (-), degrees (trained ±10)",
                      info=f"The new camera's tilt; {beyond}")  # fmt: skip
    right = gr.Slider(-1.5, 1.5, value=0.0, step=0.05, label="Move right (+) / left (-) (trained ±0.6)",
                      info=f"Sideways step, in room units; {beyond}")  # fmt: skip
    forward = gr.Slider(-1.5, 1.5, value=0.3, step=0.05, label="Move forward (+) / back (-) (trained ±0.6)",
                        info=f"Step into the room; {beyond}")  # fmt: skip
    sweep = gr.Slider(0, 48, value=24, step=1, label="Sweep GIF frames (0 = none)",
                      info="A GIF that moves from the input camera to the new one")  # fmt: skip
    with gr.Accordion("Model", open=False):
        checkpoint = gr.Textbox("", label="Checkpoint in --models-dir ('' = the shipped studio model)",
                                info="A file name the operator put in --models-dir, e.g. synsin.pth")  # fmt: skip
        checkpoint_file = upload_box("Or upload a checkpoint (.pt / .pth; loaded weights-only)", CHECKPOINT_TYPES,
                                     multiple=False)  # fmt: skip
    preset = preset_radio(ctx, "Preset (tiny: 3 sweep frames, for tests)")
    with gr.Row():
        button = gr.Button("Render the view", variant="primary", elem_id="synsin-run")
        stop_button(ctx, "synsin")
    return [source, room, image, yaw, pitch, right, forward, sweep, checkpoint, checkpoint_file, preset], button


def _view_outputs() -> ViewUI:
    panel = run_panel(curves=False, preview_label="Refined view (SynSin)", preview_height=320)
    notes = gr.Markdown("", label="Notes: clamped poses, picture conversions, checkpoint")
    with gr.Row():
        truth = gr.Image(label="True target view (held-out room only)", type="filepath", interactive=False, height=256)
        depth = gr.Image(label="Predicted depth (bright = near)", type="filepath", interactive=False, height=256)
        projected = gr.Image(label="Projected features before refinement (3 principal components)", type="filepath",
                             interactive=False, height=256)  # fmt: skip
    with gr.Row():
        sweep = gr.Image(label="Camera sweep (GIF)", type="filepath", interactive=False, height=320)
        cloud = gr.Plot(label="Feature point cloud (source camera frame, subsampled)")
    return ViewUI(panel, depth, projected, truth, sweep, cloud, notes)


def view_settings(input_picture: str, heldout_room: float | None, image: Any) -> dict[str, Any]:
    """Config fields for the input picture, checked before a run starts (gr.Error with a sentence)."""
    if input_picture == "upload":
        path = upload_path(image)
        if not path:
            raise gr.Error("Upload a picture, or choose a held-out room.", title="Input picture")
        try:
            read_image(path)  # header checked before decoding; grey, RGBA, 16-bit and odd sizes converted
        except ImageFileError as err:
            raise gr.Error(str(err), title="Input picture") from None
        return {"image": path}
    room = 0 if heldout_room is None else float(heldout_room)
    if not (0 <= room <= 999) or room != int(room):
        raise gr.Error("The held-out room is a whole number from 0 to 999.", title="Input picture")
    return {"heldout_room": int(room), "image": None}


def render_view(
    input_picture: str = "held-out room",
    heldout_room: float | None = 0,
    image: Any = None,
    yaw_deg: float = 12,
    pitch_deg: float = 0,
    right: float = 0.0,
    forward: float = 0.3,
    sweep_frames: float = 24,
    checkpoint: str = "",
    checkpoint_file: Any = None,
    preset: str | None = None,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    ui: ViewUI,
) -> Iterator[dict[Any, Any]]:
    """/synsin: the refined view for the camera move, its depth, projected features, cloud and sweep GIF."""
    if preset not in PRESETS:
        raise gr.Error("Choose a preset: tiny, quick or full.")
    fields = view_settings(input_picture, heldout_room, image)
    uploaded = upload_path(checkpoint_file)
    fields["checkpoint"] = uploaded or (checkpoint or "").strip()
    pose = {"yaw_deg": yaw_deg, "pitch_deg": pitch_deg, "right": right, "forward": forward}
    fields.update({k: float(v) for k, v in pose.items() if v is not None})
    if preset != "tiny" and sweep_frames is not None:  # tiny keeps its 3 frames (tests and CI)
        fields["sweep_frames"] = int(sweep_frames)
    cfg = config_for(ctx, synsin_view.Config, preset, **fields)

    def on_done(done: Done) -> dict[Any, Any]:
        f, notes = done.files, done.info.get("notes", [])
        return {
            ui.depth: str(f["depth"]),
            ui.projected: str(f["projected"]),
            ui.truth: str(f["truth"]) if "truth" in f else None,
            ui.sweep: str(f["sweep"]) if "sweep" in f else None,
            ui.cloud: done.info["cloud"],
            ui.notes: "\n".join(f"- {n}" for n in notes) if notes else "",
        }

    yield from stream(ctx, ui.panel, "synsin", cfg, preset=preset, request=request, tab="synsin", on_done=on_done)


@dataclass
class TrainUI:
    panel: RunPanel
    comparison: gr.Dataframe

    @property
    def outputs(self) -> list[Any]:
        return [*self.panel.outputs, self.comparison]


def _train_section(ctx: AppContext) -> None:
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            preset = preset_radio(ctx, "Preset (tiny: seconds; quick: a few minutes on a CPU; full: the official)")
            steps = preset_numbers(ctx, preset, synsin_train.Config, {"steps": "Steps"}, integers=("steps",),
                                   limits={"steps": (1, None)})["steps"]  # fmt: skip
            budget = gr.Number(0, label="Wall-time budget, seconds (0 = none)", minimum=0,
                               info="Training stops after this long, then evaluates and saves")  # fmt: skip
            with gr.Row():
                button = gr.Button("Train", variant="primary", elem_id="synsin-train-run")
                stop_button(ctx, "synsin_train")
        with gr.Column(scale=2, min_width=400):
            panel = run_panel(preview_label="Held-out: source | target | SynSin | splats | depth (pred, true)")
            comparison = gr.Dataframe(headers=["method", "PSNR dB", "SSIM", "LPIPS"], label="Held-out pairs",
                                      interactive=False)  # fmt: skip
    ui = TrainUI(panel, comparison)
    gpu_click(button, bind(train, ctx=ctx, ui=ui), [preset, steps, budget], ui.outputs, "synsin_train")


def train(
    preset: str | None = None,
    steps: float | None = None,
    time_budget_s: float | None = 0,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    ui: TrainUI,
) -> Iterator[dict[Any, Any]]:
    """/synsin_train: trains with live held-out previews and curves; the comparison table at the end."""
    if preset not in PRESETS:
        raise gr.Error("Choose a preset: tiny, quick or full.")
    fields: dict[str, Any] = {"time_budget_s": float(time_budget_s or 0)}
    if steps:
        fields["steps"] = int(steps)
    cfg = config_for(ctx, synsin_train.Config, preset, **fields)

    def on_done(done: Done) -> dict[Any, Any]:
        return {ui.comparison: done.info.get("comparison")}

    yield from stream(ctx, ui.panel, "synsin-train", cfg, preset=preset, request=request, tab="synsin_train",
                      on_done=on_done)  # fmt: skip
