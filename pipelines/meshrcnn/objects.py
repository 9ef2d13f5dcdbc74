"""Procedural objects for Mesh R-CNN: primitives and furniture-like composites (chairs, tables, sofas, shelves,
lamps) built from boxes, cylinders (frusta) and ellipsoids, with an exact inside test for voxels.

An object is a tuple of `Part`s in its own frame (+Y up, metres, bounding box centred at the origin and scaled so
its half-diagonal is 0.5, as ShapeNet's models fit a unit-diameter sphere). Every shape is drawn from one integer
`shape_id` through a seeded generator, so a held-out split is a range of ids that training never draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from pytorch3d.utils import ico_sphere

from pipelines.render.procedural import sample_surface

CATEGORIES = ("box", "cylinder", "ellipsoid", "chair", "table", "sofa", "shelf", "lamp")
KINDS = ("box", "frustum", "ellipsoid")
_FRUSTUM_SIDES = 20


@dataclass(frozen=True)
class Part:
    """One solid: `kind` box (size = half extents), frustum (size = bottom radius, half height, top radius; axis
    +Y) or ellipsoid (size = radii); `center` (3,) in the object frame; `color` RGB in [0, 1]."""

    kind: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    color: tuple[float, float, float]


def _box_mesh() -> tuple[torch.Tensor, torch.Tensor]:
    corners = torch.tensor([[x, y, z] for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)])
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = torch.tensor([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))], dtype=torch.int64)
    return corners, faces


def _frustum_mesh(r0: float, h: float, r1: float) -> tuple[torch.Tensor, torch.Tensor]:
    n = _FRUSTUM_SIDES
    ang = torch.arange(n, dtype=torch.float32) * (2 * math.pi / n)
    ring = torch.stack([torch.cos(ang), torch.zeros(n), torch.sin(ang)], 1)  # (n, 3)
    bottom = ring * r0 + torch.tensor([0.0, -h, 0.0])
    top = ring * r1 + torch.tensor([0.0, h, 0.0])
    verts = torch.cat([bottom, top, torch.tensor([[0.0, -h, 0.0], [0.0, h, 0.0]])])  # (2n + 2, 3)
    i = torch.arange(n)
    j = (i + 1) % n
    side = torch.cat([torch.stack([i, n + i, n + j], 1), torch.stack([i, n + j, j], 1)])
    caps = torch.cat(
        [
            torch.stack([torch.full_like(i, 2 * n), i, j], 1),
            torch.stack([torch.full_like(i, 2 * n + 1), n + j, n + i], 1),
        ]
    )
    return verts, torch.cat([side, caps])


def part_mesh(part: Part) -> tuple[torch.Tensor, torch.Tensor]:
    """The part's surface: verts (V, 3) in the object frame and faces (F, 3), outward-facing."""
    sx, sy, sz = part.size
    if part.kind == "box":
        verts, faces = _box_mesh()
        verts = verts * torch.tensor([sx, sy, sz])
    elif part.kind == "frustum":
        verts, faces = _frustum_mesh(sx, sy, sz)
    elif part.kind == "ellipsoid":
        sphere = ico_sphere(2)
        verts, faces = sphere.verts_packed() * torch.tensor([sx, sy, sz]), sphere.faces_packed()
    else:
        raise ValueError(f"Unknown part kind {part.kind!r}: choose one of {', '.join(KINDS)}.")
    verts = verts + torch.tensor(part.center)
    tri = verts[faces]
    normal = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=1)
    outward = ((tri.mean(1) - torch.tensor(part.center)) * normal).sum(1) >= 0
    return verts, torch.where(outward[:, None], faces, faces[:, [0, 2, 1]])


def inside(parts: tuple[Part, ...], points: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """(P,) bool: which object-frame `points` (P, 3) lie inside any part (shrunk by `margin`)."""
    hit = torch.zeros(points.shape[0], dtype=torch.bool, device=points.device)
    for part in parts:
        hit |= _inside_part(part, points, margin)
    return hit


def _inside_part(part: Part, points: torch.Tensor, margin: float) -> torch.Tensor:
    p = points - torch.tensor(part.center, dtype=points.dtype, device=points.device)
    sx, sy, sz = part.size
    if part.kind == "box":
        half = torch.tensor([sx, sy, sz], dtype=points.dtype, device=points.device) - margin
        return (p.abs() <= half).all(dim=1)
    if part.kind == "frustum":
        t = ((p[:, 1] + sy) / (2 * sy)).clamp(0, 1)  # 0 at the bottom cap, 1 at the top
        radius = sx + (sz - sx) * t - margin
        return (p[:, 1].abs() <= sy - margin) & (p[:, 0] ** 2 + p[:, 2] ** 2 <= radius.clamp(min=0) ** 2)
    radii = torch.tensor([sx, sy, sz], dtype=points.dtype, device=points.device) - margin
    return ((p / radii.clamp(min=1e-6)) ** 2).sum(1) <= 1.0


def object_mesh(parts: tuple[Part, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All parts as one mesh (overlapping solids, not a boolean union): verts (V, 3), faces (F, 3), and per-vertex
    colours (V, 3)."""
    verts, faces, colors, offset = [], [], [], 0
    for part in parts:
        v, f = part_mesh(part)
        verts.append(v)
        faces.append(f + offset)
        colors.append(torch.tensor(part.color).expand(len(v), 3))
        offset += len(v)
    return torch.cat(verts), torch.cat(faces), torch.cat(colors)


def surface_points(parts: tuple[Part, ...], n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` points (n, 3) and normals (n, 3) uniformly on the object's outer surface: each part is sampled by its
    area, and points buried inside another part (a leg's end inside a seat) are dropped and redrawn."""
    meshes = [part_mesh(p) for p in parts]
    areas = torch.tensor([_area(v, f) for v, f in meshes])
    points, normals, have = [], [], 0
    for _ in range(6):
        want = int((n - have) * 1.6) + 64
        counts = torch.multinomial(areas / areas.sum(), want, replacement=True, generator=generator).bincount(
            minlength=len(parts)
        )
        for k, ((v, f), count) in enumerate(zip(meshes, counts.tolist())):
            if count == 0:
                continue
            pts, nrm = sample_surface(v, f, count, generator)
            others = tuple(p for i, p in enumerate(parts) if i != k)
            keep = ~inside(others, pts, margin=1e-4) if others else torch.ones(count, dtype=torch.bool)
            points.append(pts[keep])
            normals.append(nrm[keep])
            have += int(keep.sum())
        if have >= n:
            break
    all_pts, all_nrm = torch.cat(points), torch.cat(normals)
    order = torch.randperm(len(all_pts), generator=generator)[:n]
    if len(order) < n:  # a degenerate object: repeat points rather than fail
        order = order[torch.arange(n) % max(len(order), 1)]
    return all_pts[order], all_nrm[order]


def _area(verts: torch.Tensor, faces: torch.Tensor) -> float:
    tri = verts[faces]
    return float(torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=1).norm(dim=1).sum() / 2)


# --- the generator -------------------------------------------------------------------------------------------


class _Draw:
    """Seeded draws for one shape."""

    def __init__(self, shape_id: int) -> None:
        self.g = torch.Generator().manual_seed(1_000_003 * shape_id + 17)

    def u(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=self.g))

    def pick(self, n: int) -> int:
        return int(torch.randint(n, (), generator=self.g))

    def color(self) -> tuple[float, float, float]:
        hue, sat, val = self.u(0, 1), self.u(0.35, 0.85), self.u(0.45, 0.95)
        return _hsv(hue, sat, val)


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


def _legs(d: _Draw, w: float, dz: float, h: float, y_top: float, thick: float, color, round_legs: bool) -> list[Part]:
    parts = []
    for sx in (-1, 1):
        for sz in (-1, 1):
            c = (sx * (w - thick), y_top - h / 2, sz * (dz - thick))
            if round_legs:
                parts.append(Part("frustum", c, (thick, h / 2, thick), color))
            else:
                parts.append(Part("box", c, (thick, h / 2, thick), color))
    return parts


def _chair(d: _Draw) -> list[Part]:
    w, dz = d.u(0.35, 0.5), d.u(0.35, 0.5)
    leg_h, seat_t, back_h = d.u(0.35, 0.6), d.u(0.04, 0.08), d.u(0.4, 0.8)
    wood, cloth = d.color(), d.color()
    thick = d.u(0.03, 0.06)
    parts = _legs(d, w, dz, leg_h, 0.0, thick, wood, d.pick(2) == 1)
    parts.append(Part("box", (0.0, seat_t / 2, 0.0), (w, seat_t / 2, dz), cloth))
    back_t = d.u(0.03, 0.07)
    parts.append(Part("box", (0.0, seat_t + back_h / 2, -dz + back_t), (w, back_h / 2, back_t), cloth))
    return parts


def _table(d: _Draw) -> list[Part]:
    w, dz, h, top_t = d.u(0.5, 0.9), d.u(0.3, 0.7), d.u(0.4, 0.7), d.u(0.03, 0.07)
    color = d.color()
    if d.pick(3) == 0:  # a round pedestal table
        r = d.u(0.35, 0.6)
        return [
            Part("frustum", (0.0, -top_t / 2, 0.0), (r, top_t / 2, r), color),
            Part("frustum", (0.0, -top_t - h / 2, 0.0), (d.u(0.04, 0.08), h / 2, d.u(0.04, 0.08)), color),
            Part("frustum", (0.0, -top_t - h, 0.0), (r * 0.5, 0.02, r * 0.5), color),
        ]
    top = Part("box", (0.0, -top_t / 2, 0.0), (w, top_t / 2, dz), color)
    return [top, *_legs(d, w, dz, h, -top_t, d.u(0.03, 0.06), color, d.pick(2) == 1)]


def _sofa(d: _Draw) -> list[Part]:
    w, dz, base_h = d.u(0.6, 1.0), d.u(0.3, 0.45), d.u(0.15, 0.3)
    back_h, arm_w, arm_h = d.u(0.2, 0.45), d.u(0.06, 0.14), d.u(0.1, 0.25)
    body, cushion = d.color(), d.color()
    back_t = d.u(0.06, 0.12)
    parts = [
        Part("box", (0.0, base_h / 2, 0.0), (w, base_h / 2, dz), body),
        Part("box", (0.0, base_h + back_h / 2, -dz + back_t), (w, back_h / 2, back_t), cushion),
    ]
    for s in (-1, 1):
        parts.append(Part("box", (s * (w - arm_w), base_h + arm_h / 2, 0.0), (arm_w, arm_h / 2, dz), body))
    return parts


def _shelf(d: _Draw) -> list[Part]:
    w, dz, h, t = d.u(0.3, 0.6), d.u(0.12, 0.3), d.u(0.6, 1.2), d.u(0.02, 0.04)
    color = d.color()
    n_boards = 2 + d.pick(4)
    parts = [Part("box", (s * (w - t), 0.0, 0.0), (t, h, dz), color) for s in (-1, 1)]
    if d.pick(2):
        parts.append(Part("box", (0.0, 0.0, -dz + t), (w, h, t), color))
    for k in range(n_boards):
        y = -h + t + (2 * h - 2 * t) * k / (n_boards - 1)
        parts.append(Part("box", (0.0, y, 0.0), (w - t, t, dz), color))
    return parts


def _lamp(d: _Draw) -> list[Part]:
    base_r, pole_h, shade_h = d.u(0.12, 0.25), d.u(0.5, 1.0), d.u(0.15, 0.3)
    metal, shade = d.color(), d.color()
    base_t = d.u(0.02, 0.05)
    pole_r = d.u(0.015, 0.035)
    parts = [
        Part("frustum", (0.0, base_t, 0.0), (base_r, base_t, base_r * d.u(0.6, 1.0)), metal),
        Part("frustum", (0.0, 2 * base_t + pole_h / 2, 0.0), (pole_r, pole_h / 2, pole_r), metal),
    ]
    r_bottom, r_top = d.u(0.15, 0.3), d.u(0.06, 0.2)
    y = 2 * base_t + pole_h + shade_h / 2 - 0.03
    parts.append(Part("frustum", (0.0, y, 0.0), (r_bottom, shade_h / 2, r_top), shade))
    return parts


def _primitive(d: _Draw, kind: str) -> list[Part]:
    a, b, c = d.u(0.15, 0.5), d.u(0.15, 0.5), d.u(0.15, 0.5)
    if kind == "box":
        return [Part("box", (0.0, 0.0, 0.0), (a, b, c), d.color())]
    if kind == "cylinder":
        return [Part("frustum", (0.0, 0.0, 0.0), (a, b, a * d.u(0.3, 1.0)), d.color())]
    return [Part("ellipsoid", (0.0, 0.0, 0.0), (a, b, c), d.color())]


_BUILDERS = {"chair": _chair, "table": _table, "sofa": _sofa, "shelf": _shelf, "lamp": _lamp}


def make_object(shape_id: int, categories: tuple[str, ...] = CATEGORIES) -> tuple[str, tuple[Part, ...]]:
    """(category, parts) of shape `shape_id`: category drawn from `categories`, proportions and colours from the
    id's own generator; the result is centred (bounding box) and scaled to a half-diagonal of 0.5."""
    for c in categories:
        if c not in CATEGORIES:
            raise ValueError(f"Unknown category {c!r}: choose from {', '.join(CATEGORIES)}.")
    d = _Draw(shape_id)
    category = categories[d.pick(len(categories))]
    builder = _BUILDERS.get(category)
    parts = builder(d) if builder is not None else _primitive(d, category)
    return category, normalize_parts(tuple(parts))


def normalize_parts(parts: tuple[Part, ...]) -> tuple[Part, ...]:
    """Centre the parts' bounding box at the origin and scale its half-diagonal to 0.5."""
    verts = torch.cat([part_mesh(p)[0] for p in parts])
    lo, hi = verts.min(0).values, verts.max(0).values
    center = (lo + hi) / 2
    scale = 0.5 / float((hi - lo).norm() / 2)
    out = []
    for p in parts:
        c = ((torch.tensor(p.center) - center) * scale).tolist()
        out.append(Part(p.kind, (c[0], c[1], c[2]), tuple(s * scale for s in p.size), p.color))
    return tuple(out)
