"""STL reader: binary STL with numpy (size checked against the declared count), ASCII STL through trimesh."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.files.types import Limits, LoadedAsset, MeshFileError, cap_text


def load_stl(path: Path, limits: Limits) -> LoadedAsset:
    """Read a binary or ASCII STL; corners stay unshared as stored (3 vertices per triangle)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(84)
    declared = int(np.frombuffer(head[80:84], dtype="<u4")[0]) if len(head) == 84 else -1
    if declared >= 0 and size == 84 + 50 * declared:
        encoding, n_tri = "binary", declared
        header = "80-byte header: " + head[:80].decode("latin-1").rstrip("\x00 ") + f"\ntriangles: {declared}"
    elif head.lstrip()[:5].lower() == b"solid":
        encoding = "ascii"
        data = path.read_bytes()
        n_tri = data.count(b"endloop")
        header = "\n".join(data[:4096].decode("utf-8", errors="replace").splitlines()[:12])
        if n_tri == 0:
            raise MeshFileError(f"{path.name} is an ASCII STL file without any complete facet.")
    elif declared >= 0:
        raise MeshFileError(
            f"{path.name} is not a valid STL file: its header declares {declared:,} triangles "
            f"({84 + 50 * declared:,} bytes) but the file has {size:,} bytes."
        )
    else:
        raise MeshFileError(f"{path.name} is too short to be an STL file.")
    if n_tri > limits.max_faces:
        raise MeshFileError(f"{path.name} has {n_tri:,} triangles, above the limit of {limits.max_faces:,}.")
    if 3 * n_tri > limits.max_vertices:
        raise MeshFileError(
            f"{path.name} stores {3 * n_tri:,} vertices (3 per triangle), above the limit of {limits.max_vertices:,}."
        )
    face_normals = None
    if encoding == "binary":
        record = np.dtype([("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
        table = np.fromfile(path, dtype=record, count=n_tri, offset=84)
        verts = table["corners"].reshape(-1, 3)
        face_normals = table["normal"]
        loader = "mesh_io binary STL reader (numpy; corners unshared as stored)"
    else:
        import trimesh

        mesh = trimesh.load(str(path), file_type="stl", process=False, force="mesh")
        verts = np.asarray(mesh.vertices, dtype=np.float32)
        loader = f"trimesh {trimesh.__version__} (ASCII STL, corners unshared as stored)"
    faces = np.arange(verts.shape[0], dtype=np.int64).reshape(-1, 3)
    elements = [
        {
            "name": "facet",
            "count": int(faces.shape[0]),
            "properties": [["normal", "float32 x3"], ["vertex1", "float32 x3"], ["vertex2", "float32 x3"],
                           ["vertex3", "float32 x3"]] + ([["attribute", "uint16"]] if encoding == "binary" else []),
        }
    ]  # fmt: skip
    return LoadedAsset(
        path=path,
        format="stl",
        encoding=encoding,
        header=cap_text(header),
        verts=verts,
        faces=faces,
        elements=elements,
        face_normals=face_normals,
        loader=loader,
    )
