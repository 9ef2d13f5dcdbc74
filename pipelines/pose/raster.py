"""The pose capability's soft mesh rasteriser: PyTorch3D's rasterisation semantics (fragments, blur radius, K faces
per pixel) computed as batched, differentiable torch ops, so CPU steps stay short."""

from __future__ import annotations

import math
from typing import Any

import torch

from pipelines.render.factories import SOFT_BLUR_FACTOR
from pipelines.render.tiled_raster import TiledMeshRasterizer, edge_function, segment_dist2

# sigmoid(-d / sigma) falls to 1e-4 at d = BLUR_FACTOR * sigma: the book's blur radius is BLUR_FACTOR * sigma.
BLUR_FACTOR = SOFT_BLUR_FACTOR
_EPS = 1e-8

# PyTorch3D's CPU rasteriser tests every face at every pixel and its backward pass walks pixels one at a time, which
# is what makes a 256 px, 100-faces-per-pixel step take seconds on a CPU. Here the faces near each pixel are found by
# enumerating every face's (blur-expanded) pixel box, the K nearest in depth are kept, and `zbuf`, `bary_coords` and
# `dists` are recomputed for those (pixel, face) pairs with differentiable tensor ops, so autograd gives the backward
# pass. The outputs are a PyTorch3D `Fragments`, so PyTorch3D's shaders and blending run on them unchanged.


def _pair_geometry(
    face_verts: torch.Tensor, px: torch.Tensor, py: torch.Tensor, perspective_correct: bool, clip_bary: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """For M (face, pixel) pairs: barycentrics (M, 3), depth (M,), signed squared distance (M,), degenerate (M,).

    `face_verts` (M, 3, 3) holds NDC x, y and view-space z. As in PyTorch3D: barycentrics are perspective-corrected
    and then clipped to the triangle when asked, depth interpolates z with the final barycentrics, and the distance to
    the triangle's edges is negative inside the triangle.
    """
    v0, v1, v2 = face_verts[:, 0, :2], face_verts[:, 1, :2], face_verts[:, 2, :2]  # (M, 2)
    z0, z1, z2 = face_verts[:, 0, 2], face_verts[:, 1, 2], face_verts[:, 2, 2]
    area = edge_function(v2[:, 0], v2[:, 1], v0, v1) + _EPS
    w0, w1, w2 = (
        edge_function(px, py, v1, v2) / area,
        edge_function(px, py, v2, v0) / area,
        edge_function(px, py, v0, v1) / area,
    )
    inside = (w0 > 0) & (w1 > 0) & (w2 > 0)
    if perspective_correct:
        t0, t1, t2 = w0 * z1 * z2, z0 * w1 * z2, z0 * z1 * w2
        denom = (t0 + t1 + t2).clamp(min=_EPS)
        w0, w1, w2 = t0 / denom, t1 / denom, t2 / denom
    if clip_bary:
        w0, w1, w2 = w0.clamp(min=0.0), w1.clamp(min=0.0), w2.clamp(min=0.0)
        total = (w0 + w1 + w2).clamp(min=1e-5)
        w0, w1, w2 = w0 / total, w1 / total, w2 / total
    z = w0 * z0 + w1 * z1 + w2 * z2
    dist2 = torch.minimum(
        torch.minimum(segment_dist2(px, py, v0, v1), segment_dist2(px, py, v0, v2)), segment_dist2(px, py, v1, v2)
    )
    return torch.stack([w0, w1, w2], -1), z, torch.where(inside, -dist2, dist2), area.abs() <= _EPS


def _pixel_ndc(index: torch.Tensor, size: int, dtype: torch.dtype) -> torch.Tensor:
    """NDC of pixel centres: PyTorch3D puts +X left and +Y up, so column 0 is x = +1 - 1/S and row 0 is y = +1 - 1/S."""
    return 1.0 - (2.0 * index.to(dtype) + 1.0) / size


def _nearest_faces(
    face_verts: torch.Tensor,
    face_to_mesh: torch.Tensor,
    num_meshes: int,
    size: int,
    blur_radius: float,
    faces_per_pixel: int,
    perspective_correct: bool,
    clip_bary: bool,
    order: str = "depth",
) -> torch.Tensor:
    """`pix_to_face` (N, S, S, K): per pixel, K of the faces that cover it or lie within the blur radius.

    order `depth` keeps the K nearest in depth (PyTorch3D's rule, which shading needs); `distance` keeps the K
    nearest to the pixel in the image plane, covering faces first (all a silhouette depends on, so a small K
    loses nothing). Faces are enumerated over their blur-expanded pixel boxes, a chunk of (face, pixel) pairs at a
    time: on a CPU chunks stay under PyTorch's parallel grain so that busy cores do not stall each step.
    """
    device = face_verts.device
    chunk = 30_000 if device.type == "cpu" else 4_000_000
    reach = math.sqrt(max(blur_radius, 0.0))
    lo = face_verts[..., :2].amin(1) - reach  # (F, 2)
    hi = face_verts[..., :2].amax(1) + reach

    def first_last(lo_ndc: torch.Tensor, hi_ndc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # pixel i has ndc 1 - (2i + 1) / S, which decreases with i
        first = torch.ceil(((1.0 - hi_ndc) * size - 1.0) / 2.0).clamp(0, size).long()
        last = torch.floor(((1.0 - lo_ndc) * size - 1.0) / 2.0).clamp(-1, size - 1).long()
        return first, last

    col0, col1 = first_last(lo[:, 0], hi[:, 0])
    row0, row1 = first_last(lo[:, 1], hi[:, 1])
    width = (col1 - col0 + 1).clamp(min=0)
    height = (row1 - row0 + 1).clamp(min=0)
    in_front = face_verts[..., 2].amax(1) >= 0
    count = torch.where(in_front, width * height, torch.zeros_like(width))  # (F,)
    faces = torch.nonzero(count > 0).squeeze(1)
    counts = count[faces]
    ends = torch.cumsum(counts, 0)
    keys, ranks, face_ids = [], [], []
    start = 0
    while start < faces.numel():
        base = int(ends[start - 1]) if start > 0 else 0
        stop = max(int(torch.searchsorted(ends, torch.tensor(base + chunk, device=device), right=True)), start + 1)
        fs, cs = faces[start:stop], counts[start:stop]
        fid = torch.repeat_interleave(fs, cs)  # (M,)
        local = torch.arange(int(cs.sum()), device=device) - torch.repeat_interleave(torch.cumsum(cs, 0) - cs, cs)
        col = col0[fid] + local % width[fid]
        row = row0[fid] + local // width[fid]
        _, z, dist2, degenerate = _pair_geometry(
            face_verts[fid],
            _pixel_ndc(col, size, face_verts.dtype),
            _pixel_ndc(row, size, face_verts.dtype),
            perspective_correct,
            clip_bary,
        )
        keep = (dist2 < blur_radius) & (z >= 0) & ~degenerate
        keys.append((face_to_mesh[fid[keep]] * size + row[keep]) * size + col[keep])
        ranks.append(z[keep] if order == "depth" else dist2[keep])
        face_ids.append(fid[keep])
        start = stop
    pix_to_face = torch.full((num_meshes * size * size * faces_per_pixel,), -1, dtype=torch.int64, device=device)
    if not keys or sum(k.numel() for k in keys) == 0:
        return pix_to_face.view(num_meshes, size, size, faces_per_pixel)
    key, rank_by, fid = torch.cat(keys), torch.cat(ranks), torch.cat(face_ids)
    perm = torch.argsort(rank_by)
    perm = perm[torch.argsort(key[perm], stable=True)]  # by pixel, then by depth (or distance)
    key, fid = key[perm], fid[perm]
    index = torch.arange(key.numel(), device=device)
    group_start = torch.ones_like(key, dtype=torch.bool)
    group_start[1:] = key[1:] != key[:-1]
    rank = index - torch.cummax(torch.where(group_start, index, torch.zeros_like(index)), 0).values
    nearest = rank < faces_per_pixel
    pix_to_face[key[nearest] * faces_per_pixel + rank[nearest]] = fid[nearest]
    return pix_to_face.view(num_meshes, size, size, faces_per_pixel)


def project(meshes: Any, cameras: Any) -> torch.Tensor:
    """Vertices as the rasteriser sees them: NDC x, y and view-space z, (N, V, 3)."""
    verts_view = cameras.get_world_to_view_transform().transform_points(meshes.verts_padded())
    to_ndc = cameras.get_projection_transform().compose(cameras.get_ndc_camera_transform())
    verts_ndc = to_ndc.transform_points(verts_view)
    return torch.cat([verts_ndc[..., :2], verts_view[..., 2:3]], -1)


def rasterize(
    meshes: Any,
    cameras: Any,
    image_size: int,
    blur_radius: float,
    faces_per_pixel: int,
    backend: str = "torch",
    order: str = "depth",
) -> Any:
    """PyTorch3D `Fragments` for a square image: `pix_to_face` (N, S, S, K), `zbuf`, `bary_coords` (..., 3), `dists`.

    backend `torch`: the batched rasteriser of this module (forward and backward are tensor ops, fast on CPUs);
    `pytorch3d`: PyTorch3D's `MeshRasterizer` (its CUDA kernels are the faster choice on a GPU) through
    `tiled_raster.TiledMeshRasterizer`, which on the CPU recomputes the fragments in torch: PyTorch3D's own CPU backward
    for clipped, perspective-correct barycentrics and depth disagrees with finite differences, which would give the
    RGB loss a wrong gradient. Inside faces and the silhouette's distances agree between the backends, and both
    gradients match finite differences (tests/pose/test_raster.py). `order` (torch backend): which K faces a pixel
    keeps, see `_nearest_faces`.
    """
    from pytorch3d.renderer import RasterizationSettings
    from pytorch3d.renderer.mesh.rasterizer import Fragments

    perspective_correct = bool(cameras.is_perspective())
    clip_bary = blur_radius > 0
    if backend == "pytorch3d":
        settings = RasterizationSettings(
            image_size=image_size,
            blur_radius=blur_radius,
            faces_per_pixel=faces_per_pixel,
            perspective_correct=perspective_correct,
        )
        return TiledMeshRasterizer(cameras=cameras, raster_settings=settings)(meshes)
    if backend != "torch":
        raise ValueError(f"Unknown rasterizer {backend!r}: choose torch or pytorch3d.")
    verts = project(meshes, cameras)  # (N, V, 3)
    verts_packed = verts.reshape(-1, 3)[meshes.verts_padded_to_packed_idx()] if len(meshes) > 1 else verts[0]
    face_verts = verts_packed[meshes.faces_packed()]  # (F, 3, 3)
    n, size, k = len(meshes), int(image_size), int(faces_per_pixel)
    with torch.no_grad():
        pix_to_face = _nearest_faces(
            face_verts.detach(),
            meshes.faces_packed_to_mesh_idx(),
            n,
            size,
            blur_radius,
            k,
            perspective_correct,
            clip_bary,
            order,
        )
    hit = pix_to_face >= 0
    b, y, x, slot = hit.nonzero(as_tuple=True)
    bary, z, dist2, _ = _pair_geometry(
        face_verts[pix_to_face[hit]],
        _pixel_ndc(x, size, face_verts.dtype),
        _pixel_ndc(y, size, face_verts.dtype),
        perspective_correct,
        clip_bary,
    )

    def dense(values: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.full(shape, -1.0, dtype=values.dtype, device=values.device).index_put((b, y, x, slot), values)

    return Fragments(
        pix_to_face=pix_to_face,
        zbuf=dense(z, (n, size, size, k)),
        bary_coords=dense(bary, (n, size, size, k, 3)),
        dists=dense(dist2, (n, size, size, k)),
    )
