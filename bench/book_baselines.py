"""The PyTorch3D tutorials' training steps at the book's settings, composed from PyTorch3D's stock parts as the
tutorials compose them (written by us from the tutorials' descriptions), over the same data our pipelines use;
and the settings that put our pipelines at the same experiment. `bench/book.py` times both."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from pytorch3d.loss import chamfer_distance, mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency
from pytorch3d.ops import sample_points_from_meshes
from pytorch3d.renderer import (
    BlendParams,
    EmissionAbsorptionRaymarcher,
    FoVPerspectiveCameras,
    HarmonicEmbedding,
    ImplicitRenderer,
    MeshRasterizer,
    MeshRenderer,
    MonteCarloRaysampler,
    NDCMultinomialRaysampler,
    PointLights,
    RasterizationSettings,
    SoftPhongShader,
    SoftSilhouetteShader,
    VolumeRenderer,
    look_at_rotation,
    ray_bundle_to_ray_points,
)
from pytorch3d.structures import Volumes
from pytorch3d.utils import ico_sphere

from pipelines.mesh_fit.targets import load_target
from pipelines.render.subjects import cow_mesh
from pipelines.train import multiview
from pipelines.train.multiview_data import DataConfig

CPU = torch.device("cpu")
VOLUME_OURS = {"steps": 100, "eval_every": 1000, "orbit_frames": 0}
NERF_OURS = {"steps": 100, "eval_every": 1000, "orbit_frames": 0, "mesh_resolution": 16}
POSE_OURS = {"steps": 100, "stop_loss": 0.0, "videos": (), "video_frames": 1}
MESH_FIT_OURS = {"steps": 100, "exports": (), "preview_every_s": 1e9}


def replace(cfg: Any, values: dict) -> Any:
    return dataclasses.replace(cfg, **values)


def huber(x: torch.Tensor, y: torch.Tensor, scaling: float = 0.1) -> torch.Tensor:
    """The tutorials' pseudo-Huber loss."""
    diff_sq = (x - y) ** 2
    return ((1 + diff_sq / (scaling**2)).clamp(1e-4).sqrt() - 1) * float(scaling)


def _book_data():
    data = multiview.build(DataConfig(), CPU)  # the book's 40 views of 128 px (cached per process)
    return data, data.cameras(data.train_idx)


# --- volume (fit_simple_volume) ---------------------------------------------------------------------------


def volume_baseline() -> Callable[[], None]:
    data, cams = _book_data()
    size = data.image_size
    renderer = VolumeRenderer(
        raysampler=NDCMultinomialRaysampler(
            image_width=size, image_height=size, n_pts_per_ray=150, min_depth=0.1, max_depth=3.0
        ),
        raymarcher=EmissionAbsorptionRaymarcher(),
    )
    log_densities = torch.full((1, 128, 128, 128), -4.0, requires_grad=True)
    log_colors = torch.zeros((3, 128, 128, 128), requires_grad=True)
    optimizer = torch.optim.Adam([log_densities, log_colors], lr=0.1)
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        idx = torch.randperm(len(cams), generator=gen)[:10]
        batch = cams[idx.tolist()]
        optimizer.zero_grad()
        volumes = Volumes(
            densities=torch.sigmoid(log_densities)[None].expand(10, -1, -1, -1, -1),
            features=torch.sigmoid(log_colors)[None].expand(10, -1, -1, -1, -1),
            voxel_size=3.0 / 128,
        )
        rendered = renderer(cameras=batch, volumes=volumes)[0]  # (10, H, W, 4)
        images, sil = rendered.split([3, 1], dim=-1)
        target = data.images[data.train_idx[idx]]
        target_sil = data.silhouettes[data.train_idx[idx]]
        loss = huber(sil[..., 0], target_sil).abs().mean() + huber(images, target).abs().mean()
        loss.backward()
        optimizer.step()

    return step


# --- NeRF (fit_simple_neural_radiance_field) --------------------------------------------------------------


class _TutorialField(torch.nn.Module):
    """The tutorial's NeuralRadianceField: harmonic embedding (60 octaves), 2x256 Softplus layers, density and
    colour heads (the colour head takes the embedded ray directions)."""

    def __init__(self, n_harmonic: int = 60, hidden: int = 256) -> None:
        super().__init__()
        self.embed = HarmonicEmbedding(n_harmonic, append_input=False)
        dim = n_harmonic * 2 * 3
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(dim, hidden), torch.nn.Softplus(beta=10.0), torch.nn.Linear(hidden, hidden),
            torch.nn.Softplus(beta=10.0),
        )  # fmt: skip
        self.color = torch.nn.Sequential(
            torch.nn.Linear(hidden + dim, hidden), torch.nn.Softplus(beta=10.0), torch.nn.Linear(hidden, 3),
            torch.nn.Sigmoid(),
        )  # fmt: skip
        self.density = torch.nn.Sequential(torch.nn.Linear(hidden, 1), torch.nn.Softplus(beta=10.0))
        self.density[0].bias.data[0] = -1.5

    def forward(self, ray_bundle, **kwargs):
        points = ray_bundle_to_ray_points(ray_bundle)
        features = self.mlp(self.embed(points))
        densities = 1 - (-self.density(features)).exp()
        dirs = torch.nn.functional.normalize(ray_bundle.directions, dim=-1)
        dirs_embedded = self.embed(dirs)[..., None, :].expand(*features.shape[:-1], -1)
        colors = self.color(torch.cat([features, dirs_embedded], -1))
        return densities, colors


def nerf_baseline() -> Callable[[], None]:
    data, cams = _book_data()
    renderer = ImplicitRenderer(
        raysampler=MonteCarloRaysampler(
            min_x=-1.0, max_x=1.0, min_y=-1.0, max_y=1.0, n_rays_per_image=750, n_pts_per_ray=128, min_depth=0.1,
            max_depth=3.0,
        ),
        raymarcher=EmissionAbsorptionRaymarcher(),
    )  # fmt: skip
    field = _TutorialField()
    optimizer = torch.optim.Adam(field.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        idx = torch.randperm(len(cams), generator=gen)[:6]
        optimizer.zero_grad()
        rendered, bundle = renderer(cameras=cams[idx.tolist()], volumetric_function=field)
        colors, sil = rendered.split([3, 1], dim=-1)
        target = _sample_at(data.images[data.train_idx[idx]], bundle.xys)
        target_sil = _sample_at(data.silhouettes[data.train_idx[idx]][..., None], bundle.xys)
        loss = huber(sil, target_sil).abs().mean() + huber(colors, target).abs().mean()
        loss.backward()
        optimizer.step()

    return step


def _sample_at(images: torch.Tensor, xys: torch.Tensor) -> torch.Tensor:
    """The tutorial's sample_images_at_mc_locs: bilinear samples of (B, H, W, C) at NDC xys (B, R, 2)."""
    grid = -xys.view(len(images), -1, 1, 2)  # PyTorch3D NDC +X left, +Y up against grid_sample's
    out = torch.nn.functional.grid_sample(images.permute(0, 3, 1, 2), grid, align_corners=True, mode="bilinear")
    return out.permute(0, 2, 3, 1).reshape(len(images), -1, images.shape[-1])


# --- pose (camera_position_optimization, the book's textured variant) -------------------------------------


def pose_baseline() -> Callable[[], None]:
    mesh = cow_mesh(2, CPU)
    cams = FoVPerspectiveCameras()
    sigma = 1e-4
    sil_renderer = MeshRenderer(
        MeshRasterizer(cams, RasterizationSettings(256, math.log(1 / 1e-4 - 1) * sigma, 100)),
        SoftSilhouetteShader(BlendParams(sigma=sigma, gamma=1e-4)),
    )
    lights = PointLights(location=((2.0, 2.0, -2.0),))
    rgb_renderer = MeshRenderer(
        MeshRasterizer(cams, RasterizationSettings(256, math.log(1 / 1e-4 - 1) * sigma, 50)),
        SoftPhongShader(lights=lights, cameras=cams, blend_params=BlendParams(sigma, 1e-4, (1.0, 1.0, 1.0))),
    )
    position = torch.tensor([[3.0, 6.9, 2.5]], requires_grad=True)
    optimizer = torch.optim.Adam([position], lr=0.05)
    with torch.no_grad():
        R, T = _look_at(torch.tensor([[0.0, 2.3, 1.93]]))
        target_rgb = rgb_renderer(mesh, R=R, T=T)[..., :3]
        target_sil = (target_rgb < 1).any(-1).float()

    def step() -> None:
        optimizer.zero_grad()
        R, T = _look_at(position)
        sil = sil_renderer(mesh, R=R, T=T)[..., 3]
        rgb = rgb_renderer(mesh, R=R, T=T)[..., :3]
        loss = ((sil - target_sil) ** 2).sum() + 0.1 * ((rgb - target_rgb) ** 2).sum()
        loss.backward()
        optimizer.step()

    return step


def _look_at(position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The tutorial's camera from a position looking at the origin."""
    R = look_at_rotation(position)
    T = -torch.bmm(R.transpose(1, 2), position[:, :, None])[:, :, 0]
    return R, T


# --- mesh fitting (deform_source_mesh_to_target_mesh) -----------------------------------------------------


def mesh_fit_baseline() -> Callable[[], None]:
    target = load_target(_MeshTarget(), torch.Generator().manual_seed(0)).points[None]  # (1, 239, 3)
    source = ico_sphere(4, CPU)
    deform = torch.zeros(source.verts_packed().shape, requires_grad=True)
    optimizer = torch.optim.SGD([deform], lr=1.0, momentum=0.9)

    def step() -> None:
        optimizer.zero_grad()
        mesh = source.offset_verts(deform)
        samples = sample_points_from_meshes(mesh, 5000)
        loss = (
            chamfer_distance(samples, target)[0]
            + 1.0 * mesh_edge_loss(mesh)
            + 0.01 * mesh_normal_consistency(mesh)
            + 0.1 * mesh_laplacian_smoothing(mesh, method="uniform")
        )
        loss.backward()
        optimizer.step()

    return step


@dataclasses.dataclass
class _MeshTarget:
    target: str = "pedestrian"
    target_files: tuple[str, ...] = ()
    target_points: int = 5000
    max_upload_mb: float = 200.0
    out_dir: Any = None
