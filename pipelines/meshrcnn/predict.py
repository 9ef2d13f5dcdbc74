"""Mesh R-CNN on one image: the shipped studio model (or an official / uploaded checkpoint) turns a held-out sample
or an uploaded picture into voxels, a cubified mesh and a refined mesh, rendered back over the image.

ShapeNet mode takes one object per image; the box shown is the renderer's true box and mask for a held-out sample,
and the box of the pixels that differ from the border colour for an upload (no detector runs in this mode).
Detection mode (`scene_mode`) takes a floor scene with several objects: Mask R-CNN's boxes and masks (or the
renderer's true ones, said plainly), then the same network per box.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh
from PIL import Image
from pytorch3d.structures import Meshes

from pipelines.core.device import resolve_device
from pipelines.core.events import Done, Event, Preview, Progress, to_uint8
from pipelines.core.headline import Headline
from pipelines.core.paths import ASSETS_DIR
from pipelines.files.image_input import read_image, square_resize
from pipelines.meshrcnn import checkpoint, data, evaluate, pictures, scene_mode
from pipelines.meshrcnn.model import VoxMesh
from pipelines.meshrcnn.views import detection_picture, foreground_box, voxel_figure

SHIPPED = ASSETS_DIR / "meshrcnn" / "meshrcnn_model.pt"
"""The studio-trained checkpoint the tab uses by default (see assets/meshrcnn/MODEL_CARD.md)."""
OPTIONAL_FILES = {"Mesh R-CNN official ShapeNet checkpoint": checkpoint.OFFICIAL_NAMES}
"""Files an operator may put in --models-dir for this pipeline (the Health panel collects them)."""
OFFICIAL_IMAGE_SIZE = 137
"""The official model's input size (ShapeNet R2N2 renderings)."""
MIN_FOREGROUND = 0.004
"""An image whose pixels differ from its border colour over less than this fraction holds no object."""
DISPLAY = 256
HEADLINE = (
    Headline("f1@0.3", "F1@0.3 (refined)", "%", start_key="cubify_f1@0.3"),
    Headline("voxel_iou", "Voxel IoU"),
    Headline("seconds", "Inference", "s"),
    Headline("objects", "Objects"),
    Headline("true_found", "True objects found"),
)


def health_notes(models_dir: Path | None) -> dict[str, str]:
    """A line for the Health panel: which Mesh R-CNN weights the tab uses by default."""
    official = checkpoint.find_official(models_dir)
    if official is not None:
        return {"meshrcnn_weights": f"official checkpoint available ({official.name}); the studio model is the default"}
    shipped = "studio checkpoint" if SHIPPED.is_file() else "no shipped checkpoint (train one in the tab)"
    found = scene_mode.SHIPPED_DETECTOR.is_file()
    detector = "studio Mask R-CNN" if found else "none shipped (detection mode uses the renderer's true boxes only)"
    return {"meshrcnn_weights": shipped, "meshrcnn_detector": detector}


MODES = ("shapenet", "detection")


@dataclass(frozen=True)
class Config:
    mode: str = "shapenet"
    """shapenet (one object in front of a plain background) or detection (a floor scene with several objects: boxes
    and masks, then voxels and meshes per object)."""
    image: Path | None = None
    """A picture to reconstruct; none: the held-out sample (or, in detection mode, held-out scene) `sample`."""
    sample: int = 0
    """Held-out sample number (shapes never seen in training), or held-out scene number in detection mode."""
    true_boxes: bool = False
    """Detection mode: use the renderer's true boxes and masks (held-out scenes only) instead of the detector."""
    detector: Path | None = None
    """Detection mode: a detector checkpoint (meshrcnn-detect-train's file); none: the shipped one."""
    weights: str = "studio"
    """studio (the shipped model), official (voxmesh_R50.pth from the models dir), or file (the `checkpoint`)."""
    checkpoint: Path | None = None
    """A studio or official checkpoint file (weights = file)."""
    models_dir: Path | None = None
    """Operator model files (the official checkpoint is looked for here)."""
    eval_points: int = 10_000
    """Points per mesh for the held-out sample's metrics (the paper's protocol)."""
    device: str = "auto"
    """auto (CUDA when present), cpu, or cuda[:N]."""
    seed: int = 0
    """Seeds the point sampling of the metrics."""
    out_dir: Path | None = None
    """Where the meshes, pictures and metrics go."""

    @classmethod
    def quick(cls) -> Config:
        return cls()

    @classmethod
    def tiny(cls) -> Config:
        return cls(eval_points=1000)


def load(cfg: Config, device: torch.device) -> tuple[VoxMesh, dict[str, Any], int]:
    """The chosen model on `device`, its checkpoint info, and the image size it reads."""
    if cfg.weights == "official":
        path = checkpoint.find_official(cfg.models_dir)
        if path is None:
            names = " or ".join(checkpoint.OFFICIAL_NAMES)
            raise ValueError(f"No official checkpoint ({names}) in the models directory; choose the studio model.")
    elif cfg.weights == "file":
        if cfg.checkpoint is None:
            raise ValueError("Choose a checkpoint file to load, or use the studio model.")
        path = Path(cfg.checkpoint)
    elif cfg.weights == "studio":
        path = SHIPPED
        if not path.is_file():
            raise ValueError("The shipped studio checkpoint is missing; train one in this tab and load it as a file.")
    else:
        raise ValueError(f"Unknown weights {cfg.weights!r}: choose studio, official or file.")
    model, info = checkpoint.load_model(path)
    size = (
        int(info.get("config", {}).get("image_size", OFFICIAL_IMAGE_SIZE))
        if info["kind"] == "studio"
        else OFFICIAL_IMAGE_SIZE
    )
    info["file"] = path.name
    return model.to(device), info, size


def _input(cfg: Config, size: int, device: torch.device) -> tuple[torch.Tensor, dict[str, Any]]:
    """The image (1, S, S, 3) and what is known about it (ground truth for a held-out sample)."""
    if cfg.image is not None:
        loaded = read_image(cfg.image)
        rgb = torch.from_numpy(square_resize(loaded.rgb, size))
        box, fraction = foreground_box(rgb)
        return rgb[None].to(device), {"notes": loaded.notes, "box": box, "foreground": fraction, "sample": None}
    if not (0 <= cfg.sample < 100_000):
        raise ValueError(f"Held-out sample {cfg.sample} is out of range: use 0 to 99999.")
    sample = data.make_sample(data.HELD_OUT_OFFSET + cfg.sample)
    images, masks = data.render([sample], size, device)
    ys, xs = torch.nonzero(masks[0].cpu(), as_tuple=True)
    box = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())) if len(xs) else None
    return images, {
        "notes": [],
        "box": box,
        "mask": masks[0].cpu(),
        "foreground": float(masks.float().mean()),
        "sample": sample,
    }


def run(cfg: Config) -> Iterator[Event]:
    """Load the model, read the image, predict; Preview of the mesh over the image; Done with meshes and metrics."""
    device = resolve_device(cfg.device)
    yield Progress(0, 3, {}, "loading the model")
    model, info, size = load(cfg, device)
    if cfg.mode == "detection":
        if info["kind"] != "studio":
            raise ValueError("Detection mode places meshes with the studio model's camera; choose a studio checkpoint.")
        req = scene_mode.SceneRequest(cfg.image, cfg.sample, cfg.true_boxes, cfg.detector, cfg.out_dir)
        for event in scene_mode.run(model, size, req, device):
            if isinstance(event, Done):
                event.info.update(weights=info["file"], kind=info["kind"])
            yield event
        return
    if cfg.mode != "shapenet":
        raise ValueError(f"Unknown mode {cfg.mode!r}: choose one of {', '.join(MODES)}.")
    yield Progress(1, 3, {}, "reading the image")
    image, known = _input(cfg, size, device)
    yield Progress(2, 3, {}, "predicting voxels and meshes")
    t0 = time.perf_counter()
    with torch.no_grad():
        scores, cubified, stages = model(image)
    seconds = time.perf_counter() - t0
    probs = scores.sigmoid()
    occupied = int((probs > model.spec.cubify_thresh).sum())
    if known["foreground"] < MIN_FOREGROUND or occupied < 4:
        message = (
            "No object found in this image: it is (nearly) plain, so there is nothing to reconstruct. "
            "Mesh R-CNN's ShapeNet mode expects one object in front of a plain background."
        )
        yield Preview(3, image=to_uint8(pictures.upsample(image, DISPLAY)[0]), caption=message)
        yield Done(
            metrics={"object_found": 0.0, "seconds": seconds}, info={"message": message, "weights": info["file"]}
        )
        return
    yield from _results(cfg, model, image, probs, cubified, stages[-1], known, info, seconds)


def _results(
    cfg: Config,
    model: VoxMesh,
    image: torch.Tensor,
    probs: torch.Tensor,
    cubified: Meshes,
    refined: Meshes,
    known: dict[str, Any],
    info: dict[str, Any],
    seconds: float,
) -> Iterator[Event]:
    renders, masks = pictures.render_meshes(refined, DISPLAY)
    over = to_uint8(pictures.overlay(image, renders, masks)[0])
    yield Preview(3, image=over, caption="refined mesh rendered over the image")
    metrics: dict[str, float] = {
        "object_found": 1.0,
        "seconds": seconds,
        "verts_refined": float(refined.num_verts_per_mesh()[0]),
    }
    sample = known.get("sample")
    if sample is not None:
        metrics.update(_sample_metrics(cfg, model, probs, cubified, refined, sample))
    files: dict[str, Path] = {}
    figures: dict[str, Any] = {"voxels": voxel_figure(probs[0].cpu() > model.spec.cubify_thresh)}
    if cfg.out_dir is not None:
        out = Path(cfg.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files.update(_export(out, cubified.cpu(), refined.cpu()))
        Image.fromarray(over).save(out / "overlay.png")
        files["overlay"] = out / "overlay.png"
        det = detection_picture(image[0].cpu(), known.get("box"), known.get("mask"), DISPLAY)
        Image.fromarray(det).save(out / "detection.png")
        files["detection"] = out / "detection.png"
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    source = (
        "held-out sample's true box and mask (from the renderer)"
        if sample is not None
        else "box of the pixels unlike the border colour"
    )
    info_out = {
        "weights": info["file"],
        "kind": info["kind"],
        "detection": f"ShapeNet mode: one object; the box shown is the {source}, not a Mask R-CNN detection.",
        "notes": known.get("notes", []),
        "figures": figures,
    }
    yield Done(metrics=metrics, files=files, info=info_out)


def _sample_metrics(
    cfg: Config, model: VoxMesh, probs: torch.Tensor, cubified: Meshes, refined: Meshes, sample: data.Sample
) -> dict[str, float]:
    gt_pts, gt_nrm = sample.points(cfg.eval_points, seed=cfg.seed + 10_000 + sample.shape_id)
    gt_pts, gt_nrm = gt_pts[None], gt_nrm[None]
    voxels = sample.voxels(model.spec.voxel_size, model.spec.zrange)[None]
    out = {
        "voxel_iou": float(
            (((probs.cpu() > model.spec.cubify_thresh) & voxels).sum())
            / ((probs.cpu() > model.spec.cubify_thresh) | voxels).sum().clamp(min=1)
        )
    }
    for name, mesh in (("cubify", cubified), ("", refined)):
        m = evaluate.mesh_metrics(mesh.cpu(), gt_pts, gt_nrm, cfg.eval_points)
        for k, v in m.items():
            out[f"{name}_{k}" if name else k] = float(v[0])
    return out


def _export(out: Path, cubified: Meshes, refined: Meshes) -> dict[str, Path]:
    """OBJ, PLY and GLB of the refined mesh and a GLB of the cubified one, centred on the object (camera frame
    shifted by the camera distance, so +Y is up and the camera looks down -Z from z = DISTANCE)."""
    files = {}
    shift = np.array([0.0, 0.0, data.DISTANCE])
    for name, mesh in (("refined", refined), ("cubified", cubified)):
        tm = trimesh.Trimesh(mesh.verts_list()[0].numpy() + shift, mesh.faces_list()[0].numpy(), process=False)
        for ext in ("glb", "obj", "ply") if name == "refined" else ("glb",):
            path = out / f"{name}.{ext}"
            tm.export(path)
            files[f"{name}_{ext}"] = path
    return files
