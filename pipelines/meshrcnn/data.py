"""Single-object images for Mesh R-CNN's ShapeNet mode: each procedural object posed in front of the camera, rendered
with PyTorch3D (random colours, light and view), with its ground-truth surface points and normals, its voxels in
the camera-aligned voxel space (`frame`) and its mask.

Poses follow ShapeNet's renderings: the object's centre on the optical axis at a fixed distance, any azimuth, an
elevation of 10-40°; the object-to-camera transform is `verts_cam = verts_obj @ R.T + (0, 0, -distance)`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from pytorch3d.renderer import (
    BlendParams,
    DirectionalLights,
    HardPhongShader,
    RasterizationSettings,
    TexturesVertex,
)
from pytorch3d.structures import Meshes

from pipelines.meshrcnn import frame
from pipelines.meshrcnn.objects import CATEGORIES, Part, inside, make_object, object_mesh, surface_points
from pipelines.render.tiled_raster import TiledMeshRasterizer

DISTANCE = 1.4
"""Camera distance to the object's centre (the object fits a sphere of radius 0.5)."""
STUDIO_ZRANGE = (0.76, 0.905)
"""NDC-z range of the studio models' voxel grids: depths 0.84-1.97 around the objects at DISTANCE."""
HELD_OUT_OFFSET = 1_000_000
"""Held-out shapes are drawn from ids at and above this; training ids stay below."""


@dataclass(frozen=True)
class View:
    """How one sample is posed and lit: object rotation (azimuth, elevation in degrees), distance, light direction
    (camera frame) and background grey."""

    azimuth: float
    elevation: float
    distance: float
    light: tuple[float, float, float]
    background: float


def draw_view(shape_id: int, k: int) -> View:
    g = torch.Generator().manual_seed(7_919 * shape_id + 104_729 * k + 3)
    r = torch.rand(6, generator=g).tolist()
    light = torch.nn.functional.normalize(torch.tensor([r[2] - 0.5, 0.5 + 0.5 * r[3], 0.8]), dim=0).tolist()
    return View(360.0 * r[0], 10.0 + 30.0 * r[1], DISTANCE, (light[0], light[1], light[2]), 0.85 + 0.15 * r[4])


def object_to_camera(view: View) -> tuple[torch.Tensor, torch.Tensor]:
    """(R (3, 3), t (3,)): verts_cam = verts_obj @ R.T + t (azimuth about +Y, then the elevation tilts the object
    towards the camera so it is seen from above)."""
    a, e = math.radians(view.azimuth), math.radians(view.elevation)
    ry = torch.tensor([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])
    rx = torch.tensor([[1.0, 0.0, 0.0], [0.0, math.cos(e), -math.sin(e)], [0.0, math.sin(e), math.cos(e)]])
    return rx @ ry, torch.tensor([0.0, 0.0, -view.distance])


@dataclass
class Sample:
    """The ground truth of one image, in the camera frame."""

    shape_id: int
    category: str
    parts: tuple[Part, ...]
    view: View

    def transform(self) -> tuple[torch.Tensor, torch.Tensor]:
        return object_to_camera(self.view)

    def mesh(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """verts_cam (V, 3), faces (F, 3), colours (V, 3)."""
        verts, faces, colors = object_mesh(self.parts)
        rot, t = self.transform()
        return verts @ rot.T + t, faces, colors

    def points(self, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """`n` surface points and normals (n, 3) each, in the camera frame."""
        pts, nrm = surface_points(self.parts, n, torch.Generator().manual_seed(seed))
        rot, t = self.transform()
        return pts @ rot.T + t, nrm @ rot.T

    def voxels(self, size: int, zrange: tuple[float, float], sub: int = 3) -> torch.Tensor:
        """(size, size, size) bool, [z, y, x]: a voxel is occupied when any of its sub^3 sample points falls inside
        the object (so parts thinner than a voxel, a table top or a lamp pole, still occupy their cells)."""
        step = 2.0 / (size - 1)
        offsets = (torch.arange(sub) + 0.5) / sub - 0.5  # (sub,) in (-0.5, 0.5)
        grid = torch.stack(torch.meshgrid(offsets, offsets, offsets, indexing="ij"), -1).reshape(-1, 3) * step
        points = frame.voxel_centers(size).reshape(-1, 1, 3) + grid  # (size^3, sub^3, 3)
        centers = frame.voxel_to_camera(points.reshape(-1, 3), zrange)
        rot, t = self.transform()
        hit = inside(self.parts, (centers - t) @ rot).reshape(-1, sub**3).any(1)
        return hit.reshape(size, size, size)


def make_sample(shape_id: int, k: int = 0, categories: tuple[str, ...] = CATEGORIES) -> Sample:
    category, parts = make_object(shape_id, categories)
    return Sample(shape_id, category, parts, draw_view(shape_id, k))


def render(samples: list[Sample], image_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, S, S, 3) float in [0, 1] and masks (N, S, S) bool of `samples`, rendered with PyTorch3D."""
    meshes = [s.mesh() for s in samples]
    images, pix_to_face = shade(
        [(m[0], m[1], m[2]) for m in meshes],
        [s.view.light for s in samples],
        [s.view.background for s in samples],
        image_size,
        device,
    )
    return images, pix_to_face >= 0


def shade(
    meshes: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    lights: list[tuple[float, float, float]],
    backgrounds: list[float],
    image_size: int,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera-frame meshes (verts (V, 3), faces (F, 3), colours (V, 3)) seen by `frame`'s camera, one light direction
    and background grey each: images (N, S, S, 3) in [0, 1] and the nearest face per pixel (N, S, S), -1 where none
    (face indices packed over the batch, as PyTorch3D numbers them)."""
    n = len(meshes)
    mesh = Meshes(
        [m[0].to(device) for m in meshes],
        [m[1].to(device) for m in meshes],
        textures=TexturesVertex([m[2].to(device) for m in meshes]),
    )
    cameras = frame.p3d_camera(n, device)
    # Lights are given in world (= camera) frame; PyTorch3D shades in world space, so the frame's +Z faces us.
    lights_ = DirectionalLights(
        direction=torch.tensor(lights, device=device),
        ambient_color=((0.45, 0.45, 0.45),),
        diffuse_color=((0.6, 0.6, 0.6),),
        specular_color=((0.1, 0.1, 0.1),),
        device=device,
    )
    raster = TiledMeshRasterizer(cameras=cameras, raster_settings=RasterizationSettings(image_size=image_size))
    fragments = raster(mesh)
    shader = HardPhongShader(device=device, cameras=cameras, lights=lights_, blend_params=BlendParams())
    rgb = shader(fragments, mesh)[..., :3]  # (N, S, S, 3)
    pix_to_face = fragments.pix_to_face[..., 0]  # (N, S, S)
    background = torch.tensor(backgrounds, device=device).view(n, 1, 1, 1)
    images = torch.where((pix_to_face >= 0)[..., None], rgb, background.expand_as(rgb))
    return images.clamp(0, 1), pix_to_face


@dataclass
class Split:
    """A rendered split: uint8 images (N, S, S, 3), masks (N, S, S), voxels (N, V, V, V) bool, GT surface
    points and normals (N, P, 3), and the samples themselves (for on-the-fly ground truth)."""

    images: torch.Tensor
    masks: torch.Tensor
    voxels: torch.Tensor
    points: torch.Tensor
    normals: torch.Tensor
    samples: list[Sample]

    def __len__(self) -> int:
        return len(self.samples)


def build_split(
    first_id: int,
    n: int,
    *,
    image_size: int,
    voxel_size: int,
    n_points: int,
    zrange: tuple[float, float],
    categories: tuple[str, ...] = CATEGORIES,
    device: torch.device = torch.device("cpu"),
    chunk: int = 32,
) -> Iterator[tuple[int, int]]:
    """Render shapes `first_id .. first_id + n - 1` (one view each), yielding (done, n) after each chunk; returns the
    `Split` (use `split = yield from build_split(...)`)."""
    parts: dict[str, list[torch.Tensor]] = {"images": [], "masks": [], "voxels": [], "points": [], "normals": []}
    samples: list[Sample] = []
    for start in range(0, n, chunk):
        batch = [make_sample(first_id + i, 0, categories) for i in range(start, min(n, start + chunk))]
        images, masks = render(batch, image_size, device)
        parts["images"].append((images * 255 + 0.5).to(torch.uint8).cpu())
        parts["masks"].append(masks.cpu())
        parts["voxels"].append(torch.stack([s.voxels(voxel_size, zrange) for s in batch]))
        pts = [s.points(n_points, seed=s.shape_id) for s in batch]
        parts["points"].append(torch.stack([p for p, _ in pts]))
        parts["normals"].append(torch.stack([q for _, q in pts]))
        samples.extend(batch)
        yield len(samples), n
    return Split(**{k: torch.cat(v) for k, v in parts.items()}, samples=samples)
