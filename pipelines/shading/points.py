"""The book's exercise: recover the translation (and optionally rotation) between two point sets by gradient descent."""

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
from pytorch3d.transforms import so3_exp_map, so3_relative_angle

from pipelines.core.device import resolve_device
from pipelines.core.events import Done, Event, Preview, Progress
from pipelines.render.procedural import procedural_mesh, sample_surface

PREVIEW_EVERY_S = 0.4
PLOT_POINTS = 800


@dataclass(frozen=True)
class Config:
    n_points: int = 5000
    """Points sampled on the source surface (the book uses 5000)."""
    steps: int = 200
    """Gradient-descent iterations (the book uses 200)."""
    lr: float = 0.1
    """SGD learning rate (the book uses 0.1)."""
    momentum: float = 0.9
    """SGD momentum (the book uses 0.9)."""
    true_translation: tuple[float, float, float] = (0.6, -0.4, 0.8)
    """The translation that maps the source onto the target (what the optimiser must recover)."""
    fit_rotation: bool = False
    """Also recover a rotation, parametrised as a rotation vector through so3_exp_map."""
    true_rotation: tuple[float, float, float] = (0.2, 0.5, -0.1)
    """The target's rotation as a rotation vector (radians), used when fit_rotation is on."""
    noise: float = 0.0
    """Gaussian noise (standard deviation) added to the target points."""
    source: str = "torus"
    """Procedural surface the points are sampled on: ico-sphere, torus or cube."""
    device: str = "auto"
    """auto, cpu or cuda[:N]."""
    seed: int = 0
    """Seed of the point sampler and the noise."""
    out_dir: Path | None = None
    """Where the loss history and the result go."""

    @classmethod
    def quick(cls) -> Config:
        return cls()

    @classmethod
    def tiny(cls) -> Config:
        return cls(n_points=500, steps=25)


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


def run(cfg: Config) -> Iterator[Event]:
    """Fit t (and R) so that R x_i + t matches y_i in the mean squared sense, with SGD and momentum."""
    if cfg.n_points < 3 or cfg.steps < 1:
        raise ValueError("Use at least 3 points and 1 step.")
    if cfg.lr <= 0 or not 0 <= cfg.momentum < 1:
        raise ValueError("The learning rate must be positive and the momentum in [0, 1).")
    if cfg.out_dir is None:
        raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
    device = resolve_device(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed)
    mesh = procedural_mesh(cfg.source)
    source = sample_surface(mesh.verts_packed(), mesh.faces_packed(), cfg.n_points, gen)[0]  # (P, 3), CPU
    true_t = torch.tensor(cfg.true_translation, dtype=torch.float32)
    true_R = (
        so3_exp_map(torch.tensor([cfg.true_rotation], dtype=torch.float32))[0] if cfg.fit_rotation else torch.eye(3)
    )
    target = source @ true_R.T + true_t + cfg.noise * torch.randn(source.shape, generator=gen)
    source, target, true_t, true_R = source.to(device), target.to(device), true_t.to(device), true_R.to(device)

    translation = torch.zeros(3, device=device, requires_grad=True)
    log_rot = torch.zeros(1, 3, device=device, requires_grad=True)
    params = [translation, log_rot] if cfg.fit_rotation else [translation]
    optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)

    def moved() -> torch.Tensor:
        rot = so3_exp_map(log_rot)[0] if cfg.fit_rotation else torch.eye(3, device=device)
        return source @ rot.T + translation

    history: list[dict[str, float]] = []
    last_preview = 0.0
    yield Preview(0, figure=points_figure(source, source, target, "start"), caption="source and target point sets")
    for step in range(1, cfg.steps + 1):
        optimizer.zero_grad()
        loss = ((moved() - target) ** 2).sum(-1).mean()
        loss.backward()
        optimizer.step()
        row = {"loss": loss.item(), "translation_error": (translation.detach() - true_t).norm().item()}
        if cfg.fit_rotation:
            row["rotation_error_deg"] = math.degrees(
                so3_relative_angle(so3_exp_map(log_rot.detach()), true_R[None], eps=1e-6).item()
            )
        history.append(row)
        yield Progress(step, cfg.steps, row, f"step {step}: translation error {row['translation_error']:.4g}")
        now = time.monotonic()
        if now - last_preview > PREVIEW_EVERY_S or step == cfg.steps:
            last_preview = now
            with torch.no_grad():
                current = moved()
            yield Preview(step, figure=points_figure(source, current, target, f"step {step}"), caption=f"step {step}")

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "history.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["step", *history[0]])
        writer.writeheader()
        writer.writerows({"step": i + 1, **row} for i, row in enumerate(history))
    estimate = {
        "translation": [round(v, 6) for v in translation.detach().cpu().tolist()],
        "true_translation": list(cfg.true_translation),
    }
    if cfg.fit_rotation:
        estimate["rotation_vector"] = [round(v, 6) for v in log_rot.detach().cpu()[0].tolist()]
        estimate["true_rotation_vector"] = list(cfg.true_rotation)
    (out / "result.json").write_text(json.dumps(estimate, indent=2))
    with torch.no_grad():
        current = moved()
    metrics = {"initial_loss": history[0]["loss"], **{f"final_{k}": v for k, v in history[-1].items()}}
    yield Done(
        metrics=metrics,
        files={"history": out / "history.csv", "result": out / "result.json"},
        info={"estimate": estimate, "figure": points_figure(source, current, target, "result")},
    )
