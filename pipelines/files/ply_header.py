"""PLY header: the declared elements and properties, parsed and checked against the limits before any data is read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines.files.types import Limits, MeshFileError

PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2", "ushort": "u2",
    "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4", "float": "f4", "float32": "f4",
    "double": "f8", "float64": "f8",
}  # fmt: skip
STRUCT_CODES = {"i1": "b", "u1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I"}
_MAX_HEADER = 1 << 18
_ENCODINGS = ("ascii", "binary_little_endian", "binary_big_endian")


@dataclass
class PlyProperty:
    name: str
    type: str  # PLY type as written: 'float', 'uchar', ...
    count_type: str | None = None  # list-length type; None for a scalar property

    @property
    def code(self) -> str:
        return PLY_TYPES[self.type]

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
                if prop.count_type not in PLY_TYPES or PLY_TYPES[prop.count_type] not in STRUCT_CODES:
                    raise MeshFileError(f"{name} has a PLY list whose length type is not an integer type.")
            elif len(tokens) == 3:
                prop = PlyProperty(tokens[2], tokens[1])
            else:
                raise MeshFileError(f"{name} has an invalid PLY property line: '{raw.strip()[:60]}'.")
            if prop.type not in PLY_TYPES:
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


def check_declared(hdr: PlyHeader, name: str, body: int, limits: Limits) -> None:
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
            row = sum(np.dtype(PLY_TYPES[p.count_type or p.type]).itemsize for p in el.props)
        need += el.count * row
    if need > body:
        counts = ", ".join(f"{e.count:,} {e.name}" for e in hdr.elements)
        raise MeshFileError(
            f"{name} declares {counts}, which needs at least {need:,} bytes, but the file holds only {body:,} bytes of "
            "data (it is truncated or its header overstates the counts)."
        )
