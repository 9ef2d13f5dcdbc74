"""OBJ reader: a vectorised scan of the lines first (limits, index checks, references), then PyTorch3D."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines.files import types
from pipelines.files.mtl import obj_materials
from pipelines.files.types import Limits, LoadedAsset, MeshFileError, cap_text, first_lines

_WS = (32, 9, 13, 10, 11, 12)


@dataclass
class _ObjScan:
    """What a vectorised pass over an OBJ's lines finds, before any parsing."""

    counts: dict[str, int]  # 'v', 'vt', 'vn', 'f' line counts
    mtllibs: list[str]
    usemtl: list[str]  # distinct names in order of first use (PyTorch3D's material order)
    groups: list[str]
    vertex_columns: int  # numbers on the first 'v' line (6 or 7 means vertex colours)
    interleaved_negative: bool  # a negative index appears before the last v/vt/vn line
    zero_index: bool
    lines: dict = field(default_factory=dict, repr=False)  # per-line arrays for the vectorised reader


def _obj_scan(data: bytes) -> _ObjScan:
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise MeshFileError("The OBJ file is empty.")
    nl = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [buf.size]))
    tok = buf > 32
    first_tok = np.flatnonzero(tok & ~np.concatenate(([False], tok[:-1])))
    k = np.searchsorted(first_tok, starts)
    has = k < first_tok.size
    pos = np.where(has, first_tok[np.minimum(k, first_tok.size - 1)], 0)
    has &= pos < ends
    padded = np.concatenate((buf, np.zeros(3, np.uint8)))
    c0, c1, c2 = padded[pos], padded[pos + 1], padded[pos + 2]
    ws1, ws2 = np.isin(c1, _WS), np.isin(c2, _WS)
    is_v = has & (c0 == ord("v")) & ws1
    is_vt = has & (c0 == ord("v")) & (c1 == ord("t")) & ws2
    is_vn = has & (c0 == ord("v")) & (c1 == ord("n")) & ws2
    is_f = has & (c0 == ord("f")) & ws1
    other = np.flatnonzero(has & np.isin(c0, (ord("m"), ord("u"), ord("g"), ord("o"))))

    mtllibs: list[str] = []
    usemtl: list[str] = []
    groups: list[str] = []
    usemtl_lines: list[tuple[int, int]] = []  # (line index, material id)
    for i in other.tolist():
        line = data[pos[i] : ends[i]].decode("utf-8", errors="replace").strip()
        key, _, rest = line.partition(" ") if " " in line else line.partition("\t")
        rest = rest.strip()
        if key == "mtllib" and rest:
            mtllibs.append(rest)
        elif key == "usemtl" and rest:
            name = rest.split()[0]
            if name not in usemtl:
                usemtl.append(name)
            usemtl_lines.append((i, usemtl.index(name)))
        elif key in ("g", "o") and rest and len(groups) < 10_000:
            groups.append(rest)

    f_idx = np.flatnonzero(is_f)
    zero = neg = False
    first_neg_line = -1
    if f_idx.size:
        # contiguous runs of face lines: searched as blocks with C-speed substring tests
        breaks = np.flatnonzero(np.diff(f_idx) != 1)
        run_starts = np.concatenate(([f_idx[0]], f_idx[breaks + 1]))
        run_ends = np.concatenate((f_idx[breaks], [f_idx[-1]]))
        for a, b in zip(run_starts.tolist(), run_ends.tolist(), strict=True):
            block = data[pos[a] : ends[b]] + b"\n"
            if not zero:
                zero = any(
                    s + b"0" + e in block for s in (b" ", b"/", b"\t") for e in (b" ", b"/", b"\n", b"\r", b"\t")
                )
            if first_neg_line < 0 and (b" -" in block or b"/-" in block or b"\t-" in block):
                first_neg_line = a
    if first_neg_line >= 0:
        last_vlike = np.flatnonzero(is_v | is_vt | is_vn)
        neg = last_vlike.size > 0 and int(last_vlike[-1]) > first_neg_line
    v_rows = np.flatnonzero(is_v)
    columns = 0
    if v_rows.size:
        i = int(v_rows[0])
        columns = len(data[pos[i] : ends[i]].split()) - 1
    counts = {"v": int(is_v.sum()), "vt": int(is_vt.sum()), "vn": int(is_vn.sum()), "f": int(f_idx.size)}
    ntok = np.searchsorted(first_tok, ends) - np.searchsorted(first_tok, starts)  # numbers + keyword per line
    lines = {"pos": pos, "ends": ends, "ntok": ntok, "v": is_v, "vt": is_vt, "vn": is_vn, "f": is_f,
             "usemtl": usemtl_lines}  # fmt: skip
    return _ObjScan(counts, mtllibs, usemtl, groups, columns, bool(neg), bool(zero), lines)


def _runs(idx: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) of each run of consecutive integers in a sorted index array."""
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) != 1)
    return list(zip(np.r_[idx[0], idx[breaks + 1]].tolist(), np.r_[idx[breaks], idx[-1]].tolist(), strict=True))


def _obj_table(data: bytes, lines: dict, kind: str, dtype: type) -> np.ndarray | None:
    """The numbers of all `kind` lines as an (n, k) array, or None when lines differ in length or hold text."""
    idx = np.flatnonzero(lines[kind])
    if idx.size == 0:
        return None
    ntok = lines["ntok"][idx]
    if not (ntok == ntok[0]).all() or ntok[0] < 2:
        return None
    pos, ends = lines["pos"], lines["ends"]
    joined = b"\n".join(data[pos[a] : ends[b]] for a, b in _runs(idx)).replace(kind.encode(), b" ")
    width = int(ntok[0]) - 1
    if kind == "f":
        corners = width
        slashes = joined.count(b"/")
        if slashes == 0:
            width = 1
        elif slashes == 2 * corners * idx.size and joined.count(b"//") == corners * idx.size:
            joined, width = joined.replace(b"//", b" 0 "), 3  # v//n: 0 marks the missing uv
        elif slashes in (corners * idx.size, 2 * corners * idx.size):
            width = 1 + slashes // (corners * idx.size)
            joined = joined.replace(b"/", b" ")
        else:
            return None  # mixed corner forms
        width *= corners
    try:
        values = np.fromstring(joined, dtype=dtype, sep=" ")
    except ValueError:
        return None
    if values.size != width * idx.size:
        return None
    return values.reshape(idx.size, width)


def _parse_obj_vectorised(data: bytes, scan: _ObjScan) -> tuple | None:
    """Vectorised OBJ reader for files whose v/vt/vn/f lines each have one shape (the usual export); else None.

    Negative indices are resolved against the counts at each face line, as the OBJ spec says.
    """
    lines = scan.lines
    verts = _obj_table(data, lines, "v", np.float64)
    faces_raw = _obj_table(data, lines, "f", np.int64)
    if verts is None or faces_raw is None:
        return None
    f_idx = np.flatnonzero(lines["f"])
    corners = int(lines["ntok"][f_idx[0]]) - 1
    if corners < 3:
        return None
    k = faces_raw.shape[1] // corners
    per = faces_raw.reshape(len(f_idx), corners, k)  # (P, corners, k): v[, t][, n] per corner
    uvs_table = _obj_table(data, lines, "vt", np.float64) if scan.counts["vt"] else None
    vn_table = _obj_table(data, lines, "vn", np.float64) if scan.counts["vn"] else None
    if (scan.counts["vt"] and uvs_table is None) or (scan.counts["vn"] and vn_table is None):
        return None
    resolved = {}
    kinds = ("v", "vt", "vn") if k == 3 else ("v", "vt") if k == 2 else ("v",)
    if k == 3 and (per[:, :, 1] == 0).all():
        kinds = ("v", "", "vn")  # the v//n form
    for col, kind in enumerate(kinds):
        if not kind:
            continue
        raw = per[:, :, col]
        if (raw == 0).any():
            raise MeshFileError("The OBJ has a face index 0; OBJ indices start at 1 (or count back from -1).")
        before = np.cumsum(lines[kind])[f_idx][:, None]  # elements of this kind declared before each face line
        resolved[kind] = np.where(raw > 0, raw - 1, before + raw)
    fan = [(0, j + 1, j + 2) for j in range(corners - 2)]

    def split(arr: np.ndarray) -> np.ndarray:
        return np.stack([arr[:, list(t)] for t in fan], axis=1).reshape(-1, 3)  # polygon-major fans

    n_tri = len(f_idx) * len(fan)
    missing = np.full((n_tri, 3), -1, dtype=np.int64)
    corner = {kind: split(resolved[kind]) if kind in resolved else missing for kind in ("v", "vt", "vn")}
    face_mat = np.full(len(f_idx), -1, dtype=np.int64)
    if lines["usemtl"]:
        at = np.array([i for i, _ in lines["usemtl"]])
        ids = np.array([m for _, m in lines["usemtl"]])
        k_prev = np.searchsorted(at, f_idx) - 1
        face_mat = np.where(k_prev >= 0, ids[np.maximum(k_prev, 0)], -1)
    face_mat = np.repeat(face_mat, len(fan))
    uvs = None if uvs_table is None else uvs_table[:, :2].astype(np.float32)
    vn = None if vn_table is None else vn_table[:, :3].astype(np.float32)
    return verts[:, :3].astype(np.float32), corner, uvs, vn, face_mat


def read_obj(path: Path, limits: Limits, root: Path) -> LoadedAsset:
    """Read an OBJ and its MTL files and first texture (see loader.load_asset for the rules)."""
    data = path.read_bytes()
    if b"\x00" in data[:65536]:
        raise MeshFileError(f"{path.name} is not a text OBJ file (it contains binary data).")
    data = data.replace(b"\t", b" ")  # PyTorch3D only splits keywords on spaces
    scan = _obj_scan(data)
    c = scan.counts
    if c["v"] > limits.max_vertices:
        raise MeshFileError(f"{path.name} has {c['v']:,} vertices, above the limit of {limits.max_vertices:,}.")
    if c["f"] > limits.max_faces:
        raise MeshFileError(f"{path.name} has {c['f']:,} faces, above the limit of {limits.max_faces:,}.")
    if scan.zero_index:
        raise MeshFileError(f"{path.name} has a face index 0; OBJ indices start at 1 (or count back from -1).")
    if c["v"] == 0:
        raise MeshFileError(f"{path.name} has no vertex ('v') lines; it is not an OBJ file or it is empty.")
    warnings: list[str] = []
    verts, corner, uvs, vn, face_mat, loader = _obj_arrays(data, scan)
    faces = corner["v"]
    nf = faces.shape[0]
    if verts.shape[0] != c["v"]:
        warnings.append(f"{c['v']} 'v' lines were found but {verts.shape[0]} vertices were read.")

    colors = None
    if scan.vertex_columns in (6, 7):
        colors = _obj_vertex_colors(data, verts.shape[0], scan.vertex_columns)

    face_uvs = None
    if uvs is not None and corner["vt"].shape == (nf, 3) and (corner["vt"] >= 0).any():
        face_uvs = corner["vt"]
    normals = None
    if vn is not None and corner["vn"].shape == (nf, 3) and (corner["vn"] >= 0).all():
        normals = _average_corner_normals(faces, corner["vn"], vn, verts.shape[0])

    materials, texture, tex_name, mtl_header = obj_materials(path, scan.mtllibs, scan.usemtl, root, limits, warnings)
    if face_mat.shape != (nf,):
        face_mat = np.full(nf, -1, dtype=np.int64)
    if not scan.usemtl and materials:
        face_mat = np.zeros(nf, dtype=np.int64)  # a single material library applies to every face
    header = f"# {path.name} (first lines)\n" + first_lines(data) + mtl_header
    return LoadedAsset(
        path=path,
        format="obj",
        encoding="ascii",
        header=cap_text(header),
        verts=verts,
        faces=faces,
        normals=normals,
        colors=colors,
        uvs=uvs if face_uvs is not None else None,
        texture=texture,
        elements=_obj_elements(scan, nf, colors is not None),
        materials=materials,
        warnings=warnings,
        face_uvs=face_uvs,
        face_materials=face_mat if materials else None,
        texture_name=tex_name,
        loader=loader,
    )


def _obj_arrays(data: bytes, scan: _ObjScan) -> tuple:
    """(verts, corner indices {"v", "vt", "vn"}, uvs, vn, face materials, loader) from the right reader for the file."""
    parsed = None
    if scan.interleaved_negative or scan.counts["f"] > types.PYTORCH3D_MAX_FACES:
        parsed = _parse_obj_vectorised(data, scan)
        why = "negative indices relative to each face line" if scan.interleaved_negative else "large file"
        loader = f"mesh_io vectorised OBJ reader ({why})"
    if parsed is not None:
        verts, corner, uvs, vn, face_mat = parsed
    elif scan.interleaved_negative:
        verts, corner, uvs, vn, face_mat = _parse_obj_relative(data.decode("utf-8", errors="replace"))
        loader = "mesh_io OBJ reader (negative indices relative to each face line, as the OBJ spec says)"
    else:
        from pytorch3d.io import load_obj

        v_t, f_t, aux = load_obj(io.StringIO(data.decode("utf-8", errors="replace")), load_textures=False)
        verts = v_t.numpy()
        corner = {
            "v": f_t.verts_idx.numpy(),
            "vt": np.asarray(f_t.textures_idx, dtype=np.int64).reshape(-1, 3),
            "vn": np.asarray(f_t.normals_idx, dtype=np.int64).reshape(-1, 3),
        }
        uvs = None if aux.verts_uvs is None else aux.verts_uvs.numpy()
        vn = None if aux.normals is None else aux.normals.numpy()
        face_mat = np.asarray(f_t.materials_idx, dtype=np.int64).reshape(-1)
        loader = "pytorch3d.io.load_obj"
    return verts, corner, uvs, vn, face_mat, loader


def _obj_elements(scan: _ObjScan, nf: int, has_colors: bool) -> list[dict]:
    """The element table shown to the user: v, vt, vn and f counts, then groups and materials used."""
    c = scan.counts
    elements = [
        {"name": "v", "count": c["v"], "properties": [["x", "float"], ["y", "float"], ["z", "float"]]},
        {"name": "vt", "count": c["vt"], "properties": [["u", "float"], ["v", "float"]]},
        {"name": "vn", "count": c["vn"], "properties": [["nx", "float"], ["ny", "float"], ["nz", "float"]]},
        {"name": "f", "count": c["f"], "properties": [["vertex_indices", "list v/vt/vn"]], "triangles": int(nf)},
    ]
    if has_colors:
        elements[0]["properties"] += [["red", "float"], ["green", "float"], ["blue", "float"]]
    if scan.groups:
        elements.append({"name": "g/o", "count": len(scan.groups), "properties": [], "names": scan.groups[:100]})
    if scan.usemtl:
        elements.append({"name": "usemtl", "count": len(scan.usemtl), "properties": [], "names": scan.usemtl[:100]})
    return elements


def _obj_vertex_colors(data: bytes, n: int, columns: int) -> np.ndarray | None:
    """Per-vertex colours from 'v x y z r g b' lines (a common OBJ extension); None if inconsistent."""
    rows = re.findall(rb"(?m)^[ ]*v[ ]+([^\r\n]*)", data)
    if len(rows) != n:
        return None
    try:
        values = np.fromstring(b"\n".join(rows), dtype=np.float64, sep=" ")
    except ValueError:
        return None
    if values.size != n * columns:
        return None
    rgb = values.reshape(n, columns)[:, 3:6]
    if rgb.size and rgb.max() > 1.0:
        rgb = rgb / 255.0
    return rgb.astype(np.float32)


def _average_corner_normals(faces: np.ndarray, normal_idx: np.ndarray, vn: np.ndarray, n: int) -> np.ndarray:
    """Per-vertex normals from OBJ corner normals: the mean of the normals a vertex is given, renormalised."""
    if normal_idx.min() < 0 or normal_idx.max() >= vn.shape[0]:
        return None
    if np.array_equal(faces, normal_idx) and vn.shape[0] == n:
        return vn.astype(np.float32)
    acc = np.zeros((n, 3), dtype=np.float64)
    for axis in range(3):
        acc[:, axis] = np.bincount(faces.ravel(), weights=vn[normal_idx.ravel(), axis], minlength=n)
    norm = np.linalg.norm(acc, axis=1, keepdims=True)
    return (acc / np.where(norm > 0, norm, 1.0)).astype(np.float32)


def _parse_obj_relative(text: str) -> tuple[np.ndarray, dict, np.ndarray | None, np.ndarray | None, np.ndarray]:
    """Plain OBJ parser used when negative indices are interleaved with vertex lines (relative to each face line)."""
    verts: list[list[float]] = []
    vts: list[list[float]] = []
    vns: list[list[float]] = []
    tri: dict[str, list[int]] = {"v": [], "vt": [], "vn": []}
    mats: list[int] = []
    names: list[str] = []
    current = -1
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        key = tokens[0]
        if key == "v":
            verts.append([float(x) for x in tokens[1:4]])
        elif key == "vt":
            vts.append([float(x) for x in tokens[1:3]])
        elif key == "vn":
            vns.append([float(x) for x in tokens[1:4]])
        elif key == "usemtl" and len(tokens) > 1:
            if tokens[1] not in names:
                names.append(tokens[1])
            current = names.index(tokens[1])
        elif key == "f":
            corners = []
            for ref in tokens[1:]:
                parts = (ref.split("/") + ["", ""])[:3]
                idx = []
                for part, count in zip(parts, (len(verts), len(vts), len(vns)), strict=True):
                    if part == "":
                        idx.append(-1)
                        continue
                    i = int(part)
                    if i == 0:
                        raise MeshFileError(f"Line {lineno} of the OBJ uses index 0; OBJ indices start at 1.")
                    i = i - 1 if i > 0 else count + i
                    if not 0 <= i < count:
                        raise MeshFileError(
                            f"Line {lineno} of the OBJ refers to an element that does not exist ({ref})."
                        )
                    idx.append(i)
                corners.append(idx)
            for j in range(1, len(corners) - 1):
                for key2, col in (("v", 0), ("vt", 1), ("vn", 2)):
                    tri[key2] += [corners[0][col], corners[j][col], corners[j + 1][col]]
                mats.append(current)
    for row in verts:
        if len(row) != 3:
            raise MeshFileError("An OBJ vertex line does not have three coordinates.")
    corner = {k: np.asarray(v, dtype=np.int64).reshape(-1, 3) for k, v in tri.items()}
    uvs = np.asarray(vts, dtype=np.float32).reshape(-1, 2) if vts else None
    vn = np.asarray(vns, dtype=np.float32).reshape(-1, 3) if vns else None
    return np.asarray(verts, dtype=np.float32).reshape(-1, 3), corner, uvs, vn, np.asarray(mats, dtype=np.int64)
