"""Opening a weights file safely: a PyTorch `.pt` (a zip since torch 1.6) or a numpy `.npz` is a zip whose members
can be compressed, so a small file can unpack to gigabytes (a zip bomb) inside `torch.load` or `np.load`.
`check_archive` reads only the zip's directory and refuses such a file with a sentence; `load_weights` adds the size
check and `torch.load(weights_only=True)`, turning every failure into one sentence for the user."""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


class WeightsFileError(ValueError):
    """A weights file that cannot be used; the message is a sentence for the user."""


class ArchiveError(WeightsFileError):
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


def _refused_global(err: Exception) -> str:
    """The class a refused pickle names ("posix.system"), from torch's message; ANSI codes and advice dropped."""
    found = re.search(r"GLOBAL ([\w.]+)", re.sub(r"\x1b\[[0-9;]*m", "", str(err)))
    return f" (it names {found.group(1)})" if found else ""


def load_weights(path: Path | str, max_mb: float, allowed: Sequence[Any] = ()) -> Any:
    """`torch.load(path, map_location="cpu", weights_only=True)`, with `allowed` the only classes it may build
    besides tensors and plain containers. The file size and its zip directory are checked first; a missing, too
    large, code-carrying, truncated or foreign file raises `WeightsFileError` with a sentence."""
    path = Path(path)
    if not path.is_file():
        raise WeightsFileError(f"There is no checkpoint file at {path.name}.")
    size_mb = path.stat().st_size / 2**20
    if size_mb > max_mb:
        raise WeightsFileError(f"{path.name} is {size_mb:,.0f} MB; checkpoints up to {max_mb:,.0f} MB are read.")
    check_archive(path, max_mb)
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise WeightsFileError(
            f"{path.name} was refused: it holds Python objects other than tensors and plain values"
            f"{_refused_global(err)}, so loading it could run code; nothing in it was run."
        ) from None
    except (zipfile.BadZipFile, EOFError, RuntimeError, OSError, ValueError, KeyError) as err:
        raise WeightsFileError(
            f"{path.name} is not a readable PyTorch checkpoint (truncated or corrupt, or another kind of file)."
        ) from err
