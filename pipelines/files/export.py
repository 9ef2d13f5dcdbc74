"""Exporters of a loaded asset: GLB for the viewer, PLY (binary or ASCII, also for sampled points) and an OBJ zip."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipelines.files.convert import rgba_u8, to_trimesh
from pipelines.files.types import LoadedAsset

if TYPE_CHECKING:
    import trimesh


def _point_markers(asset: LoadedAsset, max_points: int, radius: float | None, seed: int = 0) -> trimesh.Trimesh:
    """Each point as a small coloured octahedron (6 vertices, 8 faces), so any GLB viewer shows it."""
    import trimesh

    pts = asset.verts
    idx = np.arange(len(pts))
    if len(pts) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(len(pts), max_points, replace=False))
    pts = pts[idx].astype(np.float64)
    if radius is None:
        diag = float(np.linalg.norm(asset.verts.max(0) - asset.verts.min(0))) or 1.0
        radius = diag * 0.6 / max(np.sqrt(len(pts)), 10.0)
    octa_v = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64) * radius
    octa_f = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    verts = (pts[:, None, :] + octa_v[None]).reshape(-1, 3)  # (6N, 3)
    faces = (octa_f[None] + 6 * np.arange(len(pts))[:, None, None]).reshape(-1, 3)  # (8N, 3)
    mesh = trimesh.Trimesh(verts, faces, process=False)
    if asset.colors is not None:
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=np.repeat(rgba_u8(asset.colors[idx]), 6, axis=0))
    return mesh


def export_glb(
    asset: LoadedAsset,
    out: Path,
    points_as: str = "markers",
    max_points: int = 20_000,
    point_radius: float | None = None,
) -> Path:
    """Write a GLB for gr.Model3D: the mesh with its texture or colours; a point cloud as up to `max_points` small
    coloured octahedra (`points_as="markers"`, visible in every viewer) or as a glTF POINTS primitive ("points")."""
    import trimesh

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if asset.is_point_cloud and points_as == "markers":
        geometry = _point_markers(asset, max_points, point_radius)
    else:
        geometry = to_trimesh(asset)
    data = trimesh.exchange.gltf.export_glb(trimesh.Scene(geometry), include_normals=asset.normals is not None)
    out.write_bytes(data)
    return out


def _ply_bytes(
    verts: np.ndarray,
    faces: np.ndarray | None,
    normals: np.ndarray | None,
    colors: np.ndarray | None,
    uvs: np.ndarray | None,
    binary: bool,
    comments: list[str],
    face_uvs: np.ndarray | None = None,
    face_colors: np.ndarray | None = None,
) -> bytes:
    """A PLY file: vertex x y z [nx ny nz] [red green blue alpha] [texture_u texture_v]; triangles with optional
    wedge `texcoord` lists and face colours."""
    n = len(verts)
    vfields: list[tuple[str, str, np.ndarray]] = [(c, "float", verts[:, i]) for i, c in enumerate("xyz")]
    if normals is not None:
        vfields += [(c, "float", normals[:, i]) for i, c in enumerate(("nx", "ny", "nz"))]
    if colors is not None:
        rgba = rgba_u8(colors)
        vfields += [(c, "uchar", rgba[:, i]) for i, c in enumerate(("red", "green", "blue", "alpha"))]
    if uvs is not None:
        vfields += [("texture_u", "float", uvs[:, 0]), ("texture_v", "float", uvs[:, 1])]
    head = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0"]
    head += [f"comment {c}" for c in comments] + [f"element vertex {n}"]
    head += [f"property {t} {name}" for name, t, _ in vfields]
    ffields: list[tuple[str, str, np.ndarray]] = []
    if faces is not None:
        ffields.append(("vertex_indices", "list uchar int", faces))
        if face_uvs is not None:
            ffields.append(("texcoord", "list uchar float", face_uvs))
        if face_colors is not None:
            fc = rgba_u8(face_colors)
            ffields += [(c, "uchar", fc[:, i]) for i, c in enumerate(("red", "green", "blue"))]
        head += [f"element face {len(faces)}"] + [f"property {t} {name}" for name, t, _ in ffields]
    head.append("end_header")
    header = ("\n".join(head) + "\n").encode("ascii")
    np_type = {"float": "<f4", "uchar": "u1", "int": "<i4"}
    if binary:
        vdt = np.dtype([(name, np_type[t]) for name, t, _ in vfields])
        vrec = np.empty(n, dtype=vdt)
        for name, _, col in vfields:
            vrec[name] = col
        body = vrec.tobytes()
        if faces is not None:
            fdt = []
            for name, t, col in ffields:
                if t.startswith("list"):
                    fdt += [(name + "_n", "u1"), (name, np_type[t.split()[-1]], (col.shape[1],))]
                else:
                    fdt.append((name, np_type[t]))
            frec = np.empty(len(faces), dtype=np.dtype(fdt))
            for name, t, col in ffields:
                if t.startswith("list"):
                    frec[name + "_n"] = col.shape[1]
                frec[name] = col
            body += frec.tobytes()
        return header + body
    buf = io.StringIO()
    vmat = np.column_stack([col.astype(np.float64) for _, _, col in vfields])
    np.savetxt(buf, vmat, fmt=["%.7g" if t == "float" else "%d" for _, t, _ in vfields])
    if faces is not None and len(faces):
        cols, fmts = [], []
        for _, t, col in ffields:
            if t.startswith("list"):
                cols += [np.full(len(faces), col.shape[1]), col]
                fmts += ["%d"] + (["%d"] if t.endswith("int") else ["%.7g"]) * col.shape[1]
            else:
                cols.append(col)
                fmts.append("%d")
        np.savetxt(buf, np.column_stack([np.asarray(c, dtype=np.float64) for c in cols]), fmt=fmts)
    return header + buf.getvalue().encode("ascii")


def export_ply(asset: LoadedAsset, out: Path, binary: bool) -> Path:
    """Write the asset as PLY (binary little endian or ascii) with normals, RGBA colours and uvs; per-corner uvs
    become MeshLab-style `texcoord` lists, and a texture is saved beside it as <stem>.png (comment TextureFile)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    comments = [f"exported by 3D Deep Learning Studio from {asset.path.name}"]
    face_uvs = None
    uvs = asset.uvs if asset.face_uvs is None else None
    if asset.face_uvs is not None and asset.uvs is not None:
        corner = np.maximum(asset.face_uvs, 0)
        face_uvs = asset.uvs[corner].reshape(-1, 6)  # (F, 6) u0 v0 u1 v1 u2 v2
    if asset.texture is not None and (uvs is not None or face_uvs is not None):
        tex = out.with_suffix(".png")
        asset.texture.save(tex)
        comments.append(f"TextureFile {tex.name}")
    data = _ply_bytes(
        asset.verts,
        None if asset.is_point_cloud else asset.faces,
        asset.normals,
        asset.colors,
        uvs,
        binary,
        comments,
        face_uvs=face_uvs,
        face_colors=asset.face_colors,
    )
    out.write_bytes(data)
    return out


def export_points_ply(
    points: np.ndarray, normals: np.ndarray | None, colors: np.ndarray | None, out: Path, binary: bool = True
) -> Path:
    """Write (N, 3) points with optional (N, 3) normals and (N, 3|4) colours in [0, 1] as a PLY point cloud."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    normals = None if normals is None else np.asarray(normals, dtype=np.float32).reshape(-1, 3)
    colors = None if colors is None else np.asarray(colors, dtype=np.float32)
    out.write_bytes(_ply_bytes(points, None, normals, colors, None, binary, ["surface samples"]))
    return out


def export_obj_zip(asset: LoadedAsset, out: Path) -> Path:
    """Write <stem>.obj + <stem>.mtl (+ <stem>.png texture) into one zip. Faces are grouped by material with
    usemtl; vertex colours without a texture use the common 'v x y z r g b' extension."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = asset.path.stem or "mesh"
    buf = io.StringIO()
    buf.write(f"# exported by 3D Deep Learning Studio from {asset.path.name}\nmtllib {stem}.mtl\no {stem}\n")
    if asset.colors is not None and asset.texture is None:
        np.savetxt(buf, np.column_stack([asset.verts, asset.colors[:, :3]]), fmt="v %.7g %.7g %.7g %.4f %.4f %.4f")
    else:
        np.savetxt(buf, asset.verts, fmt="v %.7g %.7g %.7g")
    corner_t = None
    if asset.uvs is not None:
        np.savetxt(buf, asset.uvs, fmt="vt %.7g %.7g")
        corner_t = asset.faces if asset.face_uvs is None else asset.face_uvs
        if (corner_t < 0).any():
            corner_t = np.where(corner_t < 0, 0, corner_t)
    if asset.normals is not None:
        np.savetxt(buf, asset.normals, fmt="vn %.6g %.6g %.6g")
    materials = [dict(m) for m in asset.materials] or [{"name": "material0", "Kd": [0.8, 0.8, 0.8]}]
    for i, m in enumerate(materials):  # OBJ/MTL names are single tokens
        m["name"] = "_".join(str(m.get("name", "")).split()) or f"material{i}"
    face_mat = asset.face_materials if asset.face_materials is not None else np.zeros(asset.num_faces, np.int64)
    face_mat = np.where(face_mat < 0, 0, face_mat)
    tex_owner = next((i for i, m in enumerate(materials) if m.get("map_Kd")), 0)
    f = asset.faces + 1
    cols = [f]
    if corner_t is not None:
        cols.append(corner_t + 1)
    if asset.normals is not None:
        cols.append(f)
    table = np.stack(cols, axis=2).reshape(len(f), -1)  # (F, 3 * k): v [t] [n] per corner
    k = len(cols)
    corner_fmt = {1: "%d", 2: "%d/%d", 3: "%d/%d/%d"}[k] if not (k == 2 and asset.normals is not None) else "%d//%d"
    fmt = "f " + " ".join([corner_fmt] * 3)
    if len(f):
        change = np.flatnonzero(np.diff(face_mat)) + 1
        for a, b in zip(np.r_[0, change], np.r_[change, len(f)], strict=True):
            buf.write(f"usemtl {materials[int(face_mat[a])]['name']}\n")
            np.savetxt(buf, table[a:b], fmt=fmt)
    mtl = [f"# materials of {stem}.obj"]
    for i, m in enumerate(materials):
        mtl.append(f"newmtl {m['name']}")
        for key in ("Ka", "Kd", "Ks"):
            if key in m:
                mtl.append(f"{key} " + " ".join(f"{float(x):.6g}" for x in m[key][:3]))
        for key in ("Ns", "d"):
            if key in m:
                mtl.append(f"{key} {float(m[key]):.6g}")
        if asset.texture is not None and i == tex_owner:
            mtl.append(f"map_Kd {stem}.png")
        mtl.append("")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{stem}.obj", buf.getvalue())
        zf.writestr(f"{stem}.mtl", "\n".join(mtl) + "\n")
        if asset.texture is not None:
            png = io.BytesIO()
            asset.texture.save(png, format="PNG")
            zf.writestr(f"{stem}.png", png.getvalue())
    return out
