"""Mesh R-CNN's detection mode on one scene: boxes and masks (the studio's Mask R-CNN, or the renderer's true ones for
a held-out scene, said plainly), then per box the ShapeNet-mode network's voxels, cubified and refined meshes, placed
back into the scene's camera.

Per box (our choice, instead of RoIAlign features into the voxel head): crop a square around the box, paint the
pixels outside the object's mask the plain grey the ShapeNet-mode model was trained on, resize the crop to its input,
run it, and map the predicted mesh back. The crop's side is the box's longer side / CROP_FILL (how much of a
single-object training image an object spans, median 0.69), so the object appears at the size the model knows.
Placing back (`place`) keeps every vertex on its pixel ray, so the mesh projects exactly where the crop saw it;
the depth, which one image cannot tell, comes from a size prior (scene objects have a half-diagonal of about 0.4,
the single-object model's 0.5) and is stretched so the object keeps its proportions at its centre.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh
from PIL import Image
from pytorch3d.structures import Meshes, join_meshes_as_scene
from torch.nn import functional as F
from torchvision.ops import box_iou, roi_align

from pipelines.core.events import Done, Event, Preview, Progress, to_uint8
from pipelines.core.paths import ASSETS_DIR
from pipelines.files.image_input import read_image, square_resize
from pipelines.meshrcnn import data, detector, frame, pictures, scenes
from pipelines.meshrcnn.model import VoxMesh
from pipelines.meshrcnn.objects import CATEGORIES
from pipelines.meshrcnn.views import INSTANCE_COLORS, scene_picture, voxel_figure

SHIPPED_DETECTOR = ASSETS_DIR / "meshrcnn" / "meshrcnn_detector.pt"
"""The studio-trained detector the detection mode uses by default (see assets/meshrcnn/MODEL_CARD.md)."""
CROP_FILL = 0.69
"""Median fraction of a single-object training image (64 px) that the object's longer box side spans."""
CROP_BACKGROUND = 0.92
"""Grey painted outside the object's mask in a crop (the single-object images' backgrounds are 0.85-1.0)."""
SIZE_RATIO = 0.8
"""Scene objects' typical half-diagonal (0.3-0.5) over the single-object model's (0.5): the depth prior."""
MAX_OBJECTS = 8
DISPLAY = 384


@dataclass(frozen=True)
class SceneRequest:
    """What to reconstruct: an uploaded `image` or held-out scene `scene`; boxes from the `detector` file (none: the
    shipped one) or, with `true_boxes`, the renderer's; where files go."""

    image: Path | None
    scene: int
    true_boxes: bool
    detector: Path | None
    out_dir: Path | None


@dataclass
class Found:
    """The boxes (K, 4) pixels, labels (K,), scores (K,), masks (K, S, S) used, and where they came from."""

    boxes: torch.Tensor
    labels: torch.Tensor
    scores: torch.Tensor
    masks: torch.Tensor
    source: str
    true: bool = False
    """The renderer's true boxes (no detector ran)."""


def _load_detector(path: Path | None) -> tuple[torch.nn.Module, int, str]:
    file = Path(path) if path is not None else SHIPPED_DETECTOR
    if not file.is_file():
        raise ValueError(
            "No detector checkpoint is shipped or given: choose the renderer's true boxes (held-out scenes), or train "
            "a detector (meshrcnn-detect-train) and load its file."
        )
    model, spec, _ = detector.load(file)
    return model, spec.image_size, file.name


def _scene_input(req: SceneRequest, size: int, device: torch.device) -> tuple[torch.Tensor, list[str], Any]:
    """The image (S, S, 3), notes for the user, and the ground truth (`scenes.Targets`) for a held-out scene."""
    if req.image is not None:
        loaded = read_image(req.image)
        return torch.from_numpy(square_resize(loaded.rgb, size)).to(device), loaded.notes, None
    if not (0 <= req.scene < 100_000):
        raise ValueError(f"Held-out scene {req.scene} is out of range: use 0 to 99999.")
    scene = scenes.make_scene(scenes.HELD_OUT_SCENES + req.scene)
    images, instances = scenes.render_scenes([scene], size, device)
    return images[0], [], scenes.targets(scene, instances[0].cpu())


def find_objects(req: SceneRequest, device: torch.device) -> tuple[torch.Tensor, list[str], Found, Any]:
    """The scene image, notes, the boxes and masks to reconstruct, and the truth (held-out scenes only)."""
    if req.true_boxes:
        if req.image is not None:
            raise ValueError("The renderer's true boxes exist only for held-out scenes; use the detector for uploads.")
        image, notes, truth = _scene_input(req, scenes.IMAGE_SIZE, device)
        found = Found(
            truth.boxes,
            truth.labels,
            torch.ones(len(truth.labels)),
            truth.masks,
            "the renderer's true boxes (no detector ran)",
            True,
        )
        return image, notes, found, truth
    model, size, name = _load_detector(req.detector)
    model = model.to(device)
    image, notes, truth = _scene_input(req, size, device)
    d = detector.detect(model, image[None])[0].above(detector.SCORE_THRESH).distinct()
    n = min(len(d), MAX_OBJECTS)
    source = f"Mask R-CNN ({name}): detections scoring at least {detector.SCORE_THRESH}, one per object"
    return image, notes, Found(d.boxes[:n], d.labels[:n], d.scores[:n], d.masks[:n], source), truth


def crop_windows(boxes: torch.Tensor) -> torch.Tensor:
    """Square crops (K, 4) (x0, y0, x1, y1) centred on `boxes` (K, 4), side = the longer box side / CROP_FILL."""
    center = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).amax(1, keepdim=True) / (2 * CROP_FILL)
    return torch.cat([center - half, center + half], 1)


def crop_objects(image: torch.Tensor, windows: torch.Tensor, masks: torch.Tensor, size: int) -> torch.Tensor:
    """(K, size, size, 3): each window of `image` (S, S, 3) resized, with everything outside its object's mask (and
    outside the picture) the plain CROP_BACKGROUND grey."""
    s = image.shape[0]
    pad = s
    crops = []
    for k in range(len(windows)):
        plain = torch.where(masks[k][..., None].to(image.device), image, torch.full_like(image, CROP_BACKGROUND))
        padded = F.pad(plain.permute(2, 0, 1)[None], (pad, pad, pad, pad), value=CROP_BACKGROUND)
        box = (windows[k : k + 1].to(image.device) + pad).float()
        crops.append(roi_align(padded, [box], size, 1.0, -1, aligned=True)[0].permute(1, 2, 0))
    return torch.stack(crops).clamp(0, 1)


def place(meshes: Meshes, windows: torch.Tensor, image_size: int) -> Meshes:
    """Meshes predicted in each crop's camera frame -> the scene camera frame. Each vertex keeps its pixel (the crop
    maps NDC u to ax + (c/S) u); its depth d becomes D + a (d - DISTANCE) with a = SIZE_RATIO and D chosen so an
    object of the prior size fills the crop (a = (D / DISTANCE) (c / S), so proportions hold at the centre)."""
    out = []
    for k, verts in enumerate(meshes.verts_list()):
        x0, y0, x1, y1 = windows[k].tolist()
        c = (x1 - x0) / image_size  # crop side over image side
        ax, ay = (x0 + x1) / image_size - 1.0, 1.0 - (y0 + y1) / image_size
        ndc = frame.project(verts)  # (V, 3): u, v in the crop
        depth = -verts[:, 2]
        far = data.DISTANCE * SIZE_RATIO / c
        new_depth = far + SIZE_RATIO * (depth - data.DISTANCE)
        x = (ax + c * ndc[:, 0]) * new_depth / frame.FOCAL
        y = (ay + c * ndc[:, 1]) * new_depth / frame.FOCAL
        out.append(torch.stack([x, y, -new_depth], 1))
    return Meshes(out, meshes.faces_list())


def run(model: VoxMesh, model_size: int, req: SceneRequest, device: torch.device) -> Iterator[Event]:
    """Find the objects, reconstruct each, and yield the overlay Preview and Done (meshes, pictures, metrics)."""
    yield Progress(1, 3, {}, "finding the objects")
    t0 = time.perf_counter()
    image, notes, found, truth = find_objects(req, device)
    seconds_boxes = time.perf_counter() - t0
    if len(found.boxes) == 0:
        message = (
            "No object found in this scene: the detector found nothing scoring at least "
            f"{detector.SCORE_THRESH}, so there is nothing to reconstruct."
        )
        yield Preview(3, image=to_uint8(pictures.upsample(image[None], DISPLAY)[0]), caption=message)
        yield Done(metrics={"object_found": 0.0, "objects": 0.0}, info={"message": message, "notes": notes})
        return
    yield Progress(2, 3, {}, f"voxels and meshes for {len(found.boxes)} object(s)")
    windows = crop_windows(found.boxes)
    crops = crop_objects(image, windows, found.masks, model_size)
    t1 = time.perf_counter()
    with torch.no_grad():
        scores, cubified, stages = model(crops)
    seconds_meshes = time.perf_counter() - t1
    s = image.shape[0]
    placed_cub, placed_ref = place(cubified, windows.to(device), s), place(stages[-1], windows.to(device), s)
    renders, masks = pictures.render_meshes(join_meshes_as_scene(placed_ref), DISPLAY)
    over = to_uint8(pictures.overlay(image[None], renders, masks)[0])
    yield Preview(3, image=over, caption="refined meshes of every object rendered over the scene")
    metrics = {
        "object_found": 1.0,
        "objects": float(len(found.boxes)),
        "seconds_boxes": seconds_boxes,
        "seconds_meshes": seconds_meshes,
        "seconds": seconds_boxes + seconds_meshes,
    }
    if truth is not None:
        metrics.update(_matches(found, truth))
    probs = scores.sigmoid()
    strip = pictures.preview_strip(crops, probs, model.spec.cubify_thresh, cubified, stages[-1], size=128)
    files = _write(req.out_dir, image, found, over, strip, placed_cub.cpu(), placed_ref.cpu())
    captions = _captions(found)
    info = {
        "detection": f"Detection mode: {len(found.boxes)} object(s) ({', '.join(captions)}); boxes and masks from "
        f"{found.source}.",
        "true_boxes": req.true_boxes,
        "notes": notes,
        "figures": {"voxels": voxel_figure(probs[0].cpu() > model.spec.cubify_thresh)},
    }
    yield Done(metrics=metrics, files=files, info=info)


def _captions(found: Found) -> list[str]:
    if found.true:
        return [CATEGORIES[int(c) - 1] for c in found.labels]
    return [f"{CATEGORIES[int(c) - 1]} {float(p):.2f}" for c, p in zip(found.labels, found.scores)]


def _matches(found: Found, truth: Any) -> dict[str, float]:
    """How many true objects a box found (IoU at least 0.5, one box each), and how many boxes matched none."""
    if len(truth.boxes) == 0:
        return {"true_objects": 0.0, "true_found": 0.0, "false_boxes": float(len(found.boxes))}
    from_iou = box_iou(found.boxes.cpu().float(), truth.boxes.float())
    hit = 0
    taken = torch.zeros(len(truth.boxes), dtype=torch.bool)
    for row in from_iou:
        row = row.masked_fill(taken, -1.0)
        j = int(row.argmax())
        if float(row[j]) >= 0.5:
            taken[j] = True
            hit += 1
    return {
        "true_objects": float(len(truth.boxes)),
        "true_found": float(hit),
        "false_boxes": float(len(found.boxes) - hit),
    }


def _write(
    out_dir: Path | None,
    image: torch.Tensor,
    found: Found,
    over: np.ndarray,
    strip: np.ndarray,
    cubified: Meshes,
    refined: Meshes,
) -> dict[str, Path]:
    """Pictures (detections, overlay, per-object strip), the scene's cubified and refined GLBs (an instance colour
    per object) and each object's refined OBJ/PLY."""
    if out_dir is None:
        return {}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    pics = {
        "detection": scene_picture(image.cpu(), found.boxes, found.masks.cpu(), _captions(found), DISPLAY),
        "overlay": over,
        "objects": strip,
    }
    for name, pic in pics.items():
        files[name] = out / f"{name}.png"
        Image.fromarray(pic).save(files[name])
    center = refined.verts_packed().mean(0).numpy()
    for name, meshes in (("cubified", cubified), ("refined", refined)):
        parts = []
        for k, (v, f) in enumerate(zip(meshes.verts_list(), meshes.faces_list())):
            color = np.array([*INSTANCE_COLORS[k % len(INSTANCE_COLORS)], 255], dtype=np.uint8)
            tm = trimesh.Trimesh(
                v.numpy() - center, f.numpy(), vertex_colors=np.tile(color, (len(v), 1)), process=False
            )
            parts.append(tm)
            if name == "refined":
                for ext in ("obj", "ply"):
                    files[f"object{k + 1}_{ext}"] = out / f"object{k + 1}_refined.{ext}"
                    tm.export(files[f"object{k + 1}_{ext}"])
        files[f"{name}_glb"] = out / f"scene_{name}.glb"
        trimesh.util.concatenate(parts).export(files[f"{name}_glb"])
    return files
