"""Fit one scene parameter (a light position, or a mesh translation or scale) to target renders of a mesh batch."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from pytorch3d.structures import Meshes, join_meshes_as_batch

from pipelines.core.device import resolve_device
from pipelines.core.events import Done, Event, Preview, Progress, to_uint8
from pipelines.core.headline import Headline
from pipelines.render.images import image_grid
from pipelines.render.mesh_convert import batch_report
from pipelines.shading.lab import render
from pipelines.shading.meshes import load_mesh
from pipelines.shading.scene import prepare_mesh
from pipelines.shading.settings import RenderSettings, guard_memory

HEADLINE = (Headline("final_param_error", "Parameter error", "", "initial_param_error"),)
"""The result card's number: the fitted parameter's distance from the truth, and where it started."""

TARGETS = ("light", "translation", "scale")
OPTIMIZERS = ("adam", "sgd")
DEFAULT_TRUTH = {"light": (1.5, 2.0, 2.5), "translation": (0.15, -0.1, 0.1), "scale": (1.15, 0.85, 1.0)}
DEFAULT_OFFSET = {"light": 1.5, "translation": 0.2, "scale": 0.2}
DEFAULT_LR = {"light": 0.05, "translation": 0.01, "scale": 0.01}
PREVIEW_EVERY_S = 0.5


@dataclass(frozen=True)
class Config:
    target: str = "light"
    """The parameter to fit: light (a point light's position), translation or scale (per axis) of every mesh."""
    meshes: tuple[str, ...] = ("ico-sphere", "torus", "cube")
    """The heterogeneous batch: procedural names, bundled asset names or file paths (one image each)."""
    image_size: int = 128
    """Side of each rendered image in pixels."""
    steps: int = 200
    """Optimisation steps."""
    optimizer: str = "adam"
    """adam or sgd (with momentum 0.9)."""
    lr: float = 0.0
    """Learning rate; 0 uses the target's default (0.05 for a light, 0.01 for translation and scale)."""
    true_value: tuple[float, ...] = ()
    """The hidden value that made the target renders (x, y, z); empty uses the target's default."""
    init_offset: float = -1.0
    """Distance of the start from the truth, in a seeded random direction; negative uses the target's default."""
    faces_per_pixel: int = 10
    """K for the soft rasteriser used for translation and scale (the light fit rasterises hard, K = 1)."""
    device: str = "auto"
    """auto, cpu or cuda[:N]."""
    seed: int = 0
    """Seed of the start's direction."""
    out_dir: Path | None = None
    """Where the final comparison image and the loss history go."""

    @classmethod
    def quick(cls) -> Config:
        return cls(image_size=48, steps=80, faces_per_pixel=4)

    @classmethod
    def tiny(cls) -> Config:
        return cls(image_size=32, steps=6, faces_per_pixel=3)


def _settings(cfg: Config) -> RenderSettings:
    base = RenderSettings(image_size=cfg.image_size, background=(0.0, 0.0, 0.0))
    if cfg.target == "light":
        return base.replace(shader="hard-phong", shininess=32.0)
    # Moving geometry moves silhouettes: only the soft rasteriser gives their edges a gradient. Barycentrics are
    # interpolated in screen space because PyTorch3D's CPU backward of clipped, perspective-corrected
    # barycentrics disagrees with finite differences (tests/test_shading_raster.py checks the setting used here).
    return RenderSettings.book_soft(
        image_size=cfg.image_size,
        faces_per_pixel=cfg.faces_per_pixel,
        background=(0.0, 0.0, 0.0),
        perspective_correct=False,
    )


def _batch(cfg: Config, device: torch.device) -> Meshes:
    meshes = [load_mesh(name, device) for name in cfg.meshes]
    return join_meshes_as_batch([prepare_mesh(m, RenderSettings()) for m in meshes])


def _apply(meshes: Meshes, target: str, value: torch.Tensor) -> Meshes:
    if target == "translation":
        return meshes.offset_verts(value.expand(meshes.verts_packed().shape[0], 3))
    if target == "scale":
        return meshes.update_padded(meshes.verts_padded() * value)
    return meshes


def _check(cfg: Config) -> tuple[float, ...]:
    """Refuse impossible settings with a sentence; the true value (x, y, z) to fit towards."""
    if cfg.target not in TARGETS:
        raise ValueError(f"Unknown target {cfg.target!r}: choose one of {', '.join(TARGETS)}.")
    if cfg.optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimiser {cfg.optimizer!r}: choose adam or sgd.")
    if not cfg.meshes:
        raise ValueError("The batch needs at least one mesh.")
    if cfg.steps < 1 or cfg.lr < 0:
        raise ValueError("Use at least one step and a positive learning rate (0 for the default).")
    truth_values = tuple(cfg.true_value) or DEFAULT_TRUTH[cfg.target]
    if len(truth_values) != 3:
        raise ValueError("true_value takes three numbers x, y, z.")
    if cfg.out_dir is None:
        raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
    return truth_values


def _truth_and_start(
    cfg: Config, truth_values: tuple[float, ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The true value and the start, `offset` away from it in a seeded random direction (drawn on the CPU), (3,) each."""
    gen = torch.Generator().manual_seed(cfg.seed)
    direction = torch.randn(3, generator=gen)
    offset = cfg.init_offset if cfg.init_offset >= 0 else DEFAULT_OFFSET[cfg.target]
    truth = torch.tensor(truth_values, dtype=torch.float32)
    start = truth + offset * direction / direction.norm()
    return truth.to(device), start.to(device)


def _grid(target_rgba: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """Targets (top), current renders (middle) and |difference| ×2 (bottom), one column per mesh."""
    tgt, cur = target_rgba[..., :3].clamp(0, 1), current[..., :3].detach().clamp(0, 1)
    return image_grid([*tgt, *cur, *((tgt - cur).abs() * 2).clamp(0, 1)], cols=len(target_rgba), fill=0.5)


def _descend(
    cfg: Config,
    draw: Callable[[torch.Tensor], torch.Tensor],
    target_rgba: torch.Tensor,
    param: torch.Tensor,
    truth: torch.Tensor,
) -> Generator[Event, None, list[dict[str, float]]]:
    """The optimisation loop on `param`: progress every step, a preview at most every PREVIEW_EVERY_S; the history."""
    lr = cfg.lr or DEFAULT_LR[cfg.target]
    optimizer = (
        torch.optim.Adam([param], lr=lr) if cfg.optimizer == "adam" else torch.optim.SGD([param], lr=lr, momentum=0.9)
    )
    history: list[dict[str, float]] = []
    last_preview = time.monotonic()
    for step in range(1, cfg.steps + 1):
        optimizer.zero_grad()
        current = draw(param)
        loss = ((current - target_rgba) ** 2).mean()
        loss.backward()
        optimizer.step()
        row = {"loss": loss.item(), "param_error": (param.detach() - truth).norm().item()}
        history.append(row)
        yield Progress(step, cfg.steps, row, f"step {step}: {cfg.target} error {row['param_error']:.4g}")
        now = time.monotonic()
        if now - last_preview > PREVIEW_EVERY_S or step == cfg.steps:
            last_preview = now
            yield Preview(
                step,
                image=to_uint8(_grid(target_rgba, current)),
                caption=f"step {step}: top targets, middle current, bottom |difference| ×2",
            )
    return history


def _write(
    out: Path, final: torch.Tensor, history: list[dict[str, float]], result: dict[str, Any], batch: dict[str, Any]
) -> dict[str, Path]:
    """The final comparison image, the loss history and the result, under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(final)).save(out / "fit.png")
    with (out / "history.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["step", "loss", "param_error"])
        writer.writeheader()
        writer.writerows({"step": i + 1, **row} for i, row in enumerate(history))
    (out / "result.json").write_text(json.dumps({**result, "batch": batch}, indent=2))
    return {"comparison": out / "fit.png", "history": out / "history.csv", "result": out / "result.json"}


def run(cfg: Config) -> Iterator[Event]:
    """Render targets at the true value, start elsewhere, and descend the mean squared RGBA error."""
    truth_values = _check(cfg)
    device = resolve_device(cfg.device)
    settings = _settings(cfg)
    meshes = _batch(cfg, device)
    n = len(meshes)
    settings, notes = guard_memory(settings, n)
    views = {"azim": [30.0 + 360.0 * i / n for i in range(n)], "elev": [20.0] * n}
    truth, start = _truth_and_start(cfg, truth_values, device)

    def draw(value: torch.Tensor) -> torch.Tensor:
        light = value if cfg.target == "light" else None
        result = render(_apply(meshes, cfg.target, value), settings, device=device, light_xyz=light, **views)
        return result.rgba  # (N, H, W, 4)

    with torch.no_grad():
        target_rgba = draw(truth)
    param = start.clone().requires_grad_(True)
    batch = batch_report(meshes)
    yield Preview(
        0,
        image=to_uint8(_grid(target_rgba, draw(start).detach())),
        caption="top: targets; middle: current; bottom: |difference| ×2",
    )
    initial_error = (start - truth).norm().item()
    history = yield from _descend(cfg, draw, target_rgba, param, truth)

    with torch.no_grad():
        final = _grid(target_rgba, draw(param))
    fitted = [round(v, 6) for v in param.detach().cpu().tolist()]
    result = {
        "target": cfg.target,
        "fitted": fitted,
        "truth": list(truth_values),
        "start": [round(v, 6) for v in start.cpu().tolist()],
    }
    files = _write(Path(cfg.out_dir), final, history, result, batch)
    metrics = {
        "initial_param_error": initial_error,
        "final_param_error": history[-1]["param_error"],
        "final_loss": history[-1]["loss"],
        **{f"fitted_{axis}": v for axis, v in zip("xyz", fitted)},
    }
    yield Done(metrics=metrics, files=files, info={"result": result, "batch": batch, "notes": notes})
