"""The CPU tiled mesh rasteriser: square tiles, each rasterised with only the faces that touch it, and a pure-torch
twin of PyTorch3D's fragments for the gradients."""

from __future__ import annotations

import math
from typing import Any

import torch
from pytorch3d.renderer import MeshRasterizer
from pytorch3d.renderer.mesh.rasterizer import Fragments
from pytorch3d.structures import Meshes


class TiledMeshRasterizer(MeshRasterizer):
    """A MeshRasterizer for the CPU: the image is cut into square tiles and each tile is rasterised with only the
    faces whose blur-expanded bounding box touches it (all tiles in one call to PyTorch3D's naive kernel), and
    when the vertices need gradients the fragments are recomputed from `pix_to_face` in plain torch.

    PyTorch3D's coarse-to-fine binning, which does the same as the tiles, has no CPU kernel: the naive one tests
    every face at every pixel. Its CPU backward is slow (about 16 us per face slot) and, with clipped
    perspective-correct barycentrics (blur > 0), disagrees with finite differences; the torch twin
    (`fragments_torch`) is differentiated by autograd instead. The fragments equal the library's up to float
    rounding. Other devices, non-square images, explicit bin sizes, frustum culling and faces that cross the
    near clipping plane use MeshRasterizer unchanged.
    """

    def forward(self, meshes_world: Meshes, **kwargs: Any) -> Fragments:
        from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes

        rs = kwargs.get("raster_settings", self.raster_settings)
        size = rs.image_size
        if isinstance(size, (tuple, list)):
            size = size[0] if size[0] == size[1] else 0
        if meshes_world.device.type != "cpu" or not size or rs.bin_size not in (None, 0) or rs.cull_to_frustum:
            return super().forward(meshes_world, **kwargs)
        cameras = kwargs.get("cameras", self.cameras)
        meshes_proj = self.transform(meshes_world, **kwargs)
        clip_bary = rs.clip_barycentric_coords if rs.clip_barycentric_coords is not None else rs.blur_radius > 0.0
        perspective = rs.perspective_correct if rs.perspective_correct is not None else cameras.is_perspective()
        z_clip = rs.z_clip_value
        if z_clip is None and perspective:
            znear = cameras.get_znear()
            znear = znear.min().item() if isinstance(znear, torch.Tensor) else znear
            z_clip = None if znear is None else znear / 2
        face_verts = meshes_proj.verts_packed()[meshes_proj.faces_packed()]  # (F, 3, 3): NDC x, y and view z
        needs_grad = torch.is_grad_enabled() and face_verts.requires_grad
        if needs_grad and z_clip is not None and bool((face_verts[..., 2].detach() < z_clip).any()):
            return super().forward(meshes_world, **kwargs)  # near-plane clipping: the library's own path
        options = dict(
            blur_radius=rs.blur_radius,
            faces_per_pixel=rs.faces_per_pixel,
            perspective_correct=perspective,
            clip_barycentric_coords=clip_bary,
            cull_backfaces=rs.cull_backfaces,
            z_clip_value=z_clip,
        )
        tile = tile_size(int(size)) if int(meshes_world.num_faces_per_mesh().max()) >= MIN_TILED_FACES else 0
        with torch.no_grad():
            if tile:
                frags = rasterize_tiled(meshes_proj, int(size), tile, **options)
            else:
                frags = Fragments(*rasterize_meshes(meshes_proj, image_size=int(size), bin_size=0, **options))
        if not needs_grad:
            return frags
        zbuf, bary, dists = fragments_torch(
            face_verts, frags.pix_to_face, perspective_correct=perspective, clip_barycentric_coords=clip_bary
        )
        return Fragments(frags.pix_to_face, zbuf, bary, dists)


_EPS = 1e-8  # PyTorch3D's kEpsilon in the barycentric helpers


def edge_function(px: torch.Tensor, py: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PyTorch3D's edge function of point p against the edge a -> b (twice the signed area)."""
    return (px - a[..., 0]) * (b[..., 1] - a[..., 1]) - (py - a[..., 1]) * (b[..., 0] - a[..., 0])


def segment_dist2(px: torch.Tensor, py: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distance from p to the segment a-b (2D)."""
    ab = b[..., :2] - a[..., :2]
    l2 = (ab * ab).sum(-1)
    ap_x, ap_y = px - a[..., 0], py - a[..., 1]
    t = ((ab[..., 0] * ap_x + ab[..., 1] * ap_y) / l2.clamp(min=_EPS)).clamp(0, 1)
    dx, dy = a[..., 0] + t * ab[..., 0] - px, a[..., 1] + t * ab[..., 1] - py
    return torch.where(l2 <= _EPS, (px - b[..., 0]) ** 2 + (py - b[..., 1]) ** 2, dx * dx + dy * dy)


def fragments_torch(
    face_verts: torch.Tensor,
    pix_to_face: torch.Tensor,
    *,
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """zbuf (N, H, W, K), bary_coords (N, H, W, K, 3) and signed squared dists (N, H, W, K) of given face slots,
    differentiable in `face_verts` (F, 3, 3; NDC x, y and view z), with PyTorch3D's definitions (square images).

    Empty slots (pix_to_face < 0) get -1, as in PyTorch3D.
    """
    n, h, w, _ = pix_to_face.shape
    hit = pix_to_face >= 0
    v = face_verts[pix_to_face.clamp(min=0)]  # (N, H, W, K, 3, 3)
    v0, v1, v2 = v[..., 0, :], v[..., 1, :], v[..., 2, :]
    dev, dt = face_verts.device, face_verts.dtype
    px = (1 - (2 * torch.arange(w, device=dev, dtype=dt) + 1) / w).reshape(1, 1, w, 1)
    py = (1 - (2 * torch.arange(h, device=dev, dtype=dt) + 1) / h).reshape(1, h, 1, 1)
    area = edge_function(v2[..., 0], v2[..., 1], v0, v1) + _EPS
    b0 = (
        torch.stack([edge_function(px, py, v1, v2), edge_function(px, py, v2, v0), edge_function(px, py, v0, v1)], -1)
        / area[..., None]
    )
    bary = b0
    z = torch.stack([v0[..., 2], v1[..., 2], v2[..., 2]], -1)  # (N, H, W, K, 3)
    if perspective_correct:
        top = torch.stack(
            [
                bary[..., 0] * z[..., 1] * z[..., 2],
                z[..., 0] * bary[..., 1] * z[..., 2],
                z[..., 0] * z[..., 1] * bary[..., 2],
            ],
            -1,
        )
        bary = top / top.sum(-1, keepdim=True).clamp(min=_EPS)
    if clip_barycentric_coords:
        bary = bary.clamp(min=0)
        bary = bary / bary.sum(-1, keepdim=True).clamp(min=_EPS)
    zbuf = (bary * z).sum(-1)
    dist = torch.minimum(
        torch.minimum(segment_dist2(px, py, v0, v1), segment_dist2(px, py, v1, v2)), segment_dist2(px, py, v2, v0)
    )
    inside = (b0 > 0).all(-1)
    dists = torch.where(inside, -dist, dist)
    minus = torch.full_like(zbuf, -1.0)
    return (
        torch.where(hit, zbuf, minus),
        torch.where(hit[..., None], bary, minus[..., None].expand_as(bary)),
        torch.where(hit, dists, minus),
    )


MIN_TILED_FACES = 64  # below this the naive kernel is already fast and tiling only adds overhead


def tile_size(image_size: int) -> int:
    """The tile side for the CPU tiled rasteriser (about 8 x 8 tiles), or 0 where tiling does not pay off."""
    if image_size < 48:
        return 0
    return max(16, 1 << math.ceil(math.log2(image_size / 8)))


def rasterize_tiled(
    meshes_ndc: Meshes,
    image_size: int,
    tile: int,
    *,
    blur_radius: float = 0.0,
    faces_per_pixel: int = 1,
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
    cull_backfaces: bool = False,
    z_clip_value: float | None = None,
) -> Fragments:
    """`rasterize_meshes` for a square image, tile by tile (see TiledMeshRasterizer). `meshes_ndc` holds NDC x, y
    and view depth z, as `MeshRasterizer.transform` returns. Each tile's faces are mapped by x' = a x + b so the
    tile fills NDC [-1, 1]; squared distances scale by a^2, barycentrics and depth do not change."""
    from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes

    S, T = image_size, tile
    nt = math.ceil(S / T)
    n_mesh, device = len(meshes_ndc), meshes_ndc.device
    verts_packed, faces_packed = meshes_ndc.verts_packed(), meshes_ndc.faces_packed()
    face_mesh = meshes_ndc.faces_packed_to_mesh_idx()  # (F,)
    fv = verts_packed.detach()[faces_packed]  # (F, 3, 3)
    margin = math.sqrt(max(blur_radius, 0.0)) + 2.0 / S + 1e-4
    lo, hi = fv[..., :2].amin(1) - margin, fv[..., :2].amax(1) + margin  # (F, 2)
    start = torch.arange(nt, device=device, dtype=fv.dtype) * T  # first pixel of each tile row/column
    centre_hi = 1 - (2 * start + 1) / S  # NDC of the first pixel centre (largest)
    centre_lo = 1 - (2 * (start + T - 1) + 1) / S
    cols = (hi[None, :, 0] >= centre_lo[:, None]) & (lo[None, :, 0] <= centre_hi[:, None])  # (nt, F)
    rows = (hi[None, :, 1] >= centre_lo[:, None]) & (lo[None, :, 1] <= centre_hi[:, None])  # (nt, F)
    overlap = (rows[:, None, :] & cols[None, :, :]).reshape(nt * nt, -1)  # (tiles, F), tile = row * nt + col
    # Faces that reach behind the clipping plane (or are not finite) are clipped by the kernel: keep them everywhere.
    risky = ~torch.isfinite(fv).all(-1).all(-1)
    if z_clip_value is not None:
        risky |= fv[..., 2].amin(1) < z_clip_value
    overlap |= risky[None]
    tile_idx, face_idx = overlap.nonzero(as_tuple=True)
    sub = face_mesh[face_idx] * nt * nt + tile_idx  # (P,) which (mesh, tile) sub-image each pair feeds
    order = torch.argsort(sub, stable=True)
    sub, face_idx = sub[order], face_idx[order]
    n_sub = n_mesh * nt * nt
    counts = torch.bincount(sub, minlength=n_sub)
    shape = (n_mesh, S, S, faces_per_pixel)
    if len(face_idx) == 0:
        empty = torch.full(shape, -1, dtype=torch.int64, device=device)
        zeros = torch.full(shape, -1.0, device=device)
        return Fragments(empty, zeros, torch.full((*shape, 3), -1.0, device=device), zeros.clone())
    first = torch.cumsum(counts, 0) - counts
    pos = torch.arange(len(sub), device=device) - first[sub]
    local_faces = faces_packed[face_idx] - meshes_ndc.mesh_to_verts_packed_first_idx()[face_mesh[face_idx]][:, None]
    faces_tiled = torch.full((n_sub, int(counts.max()), 3), -1, dtype=torch.int64, device=device)
    faces_tiled[sub, pos] = local_faces

    a = S / T
    offset = 1 - a + 2 * start / T  # (nt,)
    off_xy = torch.stack([offset[None, :].expand(nt, nt), offset[:, None].expand(nt, nt)], -1).reshape(1, nt * nt, 1, 2)
    verts = meshes_ndc.verts_padded()  # (N, V, 3)
    xy = verts[:, None, :, :2] * a + off_xy  # (N, tiles, V, 2)
    z = verts[:, None, :, 2:].expand(-1, nt * nt, -1, -1)
    verts_tiled = torch.cat([xy, z], -1).reshape(n_sub, verts.shape[1], 3)
    p2f, zbuf, bary, dists = rasterize_meshes(
        Meshes(verts=verts_tiled, faces=faces_tiled),
        image_size=T,
        blur_radius=blur_radius * a * a,
        faces_per_pixel=faces_per_pixel,
        bin_size=0,
        perspective_correct=perspective_correct,
        clip_barycentric_coords=clip_barycentric_coords,
        cull_backfaces=cull_backfaces,
        z_clip_value=z_clip_value,
    )

    hit = p2f >= 0
    p2f = torch.where(hit, face_idx[p2f.clamp(min=0)], p2f)
    dists = torch.where(hit, dists / (a * a), dists)
    return Fragments(*(_stitch(x, n_mesh, nt, T, S) for x in (p2f, zbuf, bary, dists)))


def _stitch(x: torch.Tensor, n_mesh: int, nt: int, tile: int, image_size: int) -> torch.Tensor:
    """Per-(mesh, tile) buffers (N * nt * nt, T, T, ...) back into images (N, S, S, ...)."""
    tail = x.shape[3:]
    x = x.reshape(n_mesh, nt, nt, tile, tile, *tail).transpose(2, 3).reshape(n_mesh, nt * tile, nt * tile, *tail)
    return x[:, :image_size, :image_size]
