"""Trilinear sampling of the voxel grid as a fixed sparse linear map, for rays that are the same every step.

The book's volume fit renders every pixel of each chosen view with `NDCMultinomialRaysampler` (no stratification)
from fixed cameras, so every step samples the same points of the grid. Trilinear interpolation of a grid at fixed
points is a fixed sparse matrix W (eight weights per sample), so rendering is W @ grid and the gradient of the grid
is W^T @ (gradient of the samples). `ViewWeights` precomputes both once per training view:

- W compactly: for each kept sample, the linear index of its lower corner in a grid padded by one zero voxel on
  every side, and its three fractional offsets (16 bytes a sample); a chunk's rows are expanded to CSR on the fly;
- W^T as a CSR matrix with int32 indices (64 bytes a sample), so the backward pass is one multithreaded sparse
  matrix product instead of ATen's scatter of the grid sampler's backward (which runs one batch entry a thread).

Samples are the ones `sampler.inside_range` keeps (within a voxel of the grid's box; the others read zero density
and do not change a pixel), in the same (ray, slot) layout `sampler.render_grid` uses, so the result equals
`render_grid` (and PyTorch3D's `VolumeRenderer`) up to float rounding; tests compare values and gradients.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from pytorch3d.renderer import EmissionAbsorptionRaymarcher, RayBundle
from pytorch3d.structures import Volumes

from pipelines.volume.sampler import inside_range

_RAYMARCHER = EmissionAbsorptionRaymarcher()
BYTES_PER_SAMPLE = 4 + 12 + 8 * 8  # corner index and offsets; W^T's eight int32 columns and float32 values


@dataclass
class ViewWeights:
    """The trilinear map of one view's rays (M rays x K slots) into a (G + 2)^3 padded grid."""

    rays: int
    slots: int  # K: slots per ray (the longest in-box run of this view)
    row_ptr: torch.Tensor  # (M * K + 1,) int32: first kept sample of each slot (a slot keeps 0 or 1 sample)
    corner: torch.Tensor  # (S,) int32: padded linear index of each kept sample's lower corner
    frac: torch.Tensor  # (S, 3) float32: offsets (x, y, z) from that corner, in [0, 1]
    transposed: torch.Tensor  # sparse CSR ((G + 2)^3, M * K): W^T

    @property
    def nbytes(self) -> int:
        t = self.transposed
        parts = (self.row_ptr, self.corner, self.frac, t.crow_indices(), t.col_indices(), t.values())
        return sum(p.numel() * p.element_size() for p in parts)


def padded_size(g: int) -> int:
    return g + 2


def _corner_offsets(g: int) -> torch.Tensor:
    """Linear offsets of the eight corners (dz, dy, dx), dx fastest, in the padded grid."""
    p = padded_size(g)
    return torch.tensor([dz * p * p + dy * p + dx for dz in (0, 1) for dy in (0, 1) for dx in (0, 1)])


def _corner_weights(frac: torch.Tensor) -> torch.Tensor:
    """(S, 3) offsets -> (S, 8) trilinear weights, corners ordered as `_corner_offsets`."""
    fx, fy, fz = frac.unbind(-1)
    wx = torch.stack([1 - fx, fx], -1)  # (S, 2)
    wy = torch.stack([1 - fy, fy], -1)
    wz = torch.stack([1 - fz, fz], -1)
    return (wz[:, :, None, None] * wy[:, None, :, None] * wx[:, None, None, :]).reshape(-1, 8)


def build_view(bundle: RayBundle, volumes: Volumes, g: int) -> ViewWeights:
    """The map of the rays of `bundle` (1, M, P): which samples are kept, their corners and offsets, and W^T."""
    with torch.no_grad():
        points = bundle.origins[..., None, :] + bundle.directions[..., None, :] * bundle.lengths[..., None]
        local = volumes.world_to_local_coords(points)[0]  # (M, P, 3)
        first, count = inside_range(local, 2.0 / max(g - 1, 1))
        m, k = local.shape[0], max(int(count.max()), 1)
        offsets = torch.arange(k)
        idx = (first[:, None] + offsets[None]).clamp(max=local.shape[1] - 1)  # (M, K)
        valid = (offsets[None] < count[:, None]).reshape(-1)  # (M * K,)
        kept = torch.gather(local, 1, idx[..., None].expand(-1, -1, 3)).reshape(-1, 3)[valid]  # (S, 3)
        # align_corners=True: local -1..1 -> voxel index 0..G-1 (x along W, y along H, z along D); the kept
        # samples lie within one voxel of the box, index -1..G, and the padding voxel there holds zero.
        x = ((kept + 1) * 0.5 * (g - 1)).clamp(-1.0, float(g))
        lower = x.floor().clamp(max=g - 1)
        frac = (x - lower).contiguous()
        p = padded_size(g)
        ix = (lower + 1).long()  # (S, 3) in 0..G
        corner = ((ix[:, 2] * p + ix[:, 1]) * p + ix[:, 0]).to(torch.int32)
        row_ptr = torch.zeros(m * k + 1, dtype=torch.int64)
        row_ptr[1:] = valid.long().cumsum(0)
        transposed = _transpose(corner, frac, valid.nonzero()[:, 0], g, m * k)
    return ViewWeights(m, k, row_ptr.to(torch.int32), corner, frac, transposed)


def _transpose(corner: torch.Tensor, frac: torch.Tensor, slot: torch.Tensor, g: int, n_slots: int) -> torch.Tensor:
    """W^T as CSR ((G + 2)^3, n_slots): rows are padded voxels, columns the slots of the kept samples."""
    cols = (corner[:, None].long() + _corner_offsets(g)[None]).reshape(-1)  # (S * 8,) voxel of each entry
    vals = _corner_weights(frac).reshape(-1)
    order = torch.argsort(cols, stable=True)  # by voxel, then by slot
    n_vox = padded_size(g) ** 3
    crow = torch.zeros(n_vox + 1, dtype=torch.int64)
    crow[1:] = torch.bincount(cols, minlength=n_vox).cumsum(0)
    entry_slot = slot.repeat_interleave(8)[order]
    return _csr(crow.to(torch.int32), entry_slot.to(torch.int32), vals[order], (n_vox, n_slots))


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A CSR matrix from indices built here (valid by construction, so not re-checked), without torch's notes
    that CSR support is in beta and that the checks are off."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse (CSR tensor support|invariant checks)")
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


def sample_rows(w: ViewWeights, grid_flat: torch.Tensor, r0: int, r1: int, g: int) -> torch.Tensor:
    """Trilinear samples (R, K, C) of rays r0..r1 of the view from the padded channel-last grid ((G+2)^3, C)."""
    a, b = r0 * w.slots, r1 * w.slots
    s0, s1 = int(w.row_ptr[a]), int(w.row_ptr[b])
    cols = (w.corner[s0:s1, None] + _corner_offsets(g).to(torch.int32)[None]).reshape(-1)
    vals = _corner_weights(w.frac[s0:s1]).reshape(-1)
    crow = (w.row_ptr[a : b + 1] - s0) * 8
    matrix = _csr(crow, cols, vals, (b - a, grid_flat.shape[0]))
    return (matrix @ grid_flat).reshape(r1 - r0, w.slots, grid_flat.shape[1])


def pad_channels_last(grid: torch.Tensor) -> torch.Tensor:
    """(1, C, G, G, G) -> ((G + 2)^3, C): one zero voxel around the grid, channels last, flattened."""
    padded = torch.nn.functional.pad(grid[0], (1, 1, 1, 1, 1, 1))
    return padded.permute(1, 2, 3, 0).reshape(-1, grid.shape[1]).contiguous()


def unpad_gradient(grad_flat: torch.Tensor, g: int) -> torch.Tensor:
    """((G + 2)^3, C) -> (1, C, G, G, G): the gradient of the grid inside the padding."""
    p = padded_size(g)
    return grad_flat.reshape(p, p, p, -1)[1:-1, 1:-1, 1:-1].permute(3, 0, 1, 2)[None].contiguous()


class _Sink(torch.autograd.Function):
    """Samples of a span of one view's rays; the backward pass stores their gradient in the step's buffer for that
    view (summed through W^T once per step, in `StepSampler.grid_gradient`) instead of returning one."""

    @staticmethod
    def forward(ctx, grid_flat, sampler, view, r0, r1):  # type: ignore[override]
        ctx.args = (sampler, view, r0, r1)
        return sample_rows(sampler.views[view], grid_flat, r0, r1, sampler.g)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        sampler, view, r0, r1 = ctx.args
        sampler.add_gradient(view, r0, r1, grad)
        return None, None, None, None, None


class StepSampler:
    """Every training view's `ViewWeights`, and the per-step gradient buffers. Use per step: `begin(grid)`, then
    `render(view, r0, r1)` for spans of rays (differentiable), then `grid_gradient()` after the last backward."""

    def __init__(self, views: dict[int, ViewWeights], g: int) -> None:
        self.views = views
        self.g = g
        self.grid_flat: torch.Tensor | None = None
        self.buffers: dict[int, torch.Tensor] = {}

    @property
    def nbytes(self) -> int:
        return sum(w.nbytes for w in self.views.values())

    def begin(self, grid: torch.Tensor) -> None:
        self.grid_flat = pad_channels_last(grid.detach()).requires_grad_()
        self.buffers = {}

    def render(self, view: int, r0: int, r1: int) -> torch.Tensor:
        """RGB and opacity (R, 4) of rays r0..r1 of training view `view`."""
        samples = _Sink.apply(self.grid_flat, self, view, r0, r1)  # (R, K, 4)
        return _RAYMARCHER(rays_densities=samples[None, ..., :1], rays_features=samples[None, ..., 1:])[0]

    def add_gradient(self, view: int, r0: int, r1: int, grad: torch.Tensor) -> None:
        w = self.views[view]
        if view not in self.buffers:
            self.buffers[view] = torch.zeros(w.rays * w.slots, grad.shape[-1])
        self.buffers[view][r0 * w.slots : r1 * w.slots] += grad.reshape(-1, grad.shape[-1])

    def grid_gradient(self) -> torch.Tensor | None:
        """W^T @ (the step's sample gradients), summed over its views: (1, C, G, G, G), or None without any."""
        total = None
        for view, grad in self.buffers.items():
            part = self.views[view].transposed @ grad
            total = part if total is None else total + part
        self.buffers = {}
        return None if total is None else unpad_gradient(total, self.g)


def view_runs(view: torch.Tensor, pix: torch.Tensor) -> list[tuple[int, int, int]] | None:
    """(view, first pixel, end pixel) for each run of one view's consecutive pixels in a chunk's rays, or None
    when the pixels of a run are not consecutive (then the chunk is not a span of whole-view rays)."""
    views, counts = torch.unique_consecutive(view, return_counts=True)
    runs, start = [], 0
    for v, n in zip(views.tolist(), counts.tolist()):
        p = pix[start : start + n]
        p0 = int(p[0])
        if int(p[-1]) - p0 != n - 1 or not bool((p.diff() == 1).all()):
            return None
        runs.append((v, p0, p0 + n))
        start += n
    return runs


def build_sampler(rays, views: list[int], n_pts: int, min_depth: float, max_depth: float, volumes: Volumes,
                  g: int, budget_bytes: int):  # fmt: skip
    """A generator that builds the `ViewWeights` of every pixel's ray of each of `views` (rays: a
    `raymarching.PixelRays` without a bound), yielding the number built so far; returns the `StepSampler`, or None
    as soon as the estimated total would pass `budget_bytes` (the caller then samples with `render_grid`)."""
    built: dict[int, ViewWeights] = {}
    total = 0
    for i, v in enumerate(views):
        pix = torch.arange(rays.pixels_per_view, device=rays.origins.device)
        bundle = rays.bundle(torch.full_like(pix, v), pix, n_pts, min_depth, max_depth)
        built[v] = build_view(bundle, volumes, g)
        total += built[v].nbytes
        if total / (i + 1) * len(views) > budget_bytes:
            return None
        yield i + 1
    return StepSampler(built, g)
