"""The training loop that Volume and NeRF share: the multi-view data, random rays per step, chunked backward
passes, data parallelism, held-out evaluation and the orbit video.

A pipeline supplies its model through three calls (see `RayModel`): a renderer for the training chunks of one
step, a hook after the step's last backward, and a no-grad renderer for evaluation. Everything else, including
how a step is split across DDP ranks, lives here once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from pipelines.core import ddp
from pipelines.core.events import Done, Event, Preview, Progress, to_uint8
from pipelines.render.images import image_grid, save_png
from pipelines.train import multiview, raymarching
from pipelines.train.generators import relay
from pipelines.train.multiview_data import DataConfig, MultiviewData
from pipelines.train.multiview_figures import summary


@dataclass(frozen=True)
class RayTrainConfig(DataConfig):
    """The settings every ray-trained pipeline has (the data's are inherited); each pipeline sets its defaults."""

    n_pts_per_ray: int = 128
    """Samples per ray, evenly from min_depth to max_depth."""
    min_depth: float = 0.1
    """Depth of the first sample along each ray (view-space z)."""
    max_depth: float = 3.0
    """Depth of the last sample along each ray."""
    bound_radius: float = 0.0
    """0 samples whole rays (the book). R > 0: density is zero outside a sphere of radius R, and only rays and
    samples inside it are evaluated (the same image at a fraction of the cost)."""
    batch_cameras: int = 6
    """Training views per optimisation step."""
    rays_per_image: int = 750
    """Random pixels (rays) per training view per step; 0 takes every pixel."""
    monte_carlo_rays: bool = False
    """Rays through random continuous positions of each view, their targets read there by bilinear `grid_sample`
    (the book's NeRF: `MonteCarloRaysampler`), instead of rays through random pixel centres."""
    steps: int = 300
    """Optimisation steps."""
    lr: float = 1e-3
    """Adam learning rate."""
    lr_drop_at: float = 0.75
    """Fraction of the steps after which the learning rate drops tenfold."""
    w_color: float = 1.0
    """Weight of the Huber colour loss."""
    w_silhouette: float = 1.0
    """Weight of the Huber silhouette loss (rendered opacity against the mask)."""
    chunk_rays: int = 8192
    """Rays per forward/backward chunk, in training and when rendering full images: bounds memory, and Stop is
    checked between chunks."""
    eval_every: int = 50
    """Steps between held-out evaluations (PSNR curve and live preview)."""
    orbit_frames: int = 36
    """Frames of the orbit video."""
    render_scale: int = 1
    """The orbit video and the novel-view grid render at this multiple of the views' size (the book's NeRF: 2)."""
    novel_grid_cols: int = 0
    """Also lay the orbit's frames out as a picture grid with this many columns (novel_views.png): the book's
    Fig 5.2 is 28 frames in 7 columns, Fig 6.4 15 frames in 5; 0 = no grid."""
    training_panel: bool = False
    """Keep a row per evaluation of the first held-out view: render, its silhouette, the target and the target's
    silhouette, written as training_panel.png (the book's Fig 6.3, every 100 steps with eval_every 100)."""
    mesh_level: float = 0.1
    """Per-sample opacity (0-1) at which marching cubes draws the surface; empty space fits to 0."""
    device: str = "auto"
    """auto (CUDA when present), cpu, or cuda[:N]. Under torchrun each rank uses its local GPU."""
    seed: int = 0
    """Seeds the choice of training views and rays (and, for a network, its initial weights)."""
    out_dir: Path | None = None
    """Where the video, mesh, pictures and model files go (the app and CLI set one per run)."""


def check_sampling(n_pts_per_ray: int, min_depth: float, max_depth: float) -> None:
    """Refuse ray-sampling settings that would allocate absurdly or sample nothing (config checks and checkpoints)."""
    if not (2 <= n_pts_per_ray <= 1024):
        raise ValueError(f"{n_pts_per_ray} samples per ray is out of range: use 2 to 1024.")
    if not (0 <= min_depth < max_depth) or not math.isfinite(max_depth):
        raise ValueError(f"Depths must satisfy 0 <= min_depth < max_depth (got {min_depth}, {max_depth}).")


RenderFn = Callable[[Any], tuple[torch.Tensor, torch.Tensor]]  # bundle -> (rgb (1, M, 3), alpha (1, M))


class RayModel(Protocol):
    def parameters(self) -> Iterator[torch.nn.Parameter]: ...

    def train_renderer(self) -> Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor]:
        """Called at the start of each step: (bundle, view, pixel) -> (1, M, 4) rgb + alpha, differentiable. The
        bundle's rays go through those pixels (M,) of those training views (M,), in the order drawn."""
        ...

    def finish_step(self) -> None:
        """Called after the step's last chunk was backpropagated, before gradients are summed across ranks."""
        ...

    def eval_renderer(self) -> RenderFn:
        """The current model for rendering under no_grad."""
        ...


def run_distributed(cfg: Any, body: Callable[[Any, ddp.Dist], Iterator[Event]]) -> Iterator[Event]:
    """Join the process group (a no-op outside torchrun), run `body(cfg, dist)`, always leave the group."""
    dist = ddp.setup(cfg.device)
    try:
        yield from body(cfg, dist)
        # Leave together: a rank that tears its gloo group down while another still writes its results was seen
        # to abort (std::terminate) under load. Only after a normal end: after an error the other rank may never come.
        dist.barrier()
    finally:
        dist.close()


@dataclass
class Session:
    """One training run's shared state: the data, its rays, timers, chunkers and the progress message."""

    cfg: Any
    dist: ddp.Dist
    out_dir: Path | None
    data: MultiviewData
    rays: raymarching.PixelRays
    t_start: float
    t_data: float
    ticker: raymarching.Ticker = field(default_factory=raymarching.Ticker)
    state: dict[str, Any] = field(default_factory=lambda: {"step": 0, "message": ""})
    figures: dict[str, Path] = field(default_factory=dict)
    """The book's figures written so far (novel-view grid, training panel), added to the run's files."""
    panel_rows: list[torch.Tensor] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Training chunks: each backward also touches the whole grid or network, so chunks stay >= 1/4 of chunk_rays.
        rays = self.cfg.chunk_rays
        self.chunker = raymarching.Chunker(rays, target_s=0.4, min_size=max(64, rays // 4))
        self.render_chunker = raymarching.Chunker(rays)

    @property
    def device(self) -> torch.device:
        return self.dist.device

    def progress(self) -> Progress:
        return Progress(self.state["step"], self.cfg.steps, {}, self.state["message"])

    def render(self, render_fn: RenderFn, cameras, with_alpha: bool = False, scale: int = 1):
        """Full images from `cameras` (a generator yielding progress; returns rgb (N, H, W, 3), and alpha
        (N, H, W) too when `with_alpha`)."""
        cfg = self.cfg
        images, alphas = yield from raymarching.render_cameras(
            render_fn, cameras, self.data.image_size * scale, cfg.n_pts_per_ray, cfg.min_depth, cfg.max_depth,
            self.render_chunker, self.ticker, self.progress, cfg.bound_radius,
        )  # fmt: skip
        return (images, alphas) if with_alpha else images

    def evaluate(self, render_fn: RenderFn, n_views: int = 0):
        """Renders of the first `n_views` held-out views (0 = all) and their mean PSNR (a generator); with
        `cfg.training_panel` the first view's row of the training panel is kept."""
        idx = self.data.test_idx if n_views <= 0 else self.data.test_idx[:n_views]
        images, alphas = yield from self.render(render_fn, self.data.cameras(idx), with_alpha=True)
        scores = [raymarching.psnr(images[i], self.data.images[j]) for i, j in enumerate(idx.tolist())]
        if getattr(self.cfg, "training_panel", False):
            j = int(idx[0])
            grey = [a[..., None].expand(-1, -1, 3) for a in (alphas[0], self.data.silhouettes[j])]
            self.panel_rows.append(torch.cat([images[0], grey[0], self.data.images[j], grey[1]], 1).cpu())
        return images, float(sum(scores) / len(scores))

    def heldout_picture(self, render_fn: RenderFn, images: torch.Tensor, min_side: int = 256):
        """Write heldout.png from the final training-size renders `images` (a generator returning its path). The
        held-out views are rendered again at the smallest multiple of the training size that is at least `min_side`
        pixels, so a person can judge them, and the first one's row ends the previews."""
        path = Path(self.out_dir) / "heldout.png"
        scale = math.ceil(min_side / self.data.image_size)
        if scale <= 1:
            return raymarching.save_heldout_picture(images, self.data, path)
        self.state["message"] = f"rendering the held-out views at {self.data.image_size * scale} px"
        large = yield from self.render(render_fn, self.data.cameras(self.data.test_idx), scale=scale)
        raymarching.save_heldout_picture(images, self.data, path, large)
        row = raymarching.large_row(self.data.images[int(self.data.test_idx[0])], images[0], large[0])
        yield Preview(self.cfg.steps, image=row, caption=f"held-out view, rendered at {large.shape[1]} px")
        return path

    def orbit_video(self, render_fn: RenderFn) -> Iterator[Progress]:
        """Render the orbit (cfg.orbit_frames views) and write orbit.mp4; returns its path, or None for 0 frames."""
        if self.cfg.orbit_frames <= 0 or self.out_dir is None:
            return None
        self.state["message"] = "rendering the orbit video"
        cams = raymarching.orbit_cameras(self.cfg.orbit_frames, self.data.elevation, self.data.distance, self.device)
        frames = yield from self.render(render_fn, cams, scale=max(1, self.cfg.render_scale))
        if self.cfg.novel_grid_cols > 0:
            grid = image_grid([f.cpu() for f in frames], self.cfg.novel_grid_cols, pad=2, fill=1.0)
            self.figures["novel_views"] = save_png(grid, self.out_dir / "novel_views.png")
        return raymarching.write_video(
            [to_uint8(raymarching.upscale(f, 256)) for f in frames], self.out_dir / "orbit.mp4"
        )


def open_session(cfg: Any, dist: ddp.Dist) -> Iterator[Progress]:
    """Check the output folder, build (or receive from rank 0) the multi-view data: a generator returning a Session."""
    out_dir = Path(cfg.out_dir) if cfg.out_dir is not None else None
    if dist.is_main:
        if out_dir is None:
            raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
        out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    yield Progress(0, cfg.steps, {}, "rendering the multi-view data")
    data = yield from relay(
        multiview.build_shared(cfg, dist.device, dist, None if out_dir is None else out_dir / "upload"),
        lambda message: Progress(0, cfg.steps, {}, message),
    )
    t_data = time.perf_counter() - t_start
    yield Progress(0, cfg.steps, {}, f"rendered {len(data.images)} views of {data.image_size} px in {t_data:.1f} s")
    rays = raymarching.PixelRays(data, cfg.bound_radius)
    return Session(cfg, dist, out_dir, data, rays, t_start, t_data)


@dataclass
class TrainResult:
    losses: dict[str, float]
    history: list[tuple[int, float]]  # (step, held-out PSNR)
    images: torch.Tensor | None  # the last held-out renders (rank 0)
    psnr_init: float
    train_time_s: float
    rays_per_step: int


def train(
    s: Session,
    model: RayModel,
    optimizer: torch.optim.Optimizer,
    *,
    what: str,
    eval_views: int = 0,
    jitter: bool = False,
) -> Iterator[Event]:
    """The shared loop (a generator returning a TrainResult). Each step: every rank draws the same random views
    and rays from the seeded generator (and the same stratified jitter when `jitter`), renders its shard in
    adaptive chunks with the Huber colour + silhouette loss scaled by the global ray count, sums gradients across
    ranks and steps; the lr drops x0.1 at cfg.lr_drop_at. Rank 0 evaluates every cfg.eval_every steps
    (`eval_views` held-out views, all of them at the end) and yields a Preview."""
    cfg, data, dist, device = s.cfg, s.data, s.dist, s.device
    gen = torch.Generator().manual_seed(cfg.seed)
    params = list(model.parameters())
    drop_step = max(1, round(cfg.lr_drop_at * cfg.steps))
    target = data.images[data.test_idx[0]]
    history: list[tuple[int, float]] = []
    images, psnr_init = None, 0.0
    if dist.is_main:
        s.state["message"] = f"evaluating the initial {what}"
        images, psnr_init = yield from s.evaluate(model.eval_renderer())
        history.append((0, psnr_init))
        yield Preview(0, image=raymarching.side_by_side(target, images[0]),
                      caption=f"initial {what}: held-out PSNR {psnr_init:.2f} dB")  # fmt: skip

    n_train = len(data.train_idx)
    b = min(cfg.batch_cameras, n_train)
    t_train = time.perf_counter()
    losses: dict[str, float] = {}
    n_global = 0
    for step in range(1, cfg.steps + 1):
        s.state["step"] = step - 1
        if step == drop_step + 1:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * 0.1
        views = data.train_idx[torch.randperm(n_train, generator=gen)[:b].to(device)]
        batch = draw_rays(s, views, gen, jitter)
        bundle_all, view, pix, n_global = batch.bundle, batch.view, batch.pix, batch.drawn
        mine = torch.arange(len(view), device=device)[dist.shard(len(view))]
        optimizer.zero_grad(set_to_none=True)
        render = model.train_renderer()
        sums = torch.zeros(2, device=device)
        for span in s.chunker.spans(len(mine)):
            sel = mine[span]
            v, p = view[sel], pix[sel]
            out = render(type(bundle_all)(*(t[:, sel] for t in bundle_all)), v, p)  # (1, M, 4)
            loss_color = raymarching.pseudo_huber(out[0, :, :3], batch.colors[sel]).sum() / (3 * n_global)
            loss_sil = raymarching.pseudo_huber(out[0, :, 3], batch.silhouettes[sel]).sum() / n_global
            (cfg.w_color * loss_color + cfg.w_silhouette * loss_sil).backward()
            sums += torch.stack([loss_color.detach(), loss_sil.detach()])
            s.chunker.record()
            if s.ticker.due():
                s.state["message"] = f"step {step}: {span.stop}/{len(mine)} rays"
                yield s.progress()
                s.ticker.reset()
        model.finish_step()
        dist.all_reduce_grads(params)
        optimizer.step()
        dist.all_reduce(sums)
        losses = {"color": float(sums[0]), "silhouette": float(sums[1]), "loss": float(cfg.w_color * sums[0] + cfg.w_silhouette * sums[1])}  # fmt: skip
        s.state["step"] = step
        if dist.is_main and (step % cfg.eval_every == 0 or step == cfg.steps):
            s.state["message"] = f"step {step}: evaluating held-out views"
            images, score = yield from s.evaluate(model.eval_renderer(), 0 if step == cfg.steps else eval_views)
            history.append((step, score))
            yield Progress(step, cfg.steps, {**losses, "psnr_heldout": score}, f"held-out PSNR {score:.2f} dB")
            yield Preview(step, image=raymarching.side_by_side(target, images[0]),
                          caption=f"step {step}: held-out view, PSNR {score:.2f} dB")  # fmt: skip
        else:
            yield Progress(step, cfg.steps, losses, f"lr {optimizer.param_groups[0]['lr']:.3g}")
        s.ticker.reset()
    return TrainResult(losses, history, images, psnr_init, time.perf_counter() - t_train, n_global)


def draw_rays(s: Session, views: torch.Tensor, gen: torch.Generator, jitter: bool) -> raymarching.RayBatch:
    """One step's rays of `views`, the same on every rank (drawn from the seeded `gen`): random pixels' rays
    (`PixelRays`), or with `cfg.monte_carlo_rays` the book's Monte Carlo positions with bilinear targets; with
    `jitter` the same stratified jitter on every rank, drawn for the whole batch."""
    cfg = s.cfg
    sampling = (cfg.n_pts_per_ray, cfg.min_depth, cfg.max_depth, cfg.bound_radius)
    if cfg.monte_carlo_rays:
        jitter_gen = _jitter_generator(gen) if jitter else None
        return raymarching.monte_carlo_rays(s.data, views, cfg.rays_per_image, gen, sampling, jitter_gen)
    view, pix = s.rays.sample(views, cfg.rays_per_image, gen)
    jitter_gen = _jitter_generator(gen) if jitter else None
    bundle = s.rays.bundle(view, pix, *sampling[:3], jitter_gen)
    return raymarching.RayBatch(bundle, view, pix, s.rays.colors[view, pix], s.rays.silhouettes[view, pix], len(view))


def _jitter_generator(gen: torch.Generator) -> torch.Generator:
    return torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)))


def _object_scores(data: MultiviewData, images: torch.Tensor | None) -> dict[str, float]:
    """Held-out PSNR over the object's pixels and SSIM of the final renders (rank 0; empty elsewhere)."""
    if images is None or len(images) != len(data.test_idx):
        return {}
    target, mask = data.images[data.test_idx], data.silhouettes[data.test_idx]
    return {
        "psnr_heldout_object": raymarching.object_psnr(images, target, mask),
        "ssim_heldout": raymarching.ssim(images, target),
    }


def finish(s: Session, result: TrainResult, metrics: dict[str, float], files: dict[str, Path], info: dict) -> Done:
    """The Done event: the shared metrics (PSNR, timings, throughput) plus the pipeline's own."""
    cfg, t = s.cfg, max(result.train_time_s, 1e-9)
    shared = {
        "psnr_heldout": result.history[-1][1],
        **_object_scores(s.data, result.images),
        "psnr_heldout_initial": result.psnr_init,
        "loss": result.losses.get("loss", float("nan")),
        "steps": float(cfg.steps),
        "train_time_s": result.train_time_s,
        "data_time_s": s.t_data,
        "total_time_s": time.perf_counter() - s.t_start,
        "steps_per_s": cfg.steps / t,
        "rays_per_s": cfg.steps * result.rays_per_step / t,
        "world_size": float(s.dist.world_size),
    }
    if s.panel_rows and s.out_dir is not None:
        s.figures["training_panel"] = save_png(torch.cat(s.panel_rows, 0), s.out_dir / "training_panel.png")
    files = {**files, **s.figures}
    info = {"data": summary(s.data), "psnr_history": result.history, "video": files.get("video"),
            "mesh_glb": files.get("mesh_glb"), **info}  # fmt: skip
    return Done(metrics={**shared, **metrics}, files=files, info=info)
