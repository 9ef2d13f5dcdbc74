"""Checks on a weights archive before it is opened: a PyTorch `.pt` (a zip since torch 1.6) or a numpy `.npz` is
a zip whose members can be compressed, so a small file can unpack to gigabytes (a zip bomb) inside `torch.load`
or `np.load`. `check_archive` reads only the zip's directory and refuses such a file with a sentence."""

from __future__ import annotations

import zipfile
from pathlib import Path


class ArchiveError(ValueError):
    """A weights file that would unpack too large, or whose zip directory is damaged (a user error)."""


def check_archive(path: Path | str, max_unpacked_mb: float, *, compressed_ok: bool = False) -> None:
    """Raises `ArchiveError` when the zip at `path` would unpack to more than `max_unpacked_mb` in all, or holds a
    compressed member and `compressed_ok` is False (`torch.save` stores members uncompressed, so a compressed one is
    not a checkpoint torch wrote). Files that are not zips (legacy pickled checkpoints) pass: they unpack nothing."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ArchiveError(f"{path.name} is a damaged zip archive ({err}).") from None
    unpacked_mb = sum(m.file_size for m in members) / 2**20
    if unpacked_mb > max_unpacked_mb:
        raise ArchiveError(
            f"{path.name} would unpack to {unpacked_mb:,.0f} MB (more than {max_unpacked_mb:,.0f} MB): refused as a "
            "possible zip bomb."
        )
    packed = [m.filename for m in members if m.compress_type != zipfile.ZIP_STORED]
    if packed and not compressed_ok:
        raise ArchiveError(
            f"{path.name} holds compressed members ({packed[0]}), which torch.save never writes: refused as a possible "
            "zip bomb."
        )
