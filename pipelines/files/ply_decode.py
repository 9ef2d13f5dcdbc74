"""PLY data: the byte ranges (binary) or lines (ASCII) of each declared element, checked, then decoded with numpy."""

from __future__ import annotations

import struct

import numpy as np

from pipelines.files.ply_header import PLY_TYPES, STRUCT_CODES, PlyElement, PlyHeader
from pipelines.files.tables import parse_numbers, text_lines
from pipelines.files.types import MeshFileError

# ----------------------------------------------------------------------------------------------------------------
# Binary layout and decoding
# ----------------------------------------------------------------------------------------------------------------


def _truncated(name: str, el: PlyElement) -> MeshFileError:
    return MeshFileError(
        f"{name} is truncated or its header overstates the counts: the data ends inside element '{el.name}'."
    )


def binary_layout(buf: np.ndarray, hdr: PlyHeader, name: str) -> None:
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
    cdt = np.dtype(bo + PLY_TYPES[p.count_type])
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
            steps.append((struct.Struct(bo + STRUCT_CODES[PLY_TYPES[p.count_type]]), np.dtype(p.code).itemsize))
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


def decode_binary(buf: np.ndarray, el: PlyElement, bo: str) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """{property: (values, lengths)}: scalars (count,); lists flat (sum of lengths,) with lengths (count,)."""
    block = buf[el.start : el.start + el.nbytes]
    if not el.list_props:
        dt = np.dtype([(f"f{j}", bo + p.code) for j, p in enumerate(el.props)])
        rec = np.frombuffer(block.tobytes(), dtype=dt, count=el.count)
        return {p.name: (rec[f"f{j}"].astype(p.code), None) for j, p in enumerate(el.props)}
    if el.uniform is not None:
        p = el.props[0]
        csz = np.dtype(PLY_TYPES[p.count_type]).itemsize
        row = csz + el.uniform * np.dtype(p.code).itemsize
        vals = np.ascontiguousarray(block.reshape(el.count, row)[:, csz:]).view(bo + p.code).ravel().astype(p.code)
        return {p.name: (vals, np.full(el.count, el.uniform, dtype=np.int64))}
    sizes = np.empty((el.count, len(el.props)), dtype=np.int64)
    j_list = 0
    for j, p in enumerate(el.props):
        if p.count_type:
            csz = np.dtype(PLY_TYPES[p.count_type]).itemsize
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
        base = offs[:, j] + np.dtype(PLY_TYPES[p.count_type]).itemsize
        ramp = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        out[p.name] = (_gather(buf, np.repeat(base, lengths) + ramp * dt.itemsize, dt), lengths)
    return out


# ----------------------------------------------------------------------------------------------------------------
# ASCII layout and decoding
# ----------------------------------------------------------------------------------------------------------------


def ascii_layout(body: bytes, hdr: PlyHeader, name: str) -> None:
    """Find each element's lines and check their value counts (and list lengths) against the header."""
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


def decode_ascii(
    body: bytes, hdr: PlyHeader, el: PlyElement, name: str
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """{property: (values, lengths)} of an ASCII element, as decode_binary gives them."""
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
