"""Train Mesh R-CNN's detector (torchvision Mask R-CNN on a small ResNet + FPN, no pretrained weights) on procedural
floor scenes: box, class and mask losses every step, held-out box AP50 and a preview of detections while it trains,
then AP50 (per category and class-agnostic) on held-out scenes and the detector checkpoint the tab's detection mode
loads.

The shipped detector (`assets/meshrcnn/meshrcnn_detector.pt`) is this pipeline's output; MODEL_CARD.md has the
command.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from pipelines.core.config import to_jsonable
from pipelines.core.device import resolve_device
from pipelines.core.events import Done, Event, Preview, Progress, to_uint8
from pipelines.core.headline import Headline
from pipelines.meshrcnn import detector, scenes
from pipelines.meshrcnn.box_ap import ImageBoxes, average_precision
from pipelines.meshrcnn.objects import CATEGORIES
from pipelines.meshrcnn.views import scene_picture
from pipelines.render.images import image_grid
from pipelines.train.generators import relay

DETECTOR_NAME = "meshrcnn_detector.pt"
"""The detector file to ship or to load in the tab's detection mode."""
HEADLINE = (
    Headline("ap50", "Held-out box AP50"),
    Headline("ap50_agnostic", "class-agnostic AP50"),
    Headline("ms_per_image", "Detection", "ms"),
)


@dataclass(frozen=True)
class Config:
    n_train: int = 4000
    """Training scenes (ids 0 .. n_train - 1), rendered once; each step flips half its images left-right."""
    n_eval: int = 200
    """Held-out scenes (objects never drawn in training) for the final AP50."""
    n_monitor: int = 32
    """Held-out scenes evaluated during training (the AP50 curve)."""
    image_size: int = 128
    """Scene image side in pixels (the detector reads it unresized)."""
    max_objects: int = 4
    """At most this many objects per scene (1 up to it; about 1 scene in 20 is empty)."""
    widths: tuple[int, ...] = (32, 48, 96, 160)
    """Backbone channels: the stem and three stages (strides 2, 4, 8, 16)."""
    fpn_channels: int = 64
    """FPN and RPN width."""
    box_hidden: int = 256
    """Box head width (two fully connected layers)."""
    mask_channels: int = 64
    """Mask head width (four 3x3 convolutions)."""
    batch_size: int = 8
    """Scenes per optimisation step."""
    steps: int = 20_000
    """Optimisation steps (the run also ends at time_budget_s)."""
    lr: float = 1e-3
    """Adam learning rate (after a linear warm-up over the first 100 steps)."""
    lr_drop_at: float = 0.8
    """Fraction of the run (of steps, or of the time budget, whichever is further) after which lr drops tenfold."""
    time_budget_s: float = 0.0
    """Stop training after this many seconds (0: no limit); the evaluation and files follow."""
    save_every_s: float = 300.0
    """Write the detector file every this many seconds of training (and at the end)."""
    eval_every: int = 250
    """Steps between held-out checks (AP50 curve and the preview)."""
    resume: Path | None = None
    """A detector file of this pipeline to continue from (its weights, step and AP50 curve; Adam starts afresh with
    the 100-step warm-up). Use the same sizes; the time budget counts this run only."""
    device: str = "auto"
    """auto (CUDA when present), cpu, or cuda[:N]."""
    seed: int = 0
    """Seeds the initial weights, the batches and the flips."""
    out_dir: Path | None = None
    """Where the detector file, the preview and the metrics go."""

    @classmethod
    def quick(cls) -> Config:
        # A few minutes on a CPU: enough to see the losses fall and the boxes find the objects, not to ship.
        return cls(n_train=400, n_eval=32, n_monitor=16, batch_size=4, steps=400, time_budget_s=300.0, eval_every=100)

    @classmethod
    def tiny(cls) -> Config:
        return cls(
            n_train=4,
            n_eval=2,
            n_monitor=2,
            image_size=64,
            widths=(8, 8, 16, 16),
            fpn_channels=16,
            box_hidden=32,
            mask_channels=8,
            batch_size=2,
            steps=3,
            eval_every=3,
            save_every_s=60.0,
        )

    def spec(self) -> detector.DetectorSpec:
        k = self.image_size / 128
        return detector.DetectorSpec(
            image_size=self.image_size,
            widths=self.widths,
            fpn_channels=self.fpn_channels,
            box_hidden=self.box_hidden,
            mask_channels=self.mask_channels,
            anchor_sizes=tuple(max(4, round(s * k)) for s in detector.DetectorSpec.anchor_sizes),
        )


def check_config(cfg: Config) -> None:
    """Refuse absurd settings with a sentence, before anything is built."""
    if not (32 <= cfg.image_size <= 512):
        raise ValueError(f"Image size {cfg.image_size} is out of range: use 32 to 512 pixels.")
    if not (1 <= cfg.n_train <= scenes.MAX_TRAIN_SCENES) or not (1 <= cfg.n_eval <= 10_000) or cfg.n_monitor < 1:
        raise ValueError(f"n_train must be 1-{scenes.MAX_TRAIN_SCENES:,}, n_eval 1-10,000, n_monitor at least 1.")
    if not (1 <= cfg.max_objects <= 8) or not (1 <= cfg.batch_size <= 256) or not (1 <= cfg.steps <= 1_000_000):
        raise ValueError("max_objects must be 1-8, batch_size 1-256 and steps 1-1,000,000.")
    if not (0 < cfg.lr <= 1) or not (0 < cfg.lr_drop_at <= 1) or cfg.time_budget_s < 0:
        raise ValueError("lr must be in (0, 1], lr_drop_at in (0, 1], time_budget_s at least 0.")


def run(cfg: Config) -> Iterator[Event]:
    """Render the scenes, train (Progress every step, Preview at each held-out check), then the held-out AP50 and
    the detector file."""
    check_config(cfg)
    device = resolve_device(cfg.device)
    train = yield from _render(cfg, 0, cfg.n_train, "training scenes", device)
    held = yield from _render(cfg, scenes.HELD_OUT_SCENES, cfg.n_eval, "held-out scenes", device)
    model, step, history = _start(cfg, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    out_dir = Path(cfg.out_dir) if cfg.out_dir is not None else None
    first, t0, last_save = step, time.monotonic(), time.monotonic()
    model.train()
    while step < cfg.steps and not (cfg.time_budget_s > 0 and time.monotonic() - t0 >= cfg.time_budget_s):
        _set_lr(cfg, optimizer, step - first, t0)
        losses = train_step(cfg, model, optimizer, train, step, device)
        step += 1
        yield Progress(step, cfg.steps, losses)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            monitor = _first(held, cfg.n_monitor)
            ap = evaluate(model, monitor, device)["ap50"]
            history.setdefault("step", []).append(float(step))
            history.setdefault("ap50", []).append(ap)
            yield Progress(step, cfg.steps, {"held-out AP50": ap})
            yield Preview(step, image=preview(model, monitor, device), caption=f"step {step}: held-out AP50 {ap:.3f}")
        if out_dir is not None and time.monotonic() - last_save > cfg.save_every_s:
            _save(cfg, model, out_dir, step, history, {})
            last_save = time.monotonic()
    trained_s = time.monotonic() - t0
    yield Progress(step, cfg.steps, {}, f"evaluating on {len(held)} held-out scenes")
    metrics = evaluate(model, held, device)
    metrics.update(
        {"steps": float(step), "train_seconds": trained_s, "params_millions": detector.count_params(model) / 1e6}
    )
    picture = preview(model, held, device, n=8)
    yield Preview(step, image=picture, caption="held-out scenes: detections (box, category, score, mask)")
    files: dict[str, Path] = {}
    if out_dir is not None:
        files["detector"] = _save(cfg, model, out_dir, step, history, metrics)
        files["preview"] = out_dir / "detections_preview.png"
        Image.fromarray(picture).save(files["preview"])
        files["metrics"] = out_dir / "metrics.json"
        files["metrics"].write_text(json.dumps({"metrics": metrics, "history": history}, indent=1))
    info: dict[str, Any] = {"history": history}
    yield Done(metrics={k: v for k, v in metrics.items() if math.isfinite(v)}, files=files, info=info)


def _start(cfg: Config, device: torch.device) -> tuple[torch.nn.Module, int, dict[str, list[float]]]:
    """A fresh detector (seeded), or the one `cfg.resume` names with its step and AP50 curve."""
    if cfg.resume is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            return detector.build(cfg.spec()).to(device), 0, {}
    model, spec, info = detector.load(Path(cfg.resume))
    if spec != cfg.spec():
        raise ValueError(f"{Path(cfg.resume).name} was trained with other sizes; use the same ones to resume.")
    history = {k: [float(x) for x in v] for k, v in dict(info.get("history", {})).items()}
    return model.to(device), int(info.get("step", 0)), history


def _render(cfg: Config, first: int, n: int, what: str, device: torch.device) -> Iterator[Event]:
    gen = scenes.build_scenes(first, n, image_size=cfg.image_size, max_objects=cfg.max_objects, device=device)
    return (yield from relay(gen, lambda p: Progress(0, cfg.steps, {}, f"rendering {what}: {p[0]}/{p[1]}")))


def _set_lr(cfg: Config, optimizer: torch.optim.Optimizer, step: int, t0: float) -> None:
    """Linear warm-up over 100 steps of this run, then `lr`, a tenth of it after `lr_drop_at`."""
    elapsed = (time.monotonic() - t0) / cfg.time_budget_s if cfg.time_budget_s > 0 else 0.0
    progress = max(step / cfg.steps, elapsed)
    lr = cfg.lr * min(1.0, (step + 1) / 100) * (0.1 if progress >= cfg.lr_drop_at else 1.0)
    for group in optimizer.param_groups:
        group["lr"] = lr


def batch(
    split: scenes.SceneSplit, index: list[int], flips: list[bool], device: torch.device
) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """torchvision's inputs for scenes `index`: images (3, S, S) in [0, 1] and target dicts (boxes, labels, uint8
    masks), each flipped left-right where `flips` says so."""
    images, targets = [], []
    for i, flip in zip(index, flips):
        image = split.images[i].permute(2, 0, 1).float() / 255.0  # (3, S, S)
        t = split.targets(i)
        boxes, masks = t.boxes.clone(), t.masks
        if flip:
            s = image.shape[-1]
            image, masks = image.flip(-1), masks.flip(-1)
            boxes[:, [0, 2]] = s - t.boxes[:, [2, 0]]
        images.append(image.to(device))
        targets.append(
            {"boxes": boxes.to(device), "labels": t.labels.to(device), "masks": masks.to(device, torch.uint8)}
        )
    return images, targets


def train_step(
    cfg: Config,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train: scenes.SceneSplit,
    step: int,
    device: torch.device,
) -> dict[str, float]:
    """One step on a seeded batch: torchvision's five losses (RPN objectness and box, classifier, box, mask)."""
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    index = torch.randint(len(train), (cfg.batch_size,), generator=g).tolist()
    flips = (torch.rand(cfg.batch_size, generator=g) < 0.5).tolist()
    images, targets = batch(train, index, flips, device)
    parts = model(images, targets)
    loss = sum(parts.values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in model.parameters()):
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
    out = {k.removeprefix("loss_"): float(v.detach()) for k, v in parts.items()}
    out["total"] = float(loss.detach())
    return out


def _first(split: scenes.SceneSplit, n: int) -> scenes.SceneSplit:
    return scenes.SceneSplit(split.images[:n], split.instances[:n], split.scenes[:n])


def evaluate(
    model: torch.nn.Module, split: scenes.SceneSplit, device: torch.device, chunk: int = 16
) -> dict[str, float]:
    """Box AP50 (mean over categories, and class-agnostic) on `split`, and the detector's milliseconds per image."""
    preds, truths, seconds = [], [], 0.0
    for start in range(0, len(split), chunk):
        images = (split.images[start : start + chunk].float() / 255.0).to(device)
        t0 = time.perf_counter()
        found = detector.detect(model, images)
        seconds += time.perf_counter() - t0
        preds += [ImageBoxes(d.boxes, d.labels, d.scores) for d in found]
        truths += [ImageBoxes(t.boxes, t.labels) for t in (split.targets(i) for i in range(start, start + len(found)))]
    return {
        "ap50": average_precision(preds, truths, 0.5),
        "ap50_agnostic": average_precision(preds, truths, 0.5, class_agnostic=True),
        "ms_per_image": 1000.0 * seconds / max(len(split), 1),
    }


def preview(model: torch.nn.Module, split: scenes.SceneSplit, device: torch.device, n: int = 4) -> Any:
    """uint8 pairs of [truth | detections above the display score] for the first `n` scenes."""
    n = min(n, len(split))
    images = split.images[:n].float() / 255.0
    found = detector.detect(model, images.to(device))
    size = max(128, split.images.shape[1])
    tiles = []
    for i in range(n):
        t = split.targets(i)
        d = found[i].above(detector.SCORE_THRESH).distinct()
        tiles.append(scene_picture(images[i], t.boxes, t.masks, [CATEGORIES[int(c) - 1] for c in t.labels], size))
        captions = [f"{CATEGORIES[int(c) - 1]} {float(s):.2f}" for c, s in zip(d.labels, d.scores)]
        tiles.append(scene_picture(images[i], d.boxes, d.masks, captions, size))
    return to_uint8(image_grid([torch.tensor(t).float() / 255.0 for t in tiles], cols=4))


def _save(
    cfg: Config, model: torch.nn.Module, out_dir: Path, step: int, history: dict[str, list[float]], metrics: dict
) -> Path:
    extra = {"config": to_jsonable(cfg), "step": step, "history": history, "metrics": metrics}
    return detector.save(out_dir / DETECTOR_NAME, model, cfg.spec(), extra)
