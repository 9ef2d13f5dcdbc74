"""Mesh fitting's exports: the fitted mesh in the target's original frame as OBJ/PLY/GLB, and the live GLB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipelines.mesh_fit.targets import PointTarget


def write_live_mesh(out_dir: Path, verts: torch.Tensor, faces: torch.Tensor, target: PointTarget, step: int) -> Path:
    """The fitted mesh as a GLB for the 3D viewer when the exports have none (older live files are removed)."""
    live = out_dir / "live"
    live.mkdir(parents=True, exist_ok=True)
    for old in live.glob("*.glb"):
        old.unlink(missing_ok=True)
    return export_mesh(verts, faces, target, live / f"mesh_{step:05d}", ("glb",))["glb"]


def export_mesh(
    verts: torch.Tensor, faces: torch.Tensor, target: PointTarget, stem: Path, formats: tuple[str, ...]
) -> dict[str, Path]:
    """The mesh mapped back to the target's original frame, written with trimesh as OBJ/PLY/GLB."""
    import trimesh

    original = (verts.detach().cpu() * target.scale + target.centre.cpu()).numpy()
    mesh = trimesh.Trimesh(original, faces.detach().cpu().numpy(), process=False)
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=np.tile([190, 190, 200, 255], (len(original), 1)))
    files = {}
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        mesh.export(path)
        files[fmt] = path
    return files
