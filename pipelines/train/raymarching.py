"""The machinery Volume and NeRF share: training rays (seeded, bounded sampling), chunked emission-absorption
rendering, metrics, and the exports (video, marching-cubes mesh).

Conventions are PyTorch3D's; a ray is o + t d with d reaching view depth 1 at t = 1, so t is the view-space depth.
Renders go through a `render_fn(bundle) -> (rgb (1, M, 3), alpha (1, M))` built on PyTorch3D's
`VolumeRenderer` / `ImplicitRenderer` with the `GivenRays` raysampler.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pytorch3d.renderer import FoVPerspectiveCameras, RayBundle

from pipelines.core.events import to_uint8
from pipelines.render.images import save_gif, save_mp4
from pipelines.train.multiview_data import MultiviewData
from pipelines.train.multiview_render import ray_grid, view_cameras


class GivenRays(torch.nn.Module):
    """A raysampler for PyTorch3D's `ImplicitRenderer` / `VolumeRenderer` that returns the bundle passed to the
    renderer as `rays=`: the pipelines pick their rays themselves (seeded, sharded over DDP ranks)."""

    def forward(self, cameras=None, rays: RayBundle | None = None, **kwargs) -> RayBundle:
        if rays is None:
            raise ValueError("GivenRays needs the ray bundle as rays=...")
        return rays


SENTINEL_DEPTH = 1.0e4
"""Depth given to samples that are skipped in bounded sampling: far outside any grid or bound, so zero density."""


class PixelRays:
    """One ray per pixel of every view, with the pixel's colour and silhouette, flattened per view.

    origins, directions (N, H*W, 3) in world space (directions reach view depth 1); colors (N, H*W, 3);
    silhouettes (N, H*W). With `bound_radius` > 0 (bounded sampling, see `ray_lengths`), `hits` (N, H*W) says
    which rays cross the bound sphere; the others are background by construction and never sampled.
    """

    def __init__(self, data: MultiviewData, bound_radius: float = 0.0) -> None:
        n, s = len(data.images), data.image_size
        grid = ray_grid(data.cameras(), s, 1, 1.0, 1.0)
        self.origins = grid.origins.reshape(n, s * s, 3)
        self.directions = grid.directions.reshape(n, s * s, 3)
        self.colors = data.images.reshape(n, s * s, 3)
        self.silhouettes = data.silhouettes.reshape(n, s * s)
        self.bound_radius = float(bound_radius)
        self.hits = None
        if bound_radius > 0:
            self.hits = sphere_crossings(self.origins, self.directions, bound_radius)[2]

    @property
    def pixels_per_view(self) -> int:
        return int(self.origins.shape[1])

    def sample(
        self, views: torch.Tensor, rays_per_image: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Global (view, pixel) indices, each (len(views) * rays_per_image,): random pixels of each view, drawn
        with `generator` (CPU) so every DDP rank draws the same batch; 0 rays per image takes every pixel.
        With a bound sphere only pixels whose ray crosses it are drawn (the rest are black, with no density).
        """
        device = self.origins.device
        b, hw = len(views), self.pixels_per_view
        if rays_per_image <= 0:
            if self.hits is not None:
                view, pix = self.hits[views].nonzero(as_tuple=True)
                return views[view], pix
            pix = torch.arange(hw).repeat(b)
            view = views.cpu().repeat_interleave(hw)
            return view.to(device), pix.to(device)
        if self.hits is not None:
            hits = self.hits[views].cpu()  # (B, HW)
            keys = torch.rand(b, hw, generator=generator).masked_fill(~hits, 2.0)
            order = keys.argsort(1)  # each view's hit pixels first, in random order
            counts = hits.sum(1, keepdim=True).clamp(min=1)  # (B, 1)
            slot = (torch.rand(b, rays_per_image, generator=generator) * counts).long().clamp(max=hw - 1)
            pix = torch.gather(order, 1, slot)  # (B, R): uniform over the hit pixels
        else:
            pix = torch.randint(0, hw, (b, rays_per_image), generator=generator)
        view = views.cpu()[:, None].expand_as(pix)
        return view.reshape(-1).to(device), pix.reshape(-1).to(device)

    def bundle(
        self,
        view: torch.Tensor,
        pix: torch.Tensor,
        n_pts: int,
        min_depth: float,
        max_depth: float,
        generator: torch.Generator | None = None,
    ) -> RayBundle:
        """A (1, M, ...) RayBundle of the rays (view, pix), sampled by `ray_lengths`."""
        origins = self.origins[view, pix]  # (M, 3)
        dirs = self.directions[view, pix]  # (M, 3)
        lengths = ray_lengths(origins, dirs, n_pts, min_depth, max_depth, self.bound_radius, generator)
        return RayBundle(
            origins=origins[None],
            directions=dirs[None],
            lengths=lengths[None],
            xys=torch.zeros(1, len(view), 2, device=origins.device),
        )


@dataclass
class RayBatch:
    """One step's training rays: the bundle (1, M, ...), each ray's view (M,) and pixel (M,; -1 for a ray at a
    continuous position), its target colour (M, 3) and silhouette (M,), and how many rays the loss averages over
    (`drawn` >= M: Monte Carlo rays that miss the bound sphere are left out, they add exactly zero)."""

    bundle: RayBundle
    view: torch.Tensor
    pix: torch.Tensor
    colors: torch.Tensor
    silhouettes: torch.Tensor
    drawn: int


def monte_carlo_rays(
    data: MultiviewData,
    views: torch.Tensor,
    rays_per_image: int,
    generator: torch.Generator,
    sampling: tuple[int, float, float, float],
    jitter: torch.Generator | None = None,
) -> RayBatch:
    """The book's NeRF rays (`MonteCarloRaysampler`): `rays_per_image` positions drawn uniformly over each view's
    NDC square, their rays from the camera, and the targets read there by bilinear `grid_sample` of the images
    (align_corners=False: a position at a pixel centre reads that pixel). `sampling` is (n_pts, min_depth,
    max_depth, bound_radius); with a bound, rays that miss the sphere are dropped from the batch: they meet no
    density and their target is background, so their loss and gradient are zero, and `drawn` keeps the mean's
    denominator the tutorial's."""
    xy = torch.rand(len(views), rays_per_image, 2, generator=generator) * 2 - 1  # NDC, +X left, +Y up
    return rays_at(data, views, xy.to(data.images.device), sampling, jitter)


def rays_at(
    data: MultiviewData,
    views: torch.Tensor,
    xy: torch.Tensor,
    sampling: tuple[int, float, float, float],
    jitter: torch.Generator | None = None,
) -> RayBatch:
    """The rays of `views` (B,) through NDC positions xy (B, R, 2) and their bilinear targets (see
    `monte_carlo_rays`)."""
    n_pts, min_depth, max_depth, bound = sampling
    rays_per_image, device = xy.shape[1], xy.device
    cams = data.cameras(views)
    ends = cams.unproject_points(torch.cat([xy, torch.ones_like(xy[..., :1])], -1), world_coordinates=True)
    origins = cams.get_camera_center()[:, None].expand_as(ends)
    directions = ends - origins  # reaches view depth 1 at t = 1
    grid = -xy[:, :, None]  # grid_sample's x runs along columns (left to right), y down the rows
    stacked = torch.cat([data.images[views], data.silhouettes[views][..., None]], -1).permute(0, 3, 1, 2)
    targets = F.grid_sample(stacked, grid, mode="bilinear", align_corners=False)[..., 0].permute(0, 2, 1)  # (B, R, 4)
    view = views[:, None].expand(-1, rays_per_image).reshape(-1)
    origins, directions, targets = origins.reshape(-1, 3), directions.reshape(-1, 3), targets.reshape(-1, 4)
    keep = torch.arange(len(view), device=device)
    if bound > 0:
        keep = sphere_crossings(origins, directions, bound)[2].nonzero()[:, 0]
    o, d = origins[keep], directions[keep]
    bundle = RayBundle(
        origins=o[None],
        directions=d[None],
        lengths=ray_lengths(o, d, n_pts, min_depth, max_depth, bound, jitter)[None],
        xys=xy.reshape(-1, 2)[keep][None],
    )
    pix = torch.full_like(keep, -1)
    return RayBatch(bundle, view[keep], pix, targets[keep, :3], targets[keep, 3], len(view))


def ray_lengths(
    origins: torch.Tensor,
    directions: torch.Tensor,
    n_pts: int,
    min_depth: float,
    max_depth: float,
    bound_radius: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample depths (M, K) along rays (M, 3).

    Unbounded (the book): K = `n_pts` depths evenly from `min_depth` to `max_depth` inclusive. Bounded
    (`bound_radius` > 0): only those of the same depths that lie inside the sphere of that radius; each ray gets
    K slots (the most any ray of the batch needs) and unused slots get `SENTINEL_DEPTH` (a point with no
    density). So a bounded render equals the book's render of a scene whose density is zero outside the sphere,
    at a fraction of the cost. A `generator` jitters each depth uniformly within +-half a spacing (stratified).
    """
    m, device = len(origins), origins.device
    spacing = (max_depth - min_depth) / max(n_pts - 1, 1)
    if bound_radius <= 0:
        k = torch.arange(n_pts, device=device, dtype=torch.float32).expand(m, n_pts)
        valid = None
    else:
        near, far, hits = sphere_crossings(origins, directions, bound_radius)
        k0 = torch.ceil((near - min_depth) / spacing).clamp(min=0)  # (M,) first book sample inside
        k1 = torch.floor((far - min_depth) / spacing).clamp(max=n_pts - 1)  # (M,) last one
        slots = int((k1 - k0).max().clamp(min=0)) + 1 if m else 1  # the longest chord in this batch
        k = k0[:, None] + torch.arange(slots, device=device, dtype=torch.float32)  # (M, K)
        valid = (k <= k1[:, None]) & hits[:, None]
    lengths = min_depth + k * spacing
    if generator is not None:
        jitter = torch.rand(lengths.shape, generator=generator).to(device) - 0.5
        lengths = (lengths + jitter * spacing).clamp(min_depth, max_depth)
    if valid is not None:
        lengths = torch.where(valid, lengths, torch.full_like(lengths, SENTINEL_DEPTH))
    return lengths.contiguous()


def sphere_crossings(
    origins: torch.Tensor, directions: torch.Tensor, radius: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where rays o + t d cross the sphere |x| = radius: near, far (...,) in units of t, and hits (...,) bool."""
    a = (directions * directions).sum(-1)
    b = 2.0 * (origins * directions).sum(-1)
    c = (origins * origins).sum(-1) - radius**2
    disc = b * b - 4 * a * c
    hits = disc > 0
    root = disc.clamp(min=0).sqrt()
    near = (-b - root) / (2 * a)
    far = (-b + root) / (2 * a)
    far = torch.where(hits, far, near)
    return near, far, hits


def pseudo_huber(x: torch.Tensor, y: torch.Tensor, scaling: float = 0.1) -> torch.Tensor:
    """The book's robust loss per element: scaling * (sqrt(1 + (x - y)^2 / scaling^2) - 1); ~L2 near 0, ~L1 far."""
    diff_sq = (x - y) ** 2
    return ((1 + diff_sq / scaling**2).clamp(min=1e-4).sqrt() - 1) * scaling


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1] (any shape): -10 log10(MSE)."""
    mse = float(((pred.clamp(0, 1) - target) ** 2).mean())
    return 10.0 * math.log10(1.0 / max(mse, 1e-10))


def object_psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR in dB over the object's pixels only: pred, target (N, H, W, 3), mask (N, H, W) in {0, 1}. A black
    background that the model gets right inflates whole-image PSNR; this does not count it."""
    inside = mask > 0.5
    if not bool(inside.any()):
        return float("nan")
    mse = float(((pred.clamp(0, 1) - target) ** 2)[inside].mean())
    return 10.0 * math.log10(1.0 / max(mse, 1e-10))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean structural similarity (Gaussian window 11, sigma 1.5) of images (N, H, W, 3) in [0, 1]."""
    from torchmetrics.functional import structural_similarity_index_measure

    value = structural_similarity_index_measure(
        pred.clamp(0, 1).permute(0, 3, 1, 2).float(), target.permute(0, 3, 1, 2).float(), data_range=1.0
    )
    return float(value)


class Ticker:
    """Says when a pipeline is due to yield (at least every `interval_s`), so Stop acts between steps."""

    def __init__(self, interval_s: float = 0.4) -> None:
        self._clock = time.monotonic
        self.interval_s = interval_s
        self.last = self._clock()

    def due(self) -> bool:
        return self._clock() - self.last >= self.interval_s

    def reset(self) -> None:
        self.last = self._clock()


class Chunker:
    """Chunk sizes that adapt so one chunk of work takes about `target_s`: a slow device gets smaller chunks
    (Stop stays responsive, yields stay frequent), a fast one grows back to `max_size`. The split never changes
    a result beyond float summation order.

    Use: `for span in chunker.spans(n): <work on span>; chunker.record()`.
    """

    def __init__(self, max_size: int, target_s: float = 0.25, min_size: int = 64) -> None:
        self._clock = time.perf_counter
        self.max_size = max(1, int(max_size))
        self.min_size = min(min_size, self.max_size)
        self.size = min(self.max_size, max(self.min_size, 1024))  # start small, grow while chunks are quick
        self.target_s = target_s
        self._t0: float | None = None

    def spans(self, n: int) -> Iterator[slice]:
        start = 0
        while start < n:
            stop = min(n, start + self.size)
            self._t0 = self._clock()
            yield slice(start, stop)
            start = stop

    def record(self) -> None:
        """Call when the work on the current span is done (before yielding events)."""
        if self._t0 is None:
            return
        elapsed = self._clock() - self._t0
        self._t0 = None
        if elapsed > 1.5 * self.target_s:
            self.size = max(self.min_size, int(self.size * self.target_s / elapsed))
        elif elapsed < self.target_s / 3:
            self.size = min(self.max_size, self.size * 2)


def render_rays_chunked(
    render_fn,
    origins: torch.Tensor,
    directions: torch.Tensor,
    n_pts: int,
    min_depth: float,
    max_depth: float,
    chunk: int | Chunker,
    ticker: Ticker,
    progress,
    bound_radius: float = 0.0,
):
    """Render rays (M, 3) in (adaptive) chunks under no_grad; a generator that yields `progress()` events when due (outside
    no_grad) and returns (rgb (M, 3), alpha (M,)). `render_fn(bundle) -> (rgb (1, M, 3), alpha (1, M))`.
    With a bound sphere, rays that miss it are black and empty without being rendered."""
    n = len(origins)
    rgb = torch.zeros(n, 3, device=origins.device)
    alpha = torch.zeros(n, device=origins.device)
    if bound_radius > 0:
        todo = sphere_crossings(origins, directions, bound_radius)[2].nonzero()[:, 0]
    else:
        todo = torch.arange(n, device=origins.device)
    chunker = chunk if isinstance(chunk, Chunker) else Chunker(chunk)
    for span in chunker.spans(len(todo)):
        idx = todo[span]
        o, d = origins[idx], directions[idx]
        bundle = RayBundle(
            origins=o[None],
            directions=d[None],
            lengths=ray_lengths(o, d, n_pts, min_depth, max_depth, bound_radius)[None],
            xys=torch.zeros(1, len(idx), 2, device=origins.device),
        )
        with torch.no_grad():
            c, a = render_fn(bundle)
            rgb[idx] = c[0]
            alpha[idx] = a[0]
        chunker.record()
        if ticker.due():
            yield progress()
            ticker.reset()
    return rgb, alpha


def render_cameras(
    render_fn,
    cameras: FoVPerspectiveCameras,
    image_size: int,
    n_pts: int,
    min_depth: float,
    max_depth: float,
    chunk: int | Chunker,
    ticker: Ticker,
    progress,
    bound_radius: float = 0.0,
):
    """Full images from each camera (a generator like `render_rays_chunked`); returns rgb (N, H, W, 3) and
    alpha (N, H, W). Rays are the book's `NDCMultinomialRaysampler` grid through every pixel centre."""
    images, alphas = [], []
    for i in range(len(cameras)):
        grid = ray_grid(cameras[[i]], image_size, 1, 1.0, 1.0)
        rgb, alpha = yield from render_rays_chunked(
            render_fn,
            grid.origins.reshape(-1, 3),
            grid.directions.reshape(-1, 3),
            n_pts,
            min_depth,
            max_depth,
            chunk,
            ticker,
            progress,
            bound_radius,
        )
        images.append(rgb.reshape(image_size, image_size, 3))
        alphas.append(alpha.reshape(image_size, image_size))
    return torch.stack(images), torch.stack(alphas)


def orbit_cameras(n_frames: int, elevation: float, distance: float, device: torch.device) -> FoVPerspectiveCameras:
    """`n_frames` cameras on a full circle at the data's elevation and distance, for the orbit video."""
    azimuth = torch.arange(n_frames, dtype=torch.float32) * (360.0 / n_frames) - 180.0
    return view_cameras(azimuth, elevation, distance, device)


def upscale(image: torch.Tensor, min_side: int = 256) -> torch.Tensor:
    """Nearest-neighbour enlargement of an (H, W, 3) image so its shorter side is at least `min_side`."""
    factor = max(1, math.ceil(min_side / min(image.shape[:2])))
    if factor == 1:
        return image
    return image.repeat_interleave(factor, 0).repeat_interleave(factor, 1)


def side_by_side(target: torch.Tensor, pred: torch.Tensor, min_side: int = 192) -> np.ndarray:
    """uint8 picture: target | prediction | absolute error (x2), each (H, W, 3) in [0, 1], enlarged for display."""

    gap = torch.ones(target.shape[0], 2, 3, device=target.device)
    err = ((pred.clamp(0, 1) - target).abs() * 2).clamp(0, 1)
    row = torch.cat([target, gap, pred.clamp(0, 1), gap, err], 1)
    return to_uint8(upscale(row, min_side))


def large_row(target: torch.Tensor, pred: torch.Tensor, pred_large: torch.Tensor) -> np.ndarray:
    """uint8 row at `pred_large`'s size: target (bicubic enlargement) | large render | error of `pred` (x2)."""
    size = pred_large.shape[:2]
    smooth = F.interpolate(target.permute(2, 0, 1)[None], size=size, mode="bicubic", align_corners=False)[0]
    err = upscale(((pred.clamp(0, 1) - target).abs() * 2).clamp(0, 1), size[0])[: size[0], : size[1]]
    gap = torch.ones(size[0], 4, 3, device=target.device)
    return to_uint8(torch.cat([smooth.permute(1, 2, 0).clamp(0, 1), gap, pred_large.clamp(0, 1), gap, err], 1))


def write_video(frames: list[np.ndarray], path: Path, fps: int = 12) -> Path:
    """An MP4 of uint8 (H, W, 3) frames (`save_mp4`); a GIF next to it if ffmpeg fails."""

    try:
        return save_mp4(frames, Path(path), fps)
    except Exception:  # noqa: BLE001 - any ffmpeg trouble: fall back to a GIF, which needs no codec
        return save_gif(frames, Path(path).with_suffix(".gif"), fps)


def export_mesh(verts: torch.Tensor, faces: torch.Tensor, colors: torch.Tensor | None, stem: Path) -> dict[str, Path]:
    """Write a marching-cubes mesh as `<stem>.glb` (for gr.Model3D) and `<stem>.ply`; colours (V, 3) in [0, 1]."""
    import trimesh

    v = verts.detach().cpu().numpy().astype(np.float64)
    f = faces.detach().cpu().numpy().astype(np.int64)
    kwargs = {}
    if colors is not None:
        c = (colors.detach().cpu().clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        kwargs["vertex_colors"] = np.concatenate([c, np.full((len(c), 1), 255, np.uint8)], 1)
    mesh = trimesh.Trimesh(vertices=v, faces=f, process=False, **kwargs)
    stem = Path(stem)
    glb, ply = stem.with_suffix(".glb"), stem.with_suffix(".ply")
    mesh.export(glb)
    mesh.export(ply)
    return {"mesh_glb": glb, "mesh_ply": ply}


def save_heldout_picture(
    images: torch.Tensor, data: MultiviewData, path: Path, large: torch.Tensor | None = None
) -> Path:
    """A PNG with one row per held-out view: target | render | error. With `large` (the same views rendered at a
    multiple of the training size) the render is that one, and the target and the error (of the training-size
    render, which the PSNR scores) are enlarged to its size: target smoothly, the error pixel for pixel."""
    from PIL import Image

    pairs = list(enumerate(data.test_idx.tolist()))
    if large is None or large.shape[1] <= data.image_size:
        rows = [side_by_side(data.images[j], images[i]) for i, j in pairs]
    else:
        rows = [large_row(data.images[j], images[i], large[i]) for i, j in pairs]
    Image.fromarray(np.concatenate(rows, 0)).save(path)
    return path


def marching_cubes_outward(grid: torch.Tensor, level: float) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch3D's marching cubes of a (D, H, W) grid whose values rise inside the object: vertices in local
    coordinates (V, 3) (x, y, z in [-1, 1], x along W) and faces (F, 3) wound so normals point outwards
    (PyTorch3D's winding points them towards higher values). Empty tensors for an empty level set."""
    from pytorch3d.ops.marching_cubes import marching_cubes

    verts_list, faces_list = marching_cubes(grid.detach().float().cpu()[None], isolevel=level, return_local_coords=True)
    if not verts_list or len(faces_list[0]) == 0:
        return torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long)
    return verts_list[0], faces_list[0][:, [0, 2, 1]]


def fill_cavities(grid: torch.Tensor, level: float) -> torch.Tensor:
    """The (D, H, W) grid with every voxel enclosed by voxels above `level` raised to the grid's maximum."""
    from scipy import ndimage

    inside = grid.numpy() > level
    enclosed = ndimage.binary_fill_holes(inside) & ~inside
    return torch.where(torch.from_numpy(enclosed), grid.max(), grid)
