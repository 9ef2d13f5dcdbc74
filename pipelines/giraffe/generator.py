"""The GIRAFFE generator: object feature fields placed by boxes, a background field, composition, volume rendering
of a low-resolution feature image, and the neural renderer.

Submodule names (`decoder`, `background_generator`, `neural_renderer`) follow the official Generator, so its
state dict loads strictly. The maths follows the paper and the official code: densities are summed over the
objects and the background, features are averaged with density weights, and the feature image is the usual
emission-absorption sum with a last interval of 1e10 (the rays end opaque).

Objects are evaluated only at the samples inside their (10 % padded) boxes; the official code evaluates every
sample and then sets the density outside the box to 0, which gives the same image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pipelines.giraffe import camera
from pipelines.giraffe.boxes import Boxes, BoxPrior, yaw_matrix
from pipelines.giraffe.boxes import sample as sample_boxes
from pipelines.giraffe.fields import FeatureField, FieldSpec
from pipelines.giraffe.networks2d import NeuralRenderer, renderer_blocks

BOX_PADDING = 0.1


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything that shapes a generator: fields, renderer, camera, depth sampling and the box prior."""

    image_size: int = 64
    feature_res: int = 16
    """Side of the volume-rendered feature image (16 in every official model)."""
    n_samples: int = 64
    """Samples per ray."""
    depth_range: tuple[float, float] = (0.5, 6.0)
    """Near and far camera depth of the samples."""
    fov: float = 49.13
    """Field of view in degrees."""
    range_u: tuple[float, float] = (0.0, 0.0)
    """Camera azimuth range (fractions of a turn)."""
    range_v: tuple[float, float] = (0.25, 0.25)
    """Camera elevation range as GIRAFFE's v (0.25 = 30 degrees above the plane)."""
    range_radius: tuple[float, float] = (2.732, 2.732)
    """Camera distance range."""
    bg_rotation_range: tuple[float, float] = (0.0, 0.0)
    """Background yaw range (fractions of a turn)."""
    object_field: FieldSpec = FieldSpec()
    background_field: FieldSpec = FieldSpec(hidden=64, n_blocks=4, skips=(), z_dim=128, downscale=12.0)
    n_feat: int = 128
    """Neural renderer width at the feature image."""
    min_feat: int = 32
    """Neural renderer's narrowest layer."""
    boxes: BoxPrior = BoxPrior()
    pixel_centers: bool = False
    """Rays through pixel centres (+-(1 - 1/r)) instead of the official corner-aligned grid: the studio's models use
    it so that the feature image lines up with PyTorch3D's renders."""


@dataclass
class Latents:
    """Codes: object shape/appearance (B, K, z), background shape/appearance (B, z_bg)."""

    z_shape: torch.Tensor
    z_app: torch.Tensor
    z_shape_bg: torch.Tensor
    z_app_bg: torch.Tensor

    def clone(self) -> Latents:
        return Latents(self.z_shape.clone(), self.z_app.clone(), self.z_shape_bg.clone(), self.z_app_bg.clone())

    def to(self, device: torch.device | str) -> Latents:
        return Latents(*(t.to(device) for t in (self.z_shape, self.z_app, self.z_shape_bg, self.z_app_bg)))

    def index(self, idx: slice | torch.Tensor) -> Latents:
        return Latents(self.z_shape[idx], self.z_app[idx], self.z_shape_bg[idx], self.z_app_bg[idx])


@dataclass
class SceneParams:
    """One batch of scene parameters: codes, boxes, camera-to-world poses (B, 4, 4), background yaw (B,)."""

    latents: Latents
    boxes: Boxes
    pose: torch.Tensor
    bg_yaw: torch.Tensor

    def clone(self) -> SceneParams:
        return SceneParams(self.latents.clone(), self.boxes.clone(), self.pose.clone(), self.bg_yaw.clone())

    def to(self, device: torch.device | str) -> SceneParams:
        return SceneParams(self.latents.to(device), self.boxes.to(device), self.pose.to(device), self.bg_yaw.to(device))

    def index(self, idx: slice | torch.Tensor) -> SceneParams:
        """Scenes `idx` (a slice or an index tensor) of the batch."""
        return SceneParams(self.latents.index(idx), self.boxes.index(idx), self.pose[idx], self.bg_yaw[idx])

    def __len__(self) -> int:
        return len(self.pose)


class Generator(nn.Module):
    """(codes, boxes, camera, background yaw) -> RGB image (B, 3, S, S) in (0, 1)."""

    def __init__(self, spec: GeneratorSpec) -> None:
        super().__init__()
        self.spec = spec
        self.decoder = FeatureField(spec.object_field)
        self.background_generator = FeatureField(spec.background_field)
        self.neural_renderer = NeuralRenderer(
            renderer_blocks(spec.image_size, spec.feature_res),
            n_feat=spec.n_feat,
            input_dim=spec.object_field.feat_dim,
            min_feat=spec.min_feat,
        )

    # --- the volume render ------------------------------------------------------------------------------------

    def depths(self, batch: int, n_rays: int, jitter: torch.Generator | None, device: torch.device) -> torch.Tensor:
        """Sample depths (B, P, S): evenly spaced, or stratified within each interval when `jitter` is given."""
        near, far = self.spec.depth_range
        di = near + torch.linspace(0.0, 1.0, self.spec.n_samples, device=device) * (far - near)
        di = di.expand(batch, n_rays, -1)
        if jitter is None:
            return di
        mid = 0.5 * (di[..., 1:] + di[..., :-1])
        hi, lo = torch.cat([mid, di[..., -1:]], -1), torch.cat([di[..., :1], mid], -1)
        noise = torch.rand(di.shape, generator=jitter).to(device)
        return lo + (hi - lo) * noise

    def fields(
        self,
        params: SceneParams,
        rays_o: torch.Tensor,
        rays_d: torch.Tensor,
        di: torch.Tensor,
        noise: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Densities (K + 1, B, P, S) after ReLU and features (K + 1, B, P, S, C): objects first, background last."""
        b, p, s = di.shape
        pts = rays_o[:, None, None] + di[..., None] * rays_d[:, :, None]  # (B, P, S, 3)
        dirs = rays_d[:, :, None].expand(b, p, s, 3)
        lat, boxes = params.latents, params.boxes
        rot = boxes.rotation()  # (B, K, 3, 3)
        n_feat = self.spec.object_field.feat_dim
        sigmas, feats = [], []
        for k in range(boxes.scale.shape[1]):
            # World -> box: R (p - t) / s; directions are rotated and scaled the same way (the official rays).
            local = ((pts - boxes.translation[:, k, None, None]) @ rot[:, k, None].transpose(-1, -2)) / boxes.scale[
                :, k, None, None
            ]
            local_dirs = (dirs @ rot[:, k, None].transpose(-1, -2)) / boxes.scale[:, k, None, None]
            inside = (local.abs() <= 1.0 + BOX_PADDING).all(-1) & boxes.present[:, k, None, None]  # (B, P, S)
            idx = inside.reshape(-1).nonzero()[:, 0]
            batch_index = idx // (p * s)
            feat_k, sigma_k = self.decoder(
                local.reshape(-1, 3)[idx], local_dirs.reshape(-1, 3)[idx], lat.z_shape[:, k], lat.z_app[:, k],
                batch_index,
            )  # fmt: skip
            if noise is not None:  # as NeRF and the official code: unit Gaussian noise on densities in training
                sigma_k = sigma_k + torch.randn(sigma_k.shape, generator=noise).to(sigma_k)
            sigma = torch.zeros(b * p * s, device=di.device, dtype=sigma_k.dtype).index_copy(0, idx, sigma_k)
            feat = torch.zeros(b * p * s, n_feat, device=di.device, dtype=feat_k.dtype).index_copy(0, idx, feat_k)
            sigmas.append(sigma.reshape(b, p, s))
            feats.append(feat.reshape(b, p, s, n_feat))
        bg_rot = yaw_matrix(params.bg_yaw)  # (B, 3, 3): the background turns by bg_yaw
        pts_bg = pts.reshape(b, -1, 3) @ bg_rot  # row vectors: R^T p, the world turned back into the field's frame
        dirs_bg = dirs.reshape(b, -1, 3) @ bg_rot
        batch_index = torch.arange(b, device=di.device).repeat_interleave(p * s)
        feat_bg, sigma_bg = self.background_generator(
            pts_bg.reshape(-1, 3), dirs_bg.reshape(-1, 3), lat.z_shape_bg, lat.z_app_bg, batch_index
        )
        if noise is not None:
            sigma_bg = sigma_bg + torch.randn(sigma_bg.shape, generator=noise).to(sigma_bg)
        sigmas.append(sigma_bg.reshape(b, p, s))
        feats.append(feat_bg.reshape(b, p, s, -1))
        return F.relu(torch.stack(sigmas)), torch.stack(feats)

    def feature_image(
        self, params: SceneParams, noise: torch.Generator | None = None, alpha: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The feature image (B, C, r, r) and, when `alpha`, each object's own opacity map (B, K, r, r). With a
        `noise` generator (training) the depths are stratified and the densities get unit Gaussian noise."""
        spec = self.spec
        res = spec.feature_res
        rays_o, rays_d = camera.pixel_rays(params.pose, res, spec.fov, spec.pixel_centers)
        di = self.depths(len(rays_o), res * res, noise, rays_d.device)
        sigma, feat = self.fields(params, rays_o, rays_d, di, noise)
        sigma_sum, feat_mix = composite(sigma, feat)
        weights = volume_weights(di, rays_d, sigma_sum)
        fmap = (weights[..., None] * feat_mix).sum(-2)  # (B, P, C)
        fmap = fmap.transpose(1, 2).reshape(len(rays_o), -1, res, res)
        if not alpha:
            return fmap, None
        maps = [volume_weights(di, rays_d, sigma[k], last_dist=0.0).sum(-1) for k in range(len(sigma) - 1)]
        return fmap, torch.stack(maps, dim=1).reshape(len(rays_o), -1, res, res)

    def forward(self, params: SceneParams, noise: torch.Generator | None = None) -> torch.Tensor:
        """RGB images (B, 3, S, S) in (0, 1); `noise` as in `feature_image`."""
        fmap, _ = self.feature_image(params, noise)
        return self.neural_renderer(fmap)

    # --- sampling scene parameters ----------------------------------------------------------------------------

    def sample_params(self, batch: int, gen: torch.Generator, device: torch.device | str) -> SceneParams:
        return sample_params(self.spec, batch, gen, device)


def sample_params(spec: GeneratorSpec, batch: int, gen: torch.Generator, device: torch.device | str) -> SceneParams:
    """Random codes (standard normal), boxes from the prior, a camera and a background yaw in their ranges, drawn
    on the CPU from `gen` and moved to `device`."""
    k, zo, zb = spec.boxes.n_boxes, spec.object_field.z_dim, spec.background_field.z_dim
    lat = Latents(
        torch.randn(batch, k, zo, generator=gen),
        torch.randn(batch, k, zo, generator=gen),
        torch.randn(batch, zb, generator=gen),
        torch.randn(batch, zb, generator=gen),
    )
    boxes = sample_boxes(spec.boxes, batch, gen)
    pose = camera.camera_poses(*(uniform(r, batch, gen) for r in (spec.range_u, spec.range_v, spec.range_radius)))
    bg_yaw = 2.0 * torch.pi * uniform(spec.bg_rotation_range, batch, gen)
    return SceneParams(lat, boxes, pose, bg_yaw).to(device)


def uniform(bounds: tuple[float, float], n: int, gen: torch.Generator) -> torch.Tensor:
    """`n` values uniform in [bounds[0], bounds[1]] (CPU)."""
    return bounds[0] + torch.rand(n, generator=gen) * (bounds[1] - bounds[0])


def composite(sigma: torch.Tensor, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Compose fields: sigma (N, B, P, S) >= 0, feat (N, B, P, S, C) -> the summed density (B, P, S) and the
    density-weighted mean feature (B, P, S, C) (where every density is 0, the weights use 1e-4 as the sum)."""
    total = sigma.sum(0)
    denom = torch.where(total == 0, torch.full_like(total, 1e-4), total)
    return total, (feat * (sigma / denom)[..., None]).sum(0)


def volume_weights(
    di: torch.Tensor, rays_d: torch.Tensor, sigma: torch.Tensor, last_dist: float = 1e10
) -> torch.Tensor:
    """Emission-absorption weights (B, P, S): alpha_i = 1 - exp(-sigma_i delta_i |d|), times the transmittance
    prod_{j<i} (1 - alpha_j + 1e-10); the last interval is `last_dist` long."""
    dists = torch.cat([di[..., 1:] - di[..., :-1], torch.full_like(di[..., :1], last_dist)], dim=-1)
    dists = dists * rays_d.norm(dim=-1, keepdim=True)
    alpha = 1.0 - torch.exp(-F.relu(sigma) * dists)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1]), 1.0 - alpha + 1e-10], dim=-1), dim=-1)
    return alpha * trans[..., :-1]
