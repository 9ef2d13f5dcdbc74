"""Conversions of a loaded asset to trimesh and PyTorch3D objects, and points sampled on its surface."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.files.types import LoadedAsset, MeshFileError

if TYPE_CHECKING:
    import trimesh


def rgba_u8(colors: np.ndarray) -> np.ndarray:
    """(N, 3|4) float colours in [0, 1] -> (N, 4) uint8."""
    c = np.clip(np.asarray(colors, dtype=np.float64), 0.0, 1.0)
    if c.shape[1] == 3:
        c = np.concatenate([c, np.ones((c.shape[0], 1))], axis=1)
    return (c * 255.0).round().astype(np.uint8)


def per_vertex_uvs(asset: LoadedAsset) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Vertices split so each has one uv: (verts (V', 3), faces (F, 3), uvs (V', 2) or None, source (V',)).

    `source` maps each new vertex to the stored one, for copying normals and colours. Without corner uvs
    nothing is split (source is the identity).
    """
    if asset.face_uvs is None or asset.uvs is None:
        return asset.verts, asset.faces, asset.uvs, np.arange(asset.num_vertices)
    t_count = asset.uvs.shape[0] + 1
    keys = asset.faces.ravel() * t_count + (asset.face_uvs.ravel() + 1)  # (3F,) one key per (vertex, uv) corner
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    source = uniq // t_count
    uv_idx = uniq % t_count - 1
    uvs = np.where(uv_idx[:, None] >= 0, asset.uvs[np.maximum(uv_idx, 0)], 0.0).astype(np.float32)
    return asset.verts[source], inverse.reshape(-1, 3).astype(np.int64), uvs, source


def material_face_colors(asset: LoadedAsset) -> np.ndarray | None:
    """(F, 4) float face colours from material diffuse colours (Kd, d), or None when there is nothing to show."""
    if asset.face_materials is None or not asset.materials:
        return None
    table = np.array(
        [[*(m.get("Kd") or [0.8, 0.8, 0.8])[:3], float(m.get("d", 1.0))] for m in asset.materials]
        + [[0.8, 0.8, 0.8, 1]],
        dtype=np.float64,
    )  # last row: faces without a material
    if len({tuple(r) for r in table[:-1]}) <= 1:
        return None
    return table[np.where(asset.face_materials >= 0, asset.face_materials, len(asset.materials))]


def to_trimesh(asset: LoadedAsset) -> trimesh.Trimesh | trimesh.PointCloud:
    """A trimesh object with the asset's look: texture (PBR base colour), else vertex colours, else face or
    material colours (vertices unshared so each face keeps its colour). Points give a PointCloud."""
    import trimesh

    if asset.is_point_cloud:
        return trimesh.PointCloud(asset.verts, colors=None if asset.colors is None else rgba_u8(asset.colors))
    if asset.texture is not None and asset.uvs is not None:
        verts, faces, uvs, source = per_vertex_uvs(asset)
        normals = None if asset.normals is None else asset.normals[source]
        mesh = trimesh.Trimesh(verts, faces, vertex_normals=normals, process=False)
        kd = next((m.get("Kd") for m in asset.materials if m.get("map_Kd")), None)
        material = trimesh.visual.material.PBRMaterial(
            name="texture",
            baseColorTexture=asset.texture,
            baseColorFactor=[*(kd or [1.0, 1.0, 1.0])[:3], 1.0],
            metallicFactor=0.0,
            roughnessFactor=0.9,
        )
        mesh.visual = trimesh.visual.TextureVisuals(uv=uvs, material=material)
        return mesh
    face_colors = asset.face_colors if asset.face_colors is not None else material_face_colors(asset)
    if asset.colors is None and face_colors is not None:
        corners = asset.faces.ravel()
        mesh = trimesh.Trimesh(
            asset.verts[corners],
            np.arange(corners.size, dtype=np.int64).reshape(-1, 3),
            vertex_normals=None if asset.normals is None else asset.normals[corners],
            process=False,
        )
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=np.repeat(rgba_u8(face_colors), 3, axis=0))
        return mesh
    mesh = trimesh.Trimesh(asset.verts, asset.faces, vertex_normals=asset.normals, process=False)
    if asset.colors is not None:
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=rgba_u8(asset.colors))
    return mesh


def to_pytorch3d(asset: LoadedAsset, device: str = "cpu") -> Any:
    """PyTorch3D Meshes (TexturesUV with the texture, else TexturesVertex with colours) or Pointclouds (colours as
    features), on `device`."""
    import torch
    from pytorch3d.renderer import TexturesUV, TexturesVertex
    from pytorch3d.structures import Meshes, Pointclouds

    verts = torch.from_numpy(np.ascontiguousarray(asset.verts, dtype=np.float32)).to(device)  # (V, 3)
    if asset.is_point_cloud:
        normals = None if asset.normals is None else [torch.from_numpy(asset.normals).to(device)]
        feats = None if asset.colors is None else [torch.from_numpy(asset.colors[:, :3].copy()).to(device)]
        return Pointclouds(points=[verts], normals=normals, features=feats)
    faces = torch.from_numpy(asset.faces).to(device)  # (F, 3)
    textures = None
    if asset.texture is not None and asset.uvs is not None:
        image = np.asarray(asset.texture.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
        faces_uvs = asset.faces if asset.face_uvs is None else np.maximum(asset.face_uvs, 0)
        textures = TexturesUV(
            maps=torch.from_numpy(image)[None].to(device),
            faces_uvs=torch.from_numpy(faces_uvs)[None].to(device),
            verts_uvs=torch.from_numpy(asset.uvs)[None].to(device),
        )
    elif asset.colors is not None:
        textures = TexturesVertex(verts_features=torch.from_numpy(asset.colors[:, :3].copy())[None].to(device))
    return Meshes(verts=[verts], faces=[faces], textures=textures)


def sample_points(asset: LoadedAsset, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) points uniformly on the surface and their (n, 3) face normals (pytorch3d.ops.sample_points_from_meshes,
    seeded without touching the global RNG). A point cloud is resampled from its points (its normals, else zeros)."""
    import torch

    n = int(n)
    if n <= 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    if asset.is_point_cloud:
        idx = np.random.default_rng(seed).choice(asset.num_vertices, n, replace=asset.num_vertices < n)
        normals = asset.normals[idx] if asset.normals is not None else np.zeros((n, 3), np.float32)
        return asset.verts[idx].copy(), normals.astype(np.float32)
    from pytorch3d.ops import sample_points_from_meshes
    from pytorch3d.structures import Meshes

    mesh = Meshes(verts=[torch.from_numpy(asset.verts)], faces=[torch.from_numpy(asset.faces)])
    if float(mesh.faces_areas_packed().sum()) <= 0.0:
        raise MeshFileError("The mesh has no surface area, so no points can be sampled on it.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        points, normals = sample_points_from_meshes(mesh, num_samples=n, return_normals=True)  # (1, n, 3) each
    return points[0].numpy().astype(np.float32), normals[0].numpy().astype(np.float32)
