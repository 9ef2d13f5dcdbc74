"""Volume: fit a voxel grid of densities and colours to multi-view renders with PyTorch3D's VolumeRenderer."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pytorch3d.structures import Volumes

from pipelines.core import ddp
from pipelines.core.events import Done, Event, Preview, Progress
from pipelines.core.headline import Headline
from pipelines.render.book_figures import BookFigure
from pipelines.train import generators, ray_training, raymarching
from pipelines.train.multiview_data import check_data_config
from pipelines.volume import trilinear
from pipelines.volume.sampler import render_grid

HEADLINE = (Headline("psnr_heldout", "Held-out PSNR", "dB", "psnr_heldout_initial"),)
"""The result card's number: PSNR on views the grid never saw (from the untrained grid's)."""

MAX_GRID = 320
MAX_POINTS_PER_STEP = 60_000_000  # ray samples per optimisation step (the book's step is 24.6M)
MAX_POINTS_PER_CHUNK = 4_000_000
MAX_WEIGHTS_BYTES = 8 * 2**30
"""Memory allowed for the precomputed trilinear maps of whole-view training (the book's run needs about 6 GiB)."""


FIGURES = (
    BookFigure(
        "5.2",
        "Novel views of the fitted volume (4×7)",
        "After fitting the voxel grid to the 40 views of the cow, the book renders it from 28 new cameras on a circle "
        "and lays them out 4 × 7: the cow from every side, rendered by the emission-absorption raymarcher.",
        "volume",
        {"orbit_frames": 28, "novel_grid_cols": 7},
        "novel_views",
    ),
)
"""The book's chapter-5 figure made by this pipeline."""


@dataclass(frozen=True)
class Config(ray_training.RayTrainConfig):
    grid_size: int = 128
    """Voxels per side of the density and colour grids (the book: 128)."""
    extent: float = 3.0
    """Side of the cubic grid in world units, centred on the object (which fits in the unit sphere)."""
    init_log_density: float = -4.0
    """Initial density logit of every voxel (sigmoid(-4) = 0.018 per sample: a faint fog)."""
    n_pts_per_ray: int = 150
    """Samples along each ray of the NDCMultinomialRaysampler (the book: 150)."""
    batch_cameras: int = 10
    rays_per_image: int = 0
    """Random pixels per view per step; 0 renders every pixel (the book)."""
    lr: float = 0.1
    """Adam learning rate (on the grids' logits)."""
    chunk_rays: int = 16384

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
    check_data_config(cfg)
    if not (4 <= cfg.grid_size <= MAX_GRID):
        raise ValueError(
            f"Grid size {cfg.grid_size} is out of range: use 4 to {MAX_GRID} voxels per side "
            f"({MAX_GRID}^3 voxels already need about {MAX_GRID**3 * 4 * 4 * 4 / 2**30:.1f} GiB with Adam's state)."
        )
    ray_training.check_sampling(cfg.n_pts_per_ray, cfg.min_depth, cfg.max_depth)
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


class _GridTrainer:
    """The voxel grid as ray_training's RayModel. Within a step the chunks backpropagate into a detached 4-channel
    copy of the grids, and the sigmoids (the whole grid) backpropagate once, in `finish_step`.

    Chunks are sampled by `sampler.render_grid` (VolumeRenderer's result with less work) or, when `weights` holds
    the precomputed trilinear maps of the training views (whole-view steps: the book's), by `trilinear`'s sparse
    products, whose gradient reaches the grid through W^T once per step."""

    def __init__(self, model: VoxelGrid, weights: trilinear.StepSampler | None = None) -> None:
        self.model = model
        self.weights = weights
        self._step: tuple[torch.Tensor, ...] = ()

    def parameters(self):
        return self.model.parameters()

    def train_renderer(self):
        densities, colors = self.model.densities(), self.model.colors()
        leaf = torch.cat([densities, colors]).detach()[None].requires_grad_()  # (1, 4, G, G, G)
        self._step = (densities, colors, leaf)
        volumes = self.model.volumes(densities.detach(), colors.detach())
        weights = self.weights
        if weights is not None:
            weights.begin(leaf)

        def render(bundle, view: torch.Tensor, pix: torch.Tensor) -> torch.Tensor:
            runs = None if weights is None else trilinear.view_runs(view, pix)
            if runs is None or any(v not in weights.views for v, _, _ in runs):
                return render_grid(leaf, volumes, bundle)
            return torch.cat([weights.render(v, p0, p1) for v, p0, p1 in runs])[None]

        return render

    def finish_step(self) -> None:
        densities, colors, leaf = self._step
        grad = leaf.grad
        sparse = None if self.weights is None else self.weights.grid_gradient()
        if sparse is not None:
            grad = sparse if grad is None else grad + sparse
        if grad is not None:  # a rank whose shard is empty has nothing to backpropagate
            torch.autograd.backward([densities, colors], [grad[0, :1], grad[0, 1:]])
        self._step = ()

    def render_fn(self, volumes: Volumes):
        grid = torch.cat([volumes.densities()[0], volumes.features()[0]])[None]  # (1, 4, G, G, G)

        def fn(bundle):
            out = render_grid(grid, volumes, bundle)  # (1, M, 4)
            return out[..., :3], out[..., 3]

        return fn

    def eval_renderer(self):
        with torch.no_grad():
            return self.render_fn(self.model.volumes(self.model.densities(), self.model.colors()))


def run(cfg: Config) -> Iterator[Event]:
    """Build the views, fit the grid (Progress every step or chunk, Preview at each evaluation), then write the
    orbit video, the held-out picture, the density grid (npz) and the marching-cubes mesh; Done carries
    held-out PSNR (initial and final), timings and the files."""
    check_config(cfg)
    yield from ray_training.run_distributed(cfg, _run)


def _run(cfg: Config, dist: ddp.Dist) -> Iterator[Event]:
    s = yield from ray_training.open_session(cfg, dist)
    model = VoxelGrid(cfg.grid_size, cfg.extent, cfg.init_log_density, s.device, cfg.bound_radius)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    yield Progress(0, cfg.steps, {}, f"a {cfg.grid_size}^3 grid of densities and colours")
    weights = yield from _trilinear_maps(cfg, s, model)
    trainer = _GridTrainer(model, weights)
    result = yield from ray_training.train(s, trainer, optimizer, what="grid")
    if not dist.is_main:
        yield Done(metrics={}, files={}, info={"rank": dist.rank})
        return
    out_dir = s.out_dir
    assert out_dir is not None and result.images is not None
    files: dict[str, Path] = {}
    files["heldout"] = yield from s.heldout_picture(trainer.eval_renderer(), result.images)

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
    s.state["message"] = "marching cubes"
    yield s.progress()
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

    video = yield from s.orbit_video(trainer.render_fn(vols))
    if video is not None:
        files["video"] = video
    yield ray_training.finish(
        s,
        result,
        {"mesh_faces": float(mesh_info["faces"])},
        files,
        {"mesh": mesh_info, "trilinear_weights": s.state.get("weights")},
    )


def weights_budget() -> int:
    """Memory the trilinear maps may take: MAX_WEIGHTS_BYTES, or half the memory free now when that is less (a
    shared host keeps room for other visitors' runs; above the budget the fit samples the grid directly)."""
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return MAX_WEIGHTS_BYTES
    return min(MAX_WEIGHTS_BYTES, free // 2)


def _trilinear_maps(cfg: Config, s: ray_training.Session, model: VoxelGrid):
    """The training views' precomputed trilinear maps when every step renders whole views from fixed rays (the
    book's settings on a CPU), else None (a generator yielding progress)."""
    if cfg.rays_per_image != 0 or cfg.bound_radius > 0 or s.device.type != "cpu":
        return None
    views = s.data.train_idx.tolist()
    t0 = time.perf_counter()
    with torch.no_grad():
        volumes = model.volumes(model.densities(), model.colors())
    weights = yield from generators.relay(
        trilinear.build_sampler(s.rays, views, cfg.n_pts_per_ray, cfg.min_depth, cfg.max_depth, volumes,
                                cfg.grid_size, weights_budget()),
        lambda n: Progress(0, cfg.steps, {}, f"precomputing the trilinear weights of the rays: view {n}/{len(views)}"),
    )  # fmt: skip
    if weights is not None:
        s.state["weights"] = {"bytes": weights.nbytes, "seconds": time.perf_counter() - t0}
    return weights


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
