"""Mesh fitting's targets: the book's sparse pedestrian scan, procedural shapes and a dense standing figure, uploads, the unit-sphere frame,
and the noisy-scan corruption."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from pipelines.files.loader import load_asset
from pipelines.files.types import Limits
from pipelines.files.upload import stage_upload
from pipelines.render.procedural import sample_surface
from pipelines.render.subjects import PEDESTRIAN_CAPSULES, capsule_surface_points, pedestrian_points

TARGETS = ("pedestrian", "figure", "blob", "cube", "peanut", "spiky")
MIN_POINTS = 10


class TargetSpec(Protocol):
    """The settings `load_target` reads (the pipeline's Config has them)."""

    target: str
    target_files: tuple[str, ...]
    target_points: int
    max_upload_mb: float
    out_dir: Path | None


@dataclass
class PointTarget:
    """A target in the unit-sphere frame: points (P, 3), normals (P, 3) or None, and the map back to the file's
    frame (original = points · scale + centre)."""

    points: torch.Tensor
    normals: torch.Tensor | None
    centre: torch.Tensor
    scale: float
    source: str
    warnings: list[str]


def check_points(points: np.ndarray | torch.Tensor, what: str = "The target") -> None:
    """Raise ValueError with one sentence when a point set cannot be fitted: empty, too few, NaN/inf, or a single spot."""
    pts = torch.as_tensor(np.asarray(points) if not isinstance(points, torch.Tensor) else points)
    if pts.ndim != 2 or pts.shape[-1] != 3:
        raise ValueError(f"{what} must be a list of 3D points (N × 3), got shape {tuple(pts.shape)}.")
    n = pts.shape[0]
    if n == 0:
        raise ValueError(f"{what} is empty: it has no points.")
    bad = int((~torch.isfinite(pts).all(dim=1)).sum())
    if bad:
        raise ValueError(f"{what} has {bad} of {n} points with NaN or infinite coordinates.")
    if n < MIN_POINTS:
        raise ValueError(
            f"{what} has only {n} point{'s' if n != 1 else ''}; fitting a surface needs at least {MIN_POINTS}."
        )
    if float((pts - pts.mean(0)).norm(dim=1).max()) <= 1e-9:
        raise ValueError(
            f"All {n} points of {what.lower().removeprefix('the ')} lie at one spot, so there is no shape to fit."
        )


def _radial_shape(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A star-shaped procedural mesh: a level-5 ico-sphere with radius r(direction). Returns verts, faces."""
    from pytorch3d.utils import ico_sphere

    sphere = ico_sphere(5)
    u = sphere.verts_packed()  # (V, 3) unit directions
    g = torch.Generator().manual_seed(3)  # the shapes are fixed; cfg.seed only drives sampling and noise
    if name == "blob":
        centres = torch.nn.functional.normalize(torch.randn(6, 3, generator=g), dim=1)
        weights = torch.tensor([0.45, -0.3, 0.35, 0.25, -0.2, 0.3])
        r = 1.0 + (weights * torch.exp(3.0 * (u @ centres.T - 1.0))).sum(1)
    elif name == "cube":
        r = 1.0 / (u.abs() ** 6).sum(1) ** (1 / 6)
    elif name == "peanut":
        r = 0.55 + 0.45 * u[:, 0] ** 2 + 0.1 * u[:, 1]
    elif name == "spiky":
        dirs = torch.nn.functional.normalize(torch.randn(10, 3, generator=g), dim=1)
        r = 0.75 + 0.5 * (u @ dirs.T).clamp(min=0).pow(24).amax(1)
    else:
        raise ValueError(f"Unknown procedural target {name!r}: choose {', '.join(TARGETS)}.")
    return u * r[:, None], sphere.faces_packed()


def _normalise(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    centre = (points.amax(0) + points.amin(0)) / 2
    scale = float((points - centre).norm(dim=1).amax())
    return (points - centre) / scale, centre, scale


def load_target(cfg: TargetSpec, generator: torch.Generator) -> PointTarget:
    """The clean target points in the unit-sphere frame, from an upload (mesh: sampled; cloud: subsampled when
    larger than `target_points`) or a procedural shape."""
    warnings: list[str] = []
    if cfg.target_files:
        main = stage_upload(cfg.target_files, Path(cfg.out_dir) / "upload", Limits(max_upload_mb=cfg.max_upload_mb))
        asset = load_asset(main, Limits(max_upload_mb=cfg.max_upload_mb))
        warnings += asset.warnings
        verts = torch.from_numpy(np.ascontiguousarray(asset.verts, dtype=np.float32))
        faces = torch.from_numpy(np.ascontiguousarray(asset.faces, dtype=np.int64))
        normals = (
            None if asset.normals is None else torch.from_numpy(np.ascontiguousarray(asset.normals, dtype=np.float32))
        )
        return target_from_arrays(verts, faces, normals, cfg.target_points, generator, main.name, warnings)
    if cfg.target not in TARGETS:
        raise ValueError(f"Unknown procedural target {cfg.target!r}: choose {', '.join(TARGETS)}.")
    if cfg.target == "pedestrian":
        points, normals = pedestrian_points()
        return PointTarget(
            points, normals, torch.zeros(3), 1.0, "pedestrian (the book's sparse 239-point scan, procedural)", warnings
        )
    if cfg.target == "figure":
        points, normals = capsule_surface_points(PEDESTRIAN_CAPSULES, cfg.target_points, generator)
        points, centre, scale = _normalise(points)
        return PointTarget(points, normals, centre, scale, "figure (procedural point cloud)", warnings)
    verts, faces = _radial_shape(cfg.target)
    return target_from_arrays(
        verts, faces, None, cfg.target_points, generator, f"{cfg.target} (procedural mesh)", warnings
    )


def target_from_arrays(
    verts: torch.Tensor,
    faces: torch.Tensor,
    normals: torch.Tensor | None,
    n: int,
    generator: torch.Generator,
    source: str,
    warnings: list[str] | None = None,
) -> PointTarget:
    """A PointTarget from a mesh (verts (V, 3), faces (F, 3): `n` surface samples) or a point cloud (faces (0, 3):
    the points, randomly subsampled to `n` when there are more), normalised to the unit sphere."""
    warnings = list(warnings or [])
    check_points(verts, "The target" if faces.numel() else "The target point cloud")
    if faces.numel():
        verts_n, centre, scale = _normalise(verts.float())
        points, point_normals = sample_surface(verts_n, faces.long(), n, generator)
        return PointTarget(points.detach(), point_normals.detach(), centre, scale, source, warnings)
    points = verts.float()
    if points.shape[0] > n:
        keep = torch.randperm(points.shape[0], generator=generator)[:n]
        warnings.append(f"The point cloud has {points.shape[0]:,} points; {n:,} were drawn at random for fitting.")
        points = points[keep]
        normals = None if normals is None else normals[keep]
    points, centre, scale = _normalise(points)
    return PointTarget(points, normals, centre, scale, source, warnings)


def corrupt(
    points: torch.Tensor, noise_std: float, outlier_fraction: float, generator: torch.Generator
) -> torch.Tensor:
    """The noisy-scan case: Gaussian noise (std in unit-sphere units) and a fraction of points replaced by outliers
    drawn uniformly in the cube [−1, 1]³."""
    noisy = points + noise_std * torch.randn(points.shape, generator=generator)
    k = int(round(outlier_fraction * points.shape[0]))
    if k > 0:
        idx = torch.randperm(points.shape[0], generator=generator)[:k]
        noisy[idx] = torch.rand(k, 3, generator=generator) * 2 - 1
    return noisy
