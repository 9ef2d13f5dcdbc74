"""The GIRAFFE tab's training section (/giraffe_train: live sample grid and both losses, resumable checkpoints) and
Fréchet-distance section (/giraffe_fid), with the tab's lesson text."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipelines.core.device import default_preset
from pipelines.core.events import Done
from pipelines.giraffe import fid as giraffe_fid
from pipelines.giraffe import pipeline as giraffe_train
from pipelines.giraffe import specs

from .context import AppContext
from .stream import stream
from .widgets import (
    RunPanel,
    bind,
    config_for,
    gpu_click,
    preset_numbers,
    preset_radio,
    run_panel,
    stop_button,
    upload_path,
)

SHIPPED_CHOICE = ("studio model (shipped, 32 px, procedural scenes)", "")

LESSON = r"""
**Scenes as compositions of fields.** GIRAFFE (Niemeyer & Geiger, CVPR 2021) generates a scene from $N$ objects
and a background. Object $i$ is a feature field $h_\theta(\gamma(\mathbf x), \gamma(\mathbf d), \mathbf z^s_i,
\mathbf z^a_i) = (\sigma_i, \mathbf f_i)$ — an MLP (128 wide, 8 layers, a skip at 4) of the positionally encoded
point ($L = 10$) and view direction ($L = 4$) and a shape and an appearance code (256 each), evaluated in the
object's own box: a world point $\mathbf x$ becomes $R(\mathbf x - \mathbf t)/\mathbf s$, so moving, turning or
scaling the box moves, turns or scales the object. One decoder serves every object; the background has its own
smaller field (64 × 4).

**Composition.** At each sample the densities add and the features mix by density:
$\sigma = \sum_i \sigma_i$, $\mathbf f = \frac{1}{\sigma} \sum_i \sigma_i \mathbf f_i$.

**Volume rendering** of a small feature image ($16^2$, 64 samples per ray between depths 0.5 and 6):
$\mathbf f(\mathbf r) = \sum_j \tau_j \alpha_j \mathbf f_j$ with $\alpha_j = 1 - e^{-\sigma_j \delta_j}$ and
$\tau_j = \prod_{k<j}(1 - \alpha_k)$. A **neural renderer** (nearest upsampling and 3×3 convolutions, with RGB skips
upsampled bilinearly and blurred by [1, 2, 1]) turns it into the picture.

**Training** is a GAN: a DCGAN discriminator, the non-saturating loss $-\log D(G(\mathbf z))$, and R1 on real
images, $\gamma\,\mathbb E\|\nabla_x D(x)\|^2$ with $\gamma = 10$ (the official code's weighting; the R1 paper
writes $\gamma/2$); RMSprop (G $5\cdot10^{-4}$, D $10^{-4}$, batch 32). A moving average of the generator ($\beta = 0.999$) renders
and is evaluated.

**FID** compares Inception features of generated and real images:
$\mathrm{FD} = \|\mu_r - \mu_g\|^2 + \mathrm{tr}\big(\Sigma_r + \Sigma_g - 2(\Sigma_r\Sigma_g)^{1/2}\big)$.
Without the operator's Inception weights this tab computes the same statistic on a fixed random-conv encoder: a
*procedural FD*, for ranking models on our scenes, never comparable with published FIDs.

**Here** the scenes are made by the app (coloured primitives on a ground plane, rendered with PyTorch3D), so the
truth is known: the measurements check that an object's rendered alpha follows its box, and that moving it leaves
the rest of the picture alone.
"""


def model_choices(ctx: AppContext) -> list[tuple[str, str]]:
    """The shipped model, then the official checkpoints found in the models dir (by file name)."""
    found = []
    if ctx.models_dir is not None:
        found = [(f"official: {n}", n) for n in specs.OFFICIAL_FILES if (ctx.models_dir / n).is_file()]
    return [SHIPPED_CHOICE, *found]


def checked_model(ctx: AppContext, model: str | None) -> str:
    """The model choice as a checkpoint name: '' (shipped) or an official file found in the models dir; anything
    else (a path typed into the API) is refused, so visitors load only uploads and the operator's files."""
    allowed = {value for _, value in model_choices(ctx)}
    if (model or "") not in allowed:
        raise gr.Error(f"Unknown model {model!r}: choose the shipped model, an official file of the models dir, or upload a checkpoint.")  # fmt: skip
    return model or ""


@dataclass
class TrainUI:
    panel: RunPanel
    checkpoint: gr.File

    @property
    def outputs(self) -> list[Any]:
        return [*self.panel.outputs, self.checkpoint]


def train_section(ctx: AppContext) -> None:
    """Train from scratch (or resume): settings and Train on the left, the live sample grid and losses on the right."""
    gr.Markdown("### Train GIRAFFE on the procedural scenes")
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            preset = preset_radio(ctx, "Preset (full = the official 64 px networks)")
            boxes = preset_numbers(
                ctx, preset, giraffe_train.Config,
                {"steps": "Steps", "batch": "Batch (official 32)", "n_objects": "Most objects per scene",
                 "wall_budget_s": "Wall-time budget (s, 0: none)"},
                integers=("steps", "batch", "n_objects"),
                limits={"steps": (1, 10_000_000), "batch": (1, 256), "n_objects": (1, 8), "wall_budget_s": (0, None)},
            )  # fmt: skip
            resume = gr.File(label="Resume from a studio checkpoint (.pt, optional)", file_types=[".pt"], height=130)
            with gr.Row():
                button = gr.Button("Train", variant="primary", elem_id="giraffe-train-run")
                stop_button(ctx, "giraffe_train")
        with gr.Column(scale=2, min_width=400):
            panel = run_panel(preview_label="EMA generator samples", preview_height=300)
            checkpoint = gr.File(label="Checkpoint (use it above, or resume)", interactive=False, visible=False)
    ui = TrainUI(panel, checkpoint)
    inputs = [preset, *boxes.values(), resume]
    gpu_click(button, bind(train, ctx=ctx, ui=ui), inputs, ui.outputs, "giraffe_train")


def train(
    preset: str | None = None,
    steps: float | None = None,
    batch: float | None = None,
    n_objects: float | None = None,
    wall_budget_s: float | None = None,
    resume: Any = None,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    ui: TrainUI,
) -> Iterator[dict[Any, Any]]:
    """/giraffe_train: streams the EMA generator's samples and the losses; the checkpoint, samples, FD and the
    translation-sweep measurements at the end."""
    preset = preset or default_preset(ctx.device)
    values = (("steps", steps, int), ("batch", batch, int), ("n_objects", n_objects, int), ("wall_budget_s", wall_budget_s, float))  # fmt: skip
    fields: dict[str, Any] = {name: cast(value) for name, value, cast in values if value is not None}
    if upload_path(resume):
        fields["resume"] = upload_path(resume)
    cfg = config_for(ctx, giraffe_train.Config, preset, **fields)
    try:
        giraffe_train.check_config(cfg)
    except ValueError as err:
        raise gr.Error(str(err), title="Check the settings") from None

    def on_done(done: Done) -> dict[Any, Any]:
        return {ui.checkpoint: gr.update(value=str(done.files["checkpoint"]), visible=True)}

    yield from stream(ctx, ui.panel, "giraffe-train", cfg, preset=preset, request=request, tab="giraffe_train", on_done=on_done)  # fmt: skip


def fd_section(ctx: AppContext, model: gr.Dropdown, upload: gr.File) -> None:
    """The Fréchet distance of the model chosen above against fresh procedural scenes."""
    gr.Markdown("### Fréchet distance (of the model chosen above)")
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            preset = preset_radio(ctx, "Preset (tiny 16 images, quick 1k, full 20k as in the paper)")
            n_samples = preset_numbers(
                ctx, preset, giraffe_fid.Config, {"n_samples": "Images per set"}, integers=("n_samples",),
                limits={"n_samples": (2, 50_000)},
            )["n_samples"]  # fmt: skip
            with gr.Row():
                button = gr.Button("Compute FD", variant="primary", elem_id="giraffe-fid-run")
                stop_button(ctx, "giraffe_fid")
        with gr.Column(scale=2, min_width=400):
            panel = run_panel(preview_label="Generated samples", preview_height=260, curves=False)
            note = gr.Markdown("", label="What the number is")
    gpu_click(button, bind(fd, ctx=ctx, panel=panel, note=note), [model, upload, n_samples, preset], [*panel.outputs, note], "giraffe_fid")  # fmt: skip


def fd(
    model: str = "",
    upload: Any = None,
    n_samples: float = 0,
    preset: str | None = None,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    panel: RunPanel,
    note: gr.Markdown,
) -> Iterator[dict[Any, Any]]:
    """/giraffe_fid: the FD of the chosen model and of an untrained one of the same shape, with what features were
    used (Inception when the operator's verified weights are there, else the labelled procedural encoder)."""
    checkpoint = upload_path(upload) or checked_model(ctx, model)
    preset = preset or default_preset(ctx.device)
    count = int(n_samples) if n_samples else None  # an API caller's 0 or None: the preset's
    cfg = config_for(ctx, giraffe_fid.Config, preset, checkpoint=checkpoint, n_samples=count)

    def on_done(done: Done) -> dict[Any, Any]:
        context = "; ".join(f"{k}: {v:g}" for k, v in done.info.get("context", {}).items())
        text = (
            f"**{done.info.get('label')}** — {done.info.get('features')}. Published figure for context only: {context}."
        )
        return {note: text}

    yield from stream(ctx, panel, "giraffe-fid", cfg, preset=preset, request=request, tab="giraffe_fid", on_done=on_done)  # fmt: skip
