"""The loader: checks a 3D file's size, dispatches to the reader for its extension, then validates the arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipelines.files.gltf import read_gltf
from pipelines.files.obj import read_obj
from pipelines.files.off import load_off
from pipelines.files.ply import load_ply
from pipelines.files.stl import load_stl
from pipelines.files.types import (
    MB,
    MESH_FORMATS,
    SUPPORTED_EXTS,
    Limits,
    LoadedAsset,
    MeshFileError,
    megabytes,
    short_reason,
)
from pipelines.files.upload import upload_notes, upload_root


def load_asset(path: Path, limits: Limits = Limits(), root: Path | None = None) -> LoadedAsset:
    """Load a 3D file into plain arrays, validating sizes before allocating; any failure is a MeshFileError.

    PLY, OBJ and OFF load through PyTorch3D (`IO().load_mesh`, `IO().load_pointcloud`, `load_obj`); GLB/glTF and
    ASCII STL through trimesh; binary STL with numpy. This package's vectorised readers take over where PyTorch3D
    cannot or would be slow: PLY/OFF polygons of mixed sizes, PLY faces with extra properties, OBJ negative indices
    interleaved with vertex lines (PyTorch3D counts them from the end of the file, not from the face line), and
    files above PYTORCH3D_MAX_FACES faces; `LoadedAsset.loader` says which reader ran.
    Files referenced from inside (MTL, textures, glTF buffers) must resolve inside `root` (default: the staged
    upload folder holding this file, else the file's own folder); a bad reference is a warning, never a read.
    NaN/inf coordinates and face indices out of range are errors; a mesh format with no faces loads as a point
    cloud with a warning.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if "." + fmt not in SUPPORTED_EXTS:
        raise MeshFileError(f"{path.name} is not a supported 3D file (expected one of {', '.join(SUPPORTED_EXTS)}).")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise MeshFileError(f"{path.name} could not be opened.") from e
    if not path.is_file():
        raise MeshFileError(f"{path.name} is not a regular file.")
    if size == 0:
        raise MeshFileError(f"{path.name} is empty.")
    if size > limits.max_upload_mb * MB:
        raise MeshFileError(f"{path.name} is {megabytes(size)}, above the {limits.max_upload_mb:g} MB limit.")
    root_dir = upload_root(path, root)
    try:
        if fmt in ("ply", "off"):
            asset = (load_ply if fmt == "ply" else load_off)(path, limits, root_dir)
        elif fmt == "obj":
            asset = read_obj(path, limits, root_dir)
        elif fmt == "stl":
            asset = load_stl(path, limits)
        else:
            asset = read_gltf(path, limits, root_dir)
        asset = _finalize(asset, limits)
    except MeshFileError:
        raise
    except MemoryError as e:
        raise MeshFileError(f"{path.name} is too large to load in the memory available.") from e
    except RecursionError as e:
        raise MeshFileError(f"{path.name} is nested too deeply to read.") from e
    except Exception as e:
        raise MeshFileError(f"Could not read {path.name} as {fmt.upper()}: {short_reason(e)}") from e
    asset.warnings[:0] = upload_notes(path, root_dir)
    return asset


def _finalize(asset: LoadedAsset, limits: Limits) -> LoadedAsset:
    """Check counts, finiteness and index ranges; normalise dtypes; drop broken optional attributes with warnings."""
    name = asset.path.name
    verts = np.ascontiguousarray(np.asarray(asset.verts, dtype=np.float32).reshape(-1, 3))
    n = verts.shape[0]
    if n == 0:
        raise MeshFileError(f"{name} contains no vertices.")
    if n > limits.max_vertices:
        raise MeshFileError(f"{name} has {n:,} vertices, above the limit of {limits.max_vertices:,}.")
    bad = ~np.isfinite(verts).all(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise MeshFileError(
            f"{name} has {int(bad.sum()):,} of {n:,} vertices with NaN or infinite coordinates (the first is vertex {first})."
        )
    faces = np.ascontiguousarray(np.asarray(asset.faces, dtype=np.int64).reshape(-1, 3))
    if faces.shape[0] > limits.max_faces:
        raise MeshFileError(f"{name} has {faces.shape[0]:,} triangles, above the limit of {limits.max_faces:,}.")
    if faces.size:
        lo, hi = int(faces.min()), int(faces.max())
        if lo < 0 or hi >= n:
            bad_idx = lo if lo < 0 else hi
            row = int(np.flatnonzero((faces == bad_idx).any(axis=1))[0])
            raise MeshFileError(
                f"{name} has a face index out of range: triangle {row} uses vertex {bad_idx}, but the file has "
                f"{n:,} vertices (valid: 0 to {n - 1}, counting from 0)."
            )
    asset.verts, asset.faces = verts, faces
    nf = faces.shape[0]
    asset.normals = _checked(asset, asset.normals, (n,), (3,), "vertex normals")
    asset.colors = _checked(asset, asset.colors, (n,), (3, 4), "vertex colours", clip=True)
    asset.face_colors = _checked(asset, asset.face_colors, (nf,), (3, 4), "face colours", clip=True)
    asset.face_normals = _checked(asset, asset.face_normals, (nf,), (3,), "face normals")
    if asset.uvs is not None and asset.face_uvs is None:  # per-vertex uvs
        asset.uvs = _checked(asset, asset.uvs, (n,), (2,), "texture coordinates")
    elif asset.uvs is not None:  # per-corner uvs: a table and (F, 3) indices into it
        asset.uvs = _checked(asset, asset.uvs, (np.asarray(asset.uvs).shape[0],), (2,), "texture coordinates")
        fu = np.asarray(asset.face_uvs, dtype=np.int64)
        if asset.uvs is not None and (fu.shape != (nf, 3) or fu.size and (fu.min() < -1 or fu.max() >= len(asset.uvs))):
            asset.warnings.append("Some texture-coordinate indices are out of range; texture coordinates were dropped.")
            asset.uvs = None
        asset.face_uvs = fu if asset.uvs is not None else None
    else:
        asset.face_uvs = None
    if asset.face_materials is not None:
        fm = np.asarray(asset.face_materials, dtype=np.int64).reshape(-1)
        asset.face_materials = fm if fm.shape == (nf,) and (fm < max(len(asset.materials), 1)).all() else None
    if asset.texture is not None and asset.uvs is None:
        asset.warnings.append("The texture was found but the mesh has no texture coordinates, so it is not applied.")
    if nf == 0 and asset.format in MESH_FORMATS:
        asset.warnings.append(f"{name} has vertices but no faces; it is shown as a point cloud.")
    return asset


def _checked(
    asset: LoadedAsset, arr: Any, rows: tuple[int], widths: tuple[int, ...], what: str, clip: bool = False
) -> np.ndarray | None:
    if arr is None:
        return None
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[:1] != rows or arr.shape[1] not in widths:
        asset.warnings.append(f"The {what} have an unexpected shape {tuple(arr.shape)} and were ignored.")
        return None
    if not np.isfinite(arr).all():
        asset.warnings.append(f"The {what} contain NaN or infinite values and were ignored.")
        return None
    if clip and arr.size and (arr.min() < 0 or arr.max() > 1):
        asset.warnings.append(f"The {what} were outside [0, 1] and were clipped.")
        arr = np.clip(arr, 0.0, 1.0)
    return np.ascontiguousarray(arr)
