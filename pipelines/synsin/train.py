"""Train SynSin on procedural rooms: L1 + perceptual + hinge GAN + feature matching, Adam β (0, 0.9), held-out
evaluation against the copy / constant-depth / true-depth baselines, checkpoints on a timer, resume, torchrun.

`full` is the official configuration (256 px, ngf 64, radius 4 px, K 128, 8-level U-Net); `quick` a small 64 px
model that trains on two CPU cores (PyTorch3D's CPU point rasteriser tests every point at every pixel, so radius
and K are kept small). The shipped checkpoint is `quick` trained longer under a wall-time budget (see
assets/synsin/MODEL_CARD.md for the command).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from pipelines.core import ddp
from pipelines.core.config import to_jsonable
from pipelines.core.events import Done, Event, Preview, Progress
from pipelines.core.headline import Headline
from pipelines.synsin import checkpoints, evaluate, figures, losses, rooms
from pipelines.synsin.geometry import PoseLimits
from pipelines.synsin.lpips import LPIPS_FILE_NAMES, load_lpips
from pipelines.synsin.model import ModelSpec, SynSin, check_spec
from pipelines.synsin.networks import MultiscaleDiscriminator, refresh_statistics
from pipelines.train.generators import relay
from pipelines.train.ray_training import run_distributed

HEADLINE = (
    Headline("psnr_synsin", "Held-out PSNR", "dB", "psnr_copy_input"),
    Headline("ssim_synsin", "SSIM", "", "ssim_copy_input"),
    Headline("psnr_splat_constant_depth", "Constant-depth splat", "dB"),
    Headline("depth_absrel", "Depth AbsRel", ""),
)
PHOTO_BLURS = (1, 5, 9)
"""Box-blur widths the photometric loss is averaged over (1 = sharp; the blurred copies widen its basin)."""
OPTIONAL_FILES = {
    "SynSin official checkpoint": checkpoints.OFFICIAL_FILE_NAMES,
    "VGG-19 weights (SynSin perceptual loss)": losses.VGG_FILE_NAMES,
    "VGG-16 weights (SynSin LPIPS)": LPIPS_FILE_NAMES,
}
"""Files an operator may put in --models-dir for this pipeline (the Health panel collects them)."""


@dataclass(frozen=True)
class Config:
    image_size: int = 256
    """Side of the square images (px): 256 official; 64 on a CPU."""
    ngf: int = 64
    """Width of the ResNet encoder/decoder (official 64)."""
    unet_filters: int = 32
    """Filters of the depth U-Net's first level (official 32)."""
    unet_levels: int = 8
    """Halvings in the depth U-Net (official 8 at 256 px; at most log2 of the image size)."""
    min_z: float = 0.5
    """Nearest depth the network can predict (scene units; rooms are 3.6-5 m wide)."""
    max_z: float = 8.0
    """Farthest depth the network can predict."""
    fov_deg: float = 60.0
    """Field of view of the cameras (degrees)."""
    radius_px: float = 4.0
    """Splat radius in pixels (official 4 at 256 px)."""
    points_per_pixel: int = 128
    """Points composited per pixel, K (official 128)."""
    tau: float = 1.0
    """Alpha exponent τ of the splat falloff (official 1)."""
    noise: float = 1.0
    """Scale of the noise feeding the ResNet blocks' conditional batch norms (official 1; 0 = plain batch norm)."""
    rgb_skip: bool = False
    """Studio-only: splat the input RGB with the features and refine it (decoder input + 4 channels); off = the
    official layout, which official checkpoints need."""
    hole_fill: str = "input"
    """Studio-only, with rgb_skip: fill the splat's holes with the input's pixel ("input") or push-pull from the
    splatted pixels around them ("pushpull"); the decoder then corrects either."""
    depth_init: float = 0.0
    """Start the depth sigmoid at this depth (scene units) through the last U-Net bias; 0 leaves the default
    initialisation (the middle of [min_z, max_z])."""
    train_rooms: int = 400
    """Procedural rooms in the training split."""
    pairs_per_room: int = 8
    """Camera pairs rendered per training room."""
    heldout_rooms: int = 16
    """Rooms in the held-out split (never seen in training; the same rooms in every run)."""
    heldout_pairs_per_room: int = 4
    """Camera pairs per held-out room."""
    yaw_deg: float = 20.0
    """Largest relative turn left/right between source and target (degrees)."""
    pitch_deg: float = 10.0
    """Largest relative tilt up/down (degrees)."""
    right: float = 0.6
    """Largest sideways move (scene units)."""
    up: float = 0.2
    """Largest vertical move (scene units)."""
    forward: float = 0.6
    """Largest forward/backward move (scene units)."""
    batch_size: int = 8
    """Pairs per optimisation step (split across torchrun ranks)."""
    steps: int = 50000
    """Optimisation steps (a wall-time budget may stop training earlier)."""
    lr_g: float = 1e-4
    """Generator learning rate (Adam, β = (0, 0.9))."""
    lr_d: float = 2e-4
    """Discriminator learning rate."""
    lr_final: float = 1.0
    """Learning rates fall linearly to this fraction of their start over the run (steps or wall-time budget,
    whichever ends first); 1 keeps them constant, as the official code does."""
    w_l1: float = 1.0
    """Weight of the L1 loss."""
    w_perceptual: float = 10.0
    """Weight of the perceptual loss (VGG-19 with operator weights, else the gradient-pyramid substitute)."""
    w_gan: float = 1.0
    """Weight of the hinge GAN loss (0 turns the discriminator off)."""
    w_feat: float = 10.0
    """Weight of the discriminator feature-matching loss."""
    w_photo: float = 0.0
    """Studio auxiliary: weight of the photometric loss (target warped into the source with the predicted depth;
    losses.photometric_loss). 0 = the official recipe."""
    w_smooth: float = 0.0
    """Studio auxiliary: weight of the edge-aware smoothness of the predicted inverse depth."""
    depth_warmup_steps: int = 0
    """Studio auxiliary: the first this-many steps train the depth network alone, on the photometric and smoothness
    terms (several times cheaper than a full step: no encoder, splatting or decoder); 0 = joint from the start."""
    ndf: int = 64
    """Filters of the discriminator's first layer."""
    eval_every: int = 500
    """Steps between held-out evaluations (preview and PSNR curve)."""
    eval_pairs: int = 16
    """Held-out pairs scored at intermediate evaluations (all at the end)."""
    time_budget_s: float = 0.0
    """Stop training after this many seconds (0 = run all steps); the final evaluation and save follow."""
    checkpoint_every_s: float = 300.0
    """Seconds between checkpoints written to out_dir (0 = only at the end)."""
    resume: Path | None = None
    """A studio checkpoint (checkpoint.pt of an earlier run) to continue from."""
    models_dir: Path | None = None
    """Operator model folder: VGG-19 weights here switch on the official perceptual loss."""
    device: str = "auto"
    """auto (CUDA when present), cpu, or cuda[:N]. Under torchrun each rank uses its local GPU."""
    seed: int = 0
    """Seeds the training rooms, the batches and the initial weights."""
    out_dir: Path | None = None
    """Where checkpoints, pictures and the metrics go."""

    @classmethod
    def quick(cls) -> Config:
        # 64 px, ngf 16, a 6-level U-Net, radius 1.5 px and K = 8 (PyTorch3D's CPU point rasteriser is naive);
        # L1 + the perceptual substitute only, and no noise in the conditional norms: both slowed the fit on a
        # CPU budget (assets/synsin/MODEL_CARD.md).
        return cls(image_size=64, ngf=16, unet_filters=16, unet_levels=6, radius_px=1.5, points_per_pixel=8, noise=0.0,
                   train_rooms=60, steps=200, batch_size=4, lr_g=1e-3, lr_d=1e-3, lr_final=0.1, w_perceptual=1.0,
                   w_gan=0.0, w_feat=0.0, ndf=16, eval_every=50, eval_pairs=16, rgb_skip=True, depth_init=2.0,
                   w_photo=1.0, w_smooth=1e-3, hole_fill="pushpull")  # fmt: skip

    @classmethod
    def tiny(cls) -> Config:
        return cls(image_size=32, ngf=8, unet_filters=4, unet_levels=4, radius_px=1.5, points_per_pixel=4,
                   train_rooms=4, pairs_per_room=2, heldout_rooms=2, heldout_pairs_per_room=2, steps=3,
                   batch_size=2, lr_g=1e-3, lr_d=1e-3, w_perceptual=1.0, w_gan=0.1, w_feat=1.0, ndf=8,
                   eval_every=2, eval_pairs=4, checkpoint_every_s=0.0)  # fmt: skip

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(self.image_size, self.ngf, self.unet_filters, self.unet_levels, 64, self.min_z, self.max_z,
                         False, self.fov_deg, self.radius_px, self.points_per_pixel, self.tau, self.noise,
                         self.rgb_skip, self.hole_fill)  # fmt: skip

    @property
    def limits(self) -> PoseLimits:
        return PoseLimits(self.yaw_deg, self.pitch_deg, self.right, self.up, self.forward)


def check_config(cfg: Config) -> None:
    """Refuse absurd settings with a sentence before anything is allocated."""
    check_spec(cfg.spec)
    if cfg.image_size > 128 and cfg.points_per_pixel * cfg.image_size**2 * cfg.batch_size > 2**31:
        raise ValueError("The point-rasteriser buffers would pass 2^31 entries: lower batch_size or points_per_pixel.")
    if not (1 <= cfg.train_rooms <= 100_000) or not (1 <= cfg.heldout_rooms <= 1000):
        raise ValueError("Use 1-100,000 training rooms and 1-1,000 held-out rooms.")
    if not (1 <= cfg.pairs_per_room <= 64) or not (1 <= cfg.heldout_pairs_per_room <= 64):
        raise ValueError("Use 1-64 pairs per room.")
    if not (1 <= cfg.steps <= 10_000_000) or not (1 <= cfg.batch_size <= 256):
        raise ValueError("steps must be 1-10,000,000 and batch_size 1-256.")
    if min(cfg.lr_g, cfg.lr_d) <= 0 or max(cfg.lr_g, cfg.lr_d) > 1 or not (0 < cfg.lr_final <= 1):
        raise ValueError("Learning rates must be in (0, 1], and lr_final in (0, 1].")
    if min(cfg.w_l1, cfg.w_perceptual, cfg.w_gan, cfg.w_feat, cfg.w_photo, cfg.w_smooth) < 0:
        raise ValueError("Loss weights cannot be negative.")
    if min(cfg.yaw_deg, cfg.pitch_deg, cfg.right, cfg.up, cfg.forward) < 0 or cfg.yaw_deg > 60 or cfg.pitch_deg > 45:
        raise ValueError("Pose ranges must be >= 0, with yaw up to 60° and pitch up to 45°.")
    if max(cfg.right, cfg.up, cfg.forward) > 1.0:
        raise ValueError("Moves beyond 1 scene unit would leave the rooms' free middle; use at most 1.")
    if cfg.eval_every < 1 or cfg.eval_pairs < 1 or cfg.time_budget_s < 0 or cfg.checkpoint_every_s < 0:
        raise ValueError("eval_every and eval_pairs must be at least 1; time budget and checkpoint period >= 0.")
    if cfg.depth_warmup_steps < 0 or (cfg.depth_warmup_steps and cfg.w_photo <= 0):
        raise ValueError("depth_warmup_steps must be >= 0, and a depth warm-up needs the photometric loss (w_photo > 0).")
    if cfg.depth_init and not (cfg.min_z < cfg.depth_init < cfg.max_z):
        raise ValueError(f"depth_init {cfg.depth_init:g} must lie strictly between min_z and max_z (or be 0).")


def heldout_seeds(cfg: Config) -> list[int]:
    return [rooms.heldout_seed(i) for i in range(cfg.heldout_rooms)]


def train_seeds(cfg: Config) -> list[int]:
    return [cfg.seed * 1_000_003 + i for i in range(cfg.train_rooms)]


def build_data(cfg: Config, device: torch.device) -> Iterator[str]:
    """Render the training and held-out pairs (a generator of messages returning (train, heldout) PairBatches)."""
    train = yield from rooms.build_pairs(train_seeds(cfg), cfg.pairs_per_room, cfg.image_size, cfg.fov_deg, cfg.limits)
    held = yield from rooms.build_pairs(heldout_seeds(cfg), cfg.heldout_pairs_per_room, cfg.image_size, cfg.fov_deg,
                                        cfg.limits)  # fmt: skip
    return train.to(device), held.to(device)


@dataclass
class Trainer:
    """The networks, optimisers and progress of one training run (what a checkpoint holds)."""

    cfg: Config
    gen: SynSin
    disc: MultiscaleDiscriminator | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    step: int = 0
    train_time_s: float = 0.0
    history: list = dataclasses.field(default_factory=list)

    def save(self, path: Path, metrics: dict | None = None) -> Path:
        extra = {"step": self.step, "train_time_s": self.train_time_s, "history": self.history,
                 "config": to_jsonable(self.cfg), "metrics": metrics or {},
                 "optim_g": self.opt_g.state_dict()}  # fmt: skip
        if self.disc is not None and self.opt_d is not None:
            extra["discriminator"] = self.disc.state_dict()
            extra["optim_d"] = self.opt_d.state_dict()
        return checkpoints.save_studio(path, self.gen, **extra)


def make_trainer(cfg: Config, dist: ddp.Dist) -> Trainer:
    """Fresh networks from cfg.seed (the same on every rank), or the state of cfg.resume."""
    torch.manual_seed(cfg.seed)
    gen = SynSin(cfg.spec, spectral=True).to(dist.device)
    disc = MultiscaleDiscriminator(cfg.ndf).to(dist.device) if cfg.w_gan > 0 or cfg.w_feat > 0 else None
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr_g, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=(0.0, 0.9)) if disc is not None else None
    trainer = Trainer(cfg, gen, disc, opt_g, opt_d)
    if cfg.depth_init:
        init_depth(gen, cfg.depth_init)
    if cfg.resume is not None:
        raw = checkpoints.read(cfg.resume)
        if not isinstance(raw, dict) or raw.get("format") != checkpoints.FORMAT or "optim_g" not in raw:
            raise ValueError(f"{Path(cfg.resume).name} is not a studio SynSin training checkpoint (checkpoint.pt).")
        if checkpoints.spec_from_dict(raw["spec"]) != cfg.spec:
            raise ValueError("The checkpoint's network differs from these settings; resume with the same preset.")
        checkpoints.load_strict(gen, raw["generator"])
        opt_g.load_state_dict(raw["optim_g"])
        if disc is not None and "discriminator" in raw:
            disc.load_state_dict(raw["discriminator"])
            opt_d.load_state_dict(raw["optim_d"])
        trainer.step, trainer.train_time_s = int(raw["step"]), float(raw.get("train_time_s", 0.0))
        trainer.history = [tuple(h) for h in raw.get("history", [])]
    dist.broadcast_module(gen)
    if disc is not None:
        dist.broadcast_module(disc)
    return trainer


def init_depth(gen: SynSin, depth: float) -> None:
    """Set the depth U-Net's last bias so that the sigmoid starts near `depth` (linear-depth models only)."""
    spec = gen.spec
    frac = torch.tensor((depth - spec.min_z) / (spec.max_z - spec.min_z))
    last = getattr(gen.pts_regressor, f"dconv{spec.unet_levels}")
    with torch.no_grad():
        last.bias.fill_(float(torch.logit(frac)))


def depth_terms(cfg: Config, batch: rooms.PairBatch, depth: torch.Tensor, tan_half_fov: float) -> dict:
    """The studio's depth auxiliaries that are switched on: {name: (weight, value)}."""
    terms = {}
    if cfg.w_photo > 0:
        photo = losses.photometric_loss(batch.src, batch.tgt, depth, batch.r_rel, batch.t_rel, tan_half_fov,
                                        blurs=PHOTO_BLURS)  # fmt: skip
        terms["photometric"] = (cfg.w_photo, photo)
    if cfg.w_smooth > 0:
        terms["smoothness"] = (cfg.w_smooth, losses.smoothness_loss(depth, batch.src))
    return terms


def depth_step(t: Trainer, batch: rooms.PairBatch, dist: ddp.Dist) -> dict[str, torch.Tensor]:
    """One warm-up step: the depth network alone on the depth auxiliaries (the other networks wait)."""
    terms = depth_terms(t.cfg, batch, t.gen.depth(batch.src), t.gen.spec.tan_half_fov)
    loss = sum(weight * value for weight, value in terms.values())
    t.opt_g.zero_grad(set_to_none=True)
    loss.backward()
    dist.all_reduce_grads(t.gen.pts_regressor.parameters(), average=True)
    t.opt_g.step()
    return {**{name: value.detach() for name, (_, value) in terms.items()}, "loss_g": loss.detach()}


def train_step(t: Trainer, batch: rooms.PairBatch, perceptual, dist: ddp.Dist) -> dict[str, torch.Tensor]:
    """One generator step and one discriminator step on this rank's shard; gradients averaged over ranks."""
    cfg = t.cfg
    out = t.gen(batch.src, batch.r_rel, batch.t_rel)
    fake, real = out.image * 2 - 1, batch.tgt * 2 - 1
    l1 = (out.image - batch.tgt).abs().mean()
    perc = (
        perceptual(out.image, batch.tgt)
        if perceptual is not None
        else losses.gradient_pyramid_loss(out.image, batch.tgt)
    )
    loss_g = cfg.w_l1 * l1 + cfg.w_perceptual * perc
    logs = {"l1": l1.detach(), "perceptual": perc.detach()}
    terms = depth_terms(cfg, batch, out.depth, t.gen.spec.tan_half_fov)
    for name, (weight, value) in terms.items():
        loss_g = loss_g + weight * value
        logs[name] = value.detach()
    if t.disc is not None:
        pf, pr = _split(t.disc(torch.cat([fake, real])))
        g_gan, feat = losses.hinge_g(pf), losses.feature_matching(pf, pr)
        loss_g = loss_g + cfg.w_gan * g_gan + cfg.w_feat * feat
        logs.update(gan_g=g_gan.detach(), feature_matching=feat.detach())
    t.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    dist.all_reduce_grads(t.gen.parameters(), average=True)
    t.opt_g.step()
    logs["loss_g"] = loss_g.detach()
    if t.disc is not None and t.opt_d is not None:
        pf, pr = _split(t.disc(torch.cat([fake.detach(), real])))
        loss_d = losses.hinge_d(pf, pr)
        t.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        dist.all_reduce_grads(t.disc.parameters(), average=True)
        t.opt_d.step()
        logs["loss_d"] = loss_d.detach()
    return logs


def _split(pred: list[list[torch.Tensor]]) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
    """The discriminator's outputs on cat([fake, real]) split into (fake, real) halves."""
    fake = [[x[: len(x) // 2] for x in scale] for scale in pred]
    real = [[x[len(x) // 2 :] for x in scale] for scale in pred]
    return fake, real


def run(cfg: Config) -> Iterator[Event]:
    """Render the rooms, train (Progress each step, a Preview and held-out PSNR every eval_every steps), save
    checkpoints on a timer, then score all held-out pairs against the baselines and write the final files."""
    check_config(cfg)
    yield from run_distributed(cfg, _run)


def _run(cfg: Config, dist: ddp.Dist) -> Iterator[Event]:
    out_dir = Path(cfg.out_dir) if cfg.out_dir is not None else None
    if dist.is_main:
        if out_dir is None:
            raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
        out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    yield Progress(0, cfg.steps, {}, "rendering the rooms")
    train, held = yield from relay(build_data(cfg, dist.device), lambda m: Progress(0, cfg.steps, {}, m))
    t_data = time.perf_counter() - t0
    trainer = make_trainer(cfg, dist)
    perceptual = losses.load_vgg(cfg.models_dir)
    if perceptual is not None:
        perceptual = perceptual.to(dist.device)
    yield Progress(trainer.step, cfg.steps, {}, f"{len(train)} training pairs, {len(held)} held-out pairs "
                   f"in {t_data:.1f} s; perceptual loss: {'VGG-19' if perceptual is not None else 'gradient pyramid'}")  # fmt: skip
    yield from _loop(trainer, train, held, perceptual, dist, out_dir)
    if not dist.is_main:
        return
    standing_statistics(trainer, train)
    lpips = load_lpips(cfg.models_dir, dist.device)
    metrics, first = yield from relay(evaluate.evaluate_steps(trainer.gen, held, lpips=lpips),
                                      lambda m: Progress(trainer.step, cfg.steps, {}, m))  # fmt: skip
    yield from _finish(trainer, metrics, first, out_dir, t_data, perceptual is not None)


def _loop(t: Trainer, train, held, perceptual, dist: ddp.Dist, out_dir: Path | None) -> Iterator[Event]:
    cfg = t.cfg
    gen_rng = torch.Generator().manual_seed(cfg.seed * 7 + t.step)
    started, last_ckpt = time.perf_counter(), time.perf_counter()
    base_time = t.train_time_s
    while t.step < cfg.steps:
        if cfg.time_budget_s and time.perf_counter() - started + base_time >= cfg.time_budget_s:
            yield Progress(t.step, cfg.steps, {}, f"wall-time budget of {cfg.time_budget_s:.0f} s reached")
            break
        _set_lr(t, cfg, started, base_time)
        idx = torch.randint(len(train), (cfg.batch_size,), generator=gen_rng)
        mine = idx[dist.shard(cfg.batch_size)].to(train.src.device)
        if t.step < cfg.depth_warmup_steps:
            logs = depth_step(t, train.take(mine), dist)
        else:
            logs = train_step(t, train.take(mine), perceptual, dist)
        t.step += 1
        t.train_time_s = base_time + time.perf_counter() - started
        losses_now = {k: float(v) for k, v in logs.items()}
        if dist.is_main and (t.step % cfg.eval_every == 0):
            standing_statistics(t, train)
            m, first = yield from relay(evaluate.evaluate_steps(t.gen, held.take(slice(0, cfg.eval_pairs)),
                                                                baselines=False),
                                        lambda msg: Progress(t.step, cfg.steps, {}, msg))  # fmt: skip
            t.history.append((t.step, m["psnr_synsin"], m["depth_absrel"]))
            losses_now.update(psnr_heldout=m["psnr_synsin"], depth_absrel=m["depth_absrel"])
            yield Preview(t.step, image=figures.results_grid(first),
                          caption=f"step {t.step}: held-out PSNR {m['psnr_synsin']:.2f} dB "
                                  "(source | target | SynSin | predicted depth | true depth)")  # fmt: skip
        yield Progress(t.step, cfg.steps, losses_now, f"{t.train_time_s:.0f} s")
        if (
            dist.is_main
            and out_dir is not None
            and cfg.checkpoint_every_s
            and time.perf_counter() - last_ckpt > cfg.checkpoint_every_s
        ):
            t.save(out_dir / "checkpoint.pt")
            last_ckpt = time.perf_counter()


def standing_statistics(t: Trainer, train: rooms.PairBatch, batches: int = 8) -> None:
    """Refresh the generator's batch-norm statistics on `batches` fixed training batches (see refresh_statistics)."""
    n = min(len(train), batches * t.cfg.batch_size)
    chunks = [train.take(slice(i, i + t.cfg.batch_size)) for i in range(0, n, t.cfg.batch_size)]
    refresh_statistics(t.gen, [(b.src, b.r_rel, b.t_rel) for b in chunks])


def _set_lr(t: Trainer, cfg: Config, started: float, base_time: float) -> None:
    """Linear decay to cfg.lr_final of the start, over the steps or the wall-time budget (whichever is nearer)."""
    done = t.step / cfg.steps
    if cfg.time_budget_s:
        done = max(done, (time.perf_counter() - started + base_time) / cfg.time_budget_s)
    scale = 1.0 - (1.0 - cfg.lr_final) * min(1.0, done)
    for opt, lr in ((t.opt_g, cfg.lr_g), (t.opt_d, cfg.lr_d)):
        if opt is not None:
            for group in opt.param_groups:
                group["lr"] = lr * scale


def _finish(t: Trainer, metrics: dict, first: dict, out_dir: Path, t_data: float, vgg: bool) -> Iterator[Event]:
    cfg = t.cfg
    metrics = {**metrics, "steps": float(t.step), "train_time_s": t.train_time_s, "data_time_s": t_data,
               "steps_per_s": t.step / max(t.train_time_s, 1e-9), "perceptual_vgg": float(vgg)}  # fmt: skip
    grid = figures.results_grid(first, 4)
    Image.fromarray(grid).save(out_dir / "heldout.png")
    yield Preview(t.step, image=grid, caption=f"held-out pairs after {t.step} steps")
    files = {"checkpoint": t.save(out_dir / "checkpoint.pt", metrics), "heldout": out_dir / "heldout.png"}
    model_path = checkpoints.save_studio(out_dir / "model.pt", t.gen, step=t.step, train_time_s=t.train_time_s,
                                         metrics=metrics, config=to_jsonable(cfg))  # fmt: skip
    files["model"] = model_path
    info = {"comparison": evaluate.comparison_table(metrics), "history": t.history,
            "lpips": "computed (VGG-16 from --models-dir)" if "lpips_synsin" in metrics else
                     "not computed: LPIPS needs VGG-16 ImageNet weights in --models-dir (vgg16.pth); none are downloaded",
            "context": "Published SynSin: KITTI PSNR 16.70 / SSIM 0.52 (the book); RealEstate10K 22.31 / 0.74 "
                       "(the repository). Different data: context only."}  # fmt: skip
    yield Done(metrics=metrics, files=files, info=info)
