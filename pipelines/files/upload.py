"""Uploads and the files they bring: staging (zips unpacked safely), references resolved inside the upload, textures."""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pipelines.files.types import MB, SUPPORTED_EXTS, Limits, MeshFileError, megabytes, short_reason

if TYPE_CHECKING:
    import PIL.Image
    import trimesh

PREFERENCE = (".obj", ".glb", ".gltf", ".ply", ".off", ".stl")  # which 3D file of an upload is the main one
MANIFEST = ".mesh_io_upload.json"  # written by stage_upload: marks the upload root and carries its notes


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
            raise MeshFileError(f"{src.name} is {megabytes(size)}, above the {limits.max_upload_mb:g} MB upload limit.")
        total += size
        if total > max_bytes:
            raise MeshFileError(
                f"The uploaded files add up to at least {megabytes(total)} in total, above the "
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


def upload_notes(path: Path, root: Path) -> list[str]:
    """The staging notes (several 3D files, duplicate names) of `path` when it is its upload's main file."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return []
    if manifest.get("main") != path.resolve().relative_to(root).as_posix():
        return []
    return [str(n) for n in manifest.get("notes", [])][:20]
