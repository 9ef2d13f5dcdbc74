"""The Shading lab's meshes: the book's subjects (cow, teapot), the procedural and bundled choices, and loading one (cached per file) as a batch."""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from pytorch3d.structures import Meshes

from pipelines.core.paths import ASSETS_DIR
from pipelines.render.mesh_convert import load_mesh_file_with_notes
from pipelines.render.procedural import PROCEDURAL, procedural_mesh
from pipelines.render.subjects import SUBJECTS, subject_mesh

MESH_EXTS = (".obj", ".ply", ".glb", ".gltf", ".stl", ".off")


def mesh_choices() -> list[str]:
    """The book's subjects, procedural meshes, then the bundled assets (file names in assets/)."""
    files = []
    if ASSETS_DIR.is_dir():
        files = sorted(p.name for p in ASSETS_DIR.iterdir() if p.is_file() and p.suffix.lower() in MESH_EXTS)
    return list(SUBJECTS) + list(PROCEDURAL) + files


@functools.lru_cache(maxsize=8)
def _file_mesh(path: str, mtime_ns: int, size: int) -> tuple[Meshes, tuple[str, ...]]:
    # Keyed by modification time and size, so a changed file is read again; kept on the CPU, never mutated.
    mesh, notes = load_mesh_file_with_notes(path, device="cpu")
    return mesh, tuple(notes)


def load_mesh_with_notes(source: str | Path, device: torch.device | str = "cpu") -> tuple[Meshes, list[str]]:
    """A book subject or procedural mesh by name, a bundled asset by file name, or a (staged) file path, as a one-mesh batch,
    with the loader's warnings."""
    text = str(source)
    if text in SUBJECTS:
        return subject_mesh(text, device), []
    if text in PROCEDURAL:
        return procedural_mesh(text, device=device), []
    path = Path(text)
    if not path.is_absolute() and not path.exists():
        candidate = ASSETS_DIR / path.name
        if path.name == text and candidate.is_file():
            path = candidate
    if not path.is_file():
        raise ValueError(f"No mesh called {text!r}: choose one of {', '.join(mesh_choices())}, or upload a file.")
    stat = path.stat()
    mesh, notes = _file_mesh(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    return mesh.to(torch.device(device)), list(notes)


def load_mesh(source: str | Path, device: torch.device | str = "cpu") -> Meshes:
    """`load_mesh_with_notes` without the notes."""
    return load_mesh_with_notes(source, device)[0]
