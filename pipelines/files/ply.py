"""PLY and OFF readers: header and structure checked before allocating, then PyTorch3D or a vectorised reader."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines.files import mesh_io
from pipelines.files.mesh_io import Limits, LoadedAsset, MeshFileError, cap_text, open_texture, resolve_reference

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2", "ushort": "u2",
    "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4", "float": "f4", "float32": "f4",
    "double": "f8", "float64": "f8",
}  # fmt: skip
_STRUCT = {"i1": "b", "u1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I"}
_MAX_HEADER = 1 << 18
_ENCODINGS = ("ascii", "binary_little_endian", "binary_big_endian")

# vertex property names understood, in order of preference
_NORMALS = (("nx", "ny", "nz"), ("normal_x", "normal_y", "normal_z"))
_RGB = (("red", "green", "blue"), ("r", "g", "b"), ("diffuse_red", "diffuse_green", "diffuse_blue"))
_ALPHA = ("alpha", "a", "diffuse_alpha")
_UV = (("u", "v"), ("s", "t"), ("texture_u", "texture_v"), ("texture_s", "texture_t"))
_FACE_LISTS = ("vertex_indices", "vertex_index")


@dataclass
class PlyProperty:
    name: str
    type: str  # PLY type as written: 'float', 'uchar', ...
    count_type: str | None = None  # list-length type; None for a scalar property

    @property
    def code(self) -> str:
        return _PLY_TYPES[self.type]

    def describe(self) -> str:
        return f"list {self.count_type} {self.type}" if self.count_type else self.type


@dataclass
class PlyElement:
    name: str
    count: int
    props: list[PlyProperty]
    start: int = 0  # binary: byte offset of the element's data; ascii: index of its first data line
    nbytes: int = 0  # binary only
    lengths: np.ndarray | None = None  # (count, n_lists) list lengths, when the element has lists
    uniform: int | None = None  # the common list length when the element is one list of constant length
    values: np.ndarray | None = None  # ascii: the numbers of the element's lines (float64), once parsed
    line_tokens: np.ndarray | None = None  # ascii: (count,) numbers on each line

    @property
    def list_props(self) -> list[int]:
        return [j for j, p in enumerate(self.props) if p.count_type]


@dataclass
class PlyHeader:
    encoding: str
    elements: list[PlyElement]
    comments: list[str]
    text: str
    data_start: int
    lines: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)  # ascii: (starts, ends)

    def element(self, name: str) -> PlyElement | None:
        return next((e for e in self.elements if e.name == name), None)


def read_ply_header(path: Path) -> PlyHeader:
    """Parse a PLY header (any whitespace, CRLF allowed); MeshFileError for anything malformed."""
    name = path.name
    with open(path, "rb") as f:
        head = f.read(_MAX_HEADER)
    if not re.match(rb"ply[ \t]*\r?\n", head):
        raise MeshFileError(f"{name} is not a PLY file (it does not start with a 'ply' line).")
    m = re.search(rb"\nend_header[ \t]*\r?\n", head)
    if m is None:
        if len(head) == _MAX_HEADER:
            raise MeshFileError(f"{name} has a PLY header longer than {_MAX_HEADER // 1024} kB without 'end_header'.")
        raise MeshFileError(f"{name} has an incomplete PLY header (no 'end_header' line).")
    text = head[: m.end()].decode("latin-1")
    encoding = None
    elements: list[PlyElement] = []
    comments: list[str] = []
    for raw in text.splitlines()[1:]:
        tokens = raw.split()
        if not tokens:
            continue
        key = tokens[0]
        if key == "format":
            if len(tokens) < 2 or tokens[1] not in _ENCODINGS:
                raise MeshFileError(f"{name} has an unknown PLY format line: '{raw.strip()[:60]}'.")
            encoding = tokens[1]
        elif key in ("comment", "obj_info"):
            comments.append(raw.strip()[len(key) :].strip())
        elif key == "element":
            if len(tokens) != 3 or not re.fullmatch(r"\d{1,15}", tokens[2]):
                raise MeshFileError(f"{name} has an invalid PLY element line: '{raw.strip()[:60]}'.")
            elements.append(PlyElement(tokens[1], int(tokens[2]), []))
        elif key == "property":
            if not elements:
                raise MeshFileError(f"{name} has a PLY property before any element.")
            if len(tokens) == 5 and tokens[1] == "list":
                prop = PlyProperty(tokens[4], tokens[3], tokens[2])
                if prop.count_type not in _PLY_TYPES or _PLY_TYPES[prop.count_type] not in _STRUCT:
                    raise MeshFileError(f"{name} has a PLY list whose length type is not an integer type.")
            elif len(tokens) == 3:
                prop = PlyProperty(tokens[2], tokens[1])
            else:
                raise MeshFileError(f"{name} has an invalid PLY property line: '{raw.strip()[:60]}'.")
            if prop.type not in _PLY_TYPES:
                raise MeshFileError(f"{name} uses an unknown PLY type '{prop.type}'.")
            if any(p.name == prop.name for p in elements[-1].props):
                raise MeshFileError(f"{name} declares property '{prop.name}' twice in element '{elements[-1].name}'.")
            elements[-1].props.append(prop)
        elif key == "end_header":
            break
        else:
            raise MeshFileError(f"{name} has an unexpected line in its PLY header: '{raw.strip()[:60]}'.")
    if encoding is None:
        raise MeshFileError(f"{name} has no 'format' line in its PLY header.")
    if not elements:
        raise MeshFileError(f"{name} declares no elements in its PLY header.")
    empty = next((e.name for e in elements if not e.props), None)
    if empty is not None:
        raise MeshFileError(f"{name} declares element '{empty}' without properties.")
    return PlyHeader(encoding, elements, comments, text, m.end())


def _check_declared(hdr: PlyHeader, name: str, body: int, limits: Limits) -> None:
    """Counts against the limits and against the bytes the file actually has (before reading any data)."""
    vertex = hdr.element("vertex")
    if vertex is None:
        raise MeshFileError(f"{name} has no 'vertex' element.")
    if vertex.count > limits.max_vertices:
        raise MeshFileError(f"{name} declares {vertex.count:,} vertices, above the limit of {limits.max_vertices:,}.")
    face = hdr.element("face")
    if face is not None and face.count > limits.max_faces:
        raise MeshFileError(f"{name} declares {face.count:,} faces, above the limit of {limits.max_faces:,}.")
    cap = max(limits.max_vertices, limits.max_faces)
    other = next((e for e in hdr.elements if e.name not in ("vertex", "face") and e.count > cap), None)
    if other is not None:
        raise MeshFileError(f"{name} declares {other.count:,} '{other.name}' items, above the limit of {cap:,}.")
    need = 0
    for el in hdr.elements:
        if hdr.encoding == "ascii":
            row = 2 * len(el.props)  # one digit and one separator per value, at least
        else:
            row = sum(np.dtype(_PLY_TYPES[p.count_type or p.type]).itemsize for p in el.props)
        need += el.count * row
    if need > body:
        counts = ", ".join(f"{e.count:,} {e.name}" for e in hdr.elements)
        raise MeshFileError(
            f"{name} declares {counts}, which needs at least {need:,} bytes, but the file holds only {body:,} bytes of "
            "data (it is truncated or its header overstates the counts)."
        )


# ----------------------------------------------------------------------------------------------------------------
# Binary layout and decoding
# ----------------------------------------------------------------------------------------------------------------


def _truncated(name: str, el: PlyElement) -> MeshFileError:
    return MeshFileError(
        f"{name} is truncated or its header overstates the counts: the data ends inside element '{el.name}'."
    )


def _binary_layout(buf: np.ndarray, hdr: PlyHeader, name: str) -> None:
    """Fill each element's byte range and list lengths, stopping at the first inconsistency."""
    bo = ">" if hdr.encoding == "binary_big_endian" else "<"
    end = buf.size
    pos = hdr.data_start
    for el in hdr.elements:
        el.start = pos
        if el.count == 0:
            continue
        if not el.list_props:
            size = el.count * sum(np.dtype(p.code).itemsize for p in el.props)
        else:
            size = _uniform_list_size(buf, pos, el, bo) if len(el.props) == 1 else None
            if size is None:
                size, el.lengths = _scan_lists(buf, pos, el, bo, name)
        if pos + size > end:
            raise _truncated(name, el)
        el.nbytes = size
        pos += size
    trailing = end - pos
    if trailing and (trailing > 64 or bytes(buf[pos:]).strip()):
        raise MeshFileError(
            f"{name} has {trailing:,} bytes after the data its header declares (the header understates the counts)."
        )


def _uniform_list_size(buf: np.ndarray, pos: int, el: PlyElement, bo: str) -> int | None:
    """Byte size of a single-list element whose lists all have the first one's length (vectorised test)."""
    p = el.props[0]
    cdt = np.dtype(bo + _PLY_TYPES[p.count_type])
    isz = np.dtype(p.code).itemsize
    if pos + cdt.itemsize > buf.size:
        return None
    first = int(np.frombuffer(buf[pos : pos + cdt.itemsize].tobytes(), dtype=cdt)[0])
    row = cdt.itemsize + first * isz
    if first < 0 or pos + el.count * row > buf.size:
        return None
    block = buf[pos : pos + el.count * row].reshape(el.count, row)
    counts = np.ascontiguousarray(block[:, : cdt.itemsize]).view(cdt).ravel()
    if not (counts == first).all():
        return None
    el.uniform = first
    el.lengths = np.full((el.count, 1), first, dtype=np.int64)
    return el.count * row


def _scan_lists(buf: np.ndarray, pos: int, el: PlyElement, bo: str, name: str) -> tuple[int, np.ndarray]:
    """Walk an element with lists item by item, reading only the lengths; fails as soon as data runs out."""
    steps = []
    for p in el.props:
        if p.count_type:
            steps.append((struct.Struct(bo + _STRUCT[_PLY_TYPES[p.count_type]]), np.dtype(p.code).itemsize))
        else:
            steps.append((None, np.dtype(p.code).itemsize))
    lengths = np.empty((el.count, len(el.list_props)), dtype=np.int64)
    end = buf.size
    cur = pos
    for i in range(el.count):
        j = 0
        for st, isz in steps:
            if st is None:
                cur += isz
                continue
            if cur + st.size > end:
                raise _truncated(name, el)
            n = st.unpack_from(buf, cur)[0]
            if n < 0:
                raise MeshFileError(f"{name} has a negative list length in element '{el.name}' (item {i}).")
            cur += st.size + n * isz
            lengths[i, j] = n
            j += 1
        if cur > end:
            raise _truncated(name, el)
    return cur - pos, lengths


def _gather(buf: np.ndarray, offsets: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Values of `dtype` read at byte `offsets` of buf, in native byte order."""
    idx = offsets[:, None] + np.arange(dtype.itemsize)
    return np.ascontiguousarray(buf[idx]).view(dtype).ravel().astype(dtype.newbyteorder("="))


def _decode_binary(buf: np.ndarray, el: PlyElement, bo: str) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """{property: (values, lengths)}: scalars (count,); lists flat (sum of lengths,) with lengths (count,)."""
    block = buf[el.start : el.start + el.nbytes]
    if not el.list_props:
        dt = np.dtype([(f"f{j}", bo + p.code) for j, p in enumerate(el.props)])
        rec = np.frombuffer(block.tobytes(), dtype=dt, count=el.count)
        return {p.name: (rec[f"f{j}"].astype(p.code), None) for j, p in enumerate(el.props)}
    if el.uniform is not None:
        p = el.props[0]
        csz = np.dtype(_PLY_TYPES[p.count_type]).itemsize
        row = csz + el.uniform * np.dtype(p.code).itemsize
        vals = np.ascontiguousarray(block.reshape(el.count, row)[:, csz:]).view(bo + p.code).ravel().astype(p.code)
        return {p.name: (vals, np.full(el.count, el.uniform, dtype=np.int64))}
    sizes = np.empty((el.count, len(el.props)), dtype=np.int64)
    j_list = 0
    for j, p in enumerate(el.props):
        if p.count_type:
            csz = np.dtype(_PLY_TYPES[p.count_type]).itemsize
            sizes[:, j] = csz + el.lengths[:, j_list] * np.dtype(p.code).itemsize
            j_list += 1
        else:
            sizes[:, j] = np.dtype(p.code).itemsize
    row = sizes.sum(axis=1)
    inst = el.start + np.cumsum(row) - row
    offs = inst[:, None] + np.cumsum(sizes, axis=1) - sizes  # (count, n_props) byte offset of each property
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    j_list = 0
    for j, p in enumerate(el.props):
        dt = np.dtype(bo + p.code)
        if not p.count_type:
            out[p.name] = (_gather(buf, offs[:, j], dt), None)
            continue
        lengths = el.lengths[:, j_list]
        j_list += 1
        base = offs[:, j] + np.dtype(_PLY_TYPES[p.count_type]).itemsize
        ramp = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        out[p.name] = (_gather(buf, np.repeat(base, lengths) + ramp * dt.itemsize, dt), lengths)
    return out


# ----------------------------------------------------------------------------------------------------------------
# ASCII layout and decoding
# ----------------------------------------------------------------------------------------------------------------


def text_lines(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, numbers per line) of the non-blank lines of a text buffer, computed without a Python loop."""
    nl = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [buf.size]))
    tok = buf > 32
    first = tok.copy()
    first[1:] &= ~tok[:-1]
    pos = np.flatnonzero(first)
    counts = np.searchsorted(pos, ends) - np.searchsorted(pos, starts)
    keep = counts > 0
    return starts[keep], ends[keep], counts[keep]


def parse_numbers(data: bytes, start: int, end: int, expected: int, what: str) -> np.ndarray:
    """The whitespace-separated numbers of data[start:end] as float64; MeshFileError unless exactly `expected`."""
    if expected == 0:
        return np.zeros(0, dtype=np.float64)
    try:
        values = np.fromstring(data[start:end], dtype=np.float64, sep=" ")
    except ValueError as e:
        raise MeshFileError(f"The {what} contain text that is not a number.") from e
    if values.size != expected:
        raise MeshFileError(f"The {what} contain text that is not a number.")
    return values


def _ascii_layout(body: bytes, hdr: PlyHeader, name: str) -> None:
    buf = np.frombuffer(body, dtype=np.uint8)
    starts, ends, tokens = text_lines(buf)
    hdr.lines = (starts, ends)
    total = sum(e.count for e in hdr.elements)
    if len(starts) < total:
        raise MeshFileError(
            f"{name} is truncated or its header overstates the counts: it declares {total:,} data lines but has "
            f"{len(starts):,}."
        )
    if len(starts) > total:
        raise MeshFileError(
            f"{name} has {len(starts) - total:,} more data lines than its header declares (the counts are wrong)."
        )
    line = 0
    for el in hdr.elements:
        el.start = line
        tk = tokens[line : line + el.count]
        el.line_tokens = tk
        lists = el.list_props
        if not lists:
            bad = np.flatnonzero(tk != len(el.props))
            if bad.size:
                k = int(bad[0])
                raise MeshFileError(
                    f"{name}: item {k} of element '{el.name}' has {int(tk[k])} values; the header declares "
                    f"{len(el.props)} properties."
                )
        elif el.count:
            el.values = parse_numbers(
                body, int(starts[line]), int(ends[line + el.count - 1]), int(tk.sum()), f"'{el.name}' lines of {name}"
            )
            if len(lists) == 1:
                j = lists[0]
                line_off = np.cumsum(tk) - tk
                raw = el.values[line_off + j]
                if (raw < 0).any() or (raw != np.floor(raw)).any():
                    raise MeshFileError(f"{name} has an invalid list length in element '{el.name}'.")
                bad = np.flatnonzero(tk != len(el.props) + raw)
                if bad.size:
                    k = int(bad[0])
                    raise MeshFileError(
                        f"{name}: item {k} of element '{el.name}' has {int(tk[k])} values, but its list length "
                        f"says {int(raw[k])} (plus {len(el.props) - 1} other properties)."
                    )
                el.lengths = raw.astype(np.int64)[:, None]
                if len(el.props) == 1 and el.count and (raw == raw[0]).all():
                    el.uniform = int(raw[0])
            elif (tk < len(el.props)).any():
                raise MeshFileError(f"{name}: element '{el.name}' has items with too few values.")
        line += el.count


def _decode_ascii(
    body: bytes, hdr: PlyHeader, el: PlyElement, name: str
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    starts, ends = hdr.lines
    n = len(el.props)
    if el.count == 0:
        return {p.name: (np.zeros(0, p.code), np.zeros(0, np.int64) if p.count_type else None) for p in el.props}
    if not el.list_props:
        vals = parse_numbers(
            body,
            int(starts[el.start]),
            int(ends[el.start + el.count - 1]),
            el.count * n,
            f"'{el.name}' lines of {name}",
        ).reshape(el.count, n)
        return {p.name: (_cast(vals[:, j], p.code), None) for j, p in enumerate(el.props)}
    vals = el.values
    line_off = np.cumsum(el.line_tokens) - el.line_tokens
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    if len(el.list_props) == 1:
        j = el.list_props[0]
        lengths = el.lengths[:, 0]
        for k, p in enumerate(el.props):
            if k < j:
                out[p.name] = (_cast(vals[line_off + k], p.code), None)
            elif k > j:
                out[p.name] = (_cast(vals[line_off + k + lengths], p.code), None)
            else:
                ramp = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
                out[p.name] = (_cast(vals[np.repeat(line_off + j + 1, lengths) + ramp], p.code), lengths)
        return out
    # several lists per item (e.g. MeshLab's vertex_indices + texcoord): walk the items
    cols: list[list] = [[] for _ in el.props]
    lens: list[list[int]] = [[] for _ in el.props]
    for i, off in enumerate(line_off.tolist()):
        cur, stop = off, off + int(el.line_tokens[i])
        for k, p in enumerate(el.props):
            if p.count_type:
                m = int(vals[cur])
                if m < 0 or cur + 1 + m > stop:
                    raise MeshFileError(f"{name}: item {i} of element '{el.name}' has a list longer than its line.")
                cols[k].append(vals[cur + 1 : cur + 1 + m])
                lens[k].append(m)
                cur += 1 + m
            else:
                cols[k].append(vals[cur : cur + 1])
                cur += 1
    for k, p in enumerate(el.props):
        flat = np.concatenate(cols[k]) if cols[k] else np.zeros(0)
        out[p.name] = (_cast(flat, p.code), np.asarray(lens[k], dtype=np.int64) if p.count_type else None)
    return out


def _cast(values: np.ndarray, code: str) -> np.ndarray:
    return values.astype(code) if code[0] == "f" else np.rint(values).astype(np.int64)


# ----------------------------------------------------------------------------------------------------------------
# Interpretation shared by the readers
# ----------------------------------------------------------------------------------------------------------------


def fan_triangulate(flat: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split polygons (flat indices + lengths) into fans: (F, 3) triangles, (F,) polygon of each, (F, 3) corners.

    `corners` are positions in `flat`, so per-corner data (wedge uvs) can follow the same split.
    Polygons with fewer than 3 indices give no triangle.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    ntri = np.maximum(lengths - 2, 0)
    first = np.cumsum(lengths) - lengths
    poly = np.repeat(np.arange(lengths.size), ntri)
    k = np.arange(int(ntri.sum())) - np.repeat(np.cumsum(ntri) - ntri, ntri)
    base = first[poly]
    corners = np.stack([base, base + k + 1, base + k + 2], axis=1)
    return np.asarray(flat, dtype=np.int64)[corners], poly, corners


def _color_scale(code: str) -> float:
    return float(np.iinfo(np.dtype(code)).max) if code[0] in "iu" else 1.0


def _columns(cols: dict, el: PlyElement, options: tuple) -> tuple[np.ndarray, tuple[str, ...]] | None:
    for names in options:
        if all(n in cols and cols[n][1] is None for n in names):
            return np.stack([cols[n][0] for n in names], axis=1), names
    return None


def _vertex_attributes(cols: dict, el: PlyElement) -> dict:
    """Positions, normals, colours (with alpha) and uvs from decoded vertex columns."""
    types = {p.name: p.code for p in el.props}
    xyz = _columns(cols, el, (("x", "y", "z"),))
    if xyz is None:
        raise MeshFileError("The PLY 'vertex' element has no x, y, z properties.")
    out: dict = {"verts": xyz[0].astype(np.float32)}
    nrm = _columns(cols, el, _NORMALS)
    out["normals"] = None if nrm is None else nrm[0].astype(np.float32)
    rgb = _columns(cols, el, _RGB)
    if rgb is not None:
        colors = rgb[0].astype(np.float64) / _color_scale(types[rgb[1][0]])
        alpha = next((a for a in _ALPHA if a in cols and cols[a][1] is None), None)
        if alpha is not None:
            colors = np.concatenate([colors, cols[alpha][0][:, None] / _color_scale(types[alpha])], axis=1)
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
    types = {p.name: p.code for p in el.props}
    rgb = _columns(cols, el, _RGB)
    if rgb is not None:
        colors = rgb[0].astype(np.float64) / _color_scale(types[rgb[1][0]])
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
# PLY
# ----------------------------------------------------------------------------------------------------------------


def load_ply(path: Path, limits: Limits, root: Path) -> LoadedAsset:
    """Read a PLY: header and layout validated first, then PyTorch3D (uniform face lists) or the vectorised reader."""
    name = path.name
    hdr = read_ply_header(path)
    size = path.stat().st_size
    _check_declared(hdr, name, size - hdr.data_start, limits)
    bo = ">" if hdr.encoding == "binary_big_endian" else "<"
    if hdr.encoding == "ascii":
        body = path.read_bytes()[hdr.data_start :]
        _ascii_layout(body, hdr, name)
        buf = None
    else:
        body = b""
        buf = np.memmap(path, dtype=np.uint8, mode="r")
        _binary_layout(buf, hdr, name)
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

    def decode(el: PlyElement) -> dict:
        return _decode_ascii(body, hdr, el, name) if buf is None else _decode_binary(buf, el, bo)

    warnings: list[str] = []
    vnames = {p.name for p in vertex.props}
    has_faces = face is not None and face.count > 0
    # PyTorch3D reads uniform face lists; it would also decode other elements' lists item by item in Python
    p3d_ok = (
        {"x", "y", "z"} <= vnames
        and (not has_faces or (face.uniform is not None and face.uniform >= 3))
        and (not has_faces or face.count <= mesh_io.PYTORCH3D_MAX_FACES)
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
        attrs = _vertex_attributes(decode(vertex), vertex)
        for key, value in attrs.items():
            if data.get(key) is None or key == "colors" and value is not None:
                data[key] = value
    if "faces" not in data:
        data["faces"] = np.zeros((0, 3), np.int64)
        if has_faces:
            data.update({k: v for k, v in _face_arrays(decode(face), face, warnings).items() if v is not None})
            if not loader:
                why = (
                    "large file"
                    if face.count > mesh_io.PYTORCH3D_MAX_FACES
                    else "polygons of mixed sizes or extra face properties"
                )
                loader = f"mesh_io PLY reader ({why})"
    if buf is not None:
        del buf
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


# ----------------------------------------------------------------------------------------------------------------
# OFF
# ----------------------------------------------------------------------------------------------------------------

_OFF_KEY = re.compile(rb"(ST)?(C)?(N)?(4)?(n)?OFF", re.IGNORECASE)


def load_off(path: Path, limits: Limits, root: Path) -> LoadedAsset:
    """Read an ASCII OFF ([ST][C][N]OFF): counts validated first, then PyTorch3D (plain OFF, uniform faces) or numpy."""
    name = path.name
    raw = path.read_bytes()
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
    has_st, has_c, has_n = bool(m.group(1)), bool(m.group(2)), bool(m.group(3))
    vt = tokens[line : line + nv]
    if nv and not (vt == vt[0]).all():
        raise MeshFileError(f"{name} has vertex lines with different numbers of values.")
    ncol = int(vt[0]) if nv else 3
    base = 3 + 3 * has_n
    allowed = {base + 2 * has_st + c for c in ((3, 4) if has_c else (0, 3, 4))}
    if nv and ncol not in allowed:
        raise MeshFileError(
            f"{name} has {ncol} values per vertex line; expected {sorted(allowed)} for {m.group(0).decode()}."
        )
    ft = tokens[line + nv : line + nv + nf]
    fvals = np.zeros(0)
    lengths = np.zeros(0, np.int64)
    extra = np.zeros(0, np.int64)
    if nf:
        fvals = parse_numbers(
            data, int(starts[line + nv]), int(ends[line + nv + nf - 1]), int(ft.sum()), f"faces of {name}"
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
        vvals = (
            parse_numbers(data, int(starts[line]), int(ends[line + nv - 1]), nv * ncol, f"vertices of {name}")
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
                fc = np.stack([fvals[off + 1 + lengths + c] for c in range(int(extra.min()))], axis=1)
                out["face_colors"] = _unit_colors(fc)[poly]
        else:
            out["faces"] = np.zeros((0, 3), np.int64)
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
