"""GIRAFFE tab: controllable generation with the shipped (or an official, or an uploaded) model, its measurements,
and the procedural training scenes; training and the Fréchet distance live in tabs/giraffe_train.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
import torch

from pipelines.core.events import Done
from pipelines.giraffe import controls, evaluation, scenes, specs
from pipelines.giraffe import generate as giraffe_generate

from .context import AppContext
from .giraffe_train import LESSON, checked_model, fd_section, model_choices, train_section
from .stream import stream
from .widgets import (
    LATEX,
    RunPanel,
    bind,
    config_for,
    gpu_click,
    preset_radio,
    run_panel,
    show_when_filled,
    stop_button,
    upload_path,
)


@dataclass
class GenerateUI:
    """What /giraffe_generate updates besides the run panel: the GIF sweep, the frame strip, the background alone
    and the random samples."""

    panel: RunPanel
    gif: gr.Image
    strip: gr.Image
    background: gr.Image
    samples: gr.Image

    @property
    def outputs(self) -> list[Any]:
        return [*self.panel.outputs, self.gif, self.strip, self.background, self.samples]


def build(ctx: AppContext, tab: gr.Tab) -> None:
    """Results first: the model and the control with Generate on the left; the edited scene, its GIF sweep and the
    measurements on the right; examples; the training scenes; training and FD below."""
    with gr.Accordion(
        "Lesson: compositional neural feature fields, volume rendering, the neural renderer, FID", open=False
    ):
        gr.Markdown(LESSON, latex_delimiters=LATEX)
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            inputs = _generate_inputs(ctx)
            with gr.Row():
                button = gr.Button("Generate", variant="primary", elem_id="giraffe-run")
                stop_button(ctx, "giraffe")
        with gr.Column(scale=2, min_width=400):
            panel = run_panel(preview_label="Edited scene (the still at 'amount')", preview_height=300, curves=False)
            with gr.Row():
                gif = gr.Image(label="GIF sweep", type="filepath", interactive=False, height=300)
                background = gr.Image(label="Background alone", type="filepath", interactive=False, height=300)
            strip = gr.Image(label="Sweep frames", type="filepath", interactive=False, height=180)
            samples = gr.Image(label="Random samples", type="filepath", interactive=False, height=220)
            show_when_filled(gif, background, strip, samples)
    gr.Examples(
        [
            ["", None, "move-horizontal", 0, 1, 0.5, 16, 0],
            ["", None, "rotate", 0, 1, 0.5, 16, 3],
            ["", None, "add-remove", 0, 3, 0.5, 16, 5],
            ["", None, "elevation", 0, 2, 0.5, 16, 8],
            ["", None, "appearance", 0, 1, 0.5, 16, 2],
        ],  # fmt: skip
        inputs=inputs[:8],
        label="Examples: a control on the shipped model",
        elem_id="giraffe-examples",
    )
    ui = GenerateUI(panel, gif, strip, background, samples)
    gpu_click(button, bind(generate, ctx=ctx, ui=ui), inputs, ui.outputs, "giraffe_generate")
    _scenes_section()
    train_section(ctx)
    fd_section(ctx, inputs[0], inputs[1])


def _generate_inputs(ctx: AppContext) -> list[Any]:
    model = gr.Dropdown(model_choices(ctx), value="", label="Model", info="Official checkpoints appear when the operator puts them in --models-dir")  # fmt: skip
    upload = gr.File(label="…or upload a checkpoint (.pt: studio or official)", file_types=[".pt"], height=130)
    control = gr.Dropdown([(f"{k}: {v}", k) for k, v in controls.CONTROLS.items()], value="move-horizontal", label="Control", info="What the sweep changes: an object's place, rotation, size, shape or look, the background or the camera")  # fmt: skip
    with gr.Row():
        object_index = gr.Number(0, label="Object", precision=0, minimum=0, maximum=7, info="which object the control edits")  # fmt: skip
        n_objects = gr.Number(
            1,
            label="Objects in the scene",
            info="The model places up to this many objects (the studio model was trained with 1 or 2)",
            precision=0,
            minimum=1,
            maximum=8,
        )
    amount = gr.Slider(
        0.0,
        1.0,
        value=0.5,
        step=0.05,
        label="Amount (the still image's place along the sweep)",
        info="0: the start of the sweep, 1: its end",
    )
    with gr.Row():
        frames = gr.Number(16, label="GIF frames", info="Frames of the sweep GIF", precision=0, minimum=2, maximum=120)
        seed = gr.Number(0, label="Scene seed", precision=0, minimum=0, info="the same seed, the same scene")
    preset = preset_radio(ctx, "Preset (tiny: 4 samples and a 1-scene measurement; quick/full: 16 and 8)")
    return [model, upload, control, object_index, n_objects, amount, frames, seed, preset]


def _scenes_section() -> None:
    with gr.Accordion("The training scenes (procedural, rendered with PyTorch3D, with their true boxes)", open=False):
        show = gr.Button("Show 16 scenes", size="sm")
        gallery = gr.Image(label="Procedural scenes: pictures and object masks", type="numpy", interactive=False, height=420)  # fmt: skip
    show.click(scene_gallery, None, gallery, api_name=False, concurrency_id="gpu", concurrency_limit=1)


def scene_gallery() -> np.ndarray:
    """16 procedural scenes of the shipped model's kind (first row pair: pictures; second: masks coloured per
    object), upsampled for the screen."""
    spec = specs.studio_spec()
    batch = scenes.sample_scenes(spec, 8, torch.Generator().manual_seed(1234), torch.device("cpu"))
    palette = torch.tensor([[0.9, 0.2, 0.2], [0.2, 0.8, 0.3], [0.2, 0.4, 0.95]])
    masks = (batch.masks.float()[..., None] * palette[: batch.masks.shape[1], None, None]).sum(1).clamp(0, 1)
    images = torch.cat([batch.images, masks]).permute(0, 3, 1, 2)
    return evaluation.grid_picture(images, cols=8, min_side=1024)


def generate(
    model: str = "",
    upload: Any = None,
    control: str = "move-horizontal",
    object_index: float = 0,
    n_objects: float = 1,
    amount: float = 0.5,
    frames: float = 16,
    seed: float = 0,
    preset: str | None = None,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    ui: GenerateUI,
) -> Iterator[dict[Any, Any]]:
    """/giraffe_generate: samples, the control as a still and a GIF sweep, the background alone, and the
    translation-sweep measurements (centroid error px and R², change outside the object, alpha inside its box)."""
    checkpoint = upload_path(upload) or checked_model(ctx, model)
    preset = preset or "quick"
    cfg = config_for(
        ctx, giraffe_generate.Config, preset, checkpoint=checkpoint, control=control or "move-horizontal",
        object_index=int(object_index or 0), n_objects=int(n_objects or 1), amount=float(amount),
        frames=int(frames or 16), seed=int(seed or 0),
    )  # fmt: skip
    try:
        giraffe_generate.check_config(cfg)
    except ValueError as err:
        raise gr.Error(str(err), title="Check the settings") from None

    def on_done(done: Done) -> dict[Any, Any]:
        return {
            ui.gif: str(done.files["sweep_gif"]),
            ui.strip: str(done.files["strip"]),
            ui.background: str(done.files["background"]),
            ui.samples: str(done.files["samples"]),
        }

    yield from stream(ctx, ui.panel, "giraffe-generate", cfg, preset=preset, request=request, tab="giraffe", on_done=on_done)  # fmt: skip
