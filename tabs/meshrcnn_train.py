"""Mesh R-CNN tab, training sections: train the ShapeNet-mode VoxMesh from scratch on procedural objects
(/meshrcnn_train) with held-out F1 and voxel IoU streamed while it trains and the ablation ladder at the end, and
the detection mode's Mask R-CNN on floor scenes (/meshrcnn_detect_train) with held-out box AP50."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from pipelines.core.events import Done
from pipelines.meshrcnn import detect_train as detect_train_module
from pipelines.meshrcnn import train as meshrcnn_train

from .context import AppContext
from .stream import stream
from .widgets import bind, config_for, gpu_click, preset_radio, run_panel, stop_button

PAPER_CONTEXT = (
    "Context only (real ShapeNet, other data): the paper's VoxMesh reports F1@0.3 81.5, F1@0.5 92.5, chamfer 0.185. "
    "Numbers here are on the studio's procedural objects and are not comparable."
)


def train_section(ctx: AppContext) -> None:
    """Preset, Train/Stop, and the run panel (held-out previews, curves, the ladder table)."""
    gr.Markdown("### Train from scratch on procedural objects")
    gr.Markdown(PAPER_CONTEXT)
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            preset = preset_radio(ctx)
            with gr.Row():
                button = gr.Button("Train", variant="primary", elem_id="meshrcnn-train-run")
                stop_button(ctx, "meshrcnn")
        with gr.Column(scale=2, min_width=400):
            panel = run_panel(
                preview_label="Held-out: image | voxels | cubified | refined over the image", preview_height=320
            )
            ladder = gr.Dataframe(
                headers=[
                    "prediction",
                    "chamfer",
                    "normal consistency",
                    "F1@0.1 %",
                    "F1@0.3 %",
                    "F1@0.5 %",
                    "voxel IoU",
                ],
                label="Ablation ladder on held-out shapes",
                interactive=False,
                visible=False,
            )
    gpu_click(
        button, bind(train, ctx=ctx, panel=panel, ladder=ladder), [preset], [*panel.outputs, ladder], "meshrcnn_train"
    )


def train(
    preset: str | None = None, request: gr.Request | None = None, *, ctx: AppContext, panel: Any, ladder: Any
) -> Iterator[dict[Any, Any]]:
    """/meshrcnn_train: streams progress, held-out previews and curves; the ladder table and checkpoint at the end."""
    cfg = config_for(ctx, meshrcnn_train.Config, preset)

    def on_done(done: Done) -> dict[Any, Any]:
        return {ladder: gr.update(value=done.info.get("ladder"), visible=True)}

    yield from stream(
        ctx, panel, "meshrcnn-train", cfg, preset=preset, request=request, tab="meshrcnn", on_done=on_done
    )


def detect_train_section(ctx: AppContext) -> None:
    """Preset, Train/Stop, and the run panel for the detection mode's Mask R-CNN (held-out AP50 while it trains)."""
    gr.Markdown("### Train the detector (detection mode) on procedural floor scenes")
    gr.Markdown(
        "torchvision's Mask R-CNN with no pretrained weights, on a small ResNet + FPN sized for 128 px scenes. "
        "The quick preset shows the losses falling and the first boxes in a few minutes; the shipped detector's "
        "command is in assets/meshrcnn/MODEL_CARD.md."
    )
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            preset = preset_radio(ctx)
            with gr.Row():
                button = gr.Button("Train detector", variant="primary", elem_id="meshrcnn-detect-train-run")
                stop_button(ctx, "meshrcnn_detect")
        with gr.Column(scale=2, min_width=400):
            panel = run_panel(preview_label="Held-out scenes: truth | detections", preview_height=320)
    gpu_click(button, bind(detect_train, ctx=ctx, panel=panel), [preset], panel.outputs, "meshrcnn_detect_train")


def detect_train(
    preset: str | None = None, request: gr.Request | None = None, *, ctx: AppContext, panel: Any
) -> Iterator[dict[Any, Any]]:
    """/meshrcnn_detect_train: streams losses, held-out AP50 and detection previews; the detector file at the end."""
    cfg = config_for(ctx, detect_train_module.Config, preset)
    yield from stream(ctx, panel, "meshrcnn-detect-train", cfg, preset=preset, request=request, tab="meshrcnn_detect")
