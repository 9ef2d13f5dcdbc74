"""The book's point-set exercise (chapter 2): a heterogeneous batch of meshes moved by `offset_verts`, and the
motion recovered by SGD on the chamfer distance between points sampled afresh on both batches at every iteration."""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
import torch
from pytorch3d.structures import Meshes, join_meshes_as_batch
from pytorch3d.transforms import so3_exp_map, so3_relative_angle

from pipelines.core.device import resolve_device
from pipelines.core.events import Done, Event, Preview, Progress
from pipelines.core.headline import Headline
from pipelines.render.procedural import PROCEDURAL, procedural_mesh, sample_surface
from pipelines.train.metrics import chamfer_distance

HEADLINE = (
    Headline("final_translation_error", "Translation error"),
    Headline("final_loss", "chamfer loss", "", "initial_loss"),
)
"""The result card's numbers: how far the recovered translation is from the true one, and the final loss."""

PREVIEW_EVERY_S = 0.4
PLOT_POINTS = 800
BOOK_MESHES = ("cube", "diamond", "dodecahedron")


@dataclass(frozen=True)
class Config:
    meshes: tuple[str, ...] = BOOK_MESHES
    """The heterogeneous batch (joined with join_meshes_as_batch): procedural meshes by name; the book's cube,
    diamond and dodecahedron by default."""
    n_points: int = 5000
    """Points sampled afresh on every mesh of both batches at every iteration (the book uses 5000)."""
    steps: int = 200
    """SGD iterations (the book uses 200)."""
    lr: float = 0.1
    """SGD learning rate (the book uses 0.1)."""
    momentum: float = 0.9
    """SGD momentum (the book uses 0.9)."""
    true_translation: tuple[float, float, float] = (3.0, 4.0, 5.0)
    """The motion applied to the batch with offset_verts, which the optimiser must recover (the book's (3, 4, 5))."""
    fit_rotation: bool = False
    """Also recover a rotation (about the origin), parametrised as a rotation vector through so3_exp_map."""
    true_rotation: tuple[float, float, float] = (0.2, 0.5, -0.1)
    """The target's rotation as a rotation vector (radians), used when fit_rotation is on."""
    noise: float = math.sqrt(0.1)
    """Standard deviation of the Gaussian noise added to every target vertex (the book's variance 0.1: 0.316)."""
    device: str = "auto"
    """auto, cpu or cuda[:N]."""
    seed: int = 0
    """Seed of the point sampler and the noise."""
    out_dir: Path | None = None
    """Where the loss history and the result go."""

    @classmethod
    def quick(cls) -> Config:
        return cls(n_points=2000)

    @classmethod
    def tiny(cls) -> Config:
        return cls(n_points=300, steps=25)


def points_figure(source: torch.Tensor, current: torch.Tensor, target: torch.Tensor, title: str = "") -> go.Figure:
    """Source (grey), current estimate (orange) and target (blue), the first PLOT_POINTS of each."""
    fig = go.Figure()
    for name, pts, color in (
        ("source", source, "#b0b0b0"),
        ("current", current, "#e8762b"),
        ("target", target, "#2b6de8"),
    ):
        p = pts[:PLOT_POINTS].detach().cpu().numpy()
        fig.add_trace(
            go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="markers", name=name, marker=dict(size=2, color=color))
        )
    fig.update_layout(
        title=title,
        height=420,
        margin=dict(l=0, r=0, t=30, b=0),
        scene=dict(aspectmode="data"),
        legend=dict(orientation="h"),
    )
    return fig


def book_batch(names: tuple[str, ...], device: torch.device) -> Meshes:
    """The heterogeneous batch of procedural meshes, joined as in the book (textures dropped)."""
    unknown = [n for n in names if n not in PROCEDURAL]
    if not names or unknown:
        raise ValueError(f"Choose one or more meshes among {', '.join(PROCEDURAL)} (got {', '.join(names) or 'none'}).")
    return join_meshes_as_batch([procedural_mesh(n, device=device) for n in names], include_textures=False)


def sample_batch(meshes: Meshes, n: int, generator: torch.Generator) -> torch.Tensor:
    """`n` fresh surface points on every mesh of the batch, (B, n, 3), differentiable in the vertices."""
    return torch.stack(
        [sample_surface(v, f, n, generator)[0] for v, f in zip(meshes.verts_list(), meshes.faces_list())]
    )


def _check(cfg: Config) -> None:
    if cfg.n_points < 3 or cfg.steps < 1:
        raise ValueError("Use at least 3 points and 1 step.")
    if cfg.lr <= 0 or not 0 <= cfg.momentum < 1:
        raise ValueError("The learning rate must be positive and the momentum in [0, 1).")
    if cfg.noise < 0:
        raise ValueError("The noise must not be negative.")
    if cfg.out_dir is None:
        raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")


def run(cfg: Config) -> Iterator[Event]:
    """Move the batch by (R,) t with offset_verts and recover the motion: SGD on the chamfer distance between
    points sampled afresh on the moved batch and on the noisy target batch at every iteration."""
    _check(cfg)
    device = resolve_device(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed)
    batch = book_batch(tuple(cfg.meshes), device)
    verts = batch.verts_packed()  # (V, 3) all meshes' vertices
    true_t = torch.tensor(cfg.true_translation, dtype=torch.float32, device=device)
    true_R = so3_exp_map(torch.tensor([cfg.true_rotation], device=device))[0] if cfg.fit_rotation else None
    noise = (cfg.noise * torch.randn(verts.shape, generator=gen)).to(device)  # (V, 3)
    moved_verts = verts if true_R is None else verts @ true_R.T
    target = batch.offset_verts(moved_verts - verts + true_t + noise)

    translation = torch.zeros(3, device=device, requires_grad=True)
    log_rot = torch.zeros(1, 3, device=device, requires_grad=True)
    optimizer = torch.optim.SGD(
        [translation, log_rot] if cfg.fit_rotation else [translation], lr=cfg.lr, momentum=cfg.momentum
    )

    def moved() -> Meshes:
        rotated = verts @ so3_exp_map(log_rot)[0].T if cfg.fit_rotation else verts
        return batch.offset_verts(rotated - verts + translation)

    def picture(title: str) -> go.Figure:
        with torch.no_grad():
            plot_gen = torch.Generator().manual_seed(1)
            points = [
                sample_batch(m, PLOT_POINTS // len(cfg.meshes), plot_gen).reshape(-1, 3)
                for m in (batch, moved(), target)
            ]
        return points_figure(*points, title)

    history: list[dict[str, float]] = []
    last_preview = 0.0
    yield Preview(0, figure=picture("start"), caption="the batch, the current estimate and the noisy moved batch")
    for step in range(1, cfg.steps + 1):
        optimizer.zero_grad()
        # PyTorch3D's chamfer convention (squared L2, mean over points and the batch), with a k-d tree on the CPU
        loss = chamfer_distance(
            sample_batch(moved(), cfg.n_points, gen), sample_batch(target, cfg.n_points, gen)
        ).mean()
        loss.backward()
        optimizer.step()
        row = {"loss": loss.item(), "translation_error": (translation.detach() - true_t).norm().item()}
        if true_R is not None:
            angle = so3_relative_angle(so3_exp_map(log_rot.detach()), true_R[None], eps=1e-6)
            row["rotation_error_deg"] = math.degrees(angle.item())
        history.append(row)
        yield Progress(step, cfg.steps, row, f"step {step}: translation error {row['translation_error']:.4g}")
        now = time.monotonic()
        if now - last_preview > PREVIEW_EVERY_S or step == cfg.steps:
            last_preview = now
            yield Preview(step, figure=picture(f"step {step}"), caption=f"step {step}")
    yield _finish(cfg, history, translation.detach(), log_rot.detach(), picture("result"))


def _finish(
    cfg: Config, history: list[dict[str, float]], translation: torch.Tensor, log_rot: torch.Tensor, figure: go.Figure
) -> Done:
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "history.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["step", *history[0]])
        writer.writeheader()
        writer.writerows({"step": i + 1, **row} for i, row in enumerate(history))
    estimate = {
        "translation": [round(v, 6) for v in translation.cpu().tolist()],
        "true_translation": list(cfg.true_translation),
        "meshes": list(cfg.meshes),
    }
    if cfg.fit_rotation:
        estimate["rotation_vector"] = [round(v, 6) for v in log_rot.cpu()[0].tolist()]
        estimate["true_rotation_vector"] = list(cfg.true_rotation)
    (out / "result.json").write_text(json.dumps(estimate, indent=2))
    metrics = {"initial_loss": history[0]["loss"], **{f"final_{k}": v for k, v in history[-1].items()}}
    return Done(
        metrics=metrics,
        files={"history": out / "history.csv", "result": out / "result.json"},
        info={"estimate": estimate, "figure": figure},
    )
