"""The book's subjects, made in code: a UV-textured cow, a teapot and a sparse 239-point pedestrian scan.

The book loads files we cannot ship (PyTorch3D's `cow.obj` with its texture, the Utah teapot, a pedestrian LiDAR
scan). These stand-ins play the same roles and are recognisable at a glance; a user's own file goes through the
same paths. Everything is deterministic (fixed seeds), built on the CPU, then moved, and fits the unit sphere.
"""

from __future__ import annotations

import math

import torch
from pytorch3d.renderer import TexturesUV, TexturesVertex
from pytorch3d.structures import Meshes
from pytorch3d.utils import ico_sphere

from pipelines.render.procedural import normalize_verts

SUBJECTS = ("cow", "teapot")
"""The book's mesh subjects by name (the pedestrian is a point cloud: `pedestrian_points`)."""
PEDESTRIAN_POINTS = 239
"""Points in the book's sparse pedestrian scan."""

# --- the cow ---------------------------------------------------------------------------------------------

# Ellipsoid parts: (centre, radii, extra subdivision, swatch). Swatch None = the Holstein-patched body texture.
_COW_PARTS: tuple[tuple[tuple[float, float, float], tuple[float, float, float], int, int | None], ...] = (
    ((0.0, 0.0, 0.0), (0.9, 0.45, 0.42), 2, None),  # body
    ((0.98, 0.32, 0.0), (0.3, 0.26, 0.24), 1, 0),  # head
    ((1.22, 0.2, 0.0), (0.14, 0.12, 0.15), 0, 1),  # snout
    ((0.55, -0.55, 0.24), (0.1, 0.32, 0.1), 0, 2),  # legs
    ((0.55, -0.55, -0.24), (0.1, 0.32, 0.1), 0, 2),
    ((-0.6, -0.55, 0.24), (0.1, 0.32, 0.1), 0, 2),
    ((-0.6, -0.55, -0.24), (0.1, 0.32, 0.1), 0, 2),
    ((0.3, -0.4, 0.0), (0.16, 0.1, 0.14), 0, 1),  # udder
    ((-0.98, 0.12, 0.0), (0.24, 0.05, 0.05), 0, 3),  # tail
    ((0.92, 0.56, 0.17), (0.05, 0.13, 0.05), 0, 3),  # horns
    ((0.92, 0.56, -0.17), (0.05, 0.13, 0.05), 0, 3),
)
# Swatches on the atlas' right strip: head brown, snout/udder pink, hooves dark, horns and tail tan.
_SWATCHES = ((0.47, 0.29, 0.17), (0.93, 0.62, 0.62), (0.16, 0.14, 0.13), (0.78, 0.68, 0.5))
_ATLAS_H, _PERIOD, _STRIP = 128, 192, 64  # body pattern repeats every _PERIOD columns, twice; swatch strip after


def cow_texture() -> torch.Tensor:
    """The cow's texture atlas, (128, 2·192 + 64, 3) float in [0, 1]: the body's black patches on cream
    (spherical u, v; two periods so a face across the seam can use u + 1), then a strip of solid swatches."""
    v = torch.linspace(0, 1, _ATLAS_H)[:, None]  # (H, 1), 1 at the top row
    u = torch.arange(2 * _PERIOD, dtype=torch.float32)[None] / _PERIOD  # (1, 2P), two periods
    theta, phi = ((1.0 - v) * math.pi).expand(-1, 2 * _PERIOD), ((u - 0.5) * 2 * math.pi).expand(_ATLAS_H, -1)
    dirs = torch.stack(
        [torch.sin(theta) * torch.sin(phi), torch.cos(theta), torch.sin(theta) * torch.cos(phi)], -1
    )  # (H, 2P, 3) unit directions on the body
    spots = torch.nn.functional.normalize(torch.randn(14, 3, generator=torch.Generator().manual_seed(7)), dim=1)
    wobble = 0.04 * torch.sin(9 * dirs[..., 0]) * torch.cos(7 * dirs[..., 2])  # ragged patch edges
    patch = ((dirs @ spots.T).amax(-1) + wobble > 0.9).float()[..., None]
    body = patch * torch.tensor([0.07, 0.06, 0.06]) + (1 - patch) * torch.tensor([0.96, 0.93, 0.86])
    strip = torch.cat([torch.tensor(c).expand(_ATLAS_H // len(_SWATCHES), _STRIP, 3) for c in _SWATCHES])
    return torch.cat([body, strip], 1).clamp(0, 1)


def _part_uvs(unit: torch.Tensor, faces: torch.Tensor, swatch: int | None) -> torch.Tensor:
    """Per-corner UVs (3F, 2) of one part: spherical coordinates into the body pattern, or a swatch's centre."""
    width = 2 * _PERIOD + _STRIP
    if swatch is not None:
        row = (len(_SWATCHES) - swatch - 0.5) / len(_SWATCHES)  # v = 1 is the top row
        return torch.tensor([(2 * _PERIOD + _STRIP / 2) / width, row]).expand(3 * len(faces), 2)
    x, y, z = unit.unbind(1)
    u = torch.atan2(x, z) / (2 * math.pi) + 0.5  # (V,) in [0, 1]
    v = 1.0 - torch.acos(y.clamp(-1, 1)) / math.pi
    corner_u = u[faces]  # (F, 3)
    straddle = (corner_u.amax(1) - corner_u.amin(1)) > 0.5
    corner_u = torch.where(straddle[:, None] & (corner_u < 0.5), corner_u + 1.0, corner_u)
    return torch.stack([corner_u.reshape(-1) * _PERIOD / width, v[faces].reshape(-1)], 1)


def cow_mesh(detail: int = 1, device: torch.device | str = "cpu") -> Meshes:
    """A cow standing on four legs, facing +X, with a UV texture (black patches on cream, brown head, pink snout
    and udder, dark hooves): the book's textured `cow.obj` stand-in, in the unit sphere.

    detail 0 has 1,120 faces, 1 has 4,480, 2 has 17,920 (PyTorch3D's cow has 5,856).
    """
    verts, faces, uvs, offset = [], [], [], 0
    for centre, radii, level, swatch in _COW_PARTS:
        sphere = ico_sphere(level + detail)
        unit = sphere.verts_packed()  # (v, 3)
        part_faces = sphere.faces_packed()  # (f, 3)
        verts.append(unit * torch.tensor(radii) + torch.tensor(centre))
        faces.append(part_faces + offset)
        uvs.append(_part_uvs(unit, part_faces, swatch))
        offset += len(unit)
    faces_all = torch.cat(faces)  # (F, 3)
    verts_uvs = torch.cat(uvs)  # (3F, 2): one UV per face corner
    device = torch.device(device)
    tex = TexturesUV(
        maps=cow_texture()[None].to(device),
        faces_uvs=[torch.arange(3 * len(faces_all)).reshape(-1, 3).to(device)],
        verts_uvs=[verts_uvs.to(device)],
    )
    return Meshes([normalize_verts(torch.cat(verts)).to(device)], [faces_all.to(device)], textures=tex)


# --- the teapot ------------------------------------------------------------------------------------------

# Lathe profile (radius, height) from the bottom centre over the body, the lid and up to the knob's top.
_TEAPOT_PROFILE = (
    (0.0, 0.0), (0.5, 0.0), (0.62, 0.04), (0.78, 0.16), (0.86, 0.32), (0.86, 0.46), (0.8, 0.6), (0.68, 0.7),
    (0.56, 0.74), (0.56, 0.77), (0.46, 0.8), (0.3, 0.84), (0.12, 0.86), (0.1, 0.9), (0.14, 0.96), (0.1, 1.0),
    (0.0, 1.01),
)  # fmt: skip


def _lathe(profile: torch.Tensor, sides: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Revolve a profile (K, 2) of (radius, height) about +Y: verts (K·sides, 3), faces ((K−1)·sides·2, 3)."""
    angle = torch.arange(sides) * (2 * math.pi / sides)
    r, h = profile[:, 0:1], profile[:, 1:2]  # (K, 1)
    verts = torch.stack([r * torch.cos(angle), h.expand(-1, sides), r * torch.sin(angle)], -1).reshape(-1, 3)
    return verts, _grid_faces(len(profile), sides)


def _grid_faces(rows: int, cols: int) -> torch.Tensor:
    """Triangles of a (rows × cols) vertex grid closed around its columns: ((rows−1)·cols·2, 3)."""
    i = torch.arange(rows - 1)[:, None]
    j = torch.arange(cols)[None]
    a, b = i * cols + j, i * cols + (j + 1) % cols
    c, d = a + cols, b + cols
    return torch.stack([torch.stack([a, c, b], -1), torch.stack([b, c, d], -1)], 2).reshape(-1, 3)


def _tube(path: torch.Tensor, radius: torch.Tensor, sides: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A tube along `path` (K, 3) in the z = 0 plane with `radius` (K,): verts (K·sides, 3), faces."""
    tangent = torch.nn.functional.normalize(torch.gradient(path, dim=0)[0], dim=1)  # (K, 3)
    normal = torch.stack([-tangent[:, 1], tangent[:, 0], torch.zeros_like(tangent[:, 0])], 1)  # in-plane
    binormal = torch.tensor([0.0, 0.0, 1.0]).expand_as(normal)
    angle = torch.arange(sides) * (2 * math.pi / sides)
    ring = torch.cos(angle)[None, :, None] * normal[:, None] + torch.sin(angle)[None, :, None] * binormal[:, None]
    verts = (path[:, None] + radius[:, None, None] * ring).reshape(-1, 3)  # (K·sides, 3)
    return verts, _grid_faces(len(path), sides)


def teapot_mesh(device: torch.device | str = "cpu") -> Meshes:
    """A teapot (lathed body, lid and knob, a curved spout on +X and a loop handle on −X), porcelain blue-white,
    vertex-coloured: the book's teapot stand-in, in the unit sphere (about 3,900 faces)."""
    body_v, body_f = _lathe(torch.tensor(_TEAPOT_PROFILE), 48)
    t = torch.linspace(0, 1, 16)
    spout_path = torch.stack([0.7 + 0.62 * t, 0.25 + 0.5 * t**1.6, torch.zeros_like(t)], 1)
    spout_v, spout_f = _tube(spout_path, 0.15 - 0.08 * t, 16)
    a = torch.linspace(-0.5 * math.pi, 0.5 * math.pi, 20)
    handle_path = torch.stack([-0.8 - 0.34 * torch.cos(a), 0.44 - 0.22 * torch.sin(a), torch.zeros_like(a)], 1)
    handle_v, handle_f = _tube(handle_path, torch.full_like(a, 0.055), 12)
    parts = ((body_v, body_f), (spout_v, spout_f), (handle_v, handle_f))
    verts, faces, offset = [], [], 0
    for v, f in parts:
        verts.append(v)
        faces.append(f + offset)
        offset += len(v)
    verts_n = normalize_verts(torch.cat(verts))  # (V, 3)
    shade = 0.85 + 0.15 * (verts_n[:, 1:2] + 1) / 2  # (V, 1) a touch lighter towards the lid
    colors = (shade * torch.tensor([0.82, 0.87, 0.95])).clamp(0, 1)
    device = torch.device(device)
    return Meshes([verts_n.to(device)], [torch.cat(faces).to(device)], textures=TexturesVertex([colors.to(device)]))


def subject_mesh(name: str, device: torch.device | str = "cpu") -> Meshes:
    """One of `SUBJECTS` by name."""
    if name == "cow":
        return cow_mesh(1, device)
    if name == "teapot":
        return teapot_mesh(device)
    raise ValueError(f"Unknown subject {name!r}: choose one of {', '.join(SUBJECTS)}.")


# --- the pedestrian scan ---------------------------------------------------------------------------------

# A walking figure as capsules (start, end, radius), 1.8 units tall before normalisation.
PEDESTRIAN_CAPSULES = (
    ((0.0, 0.05, 0.0), (0.0, 0.55, 0.0), 0.2),  # torso
    ((0.0, 0.93, 0.0), (0.0, 0.95, 0.02), 0.16),  # head
    ((0.0, 0.6, 0.0), (0.0, 0.8, 0.0), 0.07),  # neck
    ((0.22, 0.6, 0.0), (0.4, 0.08, 0.06), 0.065),  # arms
    ((-0.22, 0.6, 0.0), (-0.38, 0.06, -0.04), 0.065),
    ((0.1, 0.05, 0.0), (0.14, -0.85, 0.02), 0.09),  # legs
    ((-0.1, 0.05, 0.0), (-0.15, -0.85, -0.04), 0.09),
)


def capsule_surface_points(
    capsules: tuple[tuple[tuple[float, float, float], tuple[float, float, float], float], ...],
    n: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points (n, 3) and normals (n, 3) on the outer surface of a union of capsules (points inside another
    capsule are dropped and drawn again)."""
    caps = torch.tensor([[*a, *b, r] for a, b, r in capsules])  # (C, 7)
    a, b, r = caps[:, 0:3], caps[:, 3:6], caps[:, 6]
    area = 2 * math.pi * r * (b - a).norm(dim=1) + 4 * math.pi * r**2
    points, normals, have = [], [], 0
    while have < n:
        m = 2 * n
        which = torch.multinomial(area, m, replacement=True, generator=generator)
        t = torch.rand(m, 1, generator=generator)
        d = torch.nn.functional.normalize(torch.randn(m, 3, generator=generator), dim=1)
        q = a[which] + t * (b[which] - a[which]) + r[which, None] * d
        p, nrm = _onto_capsule(q, a[which], b[which], r[which])
        ab_all = (b - a)[None]  # (1, C, 3)
        s_all = (((p[:, None] - a[None]) * ab_all).sum(-1) / (ab_all * ab_all).sum(-1).clamp(min=1e-12)).clamp(0, 1)
        sdf = (p[:, None] - (a[None] + s_all[..., None] * ab_all)).norm(dim=-1) - r[None]  # (m, C)
        sdf[torch.arange(m), which] = 1.0
        keep = (sdf > -1e-4).all(1)
        points.append(p[keep])
        normals.append(nrm[keep])
        have += int(keep.sum())
    return torch.cat(points)[:n], torch.cat(normals)[:n]


def _onto_capsule(
    q: torch.Tensor, a: torch.Tensor, b: torch.Tensor, r: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project points q (m, 3) onto their capsules' surfaces (axis a→b, radius r): points and normals."""
    ab = b - a
    s = (((q - a) * ab).sum(1) / (ab * ab).sum(1).clamp(min=1e-12)).clamp(0, 1)
    axis = a + s[:, None] * ab
    nrm = torch.nn.functional.normalize(q - axis, dim=1)
    return axis + r[:, None] * nrm, nrm


def pedestrian_points(n: int = PEDESTRIAN_POINTS, scanlines: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """The sparse pedestrian scan: `n` points (n, 3) and normals on a walking figure, on `scanlines` horizontal
    LiDAR-like rings, in the unit sphere. Fixed: the same points every call (the book's file is one scan)."""
    generator = torch.Generator().manual_seed(239)
    dense, normals = capsule_surface_points(PEDESTRIAN_CAPSULES, 40 * n, generator)
    lo, hi = float(dense[:, 1].min()), float(dense[:, 1].max())
    rings = torch.linspace(lo, hi, scanlines)  # (L,)
    gap = (hi - lo) / (scanlines - 1)
    near = (dense[:, 1:2] - rings[None]).abs().amin(1) < 0.12 * gap  # points on a scan line
    dense, normals = dense[near], normals[near]
    keep = torch.randperm(len(dense), generator=generator)[:n]
    points = dense[keep]
    centre = (points.amax(0) + points.amin(0)) / 2
    scale = (points - centre).norm(dim=1).amax()
    return (points - centre) / scale, normals[keep]
