"""Train Mesh R-CNN's ShapeNet-mode VoxMesh on procedural objects: voxel + chamfer + normal + edge losses, held-out
F1 and voxel IoU while it trains, the ablation ladder at the end, a `weights_only` checkpoint (resumable), and
data parallelism under torchrun (each rank takes its shard of every batch; gradients are summed).

The shipped checkpoint (`assets/meshrcnn/`) is this pipeline's output; see its MODEL_CARD.md for the command.
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

from pipelines.core import ddp
from pipelines.core.config import to_jsonable
from pipelines.core.events import Done, Event, Preview, Progress
from pipelines.core.headline import Headline
from pipelines.meshrcnn import checkpoint, data, evaluate, pictures
from pipelines.meshrcnn.losses import LossWeights, mesh_losses, total_loss, voxel_loss
from pipelines.meshrcnn.model import BACKBONES, ModelSpec, VoxMesh, count_params
from pipelines.meshrcnn.objects import CATEGORIES
from pipelines.train.generators import relay
from pipelines.train.ray_training import run_distributed

CHECKPOINT_NAME = "meshrcnn_studio.pt"
"""Weights, optimiser state, step and curves: what `resume` reads (written every save_every_s)."""
MODEL_NAME = "meshrcnn_model.pt"
"""Weights, model description, config and final metrics only: the file to ship or upload in the tab."""
HEADLINE = (
    Headline("f1@0.3", "Held-out F1@0.3", "%", start_key="cubify_f1@0.3"),
    Headline("f1@0.5", "F1@0.5", "%"),
    Headline("voxel_iou", "Voxel IoU"),
    Headline("chamfer", "Chamfer"),
)


@dataclass(frozen=True)
class Config:
    n_train: int = 8000
    """Training shapes (one rendered view each); ids 0 .. n_train - 1."""
    n_eval: int = 200
    """Held-out shapes (ids never drawn in training) for the final evaluation."""
    n_monitor: int = 16
    """Held-out shapes evaluated during training (F1@0.3 and voxel IoU curves)."""
    image_size: int = 128
    """Rendered image side in pixels."""
    voxel_size: int = 48
    """Voxels per side (even; the official model: 48)."""
    backbone: str = "resnet50"
    """resnet50 (official, no pretrained weights) or small (a small ResNet for CPU presets)."""
    widths: tuple[int, ...] = (32, 64, 128, 256)
    """Small backbone: channels of its four stages."""
    voxel_conv_dim: int = 256
    """Voxel head width (official 256)."""
    mesh_hidden: int = 128
    """Graph-convolution width (official 128)."""
    mesh_stages: int = 3
    """Refinement stages (official 3)."""
    gt_points: int = 5000
    """Ground-truth points per shape for the training losses (official 5000)."""
    pred_points: int = 5000
    """Points sampled from each predicted mesh per stage for the training losses (official 5000)."""
    eval_points: int = 10_000
    """Points per mesh in the evaluation protocol (the paper: 10k)."""
    batch_size: int = 32
    """Images per optimisation step (over all ranks)."""
    steps: int = 20_000
    """Optimisation steps (the run also ends at time_budget_s)."""
    voxel_only_steps: int = 500
    """First steps train the voxel branch alone (the official VOXEL_ONLY_ITERS warm-up)."""
    voxel_only_time: float = 0.0
    """With a time budget: the warm-up also ends once this fraction of it has passed (0: by steps only), so a loaded
    machine still leaves time to train the refinement."""
    lr: float = 2e-4
    """Adam learning rate."""
    lr_drop_at: float = 0.8
    """Fraction of the run (of steps, or of the time budget, whichever is further) after which lr drops tenfold."""
    w_voxel: float = 1.0
    """Voxel loss weight (official 1)."""
    w_chamfer: float = 1.0
    """Chamfer loss weight (official 1)."""
    w_normal: float = 0.0
    """Normal loss weight (official 0 for ShapeNet)."""
    w_edge: float = 0.2
    """Edge loss weight (official 0.2)."""
    time_budget_s: float = 0.0
    """Stop training after this many seconds (0: no limit); the evaluation and files follow."""
    save_every_s: float = 180.0
    """Write the checkpoint every this many seconds of training (and at the end)."""
    eval_every: int = 200
    """Steps between held-out checks (curves and the preview picture)."""
    resume: Path | None = None
    """A studio checkpoint of this pipeline to continue from (weights, optimiser, step, curves)."""
    categories: tuple[str, ...] = CATEGORIES
    """Object categories to draw from."""
    device: str = "auto"
    """auto (CUDA when present), cpu, or cuda[:N]. Under torchrun each rank uses its local GPU."""
    seed: int = 0
    """Seeds the network's initial weights and the order of training batches."""
    out_dir: Path | None = None
    """Where the checkpoint, pictures and metrics go (the app and CLI set one per run)."""

    @classmethod
    def quick(cls) -> Config:
        # A few minutes on two CPU cores: a small ResNet, 64 px, 24^3 voxels, a 64-wide mesh head; the voxel branch
        # warms up alone for 800 steps (about 0.2 s each), then full steps (about 1-2 s each) until the budget.
        return cls(
            n_train=800,
            n_eval=48,
            n_monitor=8,
            image_size=64,
            voxel_size=24,
            backbone="small",
            widths=(32, 64, 96, 128),
            voxel_conv_dim=128,
            mesh_hidden=64,
            gt_points=1000,
            pred_points=1000,
            batch_size=8,
            steps=2000,
            voxel_only_steps=800,
            voxel_only_time=0.4,
            lr=1e-3,
            lr_drop_at=0.85,
            time_budget_s=420.0,
            eval_every=200,
        )

    @classmethod
    def tiny(cls) -> Config:
        return cls(
            n_train=12,
            n_eval=3,
            n_monitor=2,
            image_size=32,
            voxel_size=12,
            backbone="small",
            widths=(8, 16, 16, 32),
            voxel_conv_dim=16,
            mesh_hidden=16,
            gt_points=300,
            pred_points=300,
            eval_points=1000,
            batch_size=4,
            steps=8,
            voxel_only_steps=3,
            lr=2e-3,
            eval_every=8,
            save_every_s=60.0,
        )

    def spec(self) -> ModelSpec:
        return ModelSpec(
            backbone=self.backbone,
            widths=self.widths,
            voxel_size=self.voxel_size,
            voxel_conv_dim=self.voxel_conv_dim,
            mesh_stages=self.mesh_stages,
            mesh_hidden=self.mesh_hidden,
            zrange=data.STUDIO_ZRANGE,
        )

    def weights(self) -> LossWeights:
        return LossWeights(self.w_voxel, self.w_chamfer, self.w_normal, self.w_edge)


def check_config(cfg: Config) -> None:
    """Refuse absurd settings with a sentence, before anything is built."""
    if cfg.backbone not in BACKBONES:
        raise ValueError(f"Unknown backbone {cfg.backbone!r}: choose one of {', '.join(BACKBONES)}.")
    if not (16 <= cfg.image_size <= 512):
        raise ValueError(f"Image size {cfg.image_size} is out of range: use 16 to 512 pixels.")
    if cfg.voxel_size % 2 or not (8 <= cfg.voxel_size <= 64):
        raise ValueError(f"Voxel size {cfg.voxel_size} must be even and within 8-64.")
    if not (1 <= cfg.n_train <= 200_000) or not (1 <= cfg.n_eval <= 10_000) or cfg.n_monitor < 1:
        raise ValueError("n_train must be 1-200,000, n_eval 1-10,000 and n_monitor at least 1.")
    if not (1 <= cfg.batch_size <= 512) or not (1 <= cfg.steps <= 1_000_000):
        raise ValueError("batch_size must be 1-512 and steps 1-1,000,000.")
    if min(cfg.gt_points, cfg.pred_points, cfg.eval_points) < 10 or max(cfg.gt_points, cfg.pred_points) > 20_000:
        raise ValueError("Point counts must be at least 10 (and at most 20,000 for the training losses).")
    if not (0 < cfg.lr <= 1) or not (0 < cfg.lr_drop_at <= 1) or cfg.time_budget_s < 0:
        raise ValueError("lr must be in (0, 1], lr_drop_at in (0, 1], time_budget_s at least 0.")


def run(cfg: Config) -> Iterator[Event]:
    """Render the data, train (Progress every step, Preview at each held-out check), then evaluate the ladder on
    held-out shapes and write the checkpoint, the preview and the metrics."""
    check_config(cfg)
    yield from run_distributed(cfg, _run)


@dataclass
class _State:
    step: int = 0
    trained_s: float = 0.0
    history: dict[str, list[float]] | None = None
    warm: bool = True
    """Still in the voxel-only warm-up."""


def _build(cfg: Config, first: int, n: int, what: str, device: torch.device) -> Iterator[Event]:
    gen = data.build_split(
        first,
        n,
        image_size=cfg.image_size,
        voxel_size=cfg.voxel_size,
        n_points=cfg.gt_points,
        zrange=data.STUDIO_ZRANGE,
        categories=cfg.categories,
        device=device,
    )
    return (yield from relay(gen, lambda p: Progress(0, cfg.steps, {}, f"rendering {what}: {p[0]}/{p[1]}")))


def _run(cfg: Config, dist: ddp.Dist) -> Iterator[Event]:
    device = dist.device
    out_dir = Path(cfg.out_dir) if cfg.out_dir is not None else None
    train = yield from _build(cfg, 0, cfg.n_train, "training shapes", device)
    held = yield from _build(cfg, data.HELD_OUT_OFFSET, cfg.n_eval, "held-out shapes", device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = VoxMesh(cfg.spec()).to(device)
    dist.broadcast_module(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    state = _State(history={})
    if cfg.resume is not None:
        _resume(cfg, model, optimizer, state)
    t0 = time.monotonic() - state.trained_s
    last_save = time.monotonic()
    model.train()
    while state.step < cfg.steps and not _out_of_time(cfg, t0):
        if state.warm:
            state.warm = _still_warm(cfg, dist, state.step, t0)
        losses = _train_step(cfg, dist, model, optimizer, train, state.step, _progress(cfg, state.step, t0), state.warm)
        state.step += 1
        yield Progress(state.step, cfg.steps, losses, "voxel warm-up" if state.warm else "")
        if state.step % cfg.eval_every == 0 or state.step == cfg.steps:
            yield from _monitor(cfg, model, held, state, device)
        if dist.is_main and out_dir is not None and time.monotonic() - last_save > cfg.save_every_s:
            state.trained_s = time.monotonic() - t0
            _save(cfg, model, optimizer, state, out_dir / CHECKPOINT_NAME, {})
            last_save = time.monotonic()
    state.trained_s = time.monotonic() - t0
    if not dist.is_main:
        return
    yield from _finish(cfg, model, optimizer, held, state, out_dir, device)


def _out_of_time(cfg: Config, t0: float) -> bool:
    return cfg.time_budget_s > 0 and time.monotonic() - t0 >= cfg.time_budget_s


def _still_warm(cfg: Config, dist: ddp.Dist, step: int, t0: float) -> bool:
    """Whether this step is still voxel-only: by steps, or until `voxel_only_time` of the budget has passed. Rank 0's
    clock decides for every rank, so all of them leave the warm-up at the same step."""
    over = step >= cfg.voxel_only_steps or 0 < cfg.voxel_only_time <= _elapsed(cfg, t0)
    flag = dist.broadcast(torch.tensor([0.0 if over else 1.0], device=dist.device))
    return bool(flag.item() > 0.5)


def _elapsed(cfg: Config, t0: float) -> float:
    """The fraction of the time budget used (0 without one)."""
    return (time.monotonic() - t0) / cfg.time_budget_s if cfg.time_budget_s > 0 else 0.0


def _progress(cfg: Config, step: int, t0: float) -> float:
    return max(step / cfg.steps, _elapsed(cfg, t0))


def _train_step(
    cfg: Config,
    dist: ddp.Dist,
    model: VoxMesh,
    optimizer: torch.optim.Optimizer,
    train: data.Split,
    step: int,
    progress: float,
    voxel_only: bool,
) -> dict[str, float]:
    """One optimisation step on this rank's shard of a seeded global batch; returns the losses (local means)."""
    for group in optimizer.param_groups:
        group["lr"] = cfg.lr * (0.1 if progress >= cfg.lr_drop_at else 1.0)
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    batch = torch.randint(len(train), (cfg.batch_size,), generator=g)
    index = batch[dist.shard(cfg.batch_size)]
    images = evaluate.images_of(train, index, dist.device)
    voxel_scores, _, stages = model(images, voxel_only=voxel_only)
    parts = {"voxel": voxel_loss(voxel_scores, train.voxels[index].to(dist.device))}
    if not voxel_only:
        parts.update(
            mesh_losses(
                stages,
                train.points[index].to(dist.device),
                train.normals[index].to(dist.device),
                cfg.pred_points,
                with_normals=cfg.w_normal != 0.0,
            )
        )
    loss = total_loss(parts, cfg.weights()) * (len(index) / cfg.batch_size)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    dist.all_reduce_grads(model.parameters())
    finite = all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in model.parameters())
    if finite:  # the official loop also skips an update whose gradient is not finite
        optimizer.step()
    out = {k: float(v.detach()) for k, v in parts.items()}
    out["total"] = float(loss.detach()) * cfg.batch_size / max(len(index), 1)
    return out


def _monitor(cfg: Config, model: VoxMesh, held: data.Split, state: _State, device: torch.device) -> Iterator[Event]:
    """Held-out F1@0.3 and voxel IoU on the first n_monitor shapes, and a preview strip of the first four."""
    monitor = _subset(held, min(cfg.n_monitor, len(held)))
    result = yield from relay(
        evaluate.ladder(model, monitor, n_points=min(2000, cfg.eval_points), rungs=("cubify", "full"), device=device),
        lambda p: Progress(state.step, cfg.steps, {}, f"held-out check {p[0]}/{p[1]}"),
    )
    flat = evaluate.flat_metrics(result)
    assert state.history is not None
    for key in ("f1@0.3", "cubify_f1@0.3", "voxel_iou"):
        state.history.setdefault(key, []).append(flat[key])
    state.history.setdefault("step", []).append(float(state.step))
    yield Progress(state.step, cfg.steps, {f"held-out {k}": flat[k] for k in ("f1@0.3", "cubify_f1@0.3", "voxel_iou")})
    yield Preview(state.step, image=_preview(model, monitor, device), caption=_caption(state.step, flat))


def _caption(step: int, flat: dict[str, float]) -> str:
    return (
        f"step {step}: held-out F1@0.3 {flat['f1@0.3']:.1f}% (cubify alone {flat['cubify_f1@0.3']:.1f}%), "
        f"voxel IoU {flat['voxel_iou']:.2f} — columns: image, voxels, cubified, refined over the image"
    )


def _subset(split: data.Split, n: int) -> data.Split:
    return data.Split(
        split.images[:n], split.masks[:n], split.voxels[:n], split.points[:n], split.normals[:n], split.samples[:n]
    )


def _preview(model: VoxMesh, split: data.Split, device: torch.device, n: int = 4):
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            images = evaluate.images_of(split, torch.arange(min(n, len(split))), device)
            scores, cubified, stages = model(images)
            size = max(64, min(128, 2 * images.shape[1]))
            return pictures.preview_strip(
                images, scores.sigmoid(), model.spec.cubify_thresh, cubified, stages[-1], size=size
            )
    finally:
        model.train(was)


def _save(
    cfg: Config,
    model: VoxMesh,
    optimizer: torch.optim.Optimizer | None,
    state: _State,
    path: Path,
    metrics: dict,
) -> Path:
    extra = {
        "config": to_jsonable(cfg),
        "step": state.step,
        "trained_s": state.trained_s,
        "history": state.history or {},
        "metrics": metrics,
    }
    if optimizer is not None:
        extra["optimizer"] = optimizer.state_dict()
    return checkpoint.save(path, model, extra)


def _resume(cfg: Config, model: VoxMesh, optimizer: torch.optim.Optimizer, state: _State) -> None:
    data_ = checkpoint.read(Path(cfg.resume))
    if data_.get("format") != checkpoint.FORMAT:
        raise checkpoint.CheckpointError(f"{Path(cfg.resume).name} is not a studio Mesh R-CNN checkpoint to resume.")
    if ModelSpec.from_plain(dict(data_["spec"])) != model.spec:
        raise checkpoint.CheckpointError(
            f"{Path(cfg.resume).name} was trained with another network shape; use the same backbone and sizes to resume."
        )
    checkpoint.load_strict(model, dict(data_["model"]), Path(cfg.resume).name)
    if "optimizer" in data_:
        optimizer.load_state_dict(data_["optimizer"])
    state.step = int(data_.get("step", 0))
    state.trained_s = float(data_.get("trained_s", 0.0))
    state.history = {k: list(v) for k, v in dict(data_.get("history", {})).items()}


def _finish(
    cfg: Config,
    model: VoxMesh,
    optimizer: torch.optim.Optimizer,
    held: data.Split,
    state: _State,
    out_dir: Path | None,
    device: torch.device,
) -> Iterator[Event]:
    result = yield from relay(
        evaluate.ladder(model, held, n_points=cfg.eval_points, device=device),
        lambda p: Progress(state.step, cfg.steps, {}, f"evaluating the ladder on held-out shapes {p[0]}/{p[1]}"),
    )
    metrics = evaluate.flat_metrics(result)
    metrics.update(
        {"steps": float(state.step), "train_seconds": state.trained_s, "params_millions": count_params(model) / 1e6}
    )
    files: dict[str, Path] = {}
    picture = _preview(model, held, device, n=6)
    yield Preview(state.step, image=picture, caption="held-out: image, voxels, cubified, refined over the image")
    if out_dir is not None:
        files["checkpoint"] = _save(cfg, model, optimizer, state, out_dir / CHECKPOINT_NAME, metrics)
        files["model"] = _save(cfg, model, None, state, out_dir / MODEL_NAME, metrics)
        files["preview"] = out_dir / "heldout_preview.png"
        Image.fromarray(picture).save(files["preview"])
        files["metrics"] = out_dir / "metrics.json"
        files["metrics"].write_text(json.dumps({"ladder": result, "history": state.history}, indent=1))
    info: dict[str, Any] = {"ladder": _ladder_rows(result), "history": state.history}
    yield Done(metrics={k: v for k, v in metrics.items() if math.isfinite(v)}, files=files, info=info)


def _ladder_rows(result: dict[str, dict[str, float]]) -> list[list[Any]]:
    """The ladder as table rows: prediction, chamfer, normal consistency, F1@0.1/0.3/0.5, voxel IoU."""
    rows = []
    for rung in evaluate.RUNGS:
        m = result.get(rung)
        if m is None:
            continue
        iou = m.get("voxel_iou")
        rows.append(
            [
                evaluate.RUNG_LABELS[rung],
                round(m["chamfer"], 4),
                round(m["normal_consistency"], 3),
                *[round(m[f"f1@{t:g}"], 1) for t in evaluate.TAUS],
                None if iou is None else round(iou, 3),
            ]
        )
    return rows
