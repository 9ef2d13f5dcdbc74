"""Where the project's files live (the shipped assets folder) and whether a data dir can hold runs."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
"""The repository's `assets/` folder: small procedural assets and shipped checkpoints with their model cards."""


class DataDirError(ValueError):
    """The data dir cannot hold runs: not creatable, not writable, or its disk nearly full (a sentence)."""


def check_data_dir(path: Path, min_free_mb: float = 0.0) -> Path:
    """Creates `path` if needed and checks that a file can be written there and that at least `min_free_mb` of its
    disk is free; returns the resolved path, or raises `DataDirError` with a sentence that names the fix."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataDirError(
            f"The data dir {path} cannot be created ({err.strerror or err}): choose another with --data-dir."
        ) from None
    probe = path / f".write-test-{uuid.uuid4().hex}"
    try:
        with open(probe, "wb") as out:
            out.write(b"studio")
            out.flush()
            os.fsync(out.fileno())
    except OSError as err:
        raise DataDirError(
            f"The data dir {path} is not writable ({err.strerror or err}): give this user write access or choose "
            "another with --data-dir."
        ) from None
    finally:
        probe.unlink(missing_ok=True)
    free_mb = shutil.disk_usage(path).free / 2**20
    if free_mb < min_free_mb:
        raise DataDirError(
            f"The disk of the data dir {path} is nearly full: {free_mb:.0f} MB free, and the studio keeps "
            f"{min_free_mb:.0f} MB free (--min-free-mb). Free some space or choose another --data-dir."
        )
    return path.resolve()
