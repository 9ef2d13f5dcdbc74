"""Volume: fit a voxel grid of densities and colours to multi-view renders with PyTorch3D's VolumeRenderer."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pytorch3d.renderer import EmissionAbsorptionRaymarcher, VolumeRenderer
from pytorch3d.structures import Volumes

from . import ddp, multiview, raymarching
from .events import Done, Event, Preview, Progress, to_uint8

MAX_GRID = 320
MAX_POINTS_PER_STEP = 60_000_000  # ray samples per optimisation step (the book's step is 24.6M)
MAX_POINTS_PER_CHUNK = 4_000_000


@dataclass(frozen=True)
class Config(multiview.DataConfig):
    grid_size: int = 128
    """Voxels per side of the density and colour grids (the book: 128)."""
    extent: float = 3.0
    """Side of the cubic grid in world units, centred on the object (which fits in the unit sphere)."""
    n_pts_per_ray: int = 150
    """Samples along each ray of the NDCMultinomialRaysampler (the book: 150)."""
    min_depth: float = 0.1
    """Depth of the first sample along each ray (view-space z)."""
    max_depth: float = 3.0
    """Depth of the last sample along each ray."""
    bound_radius: float = 0.0
    """0 samples whole rays (the book). R > 0: the grid is empty outside a sphere of radius R (minus a voxel
    diagonal), and only rays and samples inside the sphere are evaluated - the same image at a fraction of the cost."""
    batch_cameras: int = 10
    """Training views per optimisation step."""
    rays_per_image: int = 0
    """Random pixels per view per step; 0 renders every pixel (the book)."""
    steps: int = 300
    """Optimisation steps."""
    lr: float = 0.1
    """Adam learning rate (on the grids' logits)."""
    lr_drop_at: float = 0.75
    """Fraction of the steps after which the learning rate drops tenfold."""
    w_color: float = 1.0
    """Weight of the Huber colour loss."""
    w_silhouette: float = 1.0
    """Weight of the Huber silhouette loss (rendered opacity against the mask)."""
    init_log_density: float = -4.0
    """Initial density logit of every voxel (sigmoid(-4) = 0.018 per sample: a faint fog)."""
    chunk_rays: int = 16384
    """Rays per forward/backward chunk: bounds memory, and Stop is checked between chunks."""
    eval_every: int = 50
    """Steps between held-out evaluations (PSNR and the live preview)."""
    orbit_frames: int = 36
    """Frames of the orbit video around the fitted volume."""
    mesh_level: float = 0.1
    """Density (per-sample opacity, 0-1) at which marching cubes draws the surface; empty space fits to 0."""
    device: str = "auto"
    """auto (CUDA when present), cpu, or cuda[:N]. Under torchrun each rank uses its local GPU."""
    seed: int = 0
    """Seeds the choice of training views and rays."""
    out_dir: Path | None = None
    """Where the video, grid, mesh and pictures go (the app and CLI set one per run)."""

    @classmethod
    def quick(cls) -> Config:
        # 64 px views, a 64^3 grid over the unit sphere's box, the book's sampling restricted to a bound sphere,
        # and 512 random rays per view that cross it: about a minute on two CPU cores.
        return cls(
            image_size=64,
            grid_size=64,
            extent=2.2,
            n_pts_per_ray=64,
            min_depth=1.6,
            max_depth=3.8,
            bound_radius=1.1,
            batch_cameras=6,
            rays_per_image=512,
            steps=100,
            lr=0.1,
            eval_every=25,
            orbit_frames=24,
        )

    @classmethod
    def tiny(cls) -> Config:
        return cls(
            n_views=12,
            image_size=32,
            holdout_every=4,
            grid_size=32,
            extent=2.2,
            n_pts_per_ray=40,
            min_depth=1.6,
            max_depth=3.8,
            batch_cameras=4,
            rays_per_image=0,
            steps=60,
            lr=0.1,
            eval_every=30,
            orbit_frames=6,
        )


def check_config(cfg: Config) -> None:
    """Refuses absurd settings with a sentence, before anything is allocated."""
    multiview.check_data_config(cfg)
    if not (4 <= cfg.grid_size <= MAX_GRID):
        raise ValueError(
            f"Grid size {cfg.grid_size} is out of range: use 4 to {MAX_GRID} voxels per side "
            f"({MAX_GRID}^3 voxels already need about {MAX_GRID**3 * 4 * 4 * 4 / 2**30:.1f} GiB with Adam's state)."
        )
    if not (2 <= cfg.n_pts_per_ray <= 1024):
        raise ValueError(f"{cfg.n_pts_per_ray} samples per ray is out of range: use 2 to 1024.")
    if not (0 <= cfg.min_depth < cfg.max_depth) or not math.isfinite(cfg.max_depth):
        raise ValueError(f"Depths must satisfy 0 <= min_depth < max_depth (got {cfg.min_depth}, {cfg.max_depth}).")
    if not (0.5 <= cfg.extent <= 20):
        raise ValueError(f"Grid extent {cfg.extent} is out of range: the object fits in the unit sphere; use 0.5-20.")
    if cfg.steps < 1 or cfg.steps > 1_000_000:
        raise ValueError(f"Steps must be between 1 and 1,000,000 (got {cfg.steps}).")
    if cfg.batch_cameras < 1 or cfg.rays_per_image < 0 or cfg.chunk_rays < 1:
        raise ValueError("batch_cameras and chunk_rays must be at least 1, rays_per_image at least 0.")
    if not (0.0 < cfg.lr <= 10.0) or not (0.0 < cfg.lr_drop_at <= 1.0):
        raise ValueError("lr must be in (0, 10] and lr_drop_at in (0, 1].")
    rays = cfg.image_size**2 if cfg.rays_per_image == 0 else cfg.rays_per_image
    points = min(cfg.batch_cameras, cfg.n_views) * rays * cfg.n_pts_per_ray
    if points > MAX_POINTS_PER_STEP:
        raise ValueError(
            f"One step would sample {points / 1e6:.0f}M points (cameras x rays x samples); the limit is "
            f"{MAX_POINTS_PER_STEP / 1e6:.0f}M: use fewer cameras, rays per image or samples per ray."
        )
    if cfg.chunk_rays * cfg.n_pts_per_ray > MAX_POINTS_PER_CHUNK:
        raise ValueError(
            f"A chunk of {cfg.chunk_rays} rays x {cfg.n_pts_per_ray} samples is too big for memory: "
            f"keep chunk_rays x n_pts_per_ray under {MAX_POINTS_PER_CHUNK / 1e6:.0f}M."
        )
    if cfg.bound_radius > 0 and cfg.bound_radius - math.sqrt(3) * cfg.extent / cfg.grid_size < 1.0:
        raise ValueError(
            f"bound_radius {cfg.bound_radius} would cut the object (it fills the unit sphere): use at least "
            f"{1.0 + math.sqrt(3) * cfg.extent / cfg.grid_size:.3f} with this grid, or 0 for whole rays."
        )
    if cfg.orbit_frames < 0 or cfg.orbit_frames > 720 or cfg.eval_every < 1:
        raise ValueError("orbit_frames must be 0-720 and eval_every at least 1.")


class VoxelGrid(torch.nn.Module):
    """Density and colour logits on a G^3 grid, as the book's VolumeModel: `densities()` (1, G, G, G) and
    `colors()` (3, G, G, G) after a sigmoid. Voxel [d, h, w] sits at world (x, y, z) ~ (w, h, d).

    With `bound_radius` > 0 densities are zero at voxel centres farther than bound_radius - sqrt(3) * voxel
    from the origin, so no sample outside the bound sphere can see a non-zero density.
    """

    def __init__(
        self, grid_size: int, extent: float, init_log_density: float, device: torch.device, bound_radius: float = 0.0
    ) -> None:
        super().__init__()
        g = grid_size
        self.log_densities = torch.nn.Parameter(torch.full((1, g, g, g), float(init_log_density), device=device))
        self.log_colors = torch.nn.Parameter(torch.zeros((3, g, g, g), device=device))
        self.voxel_size = extent / g
        mask = torch.ones(1, g, g, g, device=device)
        if bound_radius > 0:
            centres = self.volumes(mask, mask.expand(3, -1, -1, -1)).get_coord_grid(world_coordinates=True)[0]
            inside = centres.norm(dim=-1) <= bound_radius - math.sqrt(3) * self.voxel_size  # (G, G, G)
            mask = inside[None].float()
        self.register_buffer("mask", mask, persistent=False)

    def densities(self) -> torch.Tensor:
        return torch.sigmoid(self.log_densities) * self.mask

    def colors(self) -> torch.Tensor:
        return torch.sigmoid(self.log_colors)

    def volumes(self, densities: torch.Tensor, colors: torch.Tensor) -> Volumes:
        return Volumes(densities=densities[None], features=colors[None], voxel_size=self.voxel_size)


def run(cfg: Config) -> Iterator[Event]:
    """Build the views, fit the grid (Progress every step or chunk, Preview at each evaluation), then write the
    orbit video, the held-out picture, the density grid (npz) and the marching-cubes mesh; Done carries
    held-out PSNR (initial and final), timings and the files."""
    check_config(cfg)
    dist = ddp.setup(cfg.device)
    try:
        yield from _run(cfg, dist)
    finally:
        dist.close()


def _run(cfg: Config, dist: ddp.Dist) -> Iterator[Event]:
    device = dist.device
    out_dir = Path(cfg.out_dir) if cfg.out_dir is not None else None
    if dist.is_main:
        if out_dir is None:
            raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
        out_dir.mkdir(parents=True, exist_ok=True)
    total = cfg.steps
    t_start = time.perf_counter()
    yield Progress(0, total, {}, "rendering the multi-view data")
    data = yield from multiview.relay(
        multiview.build_shared(cfg, device, dist, None if out_dir is None else out_dir / "upload"),
        lambda message: Progress(0, total, {}, message),
    )
    t_data = time.perf_counter() - t_start
    yield Progress(0, total, {}, f"rendered {len(data.images)} views of {data.image_size} px in {t_data:.1f} s")
    rays = raymarching.PixelRays(data, cfg.bound_radius)

    gen = torch.Generator().manual_seed(cfg.seed)
    model = VoxelGrid(cfg.grid_size, cfg.extent, cfg.init_log_density, device, cfg.bound_radius)
    renderer = VolumeRenderer(raysampler=raymarching.GivenRays(), raymarcher=EmissionAbsorptionRaymarcher())
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    yield Progress(0, total, {}, f"a {cfg.grid_size}^3 grid of densities and colours")
    drop_step = max(1, round(cfg.lr_drop_at * cfg.steps))
    ticker = raymarching.Ticker()
    # Training chunks: each backward also touches the whole grid or network, so chunks stay >= 1/4 of chunk_rays.
    chunker = raymarching.Chunker(cfg.chunk_rays, target_s=0.4, min_size=max(64, cfg.chunk_rays // 4))
    render_chunker = raymarching.Chunker(cfg.chunk_rays)
    state = {"step": 0, "message": ""}

    def progress() -> Progress:
        return Progress(state["step"], total, {}, state["message"])

    def render_fn(volumes: Volumes):
        def fn(bundle):
            out, _ = renderer(cameras=None, volumes=volumes, rays=bundle)  # (1, M, 4)
            return out[..., :3], out[..., 3]

        return fn

    def evaluate():
        """Held-out renders (a generator): returns (images (T, H, W, 3), mean PSNR)."""
        with torch.no_grad():
            vols = model.volumes(model.densities(), model.colors())
        images, _ = yield from raymarching.render_cameras(
            render_fn(vols),
            data.cameras(data.test_idx),
            data.image_size,
            cfg.n_pts_per_ray,
            cfg.min_depth,
            cfg.max_depth,
            render_chunker,
            ticker,
            progress,
            cfg.bound_radius,
        )
        return images, raymarching.heldout_psnr(images, data)

    history: dict[str, list[tuple[int, float]]] = {"psnr_heldout": []}
    psnr_init = 0.0
    if dist.is_main:
        state["message"] = "evaluating the initial grid"
        images, psnr_init = yield from evaluate()
        history["psnr_heldout"].append((0, psnr_init))
        yield Preview(0, image=raymarching.side_by_side(data.images[data.test_idx[0]], images[0]),
                      caption=f"initial grid: held-out PSNR {psnr_init:.2f} dB")  # fmt: skip

    n_train = len(data.train_idx)
    b = min(cfg.batch_cameras, n_train)
    t_train = time.perf_counter()
    losses = {}
    for step in range(1, cfg.steps + 1):
        state["step"] = step - 1
        if step == drop_step + 1:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * 0.1
        views = data.train_idx[torch.randperm(n_train, generator=gen)[:b].to(device)]
        view, pix = rays.sample(views, cfg.rays_per_image, gen)
        n_global = len(view)
        mine = dist.shard(n_global)
        view, pix = view[mine], pix[mine]
        optimizer.zero_grad(set_to_none=True)
        densities = model.densities()
        colors = model.colors()
        # Chunks backpropagate into detached copies of the grids; the sigmoids backpropagate once per step.
        dens_leaf = densities.detach().requires_grad_()
        cols_leaf = colors.detach().requires_grad_()
        volumes = model.volumes(dens_leaf, cols_leaf)
        sums = torch.zeros(2, device=device)
        for span in chunker.spans(len(view)):
            v, p = view[span], pix[span]
            bundle = rays.bundle(v, p, cfg.n_pts_per_ray, cfg.min_depth, cfg.max_depth)
            out, _ = renderer(cameras=None, volumes=volumes, rays=bundle)  # (1, M, 4)
            loss_color = raymarching.pseudo_huber(out[0, :, :3], rays.colors[v, p]).sum() / (3 * n_global)
            loss_sil = raymarching.pseudo_huber(out[0, :, 3], rays.silhouettes[v, p]).sum() / n_global
            (cfg.w_color * loss_color + cfg.w_silhouette * loss_sil).backward()
            sums += torch.stack([loss_color.detach(), loss_sil.detach()])
            chunker.record()
            if ticker.due():
                state["message"] = f"step {step}: {span.stop}/{len(view)} rays"
                yield progress()
                ticker.reset()
        if dens_leaf.grad is not None:  # a rank whose shard is empty has nothing to backpropagate
            torch.autograd.backward([densities, colors], [dens_leaf.grad, cols_leaf.grad])
        dist.all_reduce_grads(model.parameters())
        optimizer.step()
        dist.all_reduce(sums)
        losses = {"color": float(sums[0]), "silhouette": float(sums[1]), "loss": float(cfg.w_color * sums[0] + cfg.w_silhouette * sums[1])}  # fmt: skip
        state["step"] = step
        if dist.is_main and (step % cfg.eval_every == 0 or step == cfg.steps):
            state["message"] = f"step {step}: evaluating held-out views"
            images, score = yield from evaluate()
            history["psnr_heldout"].append((step, score))
            yield Progress(step, total, {**losses, "psnr_heldout": score}, f"held-out PSNR {score:.2f} dB")
            yield Preview(step, image=raymarching.side_by_side(data.images[data.test_idx[0]], images[0]),
                          caption=f"step {step}: held-out view, PSNR {score:.2f} dB")  # fmt: skip
        else:
            yield Progress(step, total, losses, f"lr {optimizer.param_groups[0]['lr']:.3g}")
        ticker.reset()
    t_train = time.perf_counter() - t_train

    if not dist.is_main:
        yield Done(metrics={}, files={}, info={"rank": dist.rank})
        return
    assert out_dir is not None
    files: dict[str, Path] = {}
    psnr_final = history["psnr_heldout"][-1][1]
    files["heldout"] = raymarching.save_heldout_picture(images, data, out_dir / "heldout.png")

    with torch.no_grad():
        densities = model.densities()[0]  # (G, G, G): (z, y, x)
        colors = model.colors()  # (3, G, G, G)
        vols = model.volumes(densities[None], colors)
        coords = vols.get_coord_grid(world_coordinates=True)[0]  # (G, G, G, 3) world xyz per voxel
    files["density_grid"] = out_dir / "density_grid.npz"
    np.savez(
        files["density_grid"],
        densities=densities.cpu().numpy().astype(np.float16),
        colors=colors.permute(1, 2, 3, 0).cpu().numpy().astype(np.float16),
        voxel_size=np.float32(model.voxel_size),
        first_center=coords[0, 0, 0].cpu().numpy().astype(np.float32),
        last_center=coords[-1, -1, -1].cpu().numpy().astype(np.float32),
        layout=np.array(
            "densities[z, y, x] (per-sample opacity 0-1) and colors[z, y, x, rgb]; voxel centres run evenly from "
            "first_center to last_center in PyTorch3D world axes (+X left, +Y up, +Z into the screen)"
        ),
    )
    state["message"] = "marching cubes"
    yield progress()
    mesh_info = {"vertices": 0, "faces": 0}
    verts, faces = marching_cubes_world(densities, vols, cfg.mesh_level)
    if len(faces):
        local = vols.world_to_local_coords(verts[None])[0]  # (V, 3) in [-1, 1]
        vcol = torch.nn.functional.grid_sample(colors[None], local.view(1, -1, 1, 1, 3), align_corners=True)
        vcol = vcol.view(3, -1).T  # (V, 3)
        files.update(raymarching.export_mesh(verts, faces, vcol, out_dir / "mesh"))
        lo, hi = verts.min(0).values, verts.max(0).values
        mesh_info = {"vertices": len(verts), "faces": len(faces), "bbox_min": lo.tolist(), "bbox_max": hi.tolist()}
        yield Preview(cfg.steps, mesh=files["mesh_glb"], caption=f"marching cubes: {len(faces)} faces")

    if cfg.orbit_frames > 0:
        state["message"] = "rendering the orbit video"
        frames_rgb, _ = yield from raymarching.render_cameras(
            render_fn(vols),
            raymarching.orbit_cameras(cfg.orbit_frames, data.elevation, data.distance, device),
            data.image_size,
            cfg.n_pts_per_ray,
            cfg.min_depth,
            cfg.max_depth,
            render_chunker,
            ticker,
            progress,
            cfg.bound_radius,
        )
        frames = [to_uint8(raymarching.upscale(f, 256)) for f in frames_rgb]
        files["video"] = raymarching.write_video(frames, out_dir / "orbit.mp4")

    elapsed = time.perf_counter() - t_start
    metrics = {
        "psnr_heldout": psnr_final,
        "psnr_heldout_initial": psnr_init,
        "loss": losses.get("loss", float("nan")),
        "steps": float(cfg.steps),
        "train_time_s": t_train,
        "data_time_s": t_data,
        "total_time_s": elapsed,
        "steps_per_s": cfg.steps / max(t_train, 1e-9),
        "mesh_faces": float(mesh_info["faces"]),
        "world_size": float(dist.world_size),
    }
    yield Done(
        metrics=metrics,
        files=files,
        info={
            "data": multiview.summary(data),
            "psnr_history": history["psnr_heldout"],
            "mesh": mesh_info,
            "video": files.get("video"),
            "mesh_glb": files.get("mesh_glb"),
        },
    )


def marching_cubes_world(densities: torch.Tensor, volumes: Volumes, level: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Marching cubes of a (D, H, W) density grid at `level`: vertices in world coordinates (V, 3) and faces (F, 3)
    wound so normals point out of the object. Empty tensors when the level set is empty.

    Voxels deep inside an opaque object are never seen, so the fitted grid is often a shell; the enclosed
    cavities are filled first, so the mesh is the outer surface only."""
    d = densities.detach().float().cpu()
    if not (float(d.min()) < level < float(d.max())):
        return torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long)
    d = raymarching.fill_cavities(d, level)
    verts, faces = raymarching.marching_cubes_outward(d, level)
    if len(faces) == 0:
        return verts, faces
    local = verts.to(volumes.device)  # (V, 3) x, y, z in [-1, 1]
    return volumes.local_to_world_coords(local[None])[0], faces.to(volumes.device)
