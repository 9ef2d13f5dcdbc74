"""Mesh R-CNN's ShapeNet evaluation protocol and the paper's ablation ladder.

Protocol: sample `n_points` (10k) points with normals from the predicted and the ground-truth surface, scale both
so the ground truth's bounding box has longest edge 10, then chamfer (squared L2, mean both ways), normal
consistency and F1 at τ = 0.1, 0.3, 0.5 (in %, as the paper reports it). Voxel IoU compares the predicted occupancy
(probability above the cubify threshold) with the ground-truth voxels.

Ladder: the same trained network's mesh head deforming a sphere (no voxels), cubified voxels alone, and the full
model (cubify + refinement).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from pytorch3d.ops import sample_points_from_meshes
from pytorch3d.structures import Meshes

from pipelines.meshrcnn.data import DISTANCE, Split
from pipelines.meshrcnn.model import VoxMesh
from pipelines.train.metrics import compare_point_sets

TAUS = (0.1, 0.3, 0.5)
PROTOCOL_EDGE = 10.0
RUNGS = ("sphere", "cubify", "full")
RUNG_LABELS = {"sphere": "sphere + mesh head (no voxels)", "cubify": "cubified voxels", "full": "cubify + refinement"}
SPHERE_RADIUS = 0.3
"""Radius of the ladder's sphere start: about the RMS radius of the procedural objects."""


def protocol_scale(gt_points: torch.Tensor) -> torch.Tensor:
    """(N,) factors that give each ground truth (N, P, 3) a bounding box with longest edge 10."""
    extent = gt_points.amax(1) - gt_points.amin(1)  # (N, 3)
    return PROTOCOL_EDGE / extent.amax(1).clamp(min=1e-8)


def mesh_metrics(
    pred: Meshes, gt_points: torch.Tensor, gt_normals: torch.Tensor, n_points: int
) -> dict[str, torch.Tensor]:
    """Per-mesh metrics under the protocol: chamfer, normal_consistency and f1@τ (%), each (N,)."""
    pts, nrm = sample_points_from_meshes(pred, n_points, return_normals=True)
    scale = protocol_scale(gt_points)[:, None, None]
    out: dict[str, list[float]] = {}
    for i in range(len(pred)):
        m = compare_point_sets(pts[i] * scale[i], gt_points[i] * scale[i], nrm[i], gt_normals[i], taus=TAUS)
        for k in ("chamfer", "normal_consistency", *[f"f1@{t:g}" for t in TAUS]):
            out.setdefault(k, []).append(m[k] * (100.0 if k.startswith("f1") else 1.0))
    return {k: torch.tensor(v) for k, v in out.items()}


def voxel_iou(voxel_scores: torch.Tensor, voxels_gt: torch.Tensor, thresh: float) -> torch.Tensor:
    """(N,) IoU of predicted occupancy (sigmoid > thresh) and the ground truth."""
    pred = voxel_scores.sigmoid() > thresh
    gt = voxels_gt.bool()
    inter = (pred & gt).flatten(1).sum(1).float()
    union = (pred | gt).flatten(1).sum(1).float().clamp(min=1)
    return inter / union


def gt_surface(split: Split, index: torch.Tensor, n_points: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n_points` ground-truth points and normals (N, P, 3) for the samples at `index`, drawn afresh."""
    pairs = [split.samples[int(i)].points(n_points, seed=10_000 + split.samples[int(i)].shape_id) for i in index]
    return torch.stack([p for p, _ in pairs]), torch.stack([n for _, n in pairs])


def images_of(split: Split, index: torch.Tensor, device: torch.device) -> torch.Tensor:
    """(N, S, S, 3) float images in [0, 1] on `device`."""
    return split.images[index].to(device).float() / 255.0


def ladder(
    model: VoxMesh,
    split: Split,
    *,
    n_points: int = 10_000,
    batch: int = 8,
    rungs: tuple[str, ...] = RUNGS,
    device: torch.device = torch.device("cpu"),
) -> Iterator[tuple[int, int]]:
    """Evaluate every rung on the whole split, yielding (done, total) per batch; returns
    {rung: {metric: mean}} with `voxel_iou` under cubify and full (`x = yield from ladder(...)`)."""
    sums: dict[str, dict[str, list[torch.Tensor]]] = {r: {} for r in rungs}
    n = len(split)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, n, batch):
            index = torch.arange(start, min(n, start + batch))
            per_rung = _evaluate_batch(model, split, index, n_points, rungs, device)
            for rung, metrics in per_rung.items():
                for k, v in metrics.items():
                    sums[rung].setdefault(k, []).append(v)
            yield min(n, start + batch), n
    finally:
        model.train(was_training)
    return {r: {k: float(torch.cat(v).mean()) for k, v in m.items()} for r, m in sums.items()}


def _evaluate_batch(
    model: VoxMesh, split: Split, index: torch.Tensor, n_points: int, rungs: tuple[str, ...], device: torch.device
) -> dict[str, dict[str, torch.Tensor]]:
    gt_pts, gt_nrm = gt_surface(split, index, n_points)
    out: dict[str, dict[str, torch.Tensor]] = {}
    with torch.no_grad():
        images = images_of(split, index, device)
        feats = model.features(images)
        scores = model.voxel_head(feats[-1])
        iou = voxel_iou(scores, split.voxels[index].to(device), model.spec.cubify_thresh).cpu()
        cubified = model.cubify(scores)
        if "cubify" in rungs:
            out["cubify"] = {**mesh_metrics(cubified.cpu(), gt_pts, gt_nrm, n_points), "voxel_iou": iou}
        if "full" in rungs:
            refined = model.mesh_head(feats, cubified)[-1]
            out["full"] = {**mesh_metrics(refined.cpu(), gt_pts, gt_nrm, n_points), "voxel_iou": iou}
        if "sphere" in rungs:
            sphere = model.sphere(len(index), SPHERE_RADIUS, DISTANCE)
            deformed = model.mesh_head(feats, sphere)[-1]
            out["sphere"] = mesh_metrics(deformed.cpu(), gt_pts, gt_nrm, n_points)
    return out


def flat_metrics(result: dict[str, dict[str, float]]) -> dict[str, float]:
    """{rung: {metric: v}} as flat `rung/metric` keys, plus the headline keys of the full model."""
    flat = {f"{rung}/{k}": v for rung, m in result.items() for k, v in m.items()}
    full = result.get("full", {})
    for k in ("f1@0.1", "f1@0.3", "f1@0.5", "chamfer", "normal_consistency", "voxel_iou"):
        if k in full:
            flat[k] = full[k]
    if "cubify" in result and "f1@0.3" in result["cubify"]:
        flat["cubify_f1@0.3"] = result["cubify"]["f1@0.3"]
    return flat
