"""Geometry statistics of a loaded mesh (vectorised numpy) and a cross-check of its counts with independent readers."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pipelines.files.mesh_io import LoadedAsset


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
    out: dict = {
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
    return out


# ----------------------------------------------------------------------------------------------------------------
# Cross-check
# ----------------------------------------------------------------------------------------------------------------


def cross_check(asset: LoadedAsset) -> dict:
    """Re-read asset.path with an independent reader and compare vertex and face counts with the main load.

    Readers, first that succeeds: trimesh then Open3D for binary PLY; Open3D then trimesh for ASCII PLY and OFF;
    trimesh then PyTorch3D's load_obj for OBJ (materials skipped, safe resolver); trimesh for binary STL; Open3D
    for ASCII STL; PyTorch3D's experimental glTF reader (geometry only) then the JSON accessor counts for GLB; the
    JSON accessor counts for .gltf. Never decodes textures or follows references outside the upload.
    Returns {"reader", "num_vertices", "num_faces", "main": {...}, "agree": bool | None, "notes": [...]}, with
    "error" instead of counts when the reader fails. Differences are explained in notes, never hidden.
    """
    main = {"num_vertices": asset.num_vertices, "num_faces": asset.num_faces, "loader": asset.loader}
    notes: list[str] = []
    fmt = asset.format
    if fmt == "ply" and asset.encoding != "ascii":
        readers = [_trimesh_counts, _open3d_counts]  # Open3D also reads polygon lists trimesh refuses
    elif fmt in ("ply", "off"):
        readers = [_open3d_counts, _trimesh_counts]  # Open3D parses text about 10x faster than trimesh
    elif fmt == "obj":
        readers = [_trimesh_counts, _pytorch3d_obj_counts]  # not Open3D: it would follow mtllib/map_Kd unchecked
    elif fmt == "stl" and asset.encoding == "binary":
        readers = [_trimesh_counts]
    elif fmt == "stl":
        readers = [_open3d_counts]
    elif fmt == "glb":
        readers = [_pytorch3d_glb_counts, _gltf_declared_counts]
    else:
        readers = [_gltf_declared_counts]
    from pipelines.files.mesh_io import short_reason

    for read in readers:
        try:
            reader, nv, nf = read(asset)
        except Exception as e:
            notes.append(f"{_reader_name(read)} could not read the file: {short_reason(e)}")
            continue
        agree = nv == asset.num_vertices and nf == asset.num_faces
        if not agree:
            notes += _explain(asset, nv, nf, reader)
        return {
            "reader": reader,
            "num_vertices": int(nv),
            "num_faces": int(nf),
            "main": main,
            "agree": agree,
            "notes": notes,
        }
    return {"reader": _reader_name(readers[-1]), "error": notes[-1], "main": main, "agree": None, "notes": notes}


def _reader_name(read: object) -> str:
    return {
        "_trimesh_counts": "trimesh",
        "_open3d_counts": "Open3D",
        "_pytorch3d_obj_counts": "PyTorch3D's load_obj",
        "_pytorch3d_glb_counts": "PyTorch3D's glTF reader",
        "_gltf_declared_counts": "the glTF JSON",
    }.get(getattr(read, "__name__", ""), "the reader")


def _open3d_counts(asset: LoadedAsset) -> tuple[str, int, int]:
    import open3d as o3d

    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    if asset.is_point_cloud and asset.format == "ply":
        cloud = o3d.io.read_point_cloud(str(asset.path))
        return f"open3d {o3d.__version__}", len(cloud.points), 0
    mesh = o3d.io.read_triangle_mesh(str(asset.path))
    return f"open3d {o3d.__version__}", len(mesh.vertices), len(mesh.triangles)


def _trimesh_counts(asset: LoadedAsset) -> tuple[str, int, int]:
    import trimesh

    fmt = asset.format
    kwargs: dict = {"process": False}
    if fmt == "obj":
        from pipelines.files.mesh_io import trimesh_resolver, upload_root

        root = upload_root(asset.path, None)
        kwargs.update(maintain_order=True, skip_materials=True, resolver=trimesh_resolver(asset.path.parent, root))
    with open(asset.path, "rb") as f:
        data = f.read()
    loaded = trimesh.load(io.BytesIO(data), file_type=fmt, **kwargs)  # no resolver: never follows TextureFile
    if isinstance(loaded, trimesh.Scene):
        geoms = list(loaded.geometry.values())
    else:
        geoms = [loaded]
    nv = sum(len(g.vertices) for g in geoms)
    nf = sum(len(getattr(g, "faces", ())) for g in geoms)
    return f"trimesh {trimesh.__version__}", nv, nf


def _pytorch3d_obj_counts(asset: LoadedAsset) -> tuple[str, int, int]:
    import pytorch3d
    from pytorch3d.io import load_obj

    text = asset.path.read_bytes().replace(b"\t", b" ").decode("utf-8", errors="replace")
    verts, faces, _ = load_obj(io.StringIO(text), load_textures=False)  # a stream: no mtllib lookup at all
    return f"pytorch3d {pytorch3d.__version__} load_obj", int(verts.shape[0]), int(faces.verts_idx.shape[0])


def _pytorch3d_glb_counts(asset: LoadedAsset) -> tuple[str, int, int]:
    import pytorch3d
    from iopath.common.file_io import PathManager
    from pytorch3d.io.experimental_gltf_io import load_meshes

    meshes = load_meshes(str(asset.path), PathManager(), include_textures=False)
    nv = sum(int(m.verts_packed().shape[0]) for _, m in meshes)
    nf = sum(int(m.faces_packed().shape[0]) for _, m in meshes)
    return f"pytorch3d {pytorch3d.__version__} experimental glTF reader (geometry only)", nv, nf


def _gltf_declared_counts(asset: LoadedAsset) -> tuple[str, int, int]:
    from pipelines.files.mesh_gltf import read_gltf_json

    doc, _ = read_gltf_json(asset.path)
    accessors = doc.get("accessors", [])
    nv = nf = 0
    for mesh in doc.get("meshes", []):
        for prim in mesh.get("primitives", []):
            pos = prim.get("attributes", {}).get("POSITION")
            if pos is None:
                continue
            count = int(accessors[int(pos)]["count"])
            nv += count
            if int(prim.get("mode", 4)) == 4:
                nf += (int(accessors[int(prim["indices"])]["count"]) if "indices" in prim else count) // 3
    return "glTF JSON accessors (counts as declared, nothing decoded)", nv, nf


def _explain(asset: LoadedAsset, nv: int, nf: int, reader: str) -> list[str]:
    """Likely reasons for a count difference, as sentences."""
    notes = []
    name = reader.split()[0]
    if nf == asset.num_faces and nv > asset.num_vertices and asset.format in ("obj", "glb", "gltf"):
        notes.append(
            f"{name} splits vertices where texture coordinates or normals differ (seams): the file stores "
            f"{asset.num_vertices:,} positions, {name} makes {nv:,}."
        )
    elif nf == asset.num_faces and nv < asset.num_vertices:
        notes.append(
            f"{name} merges or drops vertices ({nv:,} instead of the {asset.num_vertices:,} stored), e.g. duplicates "
            "or vertices no face uses."
        )
    elif asset.format in ("glb", "gltf") and nv != asset.num_vertices:
        notes.append(
            "The main load applies the scene graph (a mesh used by several nodes is counted once per use); "
            f"{name} counts each stored mesh once."
        )
    if nf != asset.num_faces:
        notes.append(
            f"Face counts differ ({nf:,} vs {asset.num_faces:,}): readers split polygons into triangles or skip "
            "degenerate faces differently."
        )
    return notes
