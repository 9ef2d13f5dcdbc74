"""Procedural scenes with ground truth: one to three coloured primitives (cube, sphere, cylinder, cone) resting on
a ground plane, at random sizes, positions and yaws, seen from a random elevation, rendered with PyTorch3D.

Each scene keeps its truth: the object boxes (the same `Boxes` the generator's prior draws, so scale,
translation and yaw are directly comparable), each object's mask, its kind and colour, and the camera pose. The
world is GIRAFFE's (z up, cameras on a sphere looking at the origin); `camera.to_pytorch3d` turns the poses
into PyTorch3D cameras.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from pytorch3d.renderer import (
    BlendParams,
    DirectionalLights,
    FoVPerspectiveCameras,
    HardPhongShader,
    Materials,
    MeshRasterizer,
    RasterizationSettings,
    TexturesVertex,
)
from pytorch3d.structures import Meshes, join_meshes_as_batch, join_meshes_as_scene
from pytorch3d.utils import ico_sphere

from pipelines.giraffe import camera
from pipelines.giraffe.boxes import Boxes, BoxPrior
from pipelines.giraffe.boxes import sample as sample_boxes
from pipelines.giraffe.generator import GeneratorSpec, uniform
from pipelines.render.procedural import orient_outward

KINDS = ("cube", "sphere", "cylinder", "cone")
SKY = (0.78, 0.84, 0.92)
GROUND = (0.52, 0.50, 0.47)
MAX_SCENES = 65_536
"""The most scenes one data set holds."""


@dataclass
class SceneBatch:
    """Rendered scenes: images (N, S, S, 3) in [0, 1], object masks (N, K, S, S) bool, boxes, kinds (N, K) int,
    colours (N, K, 3), camera-to-world poses (N, 4, 4)."""

    images: torch.Tensor
    masks: torch.Tensor
    boxes: Boxes
    kinds: torch.Tensor
    colors: torch.Tensor
    pose: torch.Tensor


def _revolve(profile: list[tuple[float, float]], segments: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A closed solid of revolution about z from (radius, z) profile points (first and last on the axis)."""
    ang = torch.arange(segments) * (2 * math.pi / segments)
    verts = [torch.tensor([0.0, 0.0, profile[0][1]])]
    rings = profile[1:-1]
    for r, z in rings:
        verts += [torch.tensor([r * math.cos(a), r * math.sin(a), z]) for a in ang.tolist()]
    verts.append(torch.tensor([0.0, 0.0, profile[-1][1]]))
    faces = []
    top = len(verts) - 1
    for j in range(segments):
        n = (j + 1) % segments
        faces.append((0, 1 + n, 1 + j))
        for i in range(len(rings) - 1):
            a, b = 1 + i * segments, 1 + (i + 1) * segments
            faces += [(a + j, a + n, b + n), (a + j, b + n, b + j)]
        last = 1 + (len(rings) - 1) * segments
        faces.append((top, last + j, last + n))
    v = torch.stack(verts)
    return v, orient_outward(v, torch.tensor(faces, dtype=torch.int64))


@functools.cache
def primitive(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Vertices and faces of a primitive that fills the canonical box [-1, 1]^3 (z up); cached, do not modify."""
    if kind == "cube":
        c = torch.tensor([[x, y, z] for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)])
        quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
        faces = torch.tensor([t for a, b, c_, d in quads for t in ((a, b, c_), (a, c_, d))], dtype=torch.int64)
        return c, orient_outward(c, faces)
    if kind == "sphere":
        mesh = ico_sphere(1)
        return mesh.verts_packed(), mesh.faces_packed()
    if kind == "cylinder":
        return _revolve([(0.0, -1.0), (1.0, -1.0), (1.0, 1.0), (0.0, 1.0)], 16)
    if kind == "cone":
        return _revolve([(0.0, -1.0), (1.0, -1.0), (0.0, 1.0)], 16)
    raise ValueError(f"Unknown primitive {kind!r}: choose one of {', '.join(KINDS)}.")


def _ground(size: float = 6.0) -> tuple[torch.Tensor, torch.Tensor]:
    v = torch.tensor([[-size, -size, 0.0], [size, -size, 0.0], [size, size, 0.0], [-size, size, 0.0]])
    return v, torch.tensor([[0, 1, 2], [0, 2, 3]])


def random_colors(n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """Saturated colours (n, k, 3) from a random hue."""
    hue = torch.rand(n, k, generator=gen)
    sat = 0.55 + 0.4 * torch.rand(n, k, generator=gen)
    val = 0.65 + 0.35 * torch.rand(n, k, generator=gen)
    offsets = torch.tensor([0.0, 2.0 / 3.0, 1.0 / 3.0])
    wave = (((hue[..., None] + offsets) * 6.0) % 6.0 - 3.0).abs() - 1.0  # (n, k, 3), the HSV hexcone
    return val[..., None] * (1.0 - sat[..., None] * (1.0 - wave.clamp(0.0, 1.0)))


def _scene_mesh(
    boxes: Boxes, rots: torch.Tensor, kinds: torch.Tensor, colors: torch.Tensor, i: int, ground: tuple
) -> tuple[Meshes, torch.Tensor]:
    parts_v, parts_f, parts_c, owner = [ground[0]], [ground[1]], [torch.tensor(GROUND).expand(4, 3)], [-1, -1]
    for k in range(boxes.scale.shape[1]):
        if not bool(boxes.present[i, k]):
            continue
        v, f = primitive(KINDS[int(kinds[i, k])])
        rot = rots[i, k]  # world -> box
        v_world = (v * boxes.scale[i, k]) @ rot + boxes.translation[i, k]  # R^T (s v) + t
        parts_v.append(v_world)
        parts_f.append(f)
        parts_c.append(colors[i, k].expand(len(v), 3))
        owner += [k] * len(f)
    meshes = [Meshes([v], [f], TexturesVertex([c])) for v, f, c in zip(parts_v, parts_f, parts_c)]
    return join_meshes_as_scene(meshes), torch.tensor(owner)


def render_scenes(boxes: Boxes, kinds: torch.Tensor, colors: torch.Tensor, pose: torch.Tensor, spec: GeneratorSpec,
                  device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Images (N, S, S, 3) and object masks (N, K, S, S) of the scenes, with a Phong shader and a sun light."""
    n, k = kinds.shape
    ground = _ground()
    rots = boxes.rotation()
    scenes = [_scene_mesh(boxes, rots, kinds, colors, i, ground) for i in range(n)]
    meshes = join_meshes_as_batch([m for m, _ in scenes]).to(device)
    rot, trans = camera.to_pytorch3d(pose)
    cams = FoVPerspectiveCameras(R=rot, T=trans, fov=spec.fov, znear=0.05, zfar=50.0, device=device)
    raster = RasterizationSettings(image_size=spec.image_size, faces_per_pixel=1, bin_size=0)
    fragments = MeshRasterizer(cameras=cams, raster_settings=raster)(meshes)
    lights = DirectionalLights(direction=((0.4, -0.3, 1.0),), ambient_color=((0.55,) * 3,),
                               diffuse_color=((0.5,) * 3,), specular_color=((0.08,) * 3,), device=device)  # fmt: skip
    shader = HardPhongShader(device=device, cameras=cams, lights=lights, materials=Materials(device=device),
                             blend_params=BlendParams(background_color=SKY))  # fmt: skip
    images = shader(fragments, meshes)[..., :3].clamp(0.0, 1.0)  # (N, S, S, 3)
    # Which object each pixel shows: face index -> owner, per scene (faces are packed scene after scene).
    owners = torch.cat([o for _, o in scenes]).to(device)
    p2f = fragments.pix_to_face[..., 0]  # (N, S, S)
    who = torch.where(p2f >= 0, owners[p2f.clamp_min(0)], torch.full_like(p2f, -1))
    masks = who[:, None] == torch.arange(k, device=device)[:, None, None]
    return images, masks


def sample_scenes(spec: GeneratorSpec, n: int, gen: torch.Generator, device: torch.device) -> SceneBatch:
    """`n` random scenes drawn from `gen` (boxes from the spec's prior, camera in its ranges) and rendered."""
    boxes = sample_boxes(spec.boxes, n, gen)
    kinds = torch.randint(0, len(KINDS), (n, spec.boxes.n_boxes), generator=gen)
    colors = random_colors(n, spec.boxes.n_boxes, gen)
    pose = camera.camera_poses(*(uniform(r, n, gen) for r in (spec.range_u, spec.range_v, spec.range_radius)))
    images, masks = render_scenes(boxes, kinds, colors, pose, spec, device)
    return SceneBatch(images, masks, boxes.to(device), kinds.to(device), colors.to(device), pose.to(device))


def check_prior(prior: BoxPrior) -> None:
    """Refuses absurd object counts and sizes with a sentence."""
    if not (1 <= prior.n_boxes <= 8) or not (0 <= prior.min_objects <= prior.n_boxes):
        raise ValueError(f"Objects per scene must be 1 to 8 (min 0 to max), got {prior.min_objects}-{prior.n_boxes}.")
    lo, hi = prior.scale_min, prior.scale_max
    if any(not (0.01 <= a <= b <= 2.0) for a, b in zip(lo, hi)):
        raise ValueError(f"Object sizes must satisfy 0.01 <= min <= max <= 2 (half-extents), got {lo} to {hi}.")
    if any(abs(v) > 3.0 for v in (*prior.translation_min, *prior.translation_max)):
        raise ValueError("Object positions must stay within 3 units of the origin.")


def scene_stream(spec: GeneratorSpec, n: int, seed: int, device: torch.device, chunk: int = 64) -> Iterator[SceneBatch]:
    """The data set of `n` scenes for `seed`, rendered `chunk` at a time (the same scenes for the same seed)."""
    if not (1 <= n <= MAX_SCENES):
        raise ValueError(f"The data set must hold 1 to {MAX_SCENES} scenes, got {n}.")
    gen = torch.Generator().manual_seed(seed)
    for start in range(0, n, chunk):
        yield sample_scenes(spec, min(chunk, n - start), gen, device)
