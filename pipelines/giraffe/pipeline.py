"""GIRAFFE training (`giraffe-train`): render the procedural scenes, train generator and discriminator, stream a
sample grid of the EMA generator and both losses, save resumable checkpoints, measure FD and pose fidelity.

The shipped checkpoint (assets/giraffe/) is made by one command (see assets/giraffe/MODEL_CARD.md):

    nice -n 10 env OMP_NUM_THREADS=1 python -m pipelines giraffe-train --preset quick --steps 100000 \\
        --n-scenes 8192 --wall-budget-s 2400 --out-dir data/giraffe-ship
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from pipelines.core import ddp
from pipelines.core.events import Done, Event, Progress
from pipelines.core.headline import Headline
from pipelines.giraffe import checkpoints, evaluation, scenes, specs, training
from pipelines.giraffe.generator import GeneratorSpec
from pipelines.train.ray_training import run_distributed

HEADLINE = (
    Headline("fd", "Procedural FD", "", start_key="fd_initial"),
    Headline("centroid_error_px", "Centroid error", "px"),
    Headline("centroid_r2", "Centroid R²"),
)


@dataclass(frozen=True)
class Config:
    image_size: int = 64
    """Output image side in pixels (a power of two times the feature resolution)."""
    feature_res: int = 16
    """Side of the volume-rendered feature image."""
    n_samples: int = 64
    """Samples per ray."""
    official_networks: bool = True
    """Use the official 64 px networks (object field 128 x 8, codes 256, background 64 x 4, 128 features); false
    uses the narrow sizes below."""
    hidden: int = 64
    """Narrow model: object field width."""
    n_blocks: int = 4
    """Narrow model: object field depth."""
    z_dim: int = 64
    """Narrow model: object code size (the background's is half)."""
    feat_dim: int = 32
    """Narrow model: feature channels."""
    n_objects: int = 3
    """Most objects per scene (each scene has 1 to this many)."""
    d_feat: int = 512
    """Discriminator width at its last layer (the official 512)."""
    n_scenes: int = 4096
    """Procedural scenes in the training set (rendered at the start, seeded)."""
    batch: int = 32
    """Images per step (the official 32)."""
    steps: int = 100_000
    """Training steps (the run also stops at wall_budget_s)."""
    lr_g: float = 5e-4
    """Generator RMSprop learning rate."""
    lr_d: float = 1e-4
    """Discriminator RMSprop learning rate."""
    r1_gamma: float = 10.0
    """Weight of the R1 penalty on real images."""
    ema_beta: float = 0.999
    """Decay of the generator's moving average (the model that renders)."""
    wall_budget_s: float = 0.0
    """Stop training after this many seconds (0: no limit); the checkpoint is saved either way."""
    checkpoint_every_s: float = 180.0
    """Save a resumable checkpoint this often (seconds)."""
    preview_every: int = 50
    """Steps between sample grids."""
    fd_samples: int = 1000
    """Images per set for the Fréchet distance at the start and the end (0: skip)."""
    sweep_scenes: int = 8
    """Scenes in the closing translation sweep (pose fidelity and disentanglement; 9 frames each)."""
    resume: Path | None = None
    """A studio checkpoint to continue from (its model settings win)."""
    seed: int = 0
    """Seed of the data, the initial weights and the sampled scenes (the same seed, the same run)."""
    device: str = "auto"
    """auto (CUDA when present), cpu or cuda[:N]."""
    out_dir: Path | None = None
    """Where the run writes its files (the app and the CLI set one per run)."""

    @classmethod
    def quick(cls) -> Config:
        # About 2-3 minutes on two CPU cores: 32 px from an 8 px feature image, a narrow field, 16 per batch.
        return cls(
            image_size=32, feature_res=8, n_samples=32, official_networks=False, d_feat=128, n_scenes=2048,
            batch=16, steps=500, ema_beta=0.99, preview_every=25, fd_samples=500,
        )  # fmt: skip

    @classmethod
    def tiny(cls) -> Config:
        return cls(
            image_size=16, feature_res=4, n_samples=8, official_networks=False, hidden=16, n_blocks=2, z_dim=8,
            feat_dim=8, n_objects=2, d_feat=32, n_scenes=16, batch=4, steps=3, ema_beta=0.9, preview_every=2,
            fd_samples=0, sweep_scenes=2, checkpoint_every_s=1e9,
        )  # fmt: skip


def model_spec(cfg: Config) -> GeneratorSpec:
    """The generator the config asks for, on the procedural scenes' camera and box prior."""
    if cfg.official_networks:
        base = specs.studio_spec(cfg.image_size, cfg.feature_res, cfg.n_samples, n_boxes=cfg.n_objects)
        official = specs.official_spec("cars64")
        return dataclasses.replace(
            base, object_field=official.object_field, background_field=official.background_field,
            n_feat=official.n_feat, min_feat=official.min_feat,
        )  # fmt: skip
    return specs.studio_spec(
        cfg.image_size, cfg.feature_res, cfg.n_samples, cfg.hidden, cfg.n_blocks, cfg.z_dim, cfg.feat_dim,
        cfg.n_objects, min_feat=max(4, cfg.feat_dim // 2),
    )  # fmt: skip


def check_config(cfg: Config) -> None:
    """Refuses absurd settings with a sentence, before anything is allocated."""
    if not (8 <= cfg.image_size <= 256) or not (2 <= cfg.feature_res <= 64):
        raise ValueError("image_size must be 8-256 px and feature_res 2-64.")
    if not (2 <= cfg.n_samples <= 256):
        raise ValueError(f"Samples per ray must be 2 to 256, got {cfg.n_samples}.")
    if not (1 <= cfg.n_objects <= 8):
        raise ValueError(f"Objects per scene must be 1 to 8, got {cfg.n_objects}.")
    if not (1 <= cfg.batch <= 256) or not (1 <= cfg.steps <= 10_000_000):
        raise ValueError("batch must be 1-256 and steps 1-10,000,000.")
    if not (0 < cfg.lr_g < 1 and 0 < cfg.lr_d < 1 and 0 <= cfg.ema_beta < 1 and cfg.r1_gamma >= 0):
        raise ValueError("Learning rates must be in (0, 1), ema_beta in [0, 1) and r1_gamma at least 0.")
    if cfg.wall_budget_s < 0 or cfg.checkpoint_every_s <= 0 or cfg.preview_every < 1 or cfg.fd_samples < 0:
        raise ValueError("wall_budget_s >= 0, checkpoint_every_s > 0, preview_every >= 1 and fd_samples >= 0.")
    if not (1 <= cfg.sweep_scenes <= 256) or cfg.fd_samples > 50_000:
        raise ValueError("sweep_scenes must be 1-256 and fd_samples at most 50,000.")
    if not (4 <= cfg.d_feat <= 1024) or not (4 <= cfg.hidden <= 512) or not (1 <= cfg.n_blocks <= 16):
        raise ValueError("d_feat must be 4-1024, hidden 4-512 and n_blocks 1-16.")
    if not (1 <= cfg.n_scenes <= scenes.MAX_SCENES):
        raise ValueError(f"n_scenes must be 1 to {scenes.MAX_SCENES}.")
    if not (1 <= cfg.z_dim <= 512) or not (2 <= cfg.feat_dim <= 512):
        raise ValueError("z_dim must be 1-512 and feat_dim 2-512.")
    checkpoints.check_spec(model_spec(cfg))


def run(cfg: Config) -> Iterator[Event]:
    """Train (data-parallel under torchrun); yields Progress every step, a sample grid every `preview_every` steps,
    and Done with the checkpoint, the sample grid and the measurements."""
    check_config(cfg)
    yield from run_distributed(cfg, _run)


def render_dataset(spec: GeneratorSpec, cfg: Config, device: torch.device) -> Iterator[Progress]:
    """The training images (N, 3, S, S) uint8 on `device` (a generator returning them)."""
    chunks = []
    for batch in scenes.scene_stream(spec, cfg.n_scenes, cfg.seed, device):
        chunks.append((batch.images.permute(0, 3, 1, 2) * 255.0 + 0.5).to(torch.uint8))
        done = sum(len(c) for c in chunks)
        yield Progress(0, cfg.steps, {}, f"rendered {done}/{cfg.n_scenes} procedural scenes")
    return torch.cat(chunks)


def _start(cfg: Config, dist: ddp.Dist) -> Iterator[Event]:
    """The run's state (fresh or resumed), its data and its evaluation set-up (a generator returning them)."""
    out_dir = Path(cfg.out_dir) if cfg.out_dir is not None else None
    if dist.is_main:
        if out_dir is None:
            raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
        out_dir.mkdir(parents=True, exist_ok=True)
    spec, resumed = model_spec(cfg), None
    if cfg.resume is not None:
        resumed = checkpoints.load_studio(Path(cfg.resume))
        spec = resumed.spec
    state = training.build_state(spec, cfg.d_feat, cfg.lr_g, cfg.lr_d, cfg.seed, dist.device)
    if resumed is not None:
        checkpoints.restore_state(state, resumed)
    dist.broadcast_module(state.generator)
    dist.broadcast_module(state.discriminator)
    dist.broadcast_module(state.generator_test)
    data = yield from render_dataset(spec, cfg, dist.device)
    return spec, state, data, out_dir


def _run(cfg: Config, dist: ddp.Dist) -> Iterator[Event]:
    t_start = time.perf_counter()
    spec, state, data, out_dir = yield from _start(cfg, dist)
    shared = torch.Generator().manual_seed(cfg.seed + 1 + state.step)  # the same on every rank
    noise = torch.Generator().manual_seed(cfg.seed + 1000 * (dist.rank + 1) + state.step)
    ev = evaluation.Evaluator(spec, data, cfg.fd_samples, cfg.seed, dist.device) if dist.is_main else None
    metrics: dict[str, float] = {}
    if ev is not None and cfg.fd_samples > 0:
        yield Progress(state.step, cfg.steps, {}, "measuring the starting Fréchet distance")
        metrics["fd_initial"] = ev.fd(state.generator_test)
    if ev is not None:
        yield ev.preview(state.generator_test, state.step, "samples before training")
    t_train, last_ckpt = time.perf_counter(), time.perf_counter()
    first = state.step
    losses: dict[str, float] = {}
    stopped_by_budget = False
    while state.step < cfg.steps:
        if cfg.wall_budget_s and time.perf_counter() - t_start > cfg.wall_budget_s:
            stopped_by_budget = True
            break
        idx = torch.randint(0, len(data), (cfg.batch,), generator=shared)
        params = state.generator.sample_params(cfg.batch, shared, dist.device)
        mine = dist.shard(cfg.batch)
        real = data[idx[mine].to(dist.device)].float() / 255.0
        out = training.gan_step(state, real, params.index(mine), noise, n_global=cfg.batch,
                                r1_gamma=cfg.r1_gamma, ema_beta=cfg.ema_beta, dist=dist)  # fmt: skip
        sums = dist.all_reduce(torch.stack(list(out.values())))
        losses = {k: float(v) for k, v in zip(out, sums)}
        yield Progress(
            state.step, cfg.steps, losses, f"{(state.step - first) / (time.perf_counter() - t_train):.2f} steps/s"
        )
        if ev is not None and state.step % cfg.preview_every == 0:
            yield ev.preview(state.generator_test, state.step, f"EMA generator after {state.step} steps")
        if dist.is_main and out_dir is not None and time.perf_counter() - last_ckpt > cfg.checkpoint_every_s:
            checkpoints.save_studio(out_dir / "checkpoint.pt", state, spec, cfg, shared, losses)
            last_ckpt = time.perf_counter()
    train_time = time.perf_counter() - t_train
    if ev is None or out_dir is None:
        return
    ckpt = checkpoints.save_studio(out_dir / "checkpoint.pt", state, spec, cfg, shared, losses)
    yield Progress(state.step, cfg.steps, losses, "measuring the trained generator")
    files = {"checkpoint": ckpt, **ev.write_samples(state.generator_test, out_dir)}
    if cfg.fd_samples > 0:
        metrics["fd"] = ev.fd(state.generator_test)
    metrics.update(evaluation.translation_sweep(state.generator_test, seed=cfg.seed + 7, n_scenes=cfg.sweep_scenes))
    metrics.update(losses)
    metrics.update({"steps": float(state.step), "train_time_s": train_time, "total_time_s": time.perf_counter() - t_start,
                    "steps_per_s": (state.step - first) / max(train_time, 1e-9), "world_size": float(dist.world_size),
                    "stopped_by_budget": float(stopped_by_budget)})  # fmt: skip
    yield Done(metrics=metrics, files=files, info={"fd_encoder": ev.encoder_name, "fd_label": ev.fd_label})
