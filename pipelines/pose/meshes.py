"""The mesh to pose: the procedural toy cow, or an upload through the shared loader, normalised to the unit
sphere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pipelines.files.types import Limits
from pipelines.files.upload import stage_upload
from pipelines.render.mesh_convert import load_mesh_file_with_notes
from pipelines.render.procedural import normalize_verts

# A toy cow made of ellipsoids: (centre, radii, extra subdivision, colour; None = white with black patches).
_TOY_PARTS: tuple[
    tuple[tuple[float, float, float], tuple[float, float, float], int, tuple[float, float, float] | None], ...
] = (
    ((0.0, 0.0, 0.0), (0.9, 0.45, 0.42), 2, None),  # body
    ((0.98, 0.32, 0.0), (0.3, 0.26, 0.24), 1, (0.55, 0.35, 0.2)),  # head
    ((1.22, 0.2, 0.0), (0.14, 0.12, 0.15), 0, (0.95, 0.6, 0.6)),  # snout
    ((0.55, -0.55, 0.24), (0.1, 0.32, 0.1), 0, (0.2, 0.2, 0.2)),  # legs
    ((0.55, -0.55, -0.24), (0.1, 0.32, 0.1), 0, (0.2, 0.2, 0.2)),
    ((-0.6, -0.55, 0.24), (0.1, 0.32, 0.1), 0, (0.2, 0.2, 0.2)),
    ((-0.6, -0.55, -0.24), (0.1, 0.32, 0.1), 0, (0.2, 0.2, 0.2)),
    ((-0.98, 0.12, 0.0), (0.24, 0.05, 0.05), 0, (0.3, 0.25, 0.2)),  # tail
    ((0.92, 0.56, 0.17), (0.05, 0.13, 0.05), 0, (0.5, 0.3, 0.2)),  # ears
    ((0.92, 0.56, -0.17), (0.05, 0.13, 0.05), 0, (0.5, 0.3, 0.2)),
)


def toy_cow(detail: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A procedural cow-like mesh: verts (V, 3), faces (F, 3), vertex colours (V, 3), on the CPU.

    detail 1 has 2,240 faces, 2 has 8,960 (PyTorch3D's cow has 5,856). Facing +X, legs down (−Y).
    """
    from pytorch3d.utils import ico_sphere

    spots = torch.randn(7, 3, generator=torch.Generator().manual_seed(7))
    spots = spots / spots.norm(dim=1, keepdim=True)
    verts, faces, colors, offset = [], [], [], 0
    for centre, radii, level, color in _TOY_PARTS:
        sphere = ico_sphere(level + detail)
        unit = sphere.verts_packed()  # (v, 3)
        if color is None:
            patch = ((unit @ spots.T).amax(1) > 0.85).float()[:, None]
            rgb = patch * torch.tensor([0.08, 0.08, 0.08]) + (1 - patch) * torch.tensor([0.95, 0.93, 0.88])
        else:
            rgb = torch.tensor(color).expand(len(unit), 3)
        verts.append(unit * torch.tensor(radii) + torch.tensor(centre))
        faces.append(sphere.faces_packed() + offset)
        colors.append(rgb)
        offset += len(unit)
    return torch.cat(verts), torch.cat(faces), torch.cat(colors)


def load_mesh(
    files: tuple[str, ...], out_dir: Path, detail: int, device: torch.device, max_upload_mb: float = 200.0
) -> tuple[Any, list[str]]:
    """The mesh to pose, normalised to the unit sphere, with the loader's warnings: an upload (staged under
    `out_dir`/upload and read by `load_mesh_file_with_notes`, within `max_upload_mb`) or the toy cow."""
    from pytorch3d.renderer import TexturesVertex
    from pytorch3d.structures import Meshes

    if not files:
        verts, faces, colors = toy_cow(detail)
        mesh = Meshes([normalize_verts(verts)], [faces], textures=TexturesVertex([colors]))
        return mesh.to(device), []

    limits = Limits(max_upload_mb=max_upload_mb)
    main = stage_upload(files, out_dir / "upload", limits)
    mesh, notes = load_mesh_file_with_notes(main, limits=limits, device=device)
    if float(mesh.verts_packed().abs().amax()) == 0.0:
        raise ValueError("The mesh has no extent: all its vertices lie at one point.")
    return mesh, notes
