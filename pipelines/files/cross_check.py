"""Cross-check of a loaded asset: its counts compared with an independent reader's (trimesh, Open3D, PyTorch3D)."""

from __future__ import annotations

import io

from pipelines.files.gltf import read_gltf_json
from pipelines.files.types import LoadedAsset, short_reason
from pipelines.files.upload import trimesh_resolver, upload_root


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
