"""Mesh fitting: deform an ico-sphere onto a target point cloud or mesh by chamfer distance plus edge, normal and
Laplacian regularisers (the book's chapter 3), with the book's three experiments side by side.

The targets live in `targets`, the fit loop in `fit`, its pictures in `previews` and the mesh files in `export`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.core.device import resolve_device
from pipelines.core.events import Done, Event, Preview, Progress
from pipelines.core.headline import Headline
from pipelines.mesh_fit.export import export_mesh, write_live_mesh
from pipelines.mesh_fit.fit import FitResult, fit
from pipelines.mesh_fit.previews import label, render_mesh, render_points
from pipelines.mesh_fit.targets import (
    MIN_POINTS,
    PointTarget,
    corrupt,
    load_target,
)
from pipelines.render.book_figures import BookFigure

HEADLINE = (Headline("chamfer", "Chamfer", "", "start_chamfer"), Headline("f1@0.05", "F1@0.05", ""))
"""The result card's numbers: chamfer distance to the target (from the ico-sphere's) and F1 at the default τ."""

LAPLACIANS = ("uniform", "cot", "cotcurv")
EXPERIMENTS = ("single", "book")
EXPORTS = ("obj", "ply", "glb")
# The book's three experiments: (name, keep edge weight, keep normal and Laplacian weights).
BOOK_EXPERIMENTS = (("none", False, False), ("edge", True, False), ("all", True, True))


FIGURES = (
    BookFigure(
        "3 (experiments)",
        "The three mesh-fitting experiments",
        "Chapter 3 deforms an ico-sphere onto the sparse pedestrian scan three times: with chamfer alone (the mesh "
        "crumples through the sparse points), with the edge-length loss added, and with edge, normal-consistency and "
        "Laplacian losses together (the smoothest fit). Shown side by side.",
        "mesh-fit",
        {"target": "pedestrian", "experiment": "book"},
        "picture",
    ),
)
"""The book's chapter-3 experiment as a figure."""


@dataclass(frozen=True)
class Config:
    target: str = "pedestrian"
    """Procedural target when no file is given: pedestrian (the book's sparse 239-point scan; target_points does not
    apply), figure (the same figure densely sampled), blob, cube, peanut, spiky."""
    target_files: tuple[str, ...] = ()
    """An uploaded target: a point cloud (PLY) or a mesh (points are sampled on it). Overrides `target`."""
    target_points: int = 5000
    """Target points: samples on a mesh target, or a random subset of a larger point cloud."""
    noise_std: float = 0.0
    """Gaussian noise added to the target points, in unit-sphere units (the noisy-scan case)."""
    outlier_fraction: float = 0.0
    """Share of target points replaced by outliers drawn uniformly in the cube [−1, 1]³."""
    ico_level: int = 4
    """Subdivision level of the source ico-sphere (4: 2,562 vertices, 5,120 faces)."""
    steps: int = 2000
    """Optimisation steps."""
    lr: float = 1.0
    """SGD learning rate on the per-vertex offsets."""
    momentum: float = 0.9
    """SGD momentum."""
    w_chamfer: float = 1.0
    """Weight of the chamfer distance between target points and points sampled on the mesh."""
    w_edge: float = 1.0
    """Weight of the edge-length loss (mean squared edge length: keeps edges short and even)."""
    w_normal: float = 0.01
    """Weight of the normal-consistency loss (1 − cos between the normals of neighbouring faces)."""
    w_laplacian: float = 0.1
    """Weight of the Laplacian smoothing loss (each vertex near the average of its neighbours)."""
    laplacian: str = "uniform"
    """Laplacian weights: uniform, cot (cotangent) or cotcurv (cotangent, curvature-normalised). cotcurv's values are
    far larger (divided by vertex areas): with w_laplacian 0.1 it crumples the mesh; about 0.001 works."""
    sample_points: int = 5000
    """Points sampled on the mesh at every step for the chamfer loss."""
    experiment: str = "single"
    """single: one fit with these weights; book: the book's three runs (no regulariser, edge only, all losses)."""
    f1_tau: float = 0.05
    """Distance threshold τ of F1@τ, in unit-sphere units (the target is scaled to radius 1)."""
    eval_points: int = 10000
    """Points sampled on the final mesh to measure chamfer, normal consistency and F1 against the clean target."""
    exports: tuple[str, ...] = ("obj", "ply", "glb")
    """Formats of the fitted mesh to write (in the target's original frame): obj, ply, glb."""
    preview_every_s: float = 1.0
    """Seconds between preview renders."""
    max_upload_mb: float = 200.0
    """Largest upload accepted."""
    device: str = "auto"
    """auto, cpu or cuda[:N]."""
    seed: int = 0
    """Seed of point sampling, noise and outliers."""
    out_dir: Path | None = None
    """Where meshes and pictures go (the app and CLI set one per run)."""

    @classmethod
    def quick(cls) -> Config:
        return cls(ico_level=3, steps=300, sample_points=2000, target_points=3000, lr=1.0)

    @classmethod
    def tiny(cls) -> Config:
        return cls(
            ico_level=2, steps=30, sample_points=800, target_points=1000, eval_points=2000, exports=("obj", "glb")
        )


def validate(cfg: Config) -> None:
    if cfg.laplacian not in LAPLACIANS:
        raise ValueError(f"Unknown Laplacian {cfg.laplacian!r}: choose uniform, cot or cotcurv.")
    if cfg.experiment not in EXPERIMENTS:
        raise ValueError(f"Unknown experiment {cfg.experiment!r}: choose single or book.")
    if not 0 <= cfg.ico_level <= 6:
        raise ValueError("The ico-sphere level must be between 0 and 6.")
    if cfg.steps < 1 or cfg.sample_points < 10 or cfg.target_points < MIN_POINTS or cfg.eval_points < 10:
        raise ValueError("Steps must be at least 1 and point counts at least 10.")
    if not (cfg.lr > 0 and 0 <= cfg.momentum < 1):
        raise ValueError("The learning rate must be positive and the momentum in [0, 1).")
    if min(cfg.w_chamfer, cfg.w_edge, cfg.w_normal, cfg.w_laplacian) < 0:
        raise ValueError("Loss weights must not be negative.")
    if cfg.noise_std < 0 or not 0 <= cfg.outlier_fraction < 1:
        raise ValueError("Noise must not be negative and the outlier share must be in [0, 1).")
    if cfg.f1_tau <= 0:
        raise ValueError("F1's threshold τ must be positive.")
    unknown = sorted(set(cfg.exports) - set(EXPORTS))
    if unknown:
        raise ValueError(f"Unknown export format {unknown[0]!r}: choose obj, ply or glb.")


def _experiments(cfg: Config) -> list[tuple[str, Config]]:
    """(name, config) of each fit: `cfg` once, or the book's three experiments (regularisers switched off)."""
    return (
        [(cfg.experiment, cfg)]
        if cfg.experiment == "single"
        else [
            (
                name,
                replace(
                    cfg,
                    w_edge=cfg.w_edge * keep_edge,
                    w_normal=cfg.w_normal * keep_rest,
                    w_laplacian=cfg.w_laplacian * keep_rest,
                ),
            )
            for name, keep_edge, keep_rest in BOOK_EXPERIMENTS
        ]
    )


def _export(
    cfg: Config, results: list[FitResult], target: PointTarget, out_dir: Path, elapsed: float
) -> tuple[dict[str, Path], dict[str, float]]:
    """Every fitted mesh written in cfg's formats, and the metrics of all fits (prefixed by experiment in the book)."""
    files: dict[str, Path] = {}
    metrics: dict[str, float] = {"time_s": elapsed}
    for result in results:
        stem = "fitted" if cfg.experiment == "single" else f"fitted_{result.name}"
        for fmt, path in export_mesh(result.verts, result.faces, target, out_dir / stem, cfg.exports).items():
            files[f"{stem}.{fmt}" if cfg.experiment != "single" else fmt] = path
        prefix = "" if cfg.experiment == "single" else f"{result.name}_"
        metrics.update({prefix + k: v for k, v in result.metrics.items()})
    return files, metrics


def _picture(cfg: Config, results: list[FitResult], target: PointTarget, out_dir: Path) -> tuple[np.ndarray, Path]:
    """The target beside every fitted mesh, uint8 (S, S·(1 + fits), 3), and the PNG it was saved to."""
    tiles = [label(render_points(target.points), "target")]
    tiles += [label(render_mesh(r.verts, r.faces), r.name if cfg.experiment != "single" else "fitted") for r in results]
    from PIL import Image

    side_by_side = np.concatenate(tiles, 1)
    picture = out_dir / ("comparison.png" if cfg.experiment != "single" else "fitted.png")
    Image.fromarray(side_by_side).save(picture)
    return side_by_side, picture


def _info(
    cfg: Config,
    results: list[FitResult],
    target: PointTarget,
    files: dict[str, Path],
    side_by_side: np.ndarray,
    live: Path,
) -> dict[str, Any]:
    """The run's info for the UI: the target, a table of metrics per fit, loss histories, pictures and meshes."""
    table = [{"experiment": r.name, **{k: round(v, 5) for k, v in r.metrics.items()}} for r in results]
    return {
        "target": target.source,
        "warnings": target.warnings,
        "table": table,
        "histories": {r.name: r.history for r in results},
        "picture": side_by_side,
        "mesh": live,
        "meshes": {r.name: files.get("glb" if cfg.experiment == "single" else f"fitted_{r.name}.glb") for r in results},
        "frame": {"centre": [float(v) for v in target.centre], "scale": target.scale},
    }


def run(cfg: Config) -> Iterator[Event]:
    """Load and normalise the target, fit (once, or the book's three experiments), measure and export."""
    validate(cfg)
    if cfg.out_dir is None:
        raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = _experiments(cfg)
    total = cfg.steps * len(runs)
    yield Progress(0, total, {}, "loading the target")
    device = resolve_device(cfg.device)
    t_start = time.perf_counter()
    generator = torch.Generator().manual_seed(cfg.seed)
    target = load_target(cfg, generator)
    loss_points = corrupt(target.points, cfg.noise_std, cfg.outlier_fraction, generator).to(device)
    yield Progress(0, total, {}, f"target: {target.points.shape[0]} points from {target.source}")
    results: list[FitResult] = []
    for k, (name, run_cfg) in enumerate(runs):
        yield from fit(run_cfg, name, target, loss_points, device, k * cfg.steps, total, results)
    elapsed = time.perf_counter() - t_start

    files, metrics = _export(cfg, results, target, out_dir, elapsed)
    side_by_side, picture = _picture(cfg, results, target, out_dir)
    files["picture"] = picture
    if "glb" not in cfg.exports:
        live = write_live_mesh(out_dir, results[-1].verts, results[-1].faces, target, total)
    else:
        live = files["glb" if cfg.experiment == "single" else f"fitted_{results[-1].name}.glb"]
    info = _info(cfg, results, target, files, side_by_side, live)
    yield Preview(total, image=side_by_side, mesh=live, caption="done")
    yield Done(metrics=metrics, files=files, info=info)
