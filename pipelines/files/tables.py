"""Vectorised helpers shared by the table readers (PLY, OFF): text lines, number parsing, fan triangulation."""

from __future__ import annotations

import numpy as np

from pipelines.files.types import MeshFileError


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
