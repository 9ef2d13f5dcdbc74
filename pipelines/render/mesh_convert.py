"""Meshes from arrays and staged 3D files, UV textures resampled to vertex colours, and a batch's layouts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from pytorch3d.renderer import TexturesUV, TexturesVertex
from pytorch3d.structures import Meshes

from pipelines.files.loader import load_asset
from pipelines.files.types import Limits
from pipelines.render.procedural import normalize_verts, with_vertex_colors


def mesh_from_arrays(
    verts: Any,
    faces: Any,
    *,
    colors: Any = None,
    verts_uvs: Any = None,
    faces_uvs: Any = None,
    texture: Any = None,
    normalize: bool = True,
    device: torch.device | str = "cpu",
) -> Meshes:
    """A one-mesh `Meshes` from arrays: verts (V, 3), faces (F, 3), optional colors (V, 3|4) in [0, 1] or
    0-255, or a UV texture: verts_uvs (T, 2), faces_uvs (F, 3) (default: faces) and an (H, W, 3) image or PIL image.
    """
    device = torch.device(device)
    v = torch.as_tensor(np.asarray(verts, dtype=np.float32), device=device).reshape(-1, 3)
    f = torch.as_tensor(np.asarray(faces, dtype=np.int64), device=device).reshape(-1, 3)
    if len(f) == 0:
        raise ValueError(
            "This file has no faces (it is a point cloud): rendering it needs a mesh, so upload one with faces."
        )
    if int(f.min()) < 0 or int(f.max()) >= len(v):
        raise ValueError("The mesh's faces index vertices that do not exist.")
    if not torch.isfinite(v).all():
        raise ValueError("The mesh has NaN or infinite vertex positions.")
    if normalize:
        v = normalize_verts(v)
    if texture is not None and verts_uvs is not None:
        img = np.asarray(texture.convert("RGB") if hasattr(texture, "convert") else texture)
        img = img.astype(np.float32) / (255.0 if img.dtype == np.uint8 else 1.0)
        maps = torch.as_tensor(img[..., :3], device=device)[None]  # (1, H, W, 3)
        uv = torch.as_tensor(np.asarray(verts_uvs, dtype=np.float32), device=device).reshape(1, -1, 2)
        fuv = f if faces_uvs is None else torch.as_tensor(np.asarray(faces_uvs, dtype=np.int64), device=device)
        return Meshes([v], [f], textures=TexturesUV(maps=maps, faces_uvs=fuv.reshape(1, -1, 3), verts_uvs=uv))
    if colors is not None:
        c = np.asarray(colors)
        c = c.astype(np.float32) / (255.0 if c.dtype == np.uint8 or c.max() > 1.0 else 1.0)
        feats = torch.as_tensor(c[:, :3], device=device).clamp(0, 1)
        if len(feats) == len(v):
            return Meshes([v], [f], textures=TexturesVertex([feats]))
    return with_vertex_colors(Meshes([v], [f]))


def load_mesh_file(path: str | Path, *, limits: Any = None, device: torch.device | str = "cpu") -> Meshes:
    """A staged 3D file as a normalised one-mesh `Meshes` (see `load_mesh_file_with_notes`)."""
    return load_mesh_file_with_notes(path, limits=limits, device=device)[0]


def load_mesh_file_with_notes(
    path: str | Path, *, limits: Any = None, device: torch.device | str = "cpu"
) -> tuple[Meshes, list[str]]:
    """A staged 3D file as a normalised one-mesh `Meshes` plus the loader's warnings, read through
    `load_asset` (size limits, safe references).

    UVs with a texture image become a TexturesUV (faces without UVs sample the first UV); vertex colours, or
    face colours averaged per vertex, a TexturesVertex; otherwise a neutral vertex colour.
    """

    asset = load_asset(Path(path), limits if limits is not None else Limits())
    notes = [str(w) for w in asset.warnings]
    texture, uvs, face_uvs = asset.texture, asset.uvs, asset.face_uvs
    if texture is not None and uvs is not None and len(uvs):
        if face_uvs is None and len(uvs) != len(asset.verts):
            texture = None
        elif face_uvs is not None and (face_uvs < 0).any():
            face_uvs = np.where(face_uvs < 0, 0, face_uvs)
            notes.append("Some faces have no texture coordinates; they take the colour at the first UV.")
    else:
        texture = None
    colors, face_colors = asset.colors, asset.face_colors
    if (
        face_colors is None
        and asset.face_materials is not None
        and asset.materials
        and len(asset.face_materials) == len(asset.faces)
    ):
        kd = np.array(
            [m.get("Kd") or (0.75, 0.75, 0.78) for m in asset.materials] + [(0.75, 0.75, 0.78)], dtype=np.float32
        )
        face_colors = kd[
            np.where(asset.face_materials < 0, len(kd) - 1, asset.face_materials)
        ]  # (F, 3) diffuse colours
    if colors is None and face_colors is not None and len(face_colors) == len(asset.faces):
        acc = np.zeros((len(asset.verts), 3), np.float64)
        count = np.zeros(len(asset.verts), np.float64)
        for corner in range(3):
            np.add.at(acc, asset.faces[:, corner], face_colors[:, :3])
            np.add.at(count, asset.faces[:, corner], 1.0)
        colors = (acc / np.maximum(count, 1.0)[:, None]).astype(np.float32)
    mesh = mesh_from_arrays(
        asset.verts,
        asset.faces,
        colors=colors,
        verts_uvs=uvs if texture is not None else None,
        faces_uvs=face_uvs if texture is not None else None,
        texture=texture,
        device=device,
    )
    return mesh, notes


def texture_to_vertex_colors(mesh: Meshes) -> Meshes:
    """The mesh with its texture resampled per vertex (TexturesVertex), as Gouraud shading requires.

    A UV texture is sampled at each face corner's UV and averaged over the corners that share a vertex.
    """
    tex = mesh.textures
    if tex is None or isinstance(tex, TexturesVertex):
        return mesh if tex is not None else with_vertex_colors(mesh)
    if not isinstance(tex, TexturesUV):
        raise ValueError(f"Cannot convert {type(tex).__name__} textures to vertex colours.")
    feats = []
    for i, (verts, faces) in enumerate(zip(mesh.verts_list(), mesh.faces_list())):
        image = tex.maps_padded()[i]  # (H, W, 3)
        uv = tex.verts_uvs_list()[i][tex.faces_uvs_list()[i]]  # (F, 3, 2)
        grid = (uv.reshape(1, -1, 1, 2) * 2 - 1) * torch.tensor([1.0, -1.0], device=uv.device)  # v up -> rows down
        samples = torch.nn.functional.grid_sample(
            image.permute(2, 0, 1)[None], grid, mode="bilinear", padding_mode="border", align_corners=False
        )  # (1, 3, F*3, 1)
        corner_rgb = samples[0, :, :, 0].T  # (F*3, 3)
        acc = torch.zeros(len(verts), 3, device=verts.device).index_add_(0, faces.reshape(-1), corner_rgb)
        count = torch.zeros(len(verts), device=verts.device).index_add_(
            0, faces.reshape(-1), torch.ones(len(corner_rgb), device=verts.device)
        )
        feats.append(acc / count.clamp(min=1)[:, None])
    return Meshes(mesh.verts_list(), mesh.faces_list(), textures=TexturesVertex(feats))


def batch_report(meshes: Meshes) -> dict[str, Any]:
    """How a heterogeneous batch is held as a list, padded and packed tensors, with the index maps."""
    nv = meshes.num_verts_per_mesh().tolist()
    nf = meshes.num_faces_per_mesh().tolist()
    return {
        "meshes": len(meshes),
        "list": {"verts": [[n, 3] for n in nv], "faces": [[n, 3] for n in nf]},
        "padded": {
            "verts_padded": list(meshes.verts_padded().shape),
            "faces_padded": list(meshes.faces_padded().shape),
            "padding_rows_per_mesh": [max(nv) - n for n in nv],
        },
        "packed": {
            "verts_packed": list(meshes.verts_packed().shape),
            "faces_packed": list(meshes.faces_packed().shape),
            "mesh_to_verts_packed_first_idx": meshes.mesh_to_verts_packed_first_idx().tolist(),
            "mesh_to_faces_packed_first_idx": meshes.mesh_to_faces_packed_first_idx().tolist(),
            "verts_packed_to_mesh_idx (first, last)": [
                [int(i) for i in meshes.verts_packed_to_mesh_idx()[[0, -1]].tolist()]
            ],
        },
    }
