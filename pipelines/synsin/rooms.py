"""Procedural rooms for SynSin: a textured box room (walls, floor, ceiling) with a few textured boxes inside and a
random point light, rendered with PyTorch3D as camera pairs with a known, bounded relative pose.

Each room comes from its own seed (`room_seed`), so the training and held-out splits are disjoint sets of rooms.
A pair is (source RGB, target RGB, relative transform), plus both true depths (view-space z), which only the
diagnostics read. Walls are tiled by repeating a procedural pattern (stripes, checks, tiles, blobs, marble) from a
per-room texture atlas, so every surface has texture for the parallax to act on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pytorch3d.renderer import (
    BlendParams,
    FoVPerspectiveCameras,
    HardPhongShader,
    Materials,
    MeshRasterizer,
    PointLights,
    RasterizationSettings,
    TexturesUV,
)
from pytorch3d.structures import Meshes

from pipelines.synsin.geometry import PoseLimits, RelPose, compose_camera, relative_transform

TILE = 32  # texels per pattern tile
ATLAS_COLS, ATLAS_ROWS = 4, 2  # 6 room surfaces + 2 object patterns
PATTERNS = ("stripes", "checks", "tiles", "blobs", "marble")
HELDOUT_SEED_BASE = 2**40
"""Held-out room i is the room of seed HELDOUT_SEED_BASE + i: no training run draws these seeds."""


def heldout_seed(index: int) -> int:
    return HELDOUT_SEED_BASE + int(index)


def camera_generator(seed: int) -> torch.Generator:
    """The generator of a room's cameras and poses (apart from the one that builds the room)."""
    return torch.Generator().manual_seed(int(seed) * 7919 + 17)


@dataclass
class PairBatch:
    """Pairs as tensors: images (N, 3, S, S) in [0, 1], depths (N, 1, S, S), r_rel (N, 3, 3), t_rel (N, 3)."""

    src: torch.Tensor
    tgt: torch.Tensor
    src_depth: torch.Tensor
    tgt_depth: torch.Tensor
    r_rel: torch.Tensor
    t_rel: torch.Tensor

    def __len__(self) -> int:
        return len(self.src)

    def take(self, idx: torch.Tensor | slice) -> PairBatch:
        return PairBatch(*(t[idx] for t in self.tensors()))

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return (self.src, self.tgt, self.src_depth, self.tgt_depth, self.r_rel, self.t_rel)

    def to(self, device: torch.device | str) -> PairBatch:
        return PairBatch(*(t.to(device) for t in self.tensors()))


def _rand(gen: torch.Generator, lo: float, hi: float, *shape: int) -> torch.Tensor:
    return torch.rand(*(shape or (1,)), generator=gen) * (hi - lo) + lo


def pattern_tile(gen: torch.Generator) -> torch.Tensor:
    """One (TILE, TILE, 3) texture tile of a random pattern in two or three random colours."""
    kind = PATTERNS[int(torch.randint(len(PATTERNS), (1,), generator=gen))]
    c = torch.rand(3, 3, generator=gen) * 0.8 + 0.1  # three colours
    u = (torch.arange(TILE) + 0.5) / TILE
    y, x = torch.meshgrid(u, u, indexing="ij")
    if kind == "stripes":
        f = float(torch.randint(2, 6, (1,), generator=gen))
        w = (torch.sin(2 * math.pi * f * (x if torch.rand(1, generator=gen) < 0.5 else y)) > 0).float()
    elif kind == "checks":
        f = float(torch.randint(2, 5, (1,), generator=gen))
        w = ((torch.floor(x * f) + torch.floor(y * f)) % 2).float()
    elif kind == "tiles":
        f = float(torch.randint(2, 5, (1,), generator=gen))
        w = (((x * f) % 1 < 0.12) | ((y * f) % 1 < 0.12)).float()
    elif kind == "blobs":
        w = torch.zeros_like(x)
        for _ in range(4):
            cx, cy, r = torch.rand(3, generator=gen).tolist()
            w = torch.maximum(w, torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (0.02 + 0.04 * r)))
    else:  # marble: smooth noise
        coarse = torch.rand(1, 1, 5, 5, generator=gen)
        w = F.interpolate(coarse, size=(TILE, TILE), mode="bicubic", align_corners=False)[0, 0].clamp(0, 1)
    mix = torch.rand(1, generator=gen) * 0.3
    tile = c[0] * (1 - w[..., None]) + c[1] * w[..., None]
    return (tile * (1 - mix) + c[2] * mix).clamp(0, 1)


def _atlas(gen: torch.Generator) -> torch.Tensor:
    """(ATLAS_ROWS*TILE, ATLAS_COLS*TILE, 3) atlas of pattern tiles."""
    rows = [torch.cat([pattern_tile(gen) for _ in range(ATLAS_COLS)], dim=1) for _ in range(ATLAS_ROWS)]
    return torch.cat(rows, dim=0)


def _tile_uv(tile: int) -> tuple[float, float, float, float]:
    """(u0, v0, u1, v1) of an atlas tile, inset half a texel (TexturesUV: v = 0 at the bottom row)."""
    col, row = tile % ATLAS_COLS, tile // ATLAS_COLS
    w, h = 1.0 / ATLAS_COLS, 1.0 / ATLAS_ROWS
    eu, ev = 0.5 / (ATLAS_COLS * TILE), 0.5 / (ATLAS_ROWS * TILE)
    u0, v1 = col * w, 1.0 - row * h
    return u0 + eu, v1 - h + ev, u0 + w - eu, v1 - ev


def _quad_grid(origin, du, dv, n_u: int, n_v: int, tile: int, verts, faces, uvs, face_uvs) -> None:
    """Append a planar quad spanned by du, dv from origin, split into n_u x n_v cells, each mapped to the whole
    tile (so the pattern repeats once per cell)."""
    u0, v0, u1, v1 = _tile_uv(tile)
    for i in range(n_u):
        for j in range(n_v):
            a = origin + du * (i / n_u) + dv * (j / n_v)
            b, c, d = a + du / n_u, a + du / n_u + dv / n_v, a + dv / n_v
            base, ubase = len(verts), len(uvs)
            verts.extend([a, b, c, d])
            uvs.extend([(u0, v0), (u1, v0), (u1, v1), (u0, v1)])
            faces.extend([(base, base + 1, base + 2), (base, base + 2, base + 3)])
            face_uvs.extend([(ubase, ubase + 1, ubase + 2), (ubase, ubase + 2, ubase + 3)])


def _box(lo: torch.Tensor, hi: torch.Tensor, tiles: list[int], cell: float, parts: tuple) -> None:
    """Append the six faces of the axis-aligned box [lo, hi] (each face cut into cells of about `cell` size), face k
    (x-, x+, y-, y+, z-, z+) textured with atlas tile `tiles[k]`."""
    ex = torch.eye(3)
    size = hi - lo
    for axis in range(3):
        a1, a2 = (axis + 1) % 3, (axis + 2) % 3
        for k, side in enumerate((lo, hi)):
            tile = tiles[2 * axis + k]
            origin = lo.clone()
            origin[axis] = side[axis]
            du, dv = ex[a1] * size[a1], ex[a2] * size[a2]
            n_u, n_v = max(1, round(float(size[a1]) / cell)), max(1, round(float(size[a2]) / cell))
            _quad_grid(origin, du, dv, n_u, n_v, tile, *parts)


@dataclass(frozen=True)
class Room:
    """A room's mesh (one Meshes), its half-extents (x, z) and height, and its light position."""

    mesh: Meshes
    half_x: float
    half_z: float
    height: float
    light: tuple[float, float, float]


def make_room(seed: int, device: torch.device | str = "cpu") -> Room:
    """The room of `seed`: size 3.6-5 m x 3.6-5 m x 2.4-3 m, 2-4 textured boxes against the walls."""
    gen = torch.Generator().manual_seed(int(seed))
    hx, hz = float(_rand(gen, 1.8, 2.5)), float(_rand(gen, 1.8, 2.5))
    h = float(_rand(gen, 2.4, 3.0))
    parts: tuple = ([], [], [], [])
    _box(torch.tensor([-hx, 0.0, -hz]), torch.tensor([hx, h, hz]), [0, 1, 2, 3, 4, 5], 1.0, parts)
    for _ in range(int(torch.randint(2, 5, (1,), generator=gen))):
        half = _rand(gen, 0.15, 0.45, 3) * torch.tensor([1.0, 1.6, 1.0])
        wall = int(torch.randint(4, (1,), generator=gen))
        along = float(_rand(gen, -1.0, 1.0))
        cx = (hx - half[0] - 0.02) * (1 if wall == 0 else -1) if wall < 2 else along * (hx - half[0])
        cz = (hz - half[2] - 0.02) * (1 if wall == 2 else -1) if wall >= 2 else along * (hz - half[2])
        centre = torch.tensor([cx, float(half[1]), cz])
        _box(centre - half, centre + half, [6 + int(torch.randint(2, (1,), generator=gen))] * 6, 0.5, parts)
    atlas = _atlas(gen)
    verts, faces, uvs, face_uvs = parts
    light = (float(_rand(gen, -hx + 0.5, hx - 0.5)), h - 0.3, float(_rand(gen, -hz + 0.5, hz - 0.5)))
    mesh = Meshes(
        verts=[torch.stack(verts).float()],
        faces=[torch.tensor(faces)],
        textures=TexturesUV(
            maps=atlas[None], faces_uvs=[torch.tensor(face_uvs)], verts_uvs=[torch.tensor(uvs, dtype=torch.float32)]
        ),
    ).to(device)
    return Room(mesh, hx, hz, h, light)


def random_pose(gen: torch.Generator, limits: PoseLimits) -> RelPose:
    """A relative pose drawn uniformly inside `limits`."""
    v = (torch.rand(5, generator=gen) * 2 - 1).tolist()
    return RelPose(v[0] * limits.yaw_deg, v[1] * limits.pitch_deg, v[2] * limits.right, v[3] * limits.up,
                   v[4] * limits.forward)  # fmt: skip


def source_cameras(room: Room, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """World-to-view (R (n, 3, 3), T (n, 3)) of n source cameras in the room's free middle, level-ish, any heading."""
    rs, ts = [], []
    for _ in range(n):
        centre = torch.tensor(
            [float(_rand(gen, -room.half_x + 1.4, room.half_x - 1.4)), float(_rand(gen, 1.2, 1.7)),
             float(_rand(gen, -room.half_z + 1.4, room.half_z - 1.4))]
        )  # fmt: skip
        heading, tilt = float(_rand(gen, 0.0, 2 * math.pi)), math.radians(float(_rand(gen, -12.0, 4.0)))
        # Camera axes in world (columns of the camera-to-world rotation): forward, up, left (+X is left).
        fwd = torch.tensor([math.sin(heading) * math.cos(tilt), math.sin(tilt), math.cos(heading) * math.cos(tilt)])
        left = torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0]), fwd)
        left = left / left.norm()
        up = torch.linalg.cross(fwd, left)
        r = torch.stack([left, up, fwd], dim=1)  # world-to-view for row vectors: X_view = X_world @ R + T
        rs.append(r)
        ts.append(-(centre @ r))
    return torch.stack(rs), torch.stack(ts)


def render(room: Room, r: torch.Tensor, t: torch.Tensor, size: int, fov: float) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB (n, 3, S, S) in [0, 1] and view-space depth (n, 1, S, S) of the room from world-to-view cameras."""
    device = room.mesh.device
    cams = FoVPerspectiveCameras(R=r.to(device), T=t.to(device), fov=fov, znear=0.05, zfar=50.0, device=device)
    raster = RasterizationSettings(image_size=size, faces_per_pixel=1, z_clip_value=0.05, bin_size=0)
    lights = PointLights(location=(room.light,), ambient_color=((0.45,) * 3,), diffuse_color=((0.6,) * 3,),
                         specular_color=((0.0,) * 3,), device=device)  # fmt: skip
    shader = HardPhongShader(device=device, lights=lights, materials=Materials(specular_color=((0.0,) * 3,), device=device),
                             blend_params=BlendParams(background_color=(0.0, 0.0, 0.0)))  # fmt: skip
    meshes = room.mesh.extend(len(r))
    with torch.no_grad():
        fragments = MeshRasterizer(cameras=cams, raster_settings=raster)(meshes)
        rgb = shader(fragments, meshes, cameras=cams)[..., :3].clamp(0, 1)
    depth = fragments.zbuf[..., 0].clamp(min=0)
    return rgb.permute(0, 3, 1, 2).contiguous(), depth[:, None]


def room_pairs(seed: int, n_pairs: int, size: int, fov: float, limits: PoseLimits, device="cpu") -> PairBatch:
    """`n_pairs` source/target pairs in the room of `seed` (poses drawn from the same seed)."""
    room = make_room(seed, device)
    gen = camera_generator(seed)
    r_src, t_src = source_cameras(room, n_pairs, gen)
    rels = [relative_transform(random_pose(gen, limits)) for _ in range(n_pairs)]
    r_rel, t_rel = torch.stack([a for a, _ in rels]), torch.stack([b for _, b in rels])
    r_tgt, t_tgt = compose_camera(r_src, t_src[:, None], r_rel, t_rel[:, None])
    images, depths = render(room, torch.cat([r_src, r_tgt]), torch.cat([t_src, t_tgt[:, 0]]), size, fov)
    n = n_pairs
    return PairBatch(images[:n], images[n:], depths[:n], depths[n:], r_rel.to(device), t_rel.to(device))


def build_pairs(seeds: list[int], pairs_per_room: int, size: int, fov: float, limits: PoseLimits, device="cpu"
                ) -> Iterator[str]:  # fmt: skip
    """A generator over rooms (yielding a message per room) that returns all their pairs as one PairBatch."""
    parts = []
    for i, seed in enumerate(seeds):
        parts.append(room_pairs(seed, pairs_per_room, size, fov, limits, device))
        yield f"rendered room {i + 1}/{len(seeds)}"
    return PairBatch(*(torch.cat(ts) for ts in zip(*(p.tensors() for p in parts))))
