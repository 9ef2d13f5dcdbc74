"""Measuring a GIRAFFE generator on the procedural scenes: Fréchet distance, sample grids, and the ground-truth
diagnostics of a translation sweep (alpha centroid against the projected box centre, pixel change outside the moved
object, share of the object's alpha inside its projected box).

The sweep moves object 0 of scenes that hold only that object horizontally across the prior's range (world y: the
studio's cameras sit at azimuth 0 on the +x side, so world y is image right and world x is depth), with everything
else fixed. Positions are compared in the image plane and reported in output pixels (image_size / 2
pixels per unit), so the same numbers mean the same thing for every resolution.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pipelines.core.events import Preview, to_uint8
from pipelines.giraffe import camera, frechet
from pipelines.giraffe.boxes import from_values
from pipelines.giraffe.generator import Generator, GeneratorSpec, SceneParams, sample_params
from pipelines.render.images import image_grid

SWEEP_FRAMES = 9
SWEEP_SCENES = 8
ALPHA_MASK = 0.1
"""Object alpha above which a pixel counts as the object's (for the change-outside-the-object measure)."""


def upscale_nearest(images: torch.Tensor, min_side: int = 256) -> torch.Tensor:
    """(N, 3, S, S) -> nearest-neighbour upsampled by an integer factor so that S * factor >= min_side."""
    factor = max(1, -(-min_side // images.shape[-1]))
    return F.interpolate(images, scale_factor=factor, mode="nearest") if factor > 1 else images


@torch.no_grad()
def render(generator: Generator, params: SceneParams, chunk: int = 32) -> torch.Tensor:
    """Images (N, 3, S, S) of a generator in eval mode, `chunk` scenes at a time, without noise."""
    n = len(params)
    return torch.cat([generator(params.index(slice(i, i + chunk))).clamp(0.0, 1.0) for i in range(0, n, chunk)])


def grid_picture(images: torch.Tensor, cols: int = 4, min_side: int = 256) -> np.ndarray:
    """A uint8 grid of images (N, 3, S, S), each upsampled (nearest) to at least `min_side` / cols px."""
    ups = upscale_nearest(images, max(64, min_side // cols))
    return to_uint8(image_grid([im.permute(1, 2, 0) for im in ups.cpu()], cols=cols))


class Evaluator:
    """Fixed sample scenes and the real images' feature statistics, so numbers are comparable within a run."""

    def __init__(self, spec: GeneratorSpec, data: torch.Tensor, n_fd: int, seed: int, device: torch.device) -> None:
        self.spec, self.device = spec, device
        self.encoder = frechet.ProceduralEncoder().to(device)
        self.encoder_name, self.fd_label = frechet.ENCODER_NAME, frechet.PROCEDURAL_LABEL
        self.vis = sample_params(spec, 16, torch.Generator().manual_seed(seed + 11), device)
        self.n_fd = min(n_fd, len(data))
        self.fake_params = None
        if self.n_fd > 1:
            self.fake_params = sample_params(spec, self.n_fd, torch.Generator().manual_seed(seed + 12), device)
            pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed + 13))[: self.n_fd]
            real = data[pick.to(data.device)].float() / 255.0
            self.real_stats = frechet.statistics(frechet.features_in_chunks(self.encoder, real))

    def fd(self, generator: Generator) -> float:
        """The procedural FD between `n_fd` generated images (fixed codes) and `n_fd` training images."""
        if self.fake_params is None:
            return float("nan")
        fake = render(generator.eval(), self.fake_params)
        stats = frechet.statistics(frechet.features_in_chunks(self.encoder, fake))
        return frechet.frechet_distance(*stats, *self.real_stats)

    def preview(self, generator: Generator, step: int, caption: str) -> Preview:
        return Preview(step, image=grid_picture(render(generator.eval(), self.vis)), caption=caption)

    def write_samples(self, generator: Generator, out_dir: Path) -> dict[str, Path]:
        path = out_dir / "samples.png"
        Image.fromarray(grid_picture(render(generator.eval(), self.vis), min_side=512)).save(path)
        return {"samples": path}


def sweep_params(spec: GeneratorSpec, n_scenes: int, n_frames: int, seed: int, device: torch.device | str,
                 axis: int = 1) -> SceneParams:  # fmt: skip
    """`n_scenes` x `n_frames` scenes (scene-major): object 0 alone, of middle size, moved along world `axis`
    (1: y, horizontal in the image; 0: x, depth) from 10 % to 90 % of the prior's range; codes, yaw, camera and
    background fixed per scene."""
    base = sample_params(spec, n_scenes, torch.Generator().manual_seed(seed), "cpu")
    gen = torch.Generator().manual_seed(seed + 1)
    frames = torch.arange(n_scenes).repeat_interleave(n_frames)  # (N F,) the scene of each frame
    params = base.index(frames)
    trans_val = torch.rand(n_scenes, 1, 3, generator=gen)[frames]
    trans_val[:, 0, axis] = torch.linspace(0.1, 0.9, n_frames).repeat(n_scenes)
    moved = from_values(spec.boxes, torch.full((len(frames), 1, 3), 0.5), trans_val,
                        torch.rand(n_scenes, 1, generator=gen)[frames])  # fmt: skip
    b = params.boxes
    b.scale[:, :1], b.translation[:, :1], b.yaw[:, :1] = moved.scale, moved.translation, moved.yaw
    b.present[:] = False
    b.present[:, 0] = True
    return params.to(device)


def box_corners(params: SceneParams, k: int) -> torch.Tensor:
    """World corners (N, 8, 3) of box `k`."""
    b = params.boxes
    signs = torch.tensor(
        [[x, y, z] for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)], device=b.scale.device
    )
    local = signs[None] * b.scale[:, k, None]  # (N, 8, 3)
    return local @ b.rotation()[:, k] + b.translation[:, k, None]


@torch.no_grad()
def object_views(generator: Generator, params: SceneParams, chunk: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, S, S) and object alpha maps (N, K, r, r) without noise."""
    images, alphas = [], []
    for i in range(0, len(params), chunk):
        part = params.index(slice(i, i + chunk))
        fmap, alpha = generator.feature_image(part, alpha=True)
        images.append(generator.neural_renderer(fmap).clamp(0.0, 1.0))
        alphas.append(alpha)
    return torch.cat(images), torch.cat(alphas)


def alpha_centroids(alpha: torch.Tensor, spec: GeneratorSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Image-plane centroids (N, 2) of alpha maps (N, r, r) on the generator's ray grid, and their masses (N,)."""
    grid = camera.pixel_grid(spec.feature_res, spec.pixel_centers, alpha.device)  # (r r, 2)
    w = alpha.reshape(len(alpha), -1)
    mass = w.sum(1)
    return (w @ grid) / mass.clamp_min(1e-8)[:, None], mass


def inside_box_share(alpha: torch.Tensor, params: SceneParams, spec: GeneratorSpec, k: int = 0) -> torch.Tensor:
    """Share (N,) of object `k`'s alpha mass on rays inside the 2D rectangle around its projected box corners."""
    corners = camera.project(box_corners(params, k), params.pose, spec.fov)  # (N, 8, 2)
    lo, hi = corners.min(1).values, corners.max(1).values
    grid = camera.pixel_grid(spec.feature_res, spec.pixel_centers, alpha.device)
    half = 1.0 / spec.feature_res  # a ray counts when its pixel touches the rectangle
    inside = ((grid[None] >= lo[:, None] - half) & (grid[None] <= hi[:, None] + half)).all(-1).float()  # (N, r r)
    w = alpha.reshape(len(alpha), -1)
    return (w * inside).sum(1) / w.sum(1).clamp_min(1e-8)


def _r2(pred: torch.Tensor, obs: torch.Tensor, groups: torch.Tensor) -> float:
    """R^2 of observed positions (N, 2) explained by predicted ones plus a per-group offset."""
    res = torch.zeros(()), torch.zeros(())
    ss_res, ss_tot = res
    for g in groups.unique():
        sel = groups == g
        o, p = obs[sel], pred[sel]
        offset = (o - p).mean(0)
        ss_res = ss_res + ((o - p - offset) ** 2).sum()
        ss_tot = ss_tot + ((o - o.mean(0)) ** 2).sum()
    return float(1.0 - ss_res / ss_tot.clamp_min(1e-12))


@torch.no_grad()
def translation_sweep(generator: Generator, seed: int = 7, n_scenes: int = SWEEP_SCENES,
                      n_frames: int = SWEEP_FRAMES) -> dict[str, float]:  # fmt: skip
    """Pose fidelity and disentanglement of a generator (see the module doc). Positions in output pixels."""
    spec = generator.spec
    device = next(generator.parameters()).device
    generator.eval()
    params = sweep_params(spec, n_scenes, n_frames, seed, device)
    images, alpha = object_views(generator, params)
    centroid, mass = alpha_centroids(alpha[:, 0], spec)
    target = camera.project(params.boxes.translation[:, :1], params.pose, spec.fov)[:, 0]  # (N, 2)
    px = spec.image_size / 2.0  # output pixels per image-plane unit
    groups = torch.arange(n_scenes).repeat_interleave(n_frames).to(device)
    offsets = torch.stack([(centroid - target)[groups == g].mean(0) for g in range(n_scenes)])[groups]
    tracking = ((centroid - target - offsets).norm(dim=-1) * px).mean()
    raw = ((centroid - target).norm(dim=-1) * px).mean()
    first, last = images.view(n_scenes, n_frames, *images.shape[1:])[:, [0, -1]].unbind(1)
    a = alpha[:, 0].view(n_scenes, n_frames, 1, *alpha.shape[-2:])[:, [0, -1]]
    obj = F.interpolate(a.amax(1), size=images.shape[-2:], mode="nearest")[:, 0] > ALPHA_MASK  # (n, S, S)
    change = (first - last).abs().mean(1)  # (n, S, S)
    outside = (change * ~obj).sum() / (~obj).sum().clamp_min(1)
    return {
        "centroid_error_px": float(tracking),
        "centroid_offset_px": float(raw),
        "centroid_r2": _r2(target.cpu(), centroid.cpu(), groups.cpu()),
        "change_outside": float(outside),
        "alpha_in_box": float(inside_box_share(alpha[:, 0], params, spec).mean()),
        "object_alpha_mass": float(mass.mean() / spec.feature_res**2),
    }
