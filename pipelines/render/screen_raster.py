"""A vectorised numpy z-buffer rasteriser in PyTorch3D's screen space: the CPU stand-in for MeshRasterizer
(one face per pixel, no blur) that the camera inspector uses for big meshes."""

from __future__ import annotations

import numpy as np

# PyTorch3D rasterises naively on CPU (no binning there): about 16 ns per pixel x face on this class of
# machine, so a 256 x 256 image of a 20k-face mesh takes ~20 s. Above this many pixel-face pairs on CPU,
# camera_render.render_mesh uses rasterize_screen below (same Fragments, same HardPhongShader).
FAST_RASTER_ABOVE = 2e7
_PAIR_CHUNK = 4_000_000  # candidate (face, pixel) pairs per chunk in rasterize_screen


def rasterize_screen(
    verts_screen: np.ndarray, faces: np.ndarray, image_size: tuple[int, int], perspective: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised z-buffer rasteriser, a CPU stand-in for PyTorch3D's MeshRasterizer with
    faces_per_pixel=1, blur_radius=0 (tested against it).

    verts_screen (V, 3): PyTorch3D screen x, y (pixels, transform_points_screen) and VIEW depth z.
    faces (F, 3) int. Pixel (i, j) samples the point (j + 0.5, i + 0.5); each face only visits the
    pixels of its bounding box. Perspective: 1/z is affine in screen space, so depth is 1 / sum(l_k / z_k)
    and barycentrics are perspective-corrected; faces with a vertex at z <= 0 are dropped (PyTorch3D clips
    them). Returns pix_to_face int64 (H, W) (-1 = empty), zbuf float32 (H, W) (-1 = empty) and
    bary float32 (H, W, 3) (-1 = empty)."""
    h, w = image_size
    v = np.asarray(verts_screen, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    tri = v[f]  # (F, 3, 3)
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])  # (F,) 2x signed
    keep = np.isfinite(tri).all(axis=(1, 2)) & (np.abs(area) > 1e-12)
    if perspective:
        keep &= (tri[:, :, 2] > 1e-8).all(axis=1)
    # pixel j is visited when its centre j + 0.5 lies in [min x, max x]
    x0 = np.ceil(tri[:, :, 0].min(axis=1) - 0.5).clip(0, w)
    x1 = np.floor(tri[:, :, 0].max(axis=1) - 0.5).clip(-1, w - 1)
    y0 = np.ceil(tri[:, :, 1].min(axis=1) - 0.5).clip(0, h)
    y1 = np.floor(tri[:, :, 1].max(axis=1) - 0.5).clip(-1, h - 1)
    nx = np.where(keep, x1 - x0 + 1, 0).clip(0).astype(np.int64)
    ny = np.where(keep, y1 - y0 + 1, 0).clip(0).astype(np.int64)
    count = nx * ny  # (F,) candidate pixels per face

    best_z = np.full(h * w, np.inf)
    pix_to_face = np.full(h * w, -1, dtype=np.int64)
    bary = np.full((h * w, 3), -1.0)
    face_ids = np.flatnonzero(count)
    bounds = np.searchsorted(np.cumsum(count[face_ids]), np.arange(_PAIR_CHUNK, int(count.sum()), _PAIR_CHUNK))
    for chunk in np.split(face_ids, bounds):
        if len(chunk) == 0:
            continue
        n = count[chunk]
        fid = np.repeat(chunk, n)  # (P,) face of each candidate pair
        k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)  # index inside the face's box
        px = x0[fid] + k % nx[fid] + 0.5
        py = y0[fid] + k // nx[fid] + 0.5
        ta, tb, tc, ar = a[fid], b[fid], c[fid], area[fid]
        l0 = ((tb[:, 0] - px) * (tc[:, 1] - py) - (tb[:, 1] - py) * (tc[:, 0] - px)) / ar
        l1 = ((tc[:, 0] - px) * (ta[:, 1] - py) - (tc[:, 1] - py) * (ta[:, 0] - px)) / ar
        l2 = 1.0 - l0 - l1
        inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
        lam = np.stack([l0, l1, l2], axis=1)[inside]  # (Q, 3) screen-space barycentrics
        zs = np.stack([ta[:, 2], tb[:, 2], tc[:, 2]], axis=1)[inside]  # (Q, 3)
        fid, px, py = fid[inside], px[inside], py[inside]
        if perspective:
            inv = lam / zs
            z = 1.0 / inv.sum(axis=1)
            lam = inv * z[:, None]  # perspective-correct barycentrics
        else:
            z = (lam * zs).sum(axis=1)
        ok = z >= 0
        pix = (py[ok] - 0.5).astype(np.int64) * w + (px[ok] - 0.5).astype(np.int64)
        z, fid, lam = z[ok], fid[ok], lam[ok]
        order = np.lexsort((z, pix))  # nearest first within each pixel
        first = order[np.r_[True, pix[order][1:] != pix[order][:-1]]] if len(order) else order
        win = first[z[first] < best_z[pix[first]]]
        best_z[pix[win]] = z[win]
        pix_to_face[pix[win]] = fid[win]
        bary[pix[win]] = lam[win]
    zbuf = np.where(np.isfinite(best_z), best_z, -1.0)
    return pix_to_face.reshape(h, w), zbuf.reshape(h, w).astype(np.float32), bary.reshape(h, w, 3).astype(np.float32)
