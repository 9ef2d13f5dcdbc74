"""Mesh R-CNN tab: an image in (a held-out sample or an upload) -> voxels -> cubified mesh -> refined mesh, with the
shipped studio model, an official checkpoint or an uploaded one (/meshrcnn); in detection mode a floor scene ->
Mask R-CNN boxes and masks (or the renderer's true ones, said plainly) -> the same meshes per object; training from
scratch below (/meshrcnn_train and /meshrcnn_detect_train, in meshrcnn_train.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from pipelines.core.device import default_preset
from pipelines.core.events import Done, Preview
from pipelines.meshrcnn import predict

from .context import AppContext
from .meshrcnn_train import detect_train_section, train_section
from .stream import stream
from .widgets import (
    LATEX,
    RunPanel,
    bind,
    config_for,
    gpu_click,
    model3d,
    preset_radio,
    refresh_on_select,
    run_panel,
    show_in_viewer,
    upload_box,
    upload_path,
    user_errors,
    viewer_file,
)

IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm")
CHECKPOINT_TYPES = (".pt", ".pth")
EXAMPLES_DIR = Path(predict.SHIPPED).parent / "examples"
MODES = [("ShapeNet mode: one object, plain background", "shapenet"), ("Detection mode: a floor scene", "detection")]
WEIGHTS = [
    ("studio model (shipped)", "studio"),
    ("official voxmesh_R50 (models dir)", "official"),
    ("checkpoint file", "file"),
]
LESSON = r"""
**Voxels first, then a mesh.** Mesh R-CNN's ShapeNet mode reads one image with a ResNet. A *voxel head* (four
3×3 convolutions of 256, a 2× deconvolution, a 1×1 convolution to $V$ depth bins) predicts occupancy on a
$V^3$ grid [$V = 48$] aligned with the camera: x and y follow the image, z the depth (NDC z rescaled to $[-1, 1]$).
*Cubify* turns every voxel above 0.2 into a cube, merges shared vertices and drops inner faces: a watertight but
blocky mesh of any topology.

**Refinement.** Three stages move the vertices. Each projects every vertex into the image and samples the
backbone's four feature maps there (`vert_align`), passes them through a bottleneck, then three graph convolutions
$f'_i = \mathrm{ReLU}\big(W_0 f_i + \sum_{j \in \mathcal N(i)} W_1 f_j\big)$ [128 wide] that also see the vertex
position, and finally predicts an offset $\Delta v_i = \tanh(W [f_i; v_i])$.

**Losses.** $\mathcal L = \mathcal L_{vox} + \sum_{stages} \big(\lambda_c \mathcal L_{chamfer} + \lambda_n
\mathcal L_{normal} + \lambda_e \mathcal L_{edge}\big)$ with ShapeNet weights [1 / 1 / 0 / 0.2]: binary
cross-entropy on voxels; chamfer $\frac{1}{|P|}\sum_{p}\min_{q}\lVert p-q\rVert^2 + \frac{1}{|Q|}\sum_{q}\min_{p}
\lVert p-q\rVert^2$ between points sampled on the predicted and true surfaces; edge $\frac{1}{|E|}\sum
\lVert v_i - v_j\rVert^2$ keeps the mesh from tangling.

**Evaluation (the paper's protocol).** 10k points sampled from each mesh, both scaled so the true bounding box's
longest edge is 10; chamfer, normal consistency, and F1@τ = harmonic mean of precision (predicted points within τ
of the truth) and recall (true points within τ of the prediction) at τ = 0.1, 0.3, 0.5.
"""


@dataclass
class PredictUI:
    """What /meshrcnn updates besides the run panel."""

    panel: RunPanel
    message: gr.Markdown
    detection: gr.Image
    objects: gr.Image
    voxels: gr.Plot
    cubified_state: gr.State
    refined_state: gr.State

    @property
    def outputs(self) -> list[Any]:
        return [
            *self.panel.outputs,
            self.message,
            self.detection,
            self.objects,
            self.voxels,
            self.cubified_state,
            self.refined_state,
        ]


def build(ctx: AppContext, tab: gr.Tab) -> None:
    """Results first: the input and Reconstruct on the left, the refined mesh over the image and the headline on the
    right; then detection, voxels and the two meshes; examples; training from scratch at the bottom."""
    with gr.Accordion("Lesson: voxels, cubify, graph-convolution refinement, the ShapeNet protocol", open=False):
        gr.Markdown(LESSON, latex_delimiters=LATEX)
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            mode = gr.Radio(
                MODES,
                value="shapenet",
                label="Mode",
                info="ShapeNet mode: one object per picture; detection mode: find the objects first, then mesh each",
            )
            image = upload_box(
                "Picture (ShapeNet mode: one object on a plain background; detection mode: objects on a floor)",
                IMAGE_TYPES,
                multiple=False,
            )
            sample = gr.Number(
                0,
                label="Held-out sample, or scene in detection mode (used when no picture is given)",
                info="A procedural picture the model never saw in training",
                precision=0,
                minimum=0,
            )
            true_boxes = gr.Checkbox(
                False,
                label="Detection mode: the renderer's true boxes and masks instead of the detector (held-out scenes)",
                info="Measures the mesh head alone, without the detector's mistakes",
            )
            weights = gr.Radio(
                WEIGHTS,
                value="studio",
                label="Weights",
                info="The shipped studio model, the official one in --models-dir, or a checkpoint file",
            )
            checkpoint = upload_box(
                "Checkpoint file (.pt/.pth; weights = checkpoint file)", CHECKPOINT_TYPES, multiple=False
            )
            preset = preset_radio(
                ctx, label="Preset (the held-out metrics: tiny 1k points per mesh, else the protocol's 10k)"
            )
            button = gr.Button("Reconstruct", variant="primary", elem_id="meshrcnn-run")
        with gr.Column(scale=2, min_width=400):
            panel = run_panel(preview_label="Refined mesh rendered over the image", preview_height=300, curves=False)
            message = gr.Markdown("", label="What the model found")
    with gr.Row():
        detection = gr.Image(label="Detection: boxes and masks", interactive=False, height=280)
        voxels = gr.Plot(label="Voxel prediction (detection mode: the first object)")
    objects = gr.Image(
        label="Per object (detection mode): crop | voxels | cubified | refined over the crop",
        interactive=False,
        visible=False,
    )
    with gr.Row():
        cubified = model3d("Cubified voxels", "meshrcnn-cubified", height=320, interactive=False)
        refined = model3d(
            "Refined mesh (detection mode: every object)", "meshrcnn-refined", height=320, interactive=False
        )
    _examples(image, sample, mode)
    ui = PredictUI(panel, message, detection, objects, voxels, gr.State(None), gr.State(None))
    inputs = [image, sample, weights, checkpoint, preset, mode, true_boxes]
    event = gpu_click(button, bind(reconstruct, ctx=ctx, ui=ui), inputs, ui.outputs, "meshrcnn")
    show_in_viewer(event, ui.cubified_state, cubified)
    show_in_viewer(event, ui.refined_state, refined)
    refresh_on_select(tab, cubified, refined)
    train_section(ctx)
    detect_train_section(ctx)


def _examples(image: gr.File, sample: gr.Number, mode: gr.Radio) -> None:
    """Held-out renders as pictures (the upload path), then held-out samples and scenes by number; the first carries
    the elem_id the Start-here card clicks."""
    pictures = sorted(EXAMPLES_DIR.glob("*.png"), key=_furniture_first) if EXAMPLES_DIR.is_dir() else []
    shapenet = [str(p) for p in pictures if not p.name.startswith("scene")]
    scene_pictures = [str(p) for p in pictures if p.name.startswith("scene")]
    rows: list[tuple[str, list[list[Any]]]] = [
        ("Held-out samples (by number)", [[None, k, "shapenet"] for k in (0, 1, 2, 3, 5, 8)]),
        ("Detection mode: held-out scenes (by number)", [[None, k, "detection"] for k in (0, 4, 5, 7)]),
    ]
    if scene_pictures:
        rows.append(
            ("Detection mode: held-out scenes (as uploaded pictures)", [[p, 0, "detection"] for p in scene_pictures])
        )
    if shapenet:
        rows.insert(0, ("Held-out renders (as uploaded pictures)", [[p, 0, "shapenet"] for p in shapenet]))
    for i, (label, examples) in enumerate(rows):
        gr.Examples(examples, [image, sample, mode], label=label, elem_id="meshrcnn-examples" if i == 0 else None)


def _furniture_first(path: Path) -> tuple[bool, str]:
    """Sort key: furniture (a lamp, a table: what a visitor names at a glance) before plain primitives."""
    return (any(word in path.stem for word in ("ellipsoid", "box", "cylinder")), path.name)


@user_errors("Cannot reconstruct this")
def reconstruct(
    image: Any = None,
    sample: float | None = 0,
    weights: str = "studio",
    checkpoint: Any = None,
    preset: str | None = None,
    mode: str = "shapenet",
    true_boxes: bool = False,
    request: gr.Request | None = None,
    *,
    ctx: AppContext,
    ui: PredictUI,
) -> Iterator[dict[Any, Any]]:
    """/meshrcnn: one picture (or held-out sample) to voxels, cubified and refined meshes, rendered over the image;
    in detection mode a floor scene (picture or held-out scene) to boxes, masks and a mesh per object."""
    picture = upload_path(image)
    file = upload_path(checkpoint)
    if weights == "file" and not file:
        raise gr.Error("Choose a checkpoint file, or pick the studio model.")
    cfg = config_for(
        ctx,
        predict.Config,
        preset,
        image=Path(picture) if picture else None,
        sample=int(sample or 0),
        weights=weights or "studio",
        checkpoint=Path(file) if file else None,
        mode=mode or "shapenet",
        true_boxes=bool(true_boxes),
    )

    def on_preview(event: Preview) -> dict[Any, Any]:
        return {ui.message: event.caption}

    def on_done(done: Done) -> dict[Any, Any]:
        return _shown(done, ctx, request, ui)

    yield from stream(
        ctx,
        ui.panel,
        "meshrcnn",
        cfg,
        preset=preset or default_preset(ctx.device),
        request=request,
        tab="meshrcnn",
        on_preview=on_preview,
        on_done=on_done,
    )


def _shown(done: Done, ctx: AppContext, request: gr.Request | None, ui: PredictUI) -> dict[Any, Any]:
    info = done.info
    if "message" in info:  # no object
        return {
            ui.message: f"**{info['message']}**",
            ui.objects: gr.update(value=None, visible=False),
            ui.cubified_state: None,
            ui.refined_state: None,
        }
    notes = " ".join(info.get("notes", []))
    detection = info.get("detection", "")
    if info.get("true_boxes"):  # said plainly: no detector ran
        detection = f"**{detection}**"
    text = f"Weights: {info.get('weights', '')} ({info.get('kind', '')}). {detection} {notes}".strip()
    files = done.files
    return {
        ui.message: text,
        ui.detection: str(files["detection"]) if "detection" in files else None,
        ui.objects: gr.update(value=str(files["objects"]), visible=True)
        if "objects" in files
        else gr.update(value=None, visible=False),
        ui.voxels: info.get("figures", {}).get("voxels"),
        ui.cubified_state: viewer_file(ctx, request, files["cubified_glb"]) if "cubified_glb" in files else None,
        ui.refined_state: viewer_file(ctx, request, files["refined_glb"]) if "refined_glb" in files else None,
    }
