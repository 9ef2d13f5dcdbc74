"""Conversions of a loaded asset: trimesh / PyTorch3D objects, GLB, PLY, OBJ zip, surface samples, Plotly figures."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import plotly.graph_objects
    import trimesh

    from pipelines.files.mesh_io import LoadedAsset


def _rgba_u8(colors: np.ndarray) -> np.ndarray:
    """(N, 3|4) float colours in [0, 1] -> (N, 4) uint8."""
    c = np.clip(np.asarray(colors, dtype=np.float64), 0.0, 1.0)
    if c.shape[1] == 3:
        c = np.concatenate([c, np.ones((c.shape[0], 1))], axis=1)
    return (c * 255.0).round().astype(np.uint8)


def per_vertex_uvs(asset: LoadedAsset) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Vertices split so each has one uv: (verts (V', 3), faces (F, 3), uvs (V', 2) or None, source (V',)).

    `source` maps each new vertex to the stored one, for copying normals and colours. Without corner uvs
    nothing is split (source is the identity).
    """
    if asset.face_uvs is None or asset.uvs is None:
        return asset.verts, asset.faces, asset.uvs, np.arange(asset.num_vertices)
    t_count = asset.uvs.shape[0] + 1
    keys = asset.faces.ravel() * t_count + (asset.face_uvs.ravel() + 1)  # (3F,) one key per (vertex, uv) corner
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    source = uniq // t_count
    uv_idx = uniq % t_count - 1
    uvs = np.where(uv_idx[:, None] >= 0, asset.uvs[np.maximum(uv_idx, 0)], 0.0).astype(np.float32)
    return asset.verts[source], inverse.reshape(-1, 3).astype(np.int64), uvs, source


def _material_face_colors(asset: LoadedAsset) -> np.ndarray | None:
    """(F, 4) float face colours from material diffuse colours (Kd, d), or None when there is nothing to show."""
    if asset.face_materials is None or not asset.materials:
        return None
    table = np.array(
        [[*(m.get("Kd") or [0.8, 0.8, 0.8])[:3], float(m.get("d", 1.0))] for m in asset.materials]
        + [[0.8, 0.8, 0.8, 1]],
        dtype=np.float64,
    )  # last row: faces without a material
    if len({tuple(r) for r in table[:-1]}) <= 1:
        return None
    return table[np.where(asset.face_materials >= 0, asset.face_materials, len(asset.materials))]


def to_trimesh(asset: LoadedAsset) -> trimesh.Trimesh | trimesh.PointCloud:
    """A trimesh object with the asset's look: texture (PBR base colour), else vertex colours, else face or
    material colours (vertices unshared so each face keeps its colour). Points give a PointCloud."""
    import trimesh

    if asset.is_point_cloud:
        return trimesh.PointCloud(asset.verts, colors=None if asset.colors is None else _rgba_u8(asset.colors))
    if asset.texture is not None and asset.uvs is not None:
        verts, faces, uvs, source = per_vertex_uvs(asset)
        normals = None if asset.normals is None else asset.normals[source]
        mesh = trimesh.Trimesh(verts, faces, vertex_normals=normals, process=False)
        kd = next((m.get("Kd") for m in asset.materials if m.get("map_Kd")), None)
        material = trimesh.visual.material.PBRMaterial(
            name="texture",
            baseColorTexture=asset.texture,
            baseColorFactor=[*(kd or [1.0, 1.0, 1.0])[:3], 1.0],
            metallicFactor=0.0,
            roughnessFactor=0.9,
        )
        mesh.visual = trimesh.visual.TextureVisuals(uv=uvs, material=material)
        return mesh
    face_colors = asset.face_colors if asset.face_colors is not None else _material_face_colors(asset)
    if asset.colors is None and face_colors is not None:
        corners = asset.faces.ravel()
        mesh = trimesh.Trimesh(
            asset.verts[corners],
            np.arange(corners.size, dtype=np.int64).reshape(-1, 3),
            vertex_normals=None if asset.normals is None else asset.normals[corners],
            process=False,
        )
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=np.repeat(_rgba_u8(face_colors), 3, axis=0))
        return mesh
    mesh = trimesh.Trimesh(asset.verts, asset.faces, vertex_normals=asset.normals, process=False)
    if asset.colors is not None:
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=_rgba_u8(asset.colors))
    return mesh


def to_pytorch3d(asset: LoadedAsset, device: str = "cpu") -> Any:
    """PyTorch3D Meshes (TexturesUV with the texture, else TexturesVertex with colours) or Pointclouds (colours as
    features), on `device`."""
    import torch
    from pytorch3d.renderer import TexturesUV, TexturesVertex
    from pytorch3d.structures import Meshes, Pointclouds

    verts = torch.from_numpy(np.ascontiguousarray(asset.verts, dtype=np.float32)).to(device)  # (V, 3)
    if asset.is_point_cloud:
        normals = None if asset.normals is None else [torch.from_numpy(asset.normals).to(device)]
        feats = None if asset.colors is None else [torch.from_numpy(asset.colors[:, :3].copy()).to(device)]
        return Pointclouds(points=[verts], normals=normals, features=feats)
    faces = torch.from_numpy(asset.faces).to(device)  # (F, 3)
    textures = None
    if asset.texture is not None and asset.uvs is not None:
        image = np.asarray(asset.texture.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
        faces_uvs = asset.faces if asset.face_uvs is None else np.maximum(asset.face_uvs, 0)
        textures = TexturesUV(
            maps=torch.from_numpy(image)[None].to(device),
            faces_uvs=torch.from_numpy(faces_uvs)[None].to(device),
            verts_uvs=torch.from_numpy(asset.uvs)[None].to(device),
        )
    elif asset.colors is not None:
        textures = TexturesVertex(verts_features=torch.from_numpy(asset.colors[:, :3].copy())[None].to(device))
    return Meshes(verts=[verts], faces=[faces], textures=textures)


# ----------------------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------------------


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
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=np.repeat(_rgba_u8(asset.colors[idx]), 6, axis=0))
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
        rgba = _rgba_u8(colors)
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
            fc = _rgba_u8(face_colors)
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


# ----------------------------------------------------------------------------------------------------------------
# Sampling and views
# ----------------------------------------------------------------------------------------------------------------


def sample_points(asset: LoadedAsset, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) points uniformly on the surface and their (n, 3) face normals (pytorch3d.ops.sample_points_from_meshes,
    seeded without touching the global RNG). A point cloud is resampled from its points (its normals, else zeros)."""
    import torch

    from pipelines.files.mesh_io import MeshFileError

    n = int(n)
    if n <= 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    if asset.is_point_cloud:
        idx = np.random.default_rng(seed).choice(asset.num_vertices, n, replace=asset.num_vertices < n)
        normals = asset.normals[idx] if asset.normals is not None else np.zeros((n, 3), np.float32)
        return asset.verts[idx].copy(), normals.astype(np.float32)
    from pytorch3d.ops import sample_points_from_meshes
    from pytorch3d.structures import Meshes

    mesh = Meshes(verts=[torch.from_numpy(asset.verts)], faces=[torch.from_numpy(asset.faces)])
    if float(mesh.faces_areas_packed().sum()) <= 0.0:
        raise MeshFileError("The mesh has no surface area, so no points can be sampled on it.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        points, normals = sample_points_from_meshes(mesh, num_samples=n, return_normals=True)  # (1, n, 3) each
    return points[0].numpy().astype(np.float32), normals[0].numpy().astype(np.float32)


def _texture_colors(asset: LoadedAsset) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Colours read from the texture: (V, 3) per vertex for per-vertex uvs, else (F, 3) per face (mean corner uv)."""
    if asset.texture is None or asset.uvs is None:
        return None, None
    img = np.asarray(asset.texture.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
    h, w = img.shape[:2]

    def lookup(uv: np.ndarray) -> np.ndarray:
        u = np.mod(uv[:, 0], 1.0)
        v = np.mod(uv[:, 1], 1.0)
        return img[
            np.clip(((1.0 - v) * (h - 1)).round().astype(int), 0, h - 1),
            np.clip((u * (w - 1)).round().astype(int), 0, w - 1),
        ]

    if asset.face_uvs is None:
        return lookup(asset.uvs), None
    corner = np.maximum(asset.face_uvs, 0)
    return None, lookup(asset.uvs[corner].mean(axis=1))


def _rgb_strings(colors: np.ndarray) -> list[str]:
    rgb = (np.clip(colors[:, :3], 0, 1) * 255).round().astype(int)
    return [f"rgb({r},{g},{b})" for r, g, b in rgb.tolist()]


def plotly_figure(
    asset: LoadedAsset,
    max_faces: int = 60_000,
    point_size: float = 2.0,
    wireframe: bool = False,
    show_axes: bool = True,
    max_points: int = 200_000,
) -> plotly.graph_objects.Figure:
    """A Plotly view: Mesh3d (texture sampled to vertex/face colours, else vertex, face or material colours) or a
    coloured Scatter3d for points; bigger inputs are shown as a random subset (noted in the title); equal aspect."""
    import plotly.graph_objects as go

    rng = np.random.default_rng(0)
    title = asset.path.name
    traces = []
    if asset.is_point_cloud:
        idx = np.arange(asset.num_vertices)
        if len(idx) > max_points:
            idx = np.sort(rng.choice(len(idx), max_points, replace=False))
            title += f": showing {max_points:,} of {asset.num_vertices:,} points (random subset)"
        pts = asset.verts[idx]
        color = _rgb_strings(asset.colors[idx]) if asset.colors is not None else "#4c78a8"
        traces.append(
            go.Scatter3d(
                x=pts[:, 0],
                y=pts[:, 1],
                z=pts[:, 2],
                mode="markers",
                marker={"size": float(point_size), "color": color, "line": {"width": 0}},
                hoverinfo="skip",
                name="points",
            )  # fmt: skip
        )
    else:
        faces = asset.faces
        keep = np.arange(len(faces))
        if len(faces) > max_faces:
            keep = np.sort(rng.choice(len(faces), max_faces, replace=False))
            title += f": showing {max_faces:,} of {len(faces):,} triangles (random subset)"
        sub = faces[keep]
        used, inv = np.unique(sub, return_inverse=True)
        sub = inv.reshape(-1, 3)
        v = asset.verts[used]
        tex_v, tex_f = _texture_colors(asset)
        face_colors = asset.face_colors if asset.face_colors is not None else _material_face_colors(asset)
        style: dict = {}
        if tex_v is not None:
            style["vertexcolor"] = _rgb_strings(tex_v[used])
        elif tex_f is not None:
            style["facecolor"] = _rgb_strings(tex_f[keep])
        elif asset.colors is not None:
            style["vertexcolor"] = _rgb_strings(asset.colors[used])
        elif face_colors is not None:
            style["facecolor"] = _rgb_strings(face_colors[keep])
        else:
            style["color"] = "#9fb3c8"
        traces.append(
            go.Mesh3d(
                x=v[:, 0],
                y=v[:, 1],
                z=v[:, 2],
                i=sub[:, 0],
                j=sub[:, 1],
                k=sub[:, 2],
                flatshading=True,
                hoverinfo="skip",
                name="mesh",
                lighting={"ambient": 0.55, "diffuse": 0.8, "specular": 0.15, "roughness": 0.6},
                **style,
            )  # fmt: skip
        )
        if wireframe:
            edges = np.unique(np.sort(sub[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1), axis=0)
            if len(edges) > 150_000:
                edges = edges[np.sort(rng.choice(len(edges), 150_000, replace=False))]
            seg = np.full((len(edges) * 3, 3), np.nan)
            seg[0::3], seg[1::3] = v[edges[:, 0]], v[edges[:, 1]]
            traces.append(
                go.Scatter3d(
                    x=seg[:, 0],
                    y=seg[:, 1],
                    z=seg[:, 2],
                    mode="lines",
                    line={"color": "#222222", "width": 1},
                    hoverinfo="skip",
                    name="edges",
                )  # fmt: skip
            )
    axis = {"visible": bool(show_axes), "showbackground": False}
    fig = go.Figure(data=traces)
    fig.update_layout(
        title={"text": title, "font": {"size": 13}},
        scene={"aspectmode": "data", "xaxis": dict(axis), "yaxis": dict(axis), "zaxis": dict(axis)},
        margin={"l": 0, "r": 0, "t": 36, "b": 0},
        showlegend=False,
        height=520,
    )
    return fig
