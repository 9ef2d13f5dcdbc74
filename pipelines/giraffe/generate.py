"""GIRAFFE generation (`giraffe-generate`): load a generator (the shipped studio checkpoint by default, an official
`checkpoint_*.pt` from the models dir, or an upload), render random samples, apply one control as an image and a GIF
sweep, render the background alone, and measure pose fidelity and disentanglement on a translation sweep.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pipelines.core.device import resolve_device
from pipelines.core.events import Done, Event, Preview, Progress, to_uint8
from pipelines.core.headline import Headline
from pipelines.core.paths import ASSETS_DIR
from pipelines.giraffe import checkpoints, controls, evaluation, specs
from pipelines.giraffe.generator import Generator, sample_params
from pipelines.render.images import image_grid, save_gif

SHIPPED = ASSETS_DIR / "giraffe" / "giraffe_studio.pt"
"""The studio-trained checkpoint the tab loads by default (see assets/giraffe/MODEL_CARD.md)."""
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"

OPTIONAL_FILES = {
    "GIRAFFE official checkpoints": tuple(specs.OFFICIAL_FILES),
    "Inception weights for FID": (INCEPTION_FILE,),
}
"""Files an operator may put in --models-dir for the GIRAFFE tab (the Health panel collects them)."""

HEADLINE = (
    Headline("centroid_error_px", "Centroid error", "px"),
    Headline("centroid_r2", "Centroid R²"),
    Headline("change_outside", "Change outside the object"),
    Headline("alpha_in_box_pct", "Alpha inside its box", "%"),
)


def health_notes(models_dir: Path | None) -> dict[str, str]:
    """The Health panel's line: which GIRAFFE model the Generate panel loads by default."""
    found = [n for n in specs.OFFICIAL_FILES if models_dir is not None and (Path(models_dir) / n).is_file()]
    shipped = "the shipped studio checkpoint" if SHIPPED.is_file() else "no shipped checkpoint (train one first)"
    extra = f"; official files found: {', '.join(found)}" if found else ""
    return {"giraffe_model": f"{shipped}{extra}"}


@dataclass(frozen=True)
class Config:
    checkpoint: str = ""
    """'' loads the shipped studio checkpoint; a file name in models_dir (an official checkpoint_*.pt or a studio one); or a path (an upload)."""
    models_dir: Path | None = None
    """The operator's model folder (--models-dir)."""
    control: str = "move-horizontal"
    """What the sweep changes: move-horizontal, move-depth, rotate, scale, shape, appearance, interpolate, add-remove, background, elevation."""
    object_index: int = 0
    """The object the control edits (0 is the first)."""
    n_objects: int = 1
    """Objects in the edited scene (1 to the model's number of boxes)."""
    amount: float = 0.5
    """Where along the control the still image sits (0 to 1)."""
    frames: int = 16
    """Frames of the GIF sweep."""
    n_samples: int = 16
    """Random samples in the grid."""
    measure: bool = True
    """Measure pose fidelity and disentanglement on a translation sweep."""
    sweep_scenes: int = 8
    """Scenes in the measurement sweep (9 frames each)."""
    seed: int = 0
    """Seed of the data, the initial weights and the sampled scenes (the same seed, the same run)."""
    device: str = "auto"
    """auto (CUDA when present), cpu or cuda[:N]."""
    out_dir: Path | None = None
    """Where the run writes its files (the app and the CLI set one per run)."""

    @classmethod
    def quick(cls) -> Config:
        return cls()

    @classmethod
    def tiny(cls) -> Config:
        return cls(frames=3, n_samples=4, sweep_scenes=1)


def check_config(cfg: Config) -> None:
    if cfg.control not in controls.CONTROLS:
        raise ValueError(f"Unknown control {cfg.control!r}: choose one of {', '.join(controls.CONTROLS)}.")
    if not (2 <= cfg.frames <= 120) or not (1 <= cfg.n_samples <= 64) or not (1 <= cfg.sweep_scenes <= 64):
        raise ValueError("frames must be 2-120, n_samples 1-64 and sweep_scenes 1-64.")
    if not (0.0 <= cfg.amount <= 1.0):
        raise ValueError(f"The amount must be between 0 and 1, got {cfg.amount}.")
    if not (1 <= cfg.n_objects <= 8) or not (0 <= cfg.object_index < 8):
        raise ValueError("A scene holds 1 to 8 objects, numbered from 0.")


def checkpoint_path(cfg: Config) -> Path:
    """The file to load: the shipped checkpoint, a file of models_dir, or a path."""
    name = cfg.checkpoint.strip()
    if not name:
        if not SHIPPED.is_file():
            raise ValueError("The shipped GIRAFFE checkpoint is missing: train one (giraffe-train) and upload it.")
        return SHIPPED
    if cfg.models_dir is not None and (Path(cfg.models_dir) / name).is_file() and "/" not in name:
        return Path(cfg.models_dir) / name
    path = Path(name)
    if not path.is_file():
        raise ValueError(f"There is no checkpoint {name!r} (looked in the models dir and as a path).")
    return path


def load_generator(cfg: Config, device: torch.device) -> tuple[Generator, str]:
    loaded = checkpoints.load_any(checkpoint_path(cfg))
    return checkpoints.make_generator(loaded, device), loaded.source


def _strip(frames: torch.Tensor, n: int = 5) -> np.ndarray:
    pick = torch.linspace(0, len(frames) - 1, n).round().long()
    ups = evaluation.upscale_nearest(frames[pick], 128)
    return to_uint8(image_grid([f.permute(1, 2, 0) for f in ups.cpu()], cols=n))


def run(cfg: Config) -> Iterator[Event]:
    check_config(cfg)
    if cfg.out_dir is None:
        raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    yield Progress(0, 5, {}, "loading the generator")
    generator, source = load_generator(cfg, device)
    spec = generator.spec
    if cfg.n_objects > spec.boxes.n_boxes or cfg.object_index >= cfg.n_objects:
        raise ValueError(f"This model places up to {spec.boxes.n_boxes} objects; the edited object must be one of the "
                         f"{cfg.n_objects} in the scene.")  # fmt: skip
    yield Progress(1, 5, {}, f"rendering {cfg.n_samples} samples with {source}")
    samples = evaluation.render(
        generator, sample_params(spec, cfg.n_samples, torch.Generator().manual_seed(cfg.seed), device)
    )
    files = {"samples": out_dir / "samples.png"}
    Image.fromarray(evaluation.grid_picture(samples, cols=min(4, cfg.n_samples), min_side=512)).save(files["samples"])
    yield Preview(1, image=evaluation.grid_picture(samples, cols=min(4, cfg.n_samples)), caption="random samples")
    yield Progress(2, 5, {}, f"sweeping '{cfg.control}' over {cfg.frames} frames")
    scene = controls.base_scene(spec, cfg.seed, cfg.n_objects, device)
    t = torch.cat([torch.linspace(0.0, 1.0, cfg.frames), torch.tensor([cfg.amount])])
    frames = evaluation.render(
        generator, controls.sweep(spec, scene, cfg.control, cfg.object_index, t, cfg.seed), chunk=16
    )
    gif = [to_uint8(f.permute(1, 2, 0)) for f in evaluation.upscale_nearest(frames[:-1], 256).cpu()]
    files["sweep_gif"] = save_gif(gif, out_dir / f"sweep-{cfg.control}.gif", fps=8)
    files["strip"] = out_dir / f"strip-{cfg.control}.png"
    Image.fromarray(_strip(frames[:-1])).save(files["strip"])
    image = to_uint8(evaluation.upscale_nearest(frames[-1:], 256)[0].permute(1, 2, 0))
    files["image"] = out_dir / "image.png"
    Image.fromarray(image).save(files["image"])
    yield Preview(2, image=image, caption=f"{cfg.control} at {cfg.amount:.2f}")
    yield Progress(3, 5, {}, "rendering the background alone")
    bg = scene.clone()
    bg.boxes.present[:] = False
    files["background"] = out_dir / "background.png"
    Image.fromarray(to_uint8(evaluation.upscale_nearest(evaluation.render(generator, bg), 256)[0].permute(1, 2, 0))).save(files["background"])  # fmt: skip
    metrics: dict[str, float] = {}
    if cfg.measure:
        yield Progress(4, 5, {}, "measuring a translation sweep")
        metrics = evaluation.translation_sweep(generator, seed=cfg.seed + 7, n_scenes=cfg.sweep_scenes)
        metrics["alpha_in_box_pct"] = 100.0 * metrics["alpha_in_box"]
    yield Done(metrics=metrics, files=files, info={"model": source, "control": controls.CONTROLS[cfg.control],
                                                   "image_size": spec.image_size, "objects": spec.boxes.n_boxes})  # fmt: skip
