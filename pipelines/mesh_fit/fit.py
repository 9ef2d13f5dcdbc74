"""Mesh fitting's optimisation: one fit of an ico-sphere to target points by chamfer distance plus edge, normal
and Laplacian regularisers, and the measures of its result."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from pipelines.core.events import Event, Preview, Progress
from pipelines.mesh_fit.losses import Topology, edge_loss, laplacian_smoothing, normal_consistency
from pipelines.mesh_fit.previews import label, render_mesh, render_points
from pipelines.mesh_fit.targets import PointTarget
from pipelines.render.procedural import sample_surface
from pipelines.train import metrics as point_metrics


class FitSpec(Protocol):
    """The settings one fit reads (the pipeline's Config has them)."""

    ico_level: int
    steps: int
    lr: float
    momentum: float
    w_chamfer: float
    w_edge: float
    w_normal: float
    w_laplacian: float
    laplacian: str
    sample_points: int
    experiment: str
    f1_tau: float
    eval_points: int
    preview_every_s: float
    seed: int


def edge_length_cv(verts: torch.Tensor, edges: torch.Tensor) -> float:
    """Spread of edge lengths: standard deviation over mean (0 for a perfectly even mesh)."""
    lengths = (verts[edges[:, 0]] - verts[edges[:, 1]]).norm(dim=1)
    return float(lengths.std() / lengths.mean().clamp(min=1e-12))


@dataclass
class FitResult:
    name: str
    verts: torch.Tensor  # (V, 3) unit-sphere frame, detached
    faces: torch.Tensor  # (F, 3)
    history: dict[str, list[float]]
    metrics: dict[str, float]


def fit(
    cfg: FitSpec,
    name: str,
    target: PointTarget,
    loss_points: torch.Tensor,
    device: torch.device,
    step_offset: int,
    total: int,
    results: list[FitResult],
) -> Iterator[Event]:
    """One fit of an ico-sphere to `loss_points` (device) with cfg's weights; appends a FitResult to `results`."""
    from pytorch3d.loss import mesh_laplacian_smoothing
    from pytorch3d.utils import ico_sphere

    generator = torch.Generator().manual_seed(cfg.seed + 1)
    src = ico_sphere(cfg.ico_level, device=device)
    faces = src.faces_packed()
    src_verts = src.verts_packed()
    topo = Topology.of(faces, len(src_verts))  # the connectivity never changes: its losses' indices are made once
    deform = torch.zeros(src.verts_packed().shape, device=device, requires_grad=True)
    optimizer = torch.optim.SGD([deform], lr=cfg.lr, momentum=cfg.momentum)
    weights = {"chamfer": cfg.w_chamfer, "edge": cfg.w_edge, "normal": cfg.w_normal, "laplacian": cfg.w_laplacian}
    gt = target.points.to(device)
    gt_normals = None if target.normals is None else target.normals.to(device)
    eval_gen = torch.Generator().manual_seed(cfg.seed + 2)

    def evaluate(verts: torch.Tensor) -> dict[str, float]:
        pts, nrm = sample_surface(verts.detach(), faces, cfg.eval_points, eval_gen)
        return point_metrics.compare_point_sets(pts, gt, nrm, gt_normals, taus=(cfg.f1_tau,))

    start = evaluate(src.verts_packed())
    history: dict[str, list[float]] = {k: [] for k in (*weights, "total")}
    prefix = "" if cfg.experiment == "single" else f"{name} "
    last_preview = -math.inf
    target_image = None
    for i in range(cfg.steps):
        verts = src_verts + deform  # (V, 3)
        samples, _ = sample_surface(verts, faces, cfg.sample_points, generator)
        terms = {
            # PyTorch3D's convention; the k-d tree search makes it several times faster than its CPU knn_points
            "chamfer": point_metrics.chamfer_distance(loss_points, samples)[0],
            "edge": edge_loss(verts, topo),
            "normal": normal_consistency(verts, topo),
            "laplacian": laplacian_smoothing(verts, topo)
            if cfg.laplacian == "uniform"
            else mesh_laplacian_smoothing(src.offset_verts(deform), method=cfg.laplacian),
        }
        loss = sum(weights[k] * v for k, v in terms.items())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        values = {k: float(v.detach()) for k, v in terms.items()} | {"total": float(loss.detach())}
        if not math.isfinite(values["total"]):
            raise ValueError("The loss became NaN or infinite: lower the learning rate or the weights.")
        for k, v in values.items():
            history[k].append(v)
        shown = values if cfg.experiment == "single" else {"chamfer": values["chamfer"], "total": values["total"]}
        step = step_offset + i + 1
        yield Progress(step, total, {prefix + k: v for k, v in shown.items()}, f"{prefix}step {i + 1}/{cfg.steps}")
        now = time.perf_counter()
        if now - last_preview >= cfg.preview_every_s or i == cfg.steps - 1:
            last_preview = now
            if target_image is None:
                target_image = label(render_points(target.points), "target")
            verts_now = (src.verts_packed() + deform).detach()
            picture = np.concatenate([target_image, label(render_mesh(verts_now, faces), f"{prefix}step {i + 1}")], 1)
            yield Preview(step, image=picture, caption=f"{prefix}step {i + 1}: chamfer {values['chamfer']:.4g}")
    verts = (src.verts_packed() + deform).detach()
    end = evaluate(verts)
    result_metrics = {
        "start_chamfer": start["chamfer"],
        **end,
        "chamfer_ratio": end["chamfer"] / max(start["chamfer"], 1e-12),
        "edge_length_cv": edge_length_cv(verts, src.edges_packed()),
        "final_loss": history["total"][-1],
    }
    results.append(FitResult(name, verts, faces, history, result_metrics))
