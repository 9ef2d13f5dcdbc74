"""Procedural sample files for the Inspect tab (deterministic, no downloads) and synthetic meshes for tests and bench."""

# Run `python -m assets.make_assets` (or `python assets/make_assets.py`) to rewrite the committed samples in assets/.

from __future__ import annotations

import io
import struct
import sys
from pathlib import Path

import numpy as np

ASSETS_DIR = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------------------------------------------
# Shapes
# ----------------------------------------------------------------------------------------------------------------


def icosphere(level: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Unit ico-sphere: (V, 3) float32 vertices, (F, 3) int64 faces, counter-clockwise seen from outside.

    V = 10 * 4**level + 2, F = 20 * 4**level.
    """
    t = (1.0 + 5.0**0.5) / 2.0
    verts = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
             [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]  # fmt: skip
    faces = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
             [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11],
             [6, 2, 10], [8, 6, 7], [9, 8, 1]]  # fmt: skip
    v = [np.asarray(p, dtype=np.float64) / np.linalg.norm(p) for p in verts]
    for _ in range(level):
        cache: dict[tuple[int, int], int] = {}
        new_faces = []
        for a, b, c in faces:
            ab, bc, ca = _midpoint(v, cache, a, b), _midpoint(v, cache, b, c), _midpoint(v, cache, c, a)
            new_faces += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        faces = new_faces
    return np.asarray(v, dtype=np.float32), np.asarray(faces, dtype=np.int64)


def _midpoint(v: list[np.ndarray], cache: dict[tuple[int, int], int], a: int, b: int) -> int:
    """Index of the unit-sphere midpoint of edge (a, b), appended to v once per edge."""
    key = (min(a, b), max(a, b))
    if key not in cache:
        m = v[a] + v[b]
        v.append(m / np.linalg.norm(m))
        cache[key] = len(v) - 1
    return cache[key]


def torus(nu: int, nv: int, major: float = 1.0, minor: float = 0.35) -> dict[str, np.ndarray]:
    """Closed torus around +Z on an nu x nv grid: verts (nu*nv, 3), faces (2*nu*nv, 3), normals, uvs."""
    u = np.arange(nu) * (2 * np.pi / nu)
    w = np.arange(nv) * (2 * np.pi / nv)
    uu, ww = np.meshgrid(u, w, indexing="ij")  # (nu, nv)
    ring = major + minor * np.cos(ww)
    verts = np.stack([ring * np.cos(uu), ring * np.sin(uu), minor * np.sin(ww)], axis=-1).reshape(-1, 3)
    normals = np.stack([np.cos(ww) * np.cos(uu), np.cos(ww) * np.sin(uu), np.sin(ww)], axis=-1).reshape(-1, 3)
    i = np.arange(nu)[:, None]
    j = np.arange(nv)[None, :]
    a = i * nv + j
    b = ((i + 1) % nu) * nv + j
    c = ((i + 1) % nu) * nv + (j + 1) % nv
    d = i * nv + (j + 1) % nv
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    uvs = np.stack([uu / (2 * np.pi), ww / (2 * np.pi)], axis=-1).reshape(-1, 2)
    return {
        "verts": verts.astype(np.float32),
        "faces": faces.astype(np.int64),
        "normals": normals.astype(np.float32),
        "uvs": uvs.astype(np.float32),
    }


def checker_texture(size: int = 128, cells: int = 8):
    """An RGB checker over a red-to-blue gradient, with a bright corner square to show orientation (PIL image)."""
    from PIL import Image

    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    check = ((np.floor(x * cells) + np.floor(y * cells)) % 2)[..., None]
    grad = np.stack([1.0 - x, 0.35 + 0.3 * y, x], axis=-1)
    img = grad * (0.55 + 0.45 * check)
    img[: size // 8, : size // 8] = [1.0, 0.9, 0.1]  # top-left marker (uv near (0, 1))
    return Image.fromarray((img * 255).round().astype(np.uint8), "RGB")


def _position_colors(verts: np.ndarray) -> np.ndarray:
    """(V, 3) uint8 colours that vary smoothly with position."""
    lo, hi = verts.min(0), verts.max(0)
    return ((verts - lo) / np.maximum(hi - lo, 1e-9) * 200 + 40).round().astype(np.uint8)


# ----------------------------------------------------------------------------------------------------------------
# Writers for the committed samples
# ----------------------------------------------------------------------------------------------------------------


def write_textured_cube(out: Path) -> list[Path]:
    """textured_cube.obj/.mtl/.png: unit cube centred at 0 as 6 textured quads (8 v, 4 vt, 6 vn, 12 triangles)."""
    corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    quads = [  # (vertex indices counter-clockwise from outside, normal)
        ([0, 1, 3, 2], [-1, 0, 0]),
        ([4, 6, 7, 5], [1, 0, 0]),
        ([0, 4, 5, 1], [0, -1, 0]),
        ([2, 3, 7, 6], [0, 1, 0]),
        ([0, 2, 6, 4], [0, 0, -1]),
        ([1, 5, 7, 3], [0, 0, 1]),
    ]
    lines = [
        "# Unit cube with a procedural checker texture (assets/make_assets.py)",
        "mtllib textured_cube.mtl",
        "o cube",
    ]
    lines += [f"v {x:g} {y:g} {z:g}" for x, y, z in corners]
    lines += ["vt 0 0", "vt 1 0", "vt 1 1", "vt 0 1"]
    lines += [f"vn {a:g} {b:g} {c:g}" for _, (a, b, c) in quads]
    lines += ["usemtl checker", "s off"]
    for k, (q, _) in enumerate(quads):
        lines.append("f " + " ".join(f"{v + 1}/{t + 1}/{k + 1}" for t, v in enumerate(q)))
    (out / "textured_cube.obj").write_text("\n".join(lines) + "\n")
    (out / "textured_cube.mtl").write_text(
        "# Material of textured_cube.obj\nnewmtl checker\nKa 0.2 0.2 0.2\nKd 1 1 1\nKs 0.3 0.3 0.3\nNs 32\nd 1\n"
        "illum 2\nmap_Kd textured_cube.png\n"
    )
    checker_texture(128, 8).save(out / "textured_cube.png", optimize=True)
    return [out / "textured_cube.obj", out / "textured_cube.mtl", out / "textured_cube.png"]


def write_points_ply(out: Path, n: int = 600) -> Path:
    """points_colored.ply: ASCII point cloud, n points on the unit sphere with normals and RGBA colours."""
    k = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * k / n)
    theta = np.pi * (1 + 5**0.5) * k
    pts = np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=1)
    rgb = _position_colors(pts)
    alpha = np.full(n, 255, dtype=np.uint8)
    alpha[pts[:, 2] < -0.5] = 128
    head = (
        "ply\nformat ascii 1.0\ncomment Fibonacci sphere with normals and RGBA colours (assets/make_assets.py)\n"
        f"element vertex {n}\nproperty float x\nproperty float y\nproperty float z\nproperty float nx\n"
        "property float ny\nproperty float nz\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
        "property uchar alpha\nend_header\n"
    )
    rows = [f"{x:.5f} {y:.5f} {z:.5f} {x:.4f} {y:.4f} {z:.4f} {r} {g} {b} {a}"
            for (x, y, z), (r, g, b), a in zip(pts, rgb, alpha, strict=True)]  # fmt: skip
    path = out / "points_colored.ply"
    path.write_text(head + "\n".join(rows) + "\n")
    return path


def write_torus_ply(out: Path) -> Path:
    """torus_binary.ply: binary little-endian torus, 1,024 vertices with normals and colours, 2,048 triangles."""
    t = torus(32, 32)
    n = len(t["verts"])
    vdt = np.dtype([("xyz", "<f4", (3,)), ("n", "<f4", (3,)), ("rgb", "u1", (3,))])
    vrec = np.zeros(n, dtype=vdt)
    vrec["xyz"], vrec["n"], vrec["rgb"] = t["verts"], t["normals"], _position_colors(t["verts"])
    frec = np.zeros(len(t["faces"]), dtype=[("k", "u1"), ("i", "<i4", (3,))])
    frec["k"], frec["i"] = 3, t["faces"]
    head = (
        "ply\nformat binary_little_endian 1.0\ncomment torus 32x32 (assets/make_assets.py)\n"
        f"element vertex {n}\nproperty float x\nproperty float y\nproperty float z\nproperty float nx\n"
        "property float ny\nproperty float nz\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element face {len(frec)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    path = out / "torus_binary.ply"
    path.write_bytes(head.encode("ascii") + vrec.tobytes() + frec.tobytes())
    return path


def cylinder(sides: int = 24) -> tuple[np.ndarray, list[list[int]]]:
    """Closed cylinder (radius 0.5, height 1): 2*sides vertices; side quads and two n-gon caps."""
    ang = np.arange(sides) * 2 * np.pi / sides
    ring = np.stack([0.5 * np.cos(ang), 0.5 * np.sin(ang)], axis=1)
    verts = np.concatenate([np.c_[ring, np.full(sides, -0.5)], np.c_[ring, np.full(sides, 0.5)]]).astype(np.float32)
    polys = [[i, (i + 1) % sides, sides + (i + 1) % sides, sides + i] for i in range(sides)]
    polys.append(list(range(sides - 1, -1, -1)))  # bottom cap, facing -Z
    polys.append(list(range(sides, 2 * sides)))  # top cap, facing +Z
    return verts, polys


def write_cylinder_be_ply(out: Path, sides: int = 24) -> Path:
    """cylinder_be.ply: binary big-endian, quads and two 24-gons (ragged lists), plus an 'edge' element."""
    verts, polys = cylinder(sides)
    head = (
        "ply\nformat binary_big_endian 1.0\ncomment cylinder with n-gon caps (assets/make_assets.py)\n"
        f"element vertex {len(verts)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(polys)}\nproperty list uchar int vertex_indices\n"
        f"element edge {sides}\nproperty int vertex1\nproperty int vertex2\nend_header\n"
    )
    body = verts.astype(">f4").tobytes()
    body += b"".join(struct.pack(f">B{len(p)}i", len(p), *p) for p in polys)
    body += np.stack([np.arange(sides), np.arange(sides) + sides], axis=1).astype(">i4").tobytes()
    path = out / "cylinder_be.ply"
    path.write_bytes(head.encode("ascii") + body)
    return path


def write_two_materials_obj(out: Path) -> list[Path]:
    """two_materials.obj/.mtl: a cube of quads and a pyramid, 2 materials, groups, negative (relative) indices.

    13 vertices, 6 + 5 polygons, 12 + 6 = 18 triangles. Each object's faces use indices relative to the vertices
    written so far, so the pyramid's -1 is its own apex, not the cube's last vertex.
    """
    cube = [[x, y, z] for x in (-1.0, 0.0) for y in (0.0, 1.0) for z in (0.0, 1.0)]
    lines = [
        "# Two objects, two materials, quads and negative indices (assets/make_assets.py)",
        "mtllib two_materials.mtl",
    ]
    lines += ["g cube", "usemtl red"] + [f"v {x:g} {y:g} {z:g}" for x, y, z in cube]
    lines += ["vn -1 0 0", "vn 1 0 0", "vn 0 -1 0", "vn 0 1 0", "vn 0 0 -1", "vn 0 0 1"]
    cube_quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    for k, q in enumerate(cube_quads):
        lines.append("f " + " ".join(f"{v - 8}//{k - 6}" for v in q))
        if k == 3:
            lines.append("usemtl blue")
    pyramid = [[1, 0, 0], [2, 0, 0], [2, 0, 1], [1, 0, 1], [1.5, 1, 0.5]]
    lines += ["g pyramid", "usemtl blue"] + [f"v {x:g} {y:g} {z:g}" for x, y, z in pyramid]
    lines.append("f -5 -4 -3 -2")  # base quad, facing -Y
    lines += [f"f {b} {a} -1" for a, b in ((-5, -4), (-4, -3), (-3, -2), (-2, -5))]  # sides, apex last
    (out / "two_materials.obj").write_text("\n".join(lines) + "\n")
    (out / "two_materials.mtl").write_text(
        "newmtl red\nKa 0.1 0 0\nKd 0.8 0.1 0.1\nKs 0.5 0.5 0.5\nNs 50\nd 1\n\n"
        "newmtl blue\nKa 0 0 0.1\nKd 0.1 0.2 0.8\nKs 0.2 0.2 0.2\nNs 10\nTr 0.25\n"
    )
    return [out / "two_materials.obj", out / "two_materials.mtl"]


def stl_bytes(verts: np.ndarray, faces: np.ndarray, header: str = "mesh_io") -> bytes:
    """Binary STL of a triangle mesh, with facet normals computed from the triangles."""
    tri = verts[faces].astype(np.float32)  # (F, 3, 3)
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    rec = np.zeros(len(faces), dtype=[("n", "<f4", (3,)), ("v", "<f4", (3, 3)), ("a", "<u2")])
    rec["n"], rec["v"] = n, tri
    return header.encode("ascii")[:80].ljust(80, b" ") + struct.pack("<I", len(faces)) + rec.tobytes()


def write_stl(out: Path) -> Path:
    """icosphere.stl: binary STL of a level-2 ico-sphere (320 triangles, 960 stored corners)."""
    verts, faces = icosphere(2)
    path = out / "icosphere.stl"
    path.write_bytes(stl_bytes(verts, faces, "icosphere level 2 (assets/make_assets.py)"))
    return path


def write_off(out: Path) -> Path:
    """octahedron.off: plain OFF with 6 vertices (RGB colours as 0-255 integers) and 8 triangles."""
    verts = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
    faces = [[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]]
    rgb = _position_colors(verts.astype(np.float32))
    lines = ["OFF", "# octahedron with vertex colours (assets/make_assets.py)", f"{len(verts)} {len(faces)} 12"]
    lines += [f"{x} {y} {z} {r} {g} {b}" for (x, y, z), (r, g, b) in zip(verts, rgb, strict=True)]
    lines += ["3 " + " ".join(map(str, f)) for f in faces]
    path = out / "octahedron.off"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_glb(out: Path) -> Path:
    """textured_sphere.glb: level-3 ico-sphere (642 vertices, 1,280 triangles) with uvs and an embedded texture."""
    import trimesh

    verts, faces = icosphere(3)
    uvs = np.stack(
        [
            0.5 + np.arctan2(verts[:, 1], verts[:, 0]) / (2 * np.pi),
            0.5 + np.arcsin(np.clip(verts[:, 2], -1, 1)) / np.pi,
        ],
        axis=1,
    )
    material = trimesh.visual.material.PBRMaterial(
        name="checker", baseColorTexture=checker_texture(64, 8), metallicFactor=0.0, roughnessFactor=0.8
    )
    mesh = trimesh.Trimesh(verts, faces, process=False, visual=trimesh.visual.TextureVisuals(uv=uvs, material=material))
    path = out / "textured_sphere.glb"
    path.write_bytes(trimesh.exchange.gltf.export_glb(trimesh.Scene(mesh), include_normals=False))
    return path


def make_all(out: Path = ASSETS_DIR) -> list[Path]:
    """Write every committed sample into `out`; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    files = write_textured_cube(out)
    files += [write_points_ply(out), write_torus_ply(out), write_cylinder_be_ply(out)]
    files += write_two_materials_obj(out)
    files += [write_stl(out), write_off(out), write_glb(out)]
    return files


# ----------------------------------------------------------------------------------------------------------------
# Synthetic meshes of a given size (tests, benchmarks)
# ----------------------------------------------------------------------------------------------------------------

MESH_FORMATS = ("ply", "ply_ascii", "ply_be", "obj", "off", "stl", "glb")


def synthetic_mesh(n_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """A torus with exactly n_faces triangles (the grid is cut short when n_faces is not 2*a*b): verts, faces."""
    a = max(3, int(np.ceil(np.sqrt(n_faces / 2))))
    b = max(3, int(np.ceil(n_faces / (2 * a))))
    t = torus(a, b)
    faces = t["faces"]
    order = np.argsort(np.arange(len(faces)) % (len(faces) // 2), kind="stable")  # keep quads together
    faces = faces[order][:n_faces]
    return t["verts"], faces


def make_mesh_file(path: Path, n_faces: int, fmt: str | None = None) -> Path:
    """Write a synthetic torus of n_faces triangles to `path` in `fmt` (default: from the suffix).

    fmt: 'ply' (binary little endian), 'ply_ascii', 'ply_be', 'obj', 'off', 'stl' (binary) or 'glb'.
    """
    path = Path(path)
    fmt = fmt or path.suffix.lower().lstrip(".")
    verts, faces = synthetic_mesh(n_faces)
    v, f = len(verts), len(faces)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("ply", "ply_be"):
        bo = ">" if fmt == "ply_be" else "<"
        rec = np.zeros(f, dtype=[("k", "u1"), ("i", f"{bo}i4", (3,))])
        rec["k"], rec["i"] = 3, faces
        kind = "big" if bo == ">" else "little"
        head = (
            f"ply\nformat binary_{kind}_endian 1.0\nelement vertex {v}\nproperty float x\nproperty float y\n"
            f"property float z\nelement face {f}\nproperty list uchar int vertex_indices\nend_header\n"
        )
        path.write_bytes(head.encode("ascii") + verts.astype(f"{bo}f4").tobytes() + rec.tobytes())
    elif fmt == "ply_ascii":
        head = (
            f"ply\nformat ascii 1.0\nelement vertex {v}\nproperty float x\nproperty float y\nproperty float z\n"
            f"element face {f}\nproperty list uchar int vertex_indices\nend_header\n"
        )
        buf = io.StringIO()
        buf.write(head)
        np.savetxt(buf, verts, fmt="%.6g")
        np.savetxt(buf, faces, fmt="3 %d %d %d")
        path.write_text(buf.getvalue())
    elif fmt == "obj":
        buf = io.StringIO()
        np.savetxt(buf, verts, fmt="v %.6g %.6g %.6g")
        np.savetxt(buf, faces + 1, fmt="f %d %d %d")
        path.write_text(buf.getvalue())
    elif fmt == "off":
        buf = io.StringIO()
        buf.write(f"OFF\n{v} {f} 0\n")
        np.savetxt(buf, verts, fmt="%.6g")
        np.savetxt(buf, faces, fmt="3 %d %d %d")
        path.write_text(buf.getvalue())
    elif fmt == "stl":
        path.write_bytes(stl_bytes(verts, faces))
    elif fmt == "glb":
        import trimesh

        mesh = trimesh.Trimesh(verts, faces, process=False)
        path.write_bytes(trimesh.exchange.gltf.export_glb(trimesh.Scene(mesh), include_normals=False))
    else:
        raise ValueError(f"Unknown format {fmt!r}: choose from {', '.join(MESH_FORMATS)}.")
    return path


def main() -> None:
    files = make_all(ASSETS_DIR)
    total = sum(p.stat().st_size for p in files)
    for p in files:
        print(f"{p.stat().st_size:>8,d}  {p.name}")
    print(f"{total:>8,d}  bytes in {len(files)} files")


if __name__ == "__main__":
    if __package__ in (None, ""):
        sys.path.insert(0, str(ASSETS_DIR.parent))
    main()
