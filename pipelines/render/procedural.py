"""Procedural meshes (ico-sphere, torus, cube, diamond, dodecahedron), vertex colouring, normalisation and surface sampling."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from pytorch3d.renderer import TexturesVertex
from pytorch3d.structures import Meshes

from pipelines.render.colors import Color

PROCEDURAL = ("ico-sphere", "torus", "cube", "diamond", "dodecahedron")

_PROCEDURAL_COLORS: dict[str, Color] = {
    "ico-sphere": (0.88, 0.56, 0.32),
    "torus": (0.36, 0.62, 0.88),
    "cube": (0.52, 0.80, 0.46),
    "diamond": (0.70, 0.52, 0.86),
    "dodecahedron": (0.90, 0.78, 0.34),
}


def _cube() -> tuple[torch.Tensor, torch.Tensor]:
    corners = torch.tensor([[x, y, z] for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)]) * 0.6
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = torch.tensor([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))], dtype=torch.int64)
    return corners, orient_outward(corners, faces)


def _diamond() -> tuple[torch.Tensor, torch.Tensor]:
    """An octahedron stretched along Y (the book's `diamond.obj` role): 6 verts, 8 faces."""
    verts = torch.tensor([[0.6, 0, 0], [-0.6, 0, 0], [0, 1.0, 0], [0, -1.0, 0], [0, 0, 0.6], [0, 0, -0.6]])
    faces = torch.tensor([[a, b, c] for a in (0, 1) for b in (2, 3) for c in (4, 5)], dtype=torch.int64)
    return verts, orient_outward(verts, faces)


def _dodecahedron() -> tuple[torch.Tensor, torch.Tensor]:
    """A regular dodecahedron as the dual of the icosahedron: 20 verts, 12 pentagons fanned into 36 triangles."""
    from pytorch3d.utils import ico_sphere

    ico = ico_sphere(0)
    ico_verts, ico_faces = ico.verts_packed(), ico.faces_packed()  # (12, 3), (20, 3)
    verts = torch.nn.functional.normalize(ico_verts[ico_faces].mean(1), dim=1) * 0.9  # (20, 3) face centres
    faces = []
    for i, axis in enumerate(ico_verts):
        ring = (ico_faces == i).any(1).nonzero()[:, 0]  # the 5 faces around ico vertex i
        ref = torch.nn.functional.normalize(verts[ring[0]] - axis * (verts[ring[0]] @ axis), dim=0)
        side = torch.cross(axis, ref, dim=0)
        rel = verts[ring]
        ring = ring[torch.argsort(torch.atan2(rel @ side, rel @ ref))]
        faces += [[int(ring[0]), int(ring[k]), int(ring[k + 1])] for k in (1, 2, 3)]
    faces_t = torch.tensor(faces, dtype=torch.int64)
    return verts, orient_outward(verts, faces_t)


def orient_outward(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Flip faces whose normal points towards the centroid (for convex, star-shaped procedural meshes)."""
    tri = verts[faces]  # (F, 3, 3)
    normal = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=1)
    outward = ((tri.mean(1) - verts.mean(0)) * normal).sum(1) >= 0
    return torch.where(outward[:, None], faces, faces[:, [0, 2, 1]])


def torus_with_faces(num_faces: int, device: torch.device | str = "cpu") -> Meshes:
    """A torus with about `num_faces` triangles (2 * sides * rings), vertex-coloured; for benchmarks."""
    from pytorch3d.utils import torus

    sides = max(3, round(math.sqrt(num_faces / 4)))
    rings = max(3, round(num_faces / 2 / sides))
    mesh = torus(r=0.3, R=0.7, sides=sides, rings=rings, device=torch.device(device))
    return with_vertex_colors(mesh, _PROCEDURAL_COLORS["torus"])


def procedural_mesh(name: str, *, level: int = 3, device: torch.device | str = "cpu") -> Meshes:
    """One of `PROCEDURAL`, vertex-coloured, fitting in the unit sphere. `level` sets the ico-sphere's detail."""
    device = torch.device(device)
    if name == "ico-sphere":
        from pytorch3d.utils import ico_sphere

        mesh = ico_sphere(level, device)
    elif name == "torus":
        from pytorch3d.utils import torus

        mesh = torus(r=0.3, R=0.7, sides=24, rings=48, device=device)
    elif name in ("cube", "diamond", "dodecahedron"):
        verts, faces = {"cube": _cube, "diamond": _diamond, "dodecahedron": _dodecahedron}[name]()
        mesh = Meshes([verts.float().to(device)], [faces.to(device)])
    else:
        raise ValueError(f"Unknown procedural mesh {name!r}: choose one of {', '.join(PROCEDURAL)}.")
    return with_vertex_colors(mesh, _PROCEDURAL_COLORS[name])


def sample_surface(
    verts: torch.Tensor, faces: torch.Tensor, n: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` points (n, 3) uniformly on a mesh's surface and their face normals (n, 3); differentiable in `verts`.

    Faces are drawn by area and barycentric weights by the square-root trick, from `generator` on the CPU (so the
    samples do not depend on the device); the weights are then moved to `verts.device`.
    """
    face_verts = verts[faces]  # (F, 3, 3)
    cross = torch.cross(face_verts[:, 1] - face_verts[:, 0], face_verts[:, 2] - face_verts[:, 0], dim=1)
    areas = cross.norm(dim=1).detach()  # (F,) twice the areas
    if not bool(areas.sum() > 0):
        raise ValueError("The mesh has no surface area (all its faces are degenerate), so no points can be sampled.")
    idx = torch.multinomial(areas.cpu().double(), n, replacement=True, generator=generator).to(verts.device)
    u, v = torch.rand(2, n, 1, generator=generator, dtype=verts.dtype).to(verts.device)
    su = u.sqrt()
    w0, w1, w2 = 1 - su, su * (1 - v), su * v  # (n, 1) each
    fv = face_verts[idx]
    points = w0 * fv[:, 0] + w1 * fv[:, 1] + w2 * fv[:, 2]
    normals = torch.nn.functional.normalize(cross[idx], dim=1)
    return points, normals


def with_vertex_colors(mesh: Meshes, color: Sequence[float] | None = None) -> Meshes:
    """The mesh with a TexturesVertex: a uniform `color`, shaded gently by height so texture is visible."""
    base = torch.tensor(color if color is not None else (0.75, 0.75, 0.78), dtype=torch.float32, device=mesh.device)
    feats = []
    for verts in mesh.verts_list():
        if len(verts):
            lo, hi = verts[:, 1].min(), verts[:, 1].max()
            t = (verts[:, 1:2] - lo) / (hi - lo).clamp(min=1e-6)  # (V, 1) height in [0, 1]
        else:
            t = verts[:, 1:2]
        feats.append((base * (0.75 + 0.25 * t)).clamp(0, 1))  # (V, 3)
    return Meshes(mesh.verts_list(), mesh.faces_list(), textures=TexturesVertex(feats))


def normalize_verts(verts: torch.Tensor) -> torch.Tensor:
    """Centre the bounding box at the origin and scale to fit the unit sphere. (V, 3) -> (V, 3)."""
    if verts.numel() == 0:
        return verts
    center = (verts.min(0).values + verts.max(0).values) / 2
    radius = (verts - center).norm(dim=1).max().clamp(min=1e-8)
    return (verts - center) / radius
