"""OFF reader ([ST][C][N]OFF, ASCII): counts validated first, then PyTorch3D (plain OFF, uniform faces) or numpy."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.files.tables import fan_triangulate, parse_numbers, text_lines
from pipelines.files.types import Limits, LoadedAsset, MeshFileError, cap_text

_OFF_KEY = re.compile(rb"(ST)?(C)?(N)?(4)?(n)?OFF", re.IGNORECASE)


@dataclass
class _OffLayout:
    """Where an OFF's numbers are: its text without comments, its non-blank lines, the variant and the counts."""

    data: bytes
    starts: np.ndarray  # (L,) byte offset where each non-blank line starts
    ends: np.ndarray  # (L,) and where it ends
    tokens: np.ndarray  # (L,) numbers on each line
    key: re.Match  # the [ST][C][N]OFF keyword: groups ST, C, N, 4, n
    line: int  # index of the first vertex line
    nv: int
    nf: int


@dataclass
class _OffFaces:
    """The face lines' numbers: values (flat), tokens per line, polygon sizes and the colour values after each."""

    ft: np.ndarray  # (nf,) numbers on each face line
    fvals: np.ndarray  # every number of the face lines, float64
    lengths: np.ndarray  # (nf,) int64 polygon sizes
    extra: np.ndarray  # (nf,) int64 numbers after the indices (0, or 3-4 colour values)


def load_off(path: Path, limits: Limits, root: Path) -> LoadedAsset:
    """Read an ASCII OFF ([ST][C][N]OFF): counts validated first, then PyTorch3D (plain OFF, uniform faces) or numpy."""
    raw = path.read_bytes()
    lay = _off_layout(raw, path.name, limits)
    m, nv, nf = lay.key, lay.nv, lay.nf
    has_st, has_n = bool(m.group(1)), bool(m.group(3))
    ncol = _vertex_columns(lay, path.name)
    fc = _off_faces(lay, path.name, limits)
    lengths, extra = fc.lengths, fc.extra
    uniform = nf == 0 or ((lengths == lengths[0]).all() and (extra == extra[0]).all() and lengths[0] >= 3)
    warnings: list[str] = []
    out: dict = {}
    loader = ""
    if m.group(0).upper() == b"OFF" and uniform and ncol in (3, 6, 7):
        try:
            out = _off_pytorch3d(path)
            loader = "pytorch3d.io.IO().load_mesh"
            if nf and len(out["faces"]) != nf * (int(lengths[0]) - 2):
                loader, out = "mesh_io OFF reader (PyTorch3D dropped faces with negative indices)", {}
        except Exception as e:
            loader = f"mesh_io OFF reader (PyTorch3D refused the file: {str(e)[:80]})"
    if not out:
        out = _off_arrays(lay, ncol, fc, path.name, warnings)
        loader = loader or "mesh_io OFF reader (polygons of mixed sizes, or an OFF variant PyTorch3D does not read)"
    head_lines = raw[:4096].decode("utf-8", errors="replace").splitlines()[:12]
    props = [["x", "float"], ["y", "float"], ["z", "float"]]
    if has_n:
        props += [["nx", "float"], ["ny", "float"], ["nz", "float"]]
    if out.get("colors") is not None:
        props += [[c, "float"] for c in ("red", "green", "blue", "alpha")[: out["colors"].shape[1]]]
    if has_st:
        props += [["s", "float"], ["t", "float"]]
    faces = out["faces"]
    return LoadedAsset(
        path=path,
        format="off",
        encoding="ascii",
        header=cap_text("\n".join(head_lines)),
        verts=out["verts"],
        faces=faces,
        normals=out.get("normals"),
        colors=out.get("colors"),
        uvs=out.get("uvs"),
        elements=[
            {"name": "vertex", "count": nv, "properties": props},
            {"name": "face", "count": nf, "properties": [["vertex_indices", "list int"]], "triangles": int(len(faces))},
        ],
        warnings=warnings,
        face_colors=out.get("face_colors"),
        loader=loader,
    )


def _off_layout(raw: bytes, name: str, limits: Limits) -> _OffLayout:
    """The keyword and counts, checked against the limits and against the data lines the file has."""
    if b"\x00" in raw[:4096]:
        if raw.lstrip()[:3].upper() == b"OFF":
            raise MeshFileError(f"{name} is a binary OFF file, which is not supported (save it as ASCII OFF).")
        raise MeshFileError(f"{name} is not an OFF file (it contains binary data).")
    data = re.sub(rb"#[^\r\n]*", b"", raw) if b"#" in raw else raw
    buf = np.frombuffer(data, dtype=np.uint8)
    starts, ends, tokens = text_lines(buf)
    if not len(starts):
        raise MeshFileError(f"{name} is empty.")
    first = data[starts[0] : ends[0]].split()
    m = _OFF_KEY.fullmatch(first[0])
    if m is None:
        raise MeshFileError(f"{name} is not an OFF file (it does not start with OFF).")
    if m.group(4) or m.group(5):
        raise MeshFileError(f"{name} is a 4D / n-dimensional OFF file, which is not supported.")
    if len(first) > 1 and first[1].upper() == b"BINARY":
        raise MeshFileError(f"{name} is a binary OFF file, which is not supported (save it as ASCII OFF).")
    counts, line = first[1:], 1
    if not counts:
        if len(starts) < 2:
            raise MeshFileError(f"{name} has no counts line.")
        counts, line = data[starts[1] : ends[1]].split(), 2
    if len(counts) < 2 or not all(re.fullmatch(rb"\d{1,15}", c) for c in counts[:2]):
        raise MeshFileError(f"{name} has an invalid counts line (expected: vertices faces edges).")
    nv, nf = int(counts[0]), int(counts[1])
    if nv > limits.max_vertices:
        raise MeshFileError(f"{name} declares {nv:,} vertices, above the limit of {limits.max_vertices:,}.")
    if nf > limits.max_faces:
        raise MeshFileError(f"{name} declares {nf:,} faces, above the limit of {limits.max_faces:,}.")
    rows = len(starts) - line
    if rows < nv + nf:
        raise MeshFileError(
            f"{name} is truncated or its header overstates the counts: it declares {nv:,} vertices and {nf:,} faces "
            f"but has {rows:,} data lines."
        )
    if rows > nv + nf:
        raise MeshFileError(f"{name} has {rows - nv - nf:,} more data lines than its header declares.")
    return _OffLayout(data, starts, ends, tokens, m, line, nv, nf)


def _vertex_columns(lay: _OffLayout, name: str) -> int:
    """Numbers per vertex line, the same on every line and one the keyword allows."""
    m, nv, line = lay.key, lay.nv, lay.line
    has_st, has_c, has_n = bool(m.group(1)), bool(m.group(2)), bool(m.group(3))
    vt = lay.tokens[line : line + nv]
    if nv and not (vt == vt[0]).all():
        raise MeshFileError(f"{name} has vertex lines with different numbers of values.")
    ncol = int(vt[0]) if nv else 3
    base = 3 + 3 * has_n
    allowed = {base + 2 * has_st + c for c in ((3, 4) if has_c else (0, 3, 4))}
    if nv and ncol not in allowed:
        raise MeshFileError(
            f"{name} has {ncol} values per vertex line; expected {sorted(allowed)} for {m.group(0).decode()}."
        )
    return ncol


def _off_faces(lay: _OffLayout, name: str, limits: Limits) -> _OffFaces:
    """The face lines parsed: polygon sizes checked against each line's numbers, triangles against the limit."""
    nv, nf, line, starts, ends = lay.nv, lay.nf, lay.line, lay.starts, lay.ends
    ft = lay.tokens[line + nv : line + nv + nf]
    fvals = np.zeros(0)
    lengths = np.zeros(0, np.int64)
    extra = np.zeros(0, np.int64)
    if nf:
        fvals = parse_numbers(
            lay.data, int(starts[line + nv]), int(ends[line + nv + nf - 1]), int(ft.sum()), f"faces of {name}"
        )
        off = np.cumsum(ft) - ft
        lengths_f = fvals[off]
        if (lengths_f < 0).any() or (lengths_f != np.floor(lengths_f)).any():
            raise MeshFileError(f"{name} has an invalid polygon size in a face line.")
        lengths = lengths_f.astype(np.int64)
        extra = ft - 1 - lengths
        bad = np.flatnonzero((extra < 0) | (extra > 4) | ((extra > 0) & (extra < 3)))
        if bad.size:
            k = int(bad[0])
            raise MeshFileError(f"{name}: face {k} has {int(ft[k])} values but its size says {int(lengths[k])}.")
        tris = int(np.maximum(lengths - 2, 0).sum())
        if tris > limits.max_faces:
            raise MeshFileError(f"{name} has {tris:,} triangles after splitting polygons, above {limits.max_faces:,}.")
    return _OffFaces(ft, fvals, lengths, extra)


def _off_arrays(lay: _OffLayout, ncol: int, fc: _OffFaces, name: str, warnings: list[str]) -> dict:
    """Vertices, normals, colours, uvs and fan-triangulated faces (with face colours) read with numpy."""
    m, nv, nf, line = lay.key, lay.nv, lay.nf, lay.line
    has_st, has_n = bool(m.group(1)), bool(m.group(3))
    ft, fvals, lengths, extra = fc.ft, fc.fvals, fc.lengths, fc.extra
    out: dict = {}
    vvals = (
        parse_numbers(lay.data, int(lay.starts[line]), int(lay.ends[line + nv - 1]), nv * ncol, f"vertices of {name}")
        if nv
        else np.zeros(0)
    )
    table = vvals.reshape(nv, ncol)
    out["verts"] = table[:, :3].astype(np.float32)
    col = 3
    if has_n:
        out["normals"] = table[:, 3:6].astype(np.float32)
        col = 6
    ccount = ncol - col - 2 * has_st
    if ccount in (3, 4):
        out["colors"] = _unit_colors(table[:, col : col + ccount])
    if has_st:
        out["uvs"] = table[:, ncol - 2 :].astype(np.float32)
    if nf:
        off = np.cumsum(ft) - ft
        ramp = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        flat = fvals[np.repeat(off + 1, lengths) + ramp]
        faces, poly, _ = fan_triangulate(np.rint(flat).astype(np.int64), lengths)
        out["faces"] = faces
        short = int((lengths < 3).sum())
        if short:
            warnings.append(f"{short:,} faces with fewer than 3 vertices were skipped.")
        if (extra >= 3).all():
            fc_vals = np.stack([fvals[off + 1 + lengths + c] for c in range(int(extra.min()))], axis=1)
            out["face_colors"] = _unit_colors(fc_vals)[poly]
    else:
        out["faces"] = np.zeros((0, 3), np.int64)
    return out


def _unit_colors(values: np.ndarray) -> np.ndarray:
    """OFF colours as floats in [0, 1]: integer 0-255 values are scaled, floats kept."""
    values = np.asarray(values, dtype=np.float64)
    if values.size and values.max() > 1.0 and (values == np.floor(values)).all():
        values = values / 255.0
    return values.astype(np.float32)


def _off_pytorch3d(path: Path) -> dict:
    from pytorch3d.io import IO
    from pytorch3d.renderer import TexturesAtlas, TexturesVertex

    mesh = IO().load_mesh(str(path), include_textures=True)
    out = {"verts": mesh.verts_list()[0].numpy(), "faces": mesh.faces_list()[0].numpy()}
    tex = mesh.textures
    if isinstance(tex, TexturesVertex):
        out["colors"] = tex.verts_features_list()[0].numpy()
    elif isinstance(tex, TexturesAtlas):
        out["face_colors"] = tex.atlas_list()[0][:, 0, 0, :].numpy()
    return out
