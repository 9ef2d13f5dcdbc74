"""Safe loading of user 3D files (PLY/OBJ+MTL/GLB/glTF/STL/OFF/zip) into plain arrays."""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

# statistics and conversions live in their own modules (which import this one only inside functions)
from pipelines.files.mesh_export import (
    export_glb,
    export_obj_zip,
    export_ply,
    export_points_ply,
    plotly_figure,
    sample_points,
    to_pytorch3d,
    to_trimesh,
)
from pipelines.files.mesh_stats import cross_check, geometry_stats

if TYPE_CHECKING:
    import PIL.Image
    import trimesh

__all__ = [
    "SUPPORTED_EXTS",
    "Limits",
    "LoadedAsset",
    "MeshFileError",
    "cross_check",
    "export_glb",
    "export_obj_zip",
    "export_ply",
    "export_points_ply",
    "geometry_stats",
    "load_asset",
    "plotly_figure",
    "sample_points",
    "stage_upload",
    "to_pytorch3d",
    "to_trimesh",
]

MB = 1 << 20
HEADER_CAP = 20_000  # characters of raw header kept for display
SUPPORTED_EXTS = (".ply", ".obj", ".glb", ".gltf", ".stl", ".off")
PREFERENCE = (".obj", ".glb", ".gltf", ".ply", ".off", ".stl")  # which 3D file of an upload is the main one
MANIFEST = ".mesh_io_upload.json"  # written by stage_upload: marks the upload root and carries its notes
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
# Upload staging
# ----------------------------------------------------------------------------------------------------------------


def stage_upload(paths: Sequence[str | Path], dest: Path, limits: Limits = Limits()) -> Path:
    """Copy uploaded files (flattened to base names) into `dest`, unpacking zips safely; return the main 3D file.

    Zip members keep their relative folders; absolute names, '..', symbolic links and encrypted members are
    refused, as are more than `max_zip_members` members or more than `max_unzipped_mb` of real decompressed
    bytes. With several 3D files the main one is picked by obj > glb > gltf > ply > off > stl and the choice
    is reported in the loaded asset's warnings. `dest` is best a fresh folder; only files staged by this call
    are considered.
    """
    files = [Path(p) for p in (paths or []) if p]
    if not files:
        raise MeshFileError("No file was uploaded.")
    if len(files) > limits.max_zip_members:
        raise MeshFileError(f"{len(files)} files were uploaded; at most {limits.max_zip_members} are accepted.")
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MeshFileError(f"The upload folder could not be created ({short_reason(e, False)}).") from e
    max_bytes = int(limits.max_upload_mb * MB)
    total = 0
    staged: list[Path] = []
    notes: list[str] = []
    for src in files:
        if not src.is_file():
            raise MeshFileError(f"The uploaded file {src.name} could not be found or is not a regular file.")
        size = src.stat().st_size
        if size > max_bytes:
            raise MeshFileError(
                f"{src.name} is {_megabytes(size)}, above the {limits.max_upload_mb:g} MB upload limit."
            )
        total += size
        if total > max_bytes:
            raise MeshFileError(
                f"The uploaded files add up to at least {_megabytes(total)} in total, above the "
                f"{limits.max_upload_mb:g} MB limit."
            )
        if src.suffix.lower() == ".zip":
            staged += _extract_zip(src, dest, limits)
            continue
        target = dest / _safe_base_name(src.name)
        if target in staged:
            notes.append(f"Two uploaded files are named {target.name}; the last one was kept.")
        else:
            staged.append(target)
        try:
            shutil.copyfile(src, target)
        except OSError as e:
            raise MeshFileError(
                f"{src.name} could not be copied into the upload folder ({short_reason(e, False)})."
            ) from e
    candidates = [p for p in staged if p.suffix.lower() in SUPPORTED_EXTS]
    if not candidates:
        raise MeshFileError(f"The upload holds no 3D file (expected one of {', '.join(SUPPORTED_EXTS)}).")
    main = min(candidates, key=lambda p: (PREFERENCE.index(p.suffix.lower()), len(p.relative_to(dest).parts), str(p)))
    if len(candidates) > 1:
        others = ", ".join(p.name for p in candidates if p != main)
        notes.append(
            f"The upload holds {len(candidates)} 3D files; showing {main.name} (preferred order obj > glb > gltf > "
            f"ply > off > stl), not {others}."
        )
    manifest = {"main": main.relative_to(dest).as_posix(), "files": [p.relative_to(dest).as_posix() for p in staged]}
    (dest / MANIFEST).write_text(json.dumps({**manifest, "notes": notes}, indent=1))
    return main


def _megabytes(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB // 10 else f"{n / 1024:.1f} kB"


def _safe_base_name(name: str) -> str:
    base = PurePosixPath(name.replace("\\", "/")).name
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*')[:200].strip()
    return base if base and base not in (".", "..", MANIFEST) else "upload.bin"


def _zip_member_parts(name: str, archive: str) -> tuple[str, ...] | None:
    """Safe relative path parts of a zip member, None for entries to skip; MeshFileError for hostile names."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean) or "\x00" in clean:
        raise MeshFileError(f"{archive} contains a member with an absolute path ({name!r}); it was refused.")
    parts = tuple(p for p in clean.split("/") if p not in ("", "."))
    if ".." in parts:
        raise MeshFileError(f"{archive} contains a member that points outside the archive ({name!r}); it was refused.")
    if not parts or clean.endswith("/") or parts[0] == "__MACOSX" or parts[-1].startswith("._") or MANIFEST in parts:
        return None
    return parts


def _extract_zip(src: Path, dest: Path, limits: Limits) -> list[Path]:
    max_bytes = int(limits.max_unzipped_mb * MB)
    try:
        archive = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise MeshFileError(f"{src.name} is not a valid zip archive.") from e
    out: list[Path] = []
    written = 0
    dest_real = dest.resolve()
    try:
        with archive:
            infos = archive.infolist()
            if len(infos) > limits.max_zip_members:
                raise MeshFileError(
                    f"{src.name} holds {len(infos)} members; at most {limits.max_zip_members} are accepted."
                )
            declared = sum(max(i.file_size, 0) for i in infos)
            if declared > max_bytes:
                raise MeshFileError(
                    f"{src.name} would unpack to {declared / MB:.1f} MB, above the {limits.max_unzipped_mb:g} MB limit."
                )
            for info in infos:
                parts = _zip_member_parts(info.filename, src.name)
                if parts is None:
                    continue
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise MeshFileError(f"{src.name} contains a symbolic link ({info.filename}); it was refused.")
                if info.flag_bits & 0x1:
                    raise MeshFileError(f"{src.name} contains an encrypted member ({info.filename}); it was refused.")
                target = dest.joinpath(*parts)
                if not target.parent.resolve().is_relative_to(dest_real):
                    raise MeshFileError(
                        f"{src.name} contains a member that points outside the upload ({info.filename})."
                    )
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as fin, open(target, "wb") as fout:
                    while chunk := fin.read(1 << 20):
                        written += len(chunk)
                        if written > max_bytes:
                            raise MeshFileError(
                                f"{src.name} unpacks to more than {limits.max_unzipped_mb:g} MB (the limit); it was refused."
                            )
                        fout.write(chunk)
                out.append(target)
    except MeshFileError:
        for p in out:
            p.unlink(missing_ok=True)
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, ValueError, NotImplementedError) as e:
        raise MeshFileError(
            f"{src.name} is damaged or uses an unsupported compression ({short_reason(e, False)})."
        ) from e
    return out


# ----------------------------------------------------------------------------------------------------------------
# References to other files (MTL, textures, glTF buffers) and textures
# ----------------------------------------------------------------------------------------------------------------

_ABSOLUTE = re.compile(r"^(?:/|~|[A-Za-z]:|[A-Za-z][A-Za-z0-9+.\-]*://)")


def resolve_reference(name: str, base: Path, root: Path) -> tuple[Path | None, str | None]:
    """Resolve a file name written inside a 3D file without ever leaving `root`.

    Returns (path, note): path is None when the reference is refused or missing, and note then says why in a
    sentence fragment; a note also comes with a path when an absolute reference was matched by file name.
    Nothing outside `root` is ever opened: symbolic links are resolved before the containment check, and absolute
    names are only looked up by their file name inside `base`.
    """
    raw = name.strip().strip("\"'")
    clean = raw.replace("\\", "/")
    if not clean or "\x00" in clean:
        return None, "is an empty file name"
    root_real = root.resolve()
    is_abs = bool(_ABSOLUTE.match(clean))
    if not is_abs:
        real = (base / clean).resolve()
        if not real.is_relative_to(root_real):
            return None, f"'{raw}' points outside the upload folder"
        if real.is_file():
            return real, None
    leaf = PurePosixPath(clean).name
    if is_abs and leaf not in ("", ".", ".."):
        real = (base / leaf).resolve()
        if real.is_relative_to(root_real) and real.is_file():
            return real, f"'{raw}' is an absolute path; the file named {leaf} in the upload was used"
        return None, f"'{raw}' is an absolute path outside the upload folder"
    return None, f"'{raw}' was not found in the upload"


_IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "TGA", "TIFF", "WEBP", "GIF", "PPM")


def image_size(src: Path | bytes) -> tuple[int, int] | None:
    """(width, height) read from an image header without decoding pixels; None when it is not an image.

    Uses PIL's format plugins directly, so even sizes beyond PIL's own decompression-bomb guard are reported.
    """
    from PIL import Image

    Image.init()
    try:
        fp = open(src, "rb") if isinstance(src, Path) else io.BytesIO(src)  # noqa: SIM115
    except OSError:
        return None
    with fp:
        prefix = fp.read(16)
        for fmt in _IMAGE_FORMATS:
            factory, accept = Image.OPEN.get(fmt, (None, None))
            if factory is None or (accept is not None and not accept(prefix)):
                continue
            try:
                fp.seek(0)
                im = factory(fp, "")
                return int(im.size[0]), int(im.size[1])
            except Exception:
                continue
    return None


def open_texture(
    src: Path | bytes, label: str, limits: Limits
) -> tuple[PIL.Image.Image | None, list[int] | None, str | None]:
    """Decode a texture after checking its size from the header: (image or None, [w, h] or None, warning or None)."""
    from PIL import Image

    size = image_size(src)
    if size is None:
        return None, None, f"Texture {label} could not be read as an image; the mesh is shown without it."
    w, h = size
    if w * h > limits.max_texture_pixels:
        return (
            None,
            [w, h],
            f"Texture {label} is {w}x{h} pixels ({w * h / 1e6:.1f} MP), above the "
            f"{limits.max_texture_pixels / 1e6:g} MP limit; it was not decoded and the mesh is shown without it.",
        )
    try:
        with Image.open(src if isinstance(src, Path) else io.BytesIO(src), formats=_IMAGE_FORMATS) as im:
            im.load()
            alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            return im.convert("RGBA" if alpha else "RGB"), [w, h], None
    except Image.DecompressionBombError:
        return None, None, f"Texture {label} declares an enormous size (a decompression bomb?); it was not decoded."
    except Exception as e:
        return (
            None,
            None,
            f"Texture {label} could not be read as an image ({short_reason(e, False)}); the mesh is shown without it.",
        )


class _SafeResolver:
    """A trimesh resolver that only serves files inside the upload root (see resolve_reference)."""

    def __init__(self, base: Path, root: Path) -> None:
        self.base, self.root = base, root

    def get(self, name: str) -> bytes:
        found, note = resolve_reference(name, self.base, self.root)
        if found is None:
            raise FileNotFoundError(f"{name}: {note}")
        return found.read_bytes()

    __getitem__ = get

    def namespaced(self, namespace: str) -> _SafeResolver:
        found = (self.base / namespace).resolve()
        return _SafeResolver(found if found.is_relative_to(self.root.resolve()) else self.base, self.root)

    def keys(self) -> list[str]:
        return []

    def write(self, name: str, data: bytes) -> None:
        raise PermissionError("writing through the upload resolver is not allowed")


def trimesh_resolver(base: Path, root: Path) -> trimesh.resolvers.Resolver:
    import trimesh.resolvers

    class Resolver(_SafeResolver, trimesh.resolvers.Resolver):
        pass

    return Resolver(base, root)


def upload_root(path: Path, root: Path | None) -> Path:
    """The folder references may resolve into: `root`, else the nearest staged upload, else the file's folder."""
    if root is not None:
        root = Path(root).resolve()
        if path.resolve().is_relative_to(root):
            return root
    for parent in list(path.resolve().parents)[:4]:
        if (parent / MANIFEST).is_file():
            return parent
    return path.resolve().parent


def _upload_notes(path: Path, root: Path) -> list[str]:
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return []
    if manifest.get("main") != path.resolve().relative_to(root).as_posix():
        return []
    return [str(n) for n in manifest.get("notes", [])][:20]


# ----------------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------------


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
        raise MeshFileError(f"{path.name} is {_megabytes(size)}, above the {limits.max_upload_mb:g} MB limit.")
    root_dir = upload_root(path, root)
    try:
        if fmt in ("ply", "off"):
            from pipelines.files import mesh_tables

            asset = (mesh_tables.load_ply if fmt == "ply" else mesh_tables.load_off)(path, limits, root_dir)
        elif fmt == "obj":
            from pipelines.files import mesh_obj

            asset = mesh_obj.read_obj(path, limits, root_dir)
        elif fmt == "stl":
            asset = _load_stl(path, limits)
        else:
            from pipelines.files import mesh_gltf

            asset = mesh_gltf.read_gltf(path, limits, root_dir)
        asset = _finalize(asset, limits)
    except MeshFileError:
        raise
    except MemoryError as e:
        raise MeshFileError(f"{path.name} is too large to load in the memory available.") from e
    except RecursionError as e:
        raise MeshFileError(f"{path.name} is nested too deeply to read.") from e
    except Exception as e:
        raise MeshFileError(f"Could not read {path.name} as {fmt.upper()}: {short_reason(e)}") from e
    asset.warnings[:0] = _upload_notes(path, root_dir)
    return asset


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


# ----------------------------------------------------------------------------------------------------------------
# STL
# ----------------------------------------------------------------------------------------------------------------


def _load_stl(path: Path, limits: Limits) -> LoadedAsset:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(84)
    declared = int(np.frombuffer(head[80:84], dtype="<u4")[0]) if len(head) == 84 else -1
    if declared >= 0 and size == 84 + 50 * declared:
        encoding, n_tri = "binary", declared
        header = "80-byte header: " + head[:80].decode("latin-1").rstrip("\x00 ") + f"\ntriangles: {declared}"
    elif head.lstrip()[:5].lower() == b"solid":
        encoding = "ascii"
        data = path.read_bytes()
        n_tri = data.count(b"endloop")
        header = "\n".join(data[:4096].decode("utf-8", errors="replace").splitlines()[:12])
        if n_tri == 0:
            raise MeshFileError(f"{path.name} is an ASCII STL file without any complete facet.")
    elif declared >= 0:
        raise MeshFileError(
            f"{path.name} is not a valid STL file: its header declares {declared:,} triangles "
            f"({84 + 50 * declared:,} bytes) but the file has {size:,} bytes."
        )
    else:
        raise MeshFileError(f"{path.name} is too short to be an STL file.")
    if n_tri > limits.max_faces:
        raise MeshFileError(f"{path.name} has {n_tri:,} triangles, above the limit of {limits.max_faces:,}.")
    if 3 * n_tri > limits.max_vertices:
        raise MeshFileError(
            f"{path.name} stores {3 * n_tri:,} vertices (3 per triangle), above the limit of {limits.max_vertices:,}."
        )
    face_normals = None
    if encoding == "binary":
        record = np.dtype([("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
        table = np.fromfile(path, dtype=record, count=n_tri, offset=84)
        verts = table["corners"].reshape(-1, 3)
        face_normals = table["normal"]
        loader = "mesh_io binary STL reader (numpy; corners unshared as stored)"
    else:
        import trimesh

        mesh = trimesh.load(str(path), file_type="stl", process=False, force="mesh")
        verts = np.asarray(mesh.vertices, dtype=np.float32)
        loader = f"trimesh {trimesh.__version__} (ASCII STL, corners unshared as stored)"
    faces = np.arange(verts.shape[0], dtype=np.int64).reshape(-1, 3)
    elements = [
        {
            "name": "facet",
            "count": int(faces.shape[0]),
            "properties": [["normal", "float32 x3"], ["vertex1", "float32 x3"], ["vertex2", "float32 x3"],
                           ["vertex3", "float32 x3"]] + ([["attribute", "uint16"]] if encoding == "binary" else []),
        }
    ]  # fmt: skip
    return LoadedAsset(
        path=path,
        format="stl",
        encoding=encoding,
        header=cap_text(header),
        verts=verts,
        faces=faces,
        elements=elements,
        face_normals=face_normals,
        loader=loader,
    )
