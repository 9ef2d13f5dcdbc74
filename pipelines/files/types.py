"""The leaf of the 3D-files package: limits, errors, the loaded-asset type and small text helpers (imports nothing of ours)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import PIL.Image

__all__ = [
    "HEADER_CAP",
    "MB",
    "MESH_FORMATS",
    "PYTORCH3D_MAX_FACES",
    "SUPPORTED_EXTS",
    "Limits",
    "LoadedAsset",
    "MeshFileError",
    "cap_text",
    "first_lines",
    "megabytes",
    "short_reason",
]

MB = 1 << 20
HEADER_CAP = 20_000  # characters of raw header kept for display
SUPPORTED_EXTS = (".ply", ".obj", ".glb", ".gltf", ".stl", ".off")
MESH_FORMATS = ("obj", "glb", "gltf", "stl", "off")  # formats where zero faces deserves a warning


PYTORCH3D_MAX_FACES = 200_000
"""Above this many faces, OBJ and PLY skip PyTorch3D's readers, which parse faces in a Python loop (about 7 s per
million OBJ faces and 1.5 s per million binary PLY faces on one core), for this package's vectorised readers; the
tests check both give the same arrays. Set it to a huge number to always read through PyTorch3D."""


class MeshFileError(ValueError):
    """Bad or hostile input; str(e) is one sentence a user understands."""


@dataclass(frozen=True)
class Limits:
    """Size limits, checked from headers before anything large is allocated."""

    max_upload_mb: float = 200.0
    """Largest single file, and largest whole upload, in MB."""
    max_vertices: int = 5_000_000
    """Largest vertex count accepted."""
    max_faces: int = 10_000_000
    """Largest triangle count accepted (after polygons are split into triangles)."""
    max_texture_pixels: int = 50_000_000
    """Largest texture (width x height) decoded; bigger ones are skipped with a warning."""
    max_zip_members: int = 256
    """Most files in a zip (and most files in one upload)."""
    max_unzipped_mb: float = 1024.0
    """Most bytes a zip may unpack to, counted on the real decompressed data."""


@dataclass(eq=False)
class LoadedAsset:
    """A 3D file as plain arrays, in the file's own coordinates and vertex order.

    `uvs` are per vertex (V, 2) when `face_uvs` is None, else per face corner: triangle f's corners use rows
    `face_uvs[f]` of `uvs` (-1 where a face has no texture coordinates; OBJ `vt`, PLY wedge `texcoord`).
    """

    path: Path
    format: str  # 'ply' | 'obj' | 'glb' | 'gltf' | 'stl' | 'off'
    encoding: str  # 'ascii' | 'binary_little_endian' | 'binary_big_endian' | 'binary' | 'json'
    header: str  # raw header text, capped at HEADER_CAP characters
    verts: np.ndarray  # (V, 3) float32, as stored
    faces: np.ndarray  # (F, 3) int64 triangles; (0, 3) for a point cloud
    normals: np.ndarray | None = None  # (V, 3) float32; OBJ corner normals are averaged per vertex
    colors: np.ndarray | None = None  # (V, 3|4) float32 in [0, 1]
    uvs: np.ndarray | None = None  # (V, 2) or (T, 2) float32, see the class docstring
    texture: PIL.Image.Image | None = None  # first map_Kd / baseColorTexture, RGB or RGBA, size-checked
    elements: list[dict] = field(default_factory=list)  # [{"name", "count", "properties": [[name, type], ...]}]
    materials: list[dict] = field(default_factory=list)  # [{"name", "Ka", "Kd", "Ks", "Ns", "d", "map_Kd", ...}]
    warnings: list[str] = field(default_factory=list)
    face_uvs: np.ndarray | None = None  # (F, 3) int64 rows into uvs, or None
    face_materials: np.ndarray | None = None  # (F,) int64 index into materials, -1 = none
    face_colors: np.ndarray | None = None  # (F, 3|4) float32 in [0, 1] (PLY/OFF face colours)
    face_normals: np.ndarray | None = None  # (F, 3) float32 as stored (STL facet normals)
    texture_name: str | None = None  # file (or glTF image) the texture came from
    loader: str = ""  # which reader produced the arrays, e.g. "pytorch3d.io.IO.load_mesh"

    @property
    def num_vertices(self) -> int:
        return int(self.verts.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def is_point_cloud(self) -> bool:
        return self.faces.shape[0] == 0


# ----------------------------------------------------------------------------------------------------------------
# Text helpers
# ----------------------------------------------------------------------------------------------------------------


def short_reason(e: BaseException, stop: bool = True) -> str:
    """First line of an exception message, trimmed; ending with a full stop unless `stop` is False."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    text = text[:200].rstrip(" .")
    if not stop:
        return text
    return text if text.endswith(("!", "?")) else text + "."


def cap_text(text: str, limit: int = HEADER_CAP) -> str:
    """Text cut to `limit` characters with a marker saying so."""
    return text if len(text) <= limit else text[:limit] + f"\n... (truncated: {len(text) - limit} more characters)"


def megabytes(n: int) -> str:
    """A byte count for a message: MB from a tenth of a MB up, else kB."""
    return f"{n / MB:.1f} MB" if n >= MB // 10 else f"{n / 1024:.1f} kB"


def first_lines(data: bytes, n: int = 40) -> str:
    """The first `n` lines of a text file's first 64 kB, for the header shown to the user (OBJ, MTL)."""
    lines = data[:65536].decode("utf-8", errors="replace").splitlines()[:n]
    return "\n".join(lines)
