"""Mesh R-CNN's training losses: voxel cross-entropy, and for every refinement stage chamfer + normal + edge on points
sampled from the predicted mesh against the ground truth's (the official ShapeNet weights 1 / 1 / 0 / 0.2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pytorch3d.loss import mesh_edge_loss
from pytorch3d.ops import sample_points_from_meshes
from pytorch3d.structures import Meshes
from torch.nn import functional as F

from pipelines.train.metrics import nearest


@dataclass(frozen=True)
class LossWeights:
    voxel: float = 1.0
    chamfer: float = 1.0
    normal: float = 0.0
    edge: float = 0.2


def voxel_loss(voxel_scores: torch.Tensor, voxels_gt: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of the logits (N, V, V, V) against occupancy (N, V, V, V)."""
    return F.binary_cross_entropy_with_logits(voxel_scores, voxels_gt.to(voxel_scores.dtype))


def mesh_losses(
    stages: list[Meshes], points_gt: torch.Tensor, normals_gt: torch.Tensor, n_samples: int, with_normals: bool
) -> dict[str, torch.Tensor]:
    """Chamfer (squared L2, mean both ways), normal (1 - |cos| of nearest neighbours, both ways; only when
    `with_normals`) and edge (mean squared length) losses, summed over the stages. points_gt, normals_gt: (N, P, 3).

    Nearest neighbours come from `metrics.nearest` (a k-d tree on the CPU, knn_points elsewhere) and the distances
    are recomputed from the points, so the loss is differentiable in the predicted points as PyTorch3D's is."""
    zero = points_gt.new_zeros(())
    total = {"chamfer": zero, "normal": zero, "edge": zero}
    for meshes in stages:
        pts, nrm = sample_points_from_meshes(meshes, n_samples, return_normals=True)  # (N, S, 3) each
        d_pg, idx_pg = nearest(pts, points_gt)
        d_gp, idx_gp = nearest(points_gt, pts)
        total["chamfer"] = total["chamfer"] + d_pg.mean() + d_gp.mean()
        if with_normals:
            n_pg = torch.gather(normals_gt, 1, idx_pg[..., None].expand(-1, -1, 3))
            n_gp = torch.gather(nrm, 1, idx_gp[..., None].expand(-1, -1, 3))
            cos = (
                F.cosine_similarity(nrm, n_pg, dim=-1).abs().mean()
                + F.cosine_similarity(normals_gt, n_gp, dim=-1).abs().mean()
            )
            total["normal"] = total["normal"] + 2.0 - cos
        total["edge"] = total["edge"] + mesh_edge_loss(meshes)
    return total


def total_loss(parts: dict[str, torch.Tensor], w: LossWeights) -> torch.Tensor:
    return sum(getattr(w, k) * v for k, v in parts.items() if getattr(w, k) != 0.0)
