"""The mesh to pose: the book's cow (the UV-textured stand-in in `render.subjects`), or an upload through the shared
loader, normalised to the unit sphere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pipelines.files.types import Limits
from pipelines.files.upload import stage_upload
from pipelines.render.mesh_convert import load_mesh_file_with_notes
from pipelines.render.subjects import cow_mesh


def load_mesh(
    files: tuple[str, ...], out_dir: Path, detail: int, device: torch.device, max_upload_mb: float = 200.0
) -> tuple[Any, list[str]]:
    """The mesh to pose, normalised to the unit sphere, with the loader's warnings: an upload (staged under
    `out_dir`/upload and read by `load_mesh_file_with_notes`, within `max_upload_mb`) or the textured cow at
    subdivision `detail` (`cow_mesh`)."""
    if not files:
        return cow_mesh(detail, device), []

    limits = Limits(max_upload_mb=max_upload_mb)
    main = stage_upload(files, out_dir / "upload", limits)
    mesh, notes = load_mesh_file_with_notes(main, limits=limits, device=device)
    if float(mesh.verts_packed().abs().amax()) == 0.0:
        raise ValueError("The mesh has no extent: all its vertices lie at one point.")
    return mesh, notes
