"""Geometry statistics of a loaded mesh (vectorised numpy): counts, bounds, area, volume, topology and defects."""

from __future__ import annotations

import numpy as np

from pipelines.files.types import LoadedAsset


def weld(verts: np.ndarray) -> tuple[np.ndarray, int]:
    """Merge vertices with bit-identical positions (-0 == +0): (V,) int64 new index of each vertex, unique count."""
    v = np.ascontiguousarray(np.asarray(verts, dtype=np.float32) + np.float32(0.0))  # (V, 3); +0 turns -0 into 0
    if v.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), 0
    bits = v.view(np.uint32)  # (V, 3)
    order = np.lexsort((bits[:, 2], bits[:, 1], bits[:, 0]))
    sorted_bits = bits[order]
    new = np.ones(v.shape[0], dtype=bool)
    new[1:] = (sorted_bits[1:] != sorted_bits[:-1]).any(axis=1)
    group = np.cumsum(new) - 1
    inverse = np.empty(v.shape[0], dtype=np.int64)
    inverse[order] = group
    return inverse, int(group[-1]) + 1


def _sorted_unique(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique values and their counts by sorting (numpy 2's hash-based np.unique is slower on int64 keys)."""
    s = np.sort(keys)
    if s.size == 0:
        return s, np.zeros(0, dtype=np.int64)
    first = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
    return s[first], np.diff(np.concatenate((first, [s.size])))


def geometry_stats(asset: LoadedAsset) -> dict:
    """JSON-able statistics of `asset`: counts, bounds, area, volume, topology, defects and attributes present.

    Topology (edges, watertight, manifold, Euler characteristic, components, winding) is computed after welding
    vertices at bit-identical positions, so UV/normal seams (OBJ, glTF) and unshared STL corners do not split the
    surface; `num_vertices` stays the stored count and `duplicate_vertices` says how many were merged. Faces with a
    repeated vertex (after welding) count as degenerate and are left out of the topology; zero-area faces with three
    distinct vertices count as degenerate but stay in. `centroid` is the mean of the stored vertex positions.
    `volume` is given only for watertight meshes with consistent winding (absolute value of the signed volume).
    """
    verts = np.asarray(asset.verts, dtype=np.float64)  # (V, 3)
    faces = np.asarray(asset.faces, dtype=np.int64)  # (F, 3)
    n_v, n_f = int(verts.shape[0]), int(faces.shape[0])
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    extent = hi - lo
    inverse, n_unique = weld(asset.verts)
    out = _summary(asset, verts, lo, hi, n_unique)
    if n_f == 0:
        return out

    tri = verts[faces]  # (F, 3, 3)
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (F, 3), twice the area vector
    twice_area = np.linalg.norm(cross, axis=1)  # (F,)
    out["surface_area"] = float(0.5 * twice_area.sum())
    scale = float(extent.max()) ** 2
    fw = inverse[faces]  # (F, 3) welded indices
    repeated = (fw[:, 0] == fw[:, 1]) | (fw[:, 1] == fw[:, 2]) | (fw[:, 0] == fw[:, 2])
    flat = twice_area <= 1e-12 * scale if scale > 0 else np.ones(n_f, dtype=bool)
    out["degenerate_faces"] = int((repeated | flat).sum())
    good = fw[~repeated]  # (G, 3)
    n_good = int(good.shape[0])
    referenced = np.zeros(n_v, dtype=bool)
    referenced[faces.ravel()] = True
    out["unreferenced_vertices"] = int(n_v - referenced.sum())
    if n_good == 0:
        return out
    _topology(out, verts, tri, good, repeated, n_unique)
    return out


def _summary(asset: LoadedAsset, verts: np.ndarray, lo: np.ndarray, hi: np.ndarray, n_unique: int) -> dict:
    """The statistics of a point set (counts, bounds, attributes present), with the surface ones at their defaults."""
    n_v, n_f = int(verts.shape[0]), int(asset.faces.shape[0])
    extent = hi - lo
    return {
        "num_vertices": n_v,
        "num_faces": n_f,
        "num_edges": 0,
        "is_point_cloud": n_f == 0,
        "bbox_min": lo.tolist(),
        "bbox_max": hi.tolist(),
        "centroid": verts.mean(axis=0).tolist(),
        "extent": extent.tolist(),
        "diagonal": float(np.linalg.norm(extent)),
        "surface_area": 0.0,
        "volume": None,
        "watertight": False,
        "manifold": None,
        "winding_consistent": None,
        "euler_characteristic": None,
        "components": None,
        "boundary_edges": 0,
        "non_manifold_edges": 0,
        "degenerate_faces": 0,
        "duplicate_faces": 0,
        "duplicate_vertices": n_v - n_unique,
        "unreferenced_vertices": 0,
        "welded_vertices": n_unique,
        "has_normals": asset.normals is not None or asset.face_normals is not None,
        "has_colors": asset.colors is not None or asset.face_colors is not None,
        "has_uvs": asset.uvs is not None,
        "has_texture": asset.texture is not None,
    }


def _topology(
    out: dict, verts: np.ndarray, tri: np.ndarray, good: np.ndarray, repeated: np.ndarray, n_unique: int
) -> None:
    """Fill duplicate faces, edges, manifoldness, winding, Euler characteristic, components and volume in `out`.

    `good` (G, 3) are the welded faces without a repeated vertex, `tri` (F, 3, 3) the corners of every face.
    """
    n_good = int(good.shape[0])
    sorted_faces = np.sort(good, axis=1)  # (G, 3)
    order = np.lexsort((sorted_faces[:, 2], sorted_faces[:, 1], sorted_faces[:, 0]))
    ranked = sorted_faces[order]
    out["duplicate_faces"] = int((ranked[1:] == ranked[:-1]).all(axis=1).sum())

    directed = good[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)  # (3G, 2)
    lo_hi = np.sort(directed, axis=1)
    keys, counts = _sorted_unique(lo_hi[:, 0] * n_unique + lo_hi[:, 1])
    n_e = int(keys.size)
    out["num_edges"] = n_e
    out["boundary_edges"] = int((counts == 1).sum())
    out["non_manifold_edges"] = int((counts > 2).sum())
    out["manifold"] = out["non_manifold_edges"] == 0
    out["watertight"] = out["boundary_edges"] == 0 and out["non_manifold_edges"] == 0
    directed_keys = directed[:, 0] * n_unique + directed[:, 1]
    out["winding_consistent"] = bool(_sorted_unique(directed_keys)[0].size == directed_keys.size)

    used_mask = np.zeros(n_unique, dtype=bool)
    used_mask[good.ravel()] = True
    used = np.flatnonzero(used_mask)
    out["euler_characteristic"] = int(used.size - n_e + n_good)

    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a, b = keys // n_unique, keys % n_unique
    graph = coo_matrix((np.ones(n_e, dtype=np.int8), (a, b)), shape=(n_unique, n_unique))
    _, labels = connected_components(graph, directed=False)
    out["components"] = int(_sorted_unique(labels[used])[0].size)

    if out["watertight"] and out["winding_consistent"]:
        centre = verts.mean(axis=0)
        t = tri[~repeated] - centre  # (G, 3, 3), centred for accuracy
        signed = np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0
        out["volume"] = float(abs(signed))
