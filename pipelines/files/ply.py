"""PLY reader: header and layout validated first, then PyTorch3D (uniform face lists) or the vectorised reader."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipelines.files import types
from pipelines.files.ply_decode import ascii_layout, binary_layout, decode_ascii, decode_binary
from pipelines.files.ply_header import PlyElement, PlyHeader, check_declared, read_ply_header
from pipelines.files.tables import fan_triangulate
from pipelines.files.types import Limits, LoadedAsset, MeshFileError, cap_text
from pipelines.files.upload import open_texture, resolve_reference

if TYPE_CHECKING:
    import PIL.Image

# vertex property names understood, in order of preference
_NORMALS = (("nx", "ny", "nz"), ("normal_x", "normal_y", "normal_z"))
_RGB = (("red", "green", "blue"), ("r", "g", "b"), ("diffuse_red", "diffuse_green", "diffuse_blue"))
_ALPHA = ("alpha", "a", "diffuse_alpha")
_UV = (("u", "v"), ("s", "t"), ("texture_u", "texture_v"), ("texture_s", "texture_t"))
_FACE_LISTS = ("vertex_indices", "vertex_index")


# ----------------------------------------------------------------------------------------------------------------
# Interpretation of the decoded columns
# ----------------------------------------------------------------------------------------------------------------


def _color_scale(code: str) -> float:
    return float(np.iinfo(np.dtype(code)).max) if code[0] in "iu" else 1.0


def _columns(cols: dict, el: PlyElement, options: tuple) -> tuple[np.ndarray, tuple[str, ...]] | None:
    for names in options:
        if all(n in cols and cols[n][1] is None for n in names):
            return np.stack([cols[n][0] for n in names], axis=1), names
    return None


def _vertex_attributes(cols: dict, el: PlyElement) -> dict:
    """Positions, normals, colours (with alpha) and uvs from decoded vertex columns."""
    codes = {p.name: p.code for p in el.props}
    xyz = _columns(cols, el, (("x", "y", "z"),))
    if xyz is None:
        raise MeshFileError("The PLY 'vertex' element has no x, y, z properties.")
    out: dict = {"verts": xyz[0].astype(np.float32)}
    nrm = _columns(cols, el, _NORMALS)
    out["normals"] = None if nrm is None else nrm[0].astype(np.float32)
    rgb = _columns(cols, el, _RGB)
    if rgb is not None:
        colors = rgb[0].astype(np.float64) / _color_scale(codes[rgb[1][0]])
        alpha = next((a for a in _ALPHA if a in cols and cols[a][1] is None), None)
        if alpha is not None:
            colors = np.concatenate([colors, cols[alpha][0][:, None] / _color_scale(codes[alpha])], axis=1)
        out["colors"] = colors.astype(np.float32)
    else:
        out["colors"] = None
    uv = _columns(cols, el, _UV)
    out["uvs"] = None if uv is None else uv[0].astype(np.float32)
    return out


def _face_arrays(cols: dict, el: PlyElement, warnings: list[str]) -> dict:
    """Triangles, per-triangle colours and wedge uvs from decoded face columns."""
    lists = [p.name for p in el.props if p.count_type]
    key = next((n for n in _FACE_LISTS if n in lists), None) or next((n for n in lists if n != "texcoord"), None)
    if key is None:
        raise MeshFileError("The PLY 'face' element has no list of vertex indices.")
    flat, lengths = cols[key]
    short = int((lengths < 3).sum())
    if short:
        warnings.append(f"{short:,} faces with fewer than 3 vertices were skipped.")
    faces, poly, corners = fan_triangulate(flat, lengths)
    out: dict = {"faces": faces, "face_colors": None, "uvs": None, "face_uvs": None}
    codes = {p.name: p.code for p in el.props}
    rgb = _columns(cols, el, _RGB)
    if rgb is not None:
        colors = rgb[0].astype(np.float64) / _color_scale(codes[rgb[1][0]])
        out["face_colors"] = colors[poly].astype(np.float32)
    if "texcoord" in cols and cols["texcoord"][1] is not None:
        tc, tc_len = cols["texcoord"]
        if np.array_equal(tc_len, 2 * lengths):
            out["uvs"] = tc.reshape(-1, 2).astype(np.float32)  # one (u, v) per polygon corner, same order as flat
            out["face_uvs"] = corners
        else:
            warnings.append("The face texcoord lists do not match the vertex lists; they were ignored.")
    return out


# ----------------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------------


def load_ply(path: Path, limits: Limits, root: Path) -> LoadedAsset:
    """Read a PLY: header and layout validated first, then PyTorch3D (uniform face lists) or the vectorised reader."""
    hdr = read_ply_header(path)
    body, buf = _layout(path, hdr, limits)
    warnings: list[str] = []
    data, loader = _ply_arrays(path, hdr, body, buf, warnings)
    if buf is not None:
        del buf
    texture, tex_name = _comment_texture(path, hdr, root, limits, warnings)
    return LoadedAsset(
        path=path,
        format="ply",
        encoding=hdr.encoding,
        header=cap_text(hdr.text),
        verts=data["verts"],
        faces=data["faces"],
        normals=data.get("normals"),
        colors=data.get("colors"),
        uvs=data.get("uvs"),
        texture=texture,
        elements=[
            {"name": e.name, "count": e.count, "properties": [[p.name, p.describe()] for p in e.props]}
            for e in hdr.elements
        ],
        warnings=warnings,
        face_uvs=data.get("face_uvs"),
        face_colors=data.get("face_colors"),
        texture_name=tex_name,
        loader=loader or "mesh_io PLY reader",
    )


def _layout(path: Path, hdr: PlyHeader, limits: Limits) -> tuple[bytes, np.ndarray | None]:
    """Check the declared counts, lay the data out and count triangles: (ASCII body, None) or (b"", binary memmap)."""
    name = path.name
    size = path.stat().st_size
    check_declared(hdr, name, size - hdr.data_start, limits)
    if hdr.encoding == "ascii":
        body = path.read_bytes()[hdr.data_start :]
        ascii_layout(body, hdr, name)
        buf = None
    else:
        body = b""
        buf = np.memmap(path, dtype=np.uint8, mode="r")
        binary_layout(buf, hdr, name)
    vertex, face = hdr.element("vertex"), hdr.element("face")
    if vertex.list_props:
        raise MeshFileError(f"{name} has list properties in its 'vertex' element, which is not supported.")
    if face is not None and face.count and face.lengths is not None:
        key = next((j for j, p in enumerate(face.props) if p.count_type and p.name != "texcoord"), None)
        if key is not None:
            col = face.list_props.index(key)
            tris = int(np.maximum(face.lengths[:, col] - 2, 0).sum())
            if tris > limits.max_faces:
                raise MeshFileError(
                    f"{name} has {tris:,} triangles after splitting polygons, above {limits.max_faces:,}."
                )
    return body, buf


def _decode(path: Path, hdr: PlyHeader, body: bytes, buf: np.ndarray | None, el: PlyElement) -> dict:
    """Decoded columns of one element, from the ASCII body or the binary buffer."""
    bo = ">" if hdr.encoding == "binary_big_endian" else "<"
    return decode_ascii(body, hdr, el, path.name) if buf is None else decode_binary(buf, el, bo)


def _ply_arrays(
    path: Path, hdr: PlyHeader, body: bytes, buf: np.ndarray | None, warnings: list[str]
) -> tuple[dict, str]:
    """(arrays, loader): PyTorch3D's arrays where it can read the file, completed or replaced by the vectorised ones."""
    vertex, face = hdr.element("vertex"), hdr.element("face")
    vnames = {p.name for p in vertex.props}
    has_faces = face is not None and face.count > 0
    # PyTorch3D reads uniform face lists; it would also decode other elements' lists item by item in Python
    p3d_ok = (
        {"x", "y", "z"} <= vnames
        and (not has_faces or (face.uniform is not None and face.uniform >= 3))
        and (not has_faces or face.count <= types.PYTORCH3D_MAX_FACES)
        and not any(e.list_props for e in hdr.elements if e.name not in ("vertex", "face"))
    )
    data: dict = {}
    loader = ""
    if p3d_ok:
        try:
            data = _ply_pytorch3d(path, has_faces, {"red", "green", "blue"} <= vnames, {"nx", "ny", "nz"} <= vnames)
            loader = "pytorch3d.io.IO().load_mesh" if has_faces else "pytorch3d.io.IO().load_pointcloud"
            if has_faces and len(data["faces"]) != face.count * (face.uniform - 2):
                # Meshes() silently drops faces with negative indices: read them as stored so they are reported
                loader, data = "mesh_io PLY reader (PyTorch3D dropped faces with negative indices)", {}
        except Exception as e:  # structure already validated: fall back to the vectorised reader, note why
            loader = f"mesh_io PLY reader (PyTorch3D refused the file: {str(e)[:80]})"
            data = {}
    wide_colors = any(p.name in ("red", "green", "blue") and p.code in ("i2", "u2", "i4", "u4") for p in vertex.props)
    extras = {*_ALPHA, "u", "v", "s", "t", "texture_u", "texture_v", "texture_s", "texture_t", "r", "g", "b",
              "diffuse_red", "normal_x"}  # fmt: skip
    if not data or wide_colors or vnames & extras:
        attrs = _vertex_attributes(_decode(path, hdr, body, buf, vertex), vertex)
        for key, value in attrs.items():
            if data.get(key) is None or key == "colors" and value is not None:
                data[key] = value
    if "faces" not in data:
        data["faces"] = np.zeros((0, 3), np.int64)
        if has_faces:
            data.update(
                {
                    k: v
                    for k, v in _face_arrays(_decode(path, hdr, body, buf, face), face, warnings).items()
                    if v is not None
                }
            )
            if not loader:
                why = (
                    "large file"
                    if face.count > types.PYTORCH3D_MAX_FACES
                    else "polygons of mixed sizes or extra face properties"
                )
                loader = f"mesh_io PLY reader ({why})"
    return data, loader


def _comment_texture(
    path: Path, hdr: PlyHeader, root: Path, limits: Limits, warnings: list[str]
) -> tuple[PIL.Image.Image | None, str | None]:
    """The texture named by the first `comment TextureFile` line, resolved inside the upload and size-checked."""
    texture = tex_name = None
    for comment in hdr.comments:
        if comment.lower().startswith("texturefile"):
            ref = comment[len("texturefile") :].strip()
            found, note = resolve_reference(ref, path.parent, root)
            if note:
                warnings.append(f"Texture file {note}" + ("." if found else "; it was skipped."))
            if found is not None:
                texture, _, warn = open_texture(found, found.name, limits)
                tex_name = found.name if texture is not None else None
                if warn:
                    warnings.append(warn)
            break
    return texture, tex_name


def _ply_pytorch3d(path: Path, has_faces: bool, has_rgb: bool, has_normals: bool) -> dict:
    """Positions, faces, normals and colours through PyTorch3D's IO (never its texture-file reading)."""
    from pytorch3d.io import IO
    from pytorch3d.renderer import TexturesVertex

    if has_faces:
        mesh = IO().load_mesh(str(path), include_textures=has_rgb)  # colours only: no TextureFile lookup
        out = {"verts": mesh.verts_list()[0].numpy(), "faces": mesh.faces_list()[0].numpy()}
        out["normals"] = mesh.verts_normals_list()[0].numpy() if has_normals else None
        tex = mesh.textures
        out["colors"] = tex.verts_features_list()[0].numpy() if isinstance(tex, TexturesVertex) else None
        return out
    cloud = IO().load_pointcloud(str(path))
    normals, features = cloud.normals_list(), cloud.features_list()
    return {
        "verts": cloud.points_list()[0].numpy(),
        "normals": None if normals is None else normals[0].numpy(),
        "colors": None if features is None else features[0].numpy(),
    }
