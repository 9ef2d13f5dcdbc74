"""Loading of pipelines.files on the bundled and synthetic files: one reader per format, and cross-checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assets import make_assets
from pipelines.files import obj, ply, types
from pipelines.files.cross_check import cross_check
from pipelines.files.loader import load_asset
from pipelines.files.stats import geometry_stats
from pipelines.files.types import LoadedAsset

# ----------------------------------------------------------------------------------------------------------------
# Bundled samples, one per format
# ----------------------------------------------------------------------------------------------------------------


def test_committed_assets_are_reproducible_and_small(samples: Path) -> None:
    """The committed samples hold what make_assets writes today, and stay small.

    Files that make_assets writes itself, byte by byte, must match byte for byte. Files that a library encodes (the
    PNG through Pillow, the GLB through trimesh) are compared by what they decode to, since a new release of the
    encoder may lay the same content out in other bytes; a change of geometry, uvs, pixels or material still fails.
    """
    import trimesh
    from PIL import Image

    def decoded(path: Path) -> dict[str, object]:
        if path.suffix == ".png":
            with Image.open(path) as im:
                return {"mode": im.mode, "pixels": np.asarray(im)}
        mesh = trimesh.load(path, force="mesh", process=False)
        mat = mesh.visual.material
        texture = mat.baseColorTexture
        return {
            "verts": mesh.vertices,  # (V, 3) float
            "faces": mesh.faces,  # (F, 3) int
            "uv": mesh.visual.uv,  # (V, 2) float
            "texture": (texture.mode, np.asarray(texture)),
            "material": (mat.name, mat.baseColorFactor, mat.metallicFactor, mat.roughnessFactor, mat.doubleSided),
        }

    committed = make_assets.ASSETS_DIR
    fresh = sorted(p.name for p in samples.iterdir())
    assert fresh, "make_all wrote nothing"
    total = 0
    for name in fresh:
        assert (committed / name).is_file(), f"{name} is not committed: run python -m assets.make_assets"
        if Path(name).suffix in (".png", ".glb"):
            want, got = decoded(committed / name), decoded(samples / name)
            assert want.keys() == got.keys(), name
            for key, value in want.items():
                if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                    # float32 uvs and positions may move by an ulp when numpy's maths changes
                    np.testing.assert_allclose(got[key], value, rtol=0, atol=1e-6, err_msg=f"{name}: {key}")
                else:
                    np.testing.assert_equal(got[key], value, err_msg=f"{name}: {key} differs from make_assets")
        else:
            assert (committed / name).read_bytes() == (samples / name).read_bytes(), f"{name} differs from make_assets"
        total += (committed / name).stat().st_size
    assert total < 300_000


def test_textured_cube_obj(samples: Path) -> None:
    a = load_asset(samples / "textured_cube.obj")
    assert (a.format, a.encoding, a.num_vertices, a.num_faces) == ("obj", "ascii", 8, 12)
    assert a.loader == "pytorch3d.io.load_obj"
    assert a.uvs.shape == (4, 2) and a.face_uvs.shape == (12, 3)
    assert a.texture is not None and a.texture.size == (128, 128) and a.texture_name == "textured_cube.png"
    mat = a.materials[0]
    assert mat["name"] == "checker" and mat["Kd"] == [1, 1, 1] and mat["Ks"] == [0.3, 0.3, 0.3] and mat["Ns"] == 32
    assert mat["map_Kd"] == "textured_cube.png" and mat["texture_size"] == [128, 128]
    assert a.normals.shape == (8, 3) and np.allclose(np.linalg.norm(a.normals, axis=1), 1, atol=1e-5)
    assert (a.face_materials == 0).all()
    assert "mtllib textured_cube.mtl" in a.header and "newmtl checker" in a.header
    assert not a.warnings
    stats = geometry_stats(a)
    assert stats["has_texture"] and stats["has_uvs"] and stats["has_normals"]
    check = cross_check(a)
    assert check["agree"] is True, check


def test_obj_quads_negative_indices_two_materials(samples: Path) -> None:
    a = load_asset(samples / "two_materials.obj")
    assert (a.num_vertices, a.num_faces) == (13, 18)
    assert [m["name"] for m in a.materials] == ["red", "blue"]
    assert a.materials[0]["Kd"] == [0.8, 0.1, 0.1] and a.materials[1]["d"] == pytest.approx(0.75)  # Tr 0.25
    assert np.bincount(a.face_materials).tolist() == [8, 10]
    assert (a.faces[12:] >= 8).all(), "pyramid indices are relative to the vertices written before them"
    names = {e["name"]: e for e in a.elements}
    assert names["g/o"]["names"] == ["cube", "pyramid"] and names["f"]["count"] == 11
    stats = geometry_stats(a)
    assert stats["components"] == 2 and stats["watertight"] and stats["euler_characteristic"] == 4
    assert stats["volume"] == pytest.approx(1 + 1 / 3, rel=1e-5)
    assert cross_check(a)["agree"] is True


OBJ_FORMS = """mtllib missing.mtl
o forms
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 0.5 1.5 0
vt 0 0
vt 1 0
vt 1 1
vt 0 1
vn 0 0 1
g plain
f 1 2 3
g slash
f 1/1 3/3 4/4
g double
f 1//1 2//1 3//1
g triple
f 1/1/1 2/2/1 3/3/1
g negative
f -5/-4/-1 -4/-3/-1 -3/-2/-1 -2/-1/-1
g pentagon
f 1 2 3 5 4
"""


def test_obj_all_index_forms(tmp_path: Path) -> None:
    path = tmp_path / "forms.obj"
    path.write_text(OBJ_FORMS)
    a = load_asset(path)
    assert a.num_vertices == 5 and a.num_faces == 1 + 1 + 1 + 1 + 2 + 3
    assert a.faces[:4].tolist() == [[0, 1, 2], [0, 2, 3], [0, 1, 2], [0, 1, 2]]
    assert a.faces[4:6].tolist() == [[0, 1, 2], [0, 2, 3]]  # quad with negative indices, fanned
    assert a.faces[6:].tolist() == [[0, 1, 2], [0, 2, 4], [0, 4, 3]]
    assert a.face_uvs[1].tolist() == [0, 2, 3] and a.face_uvs[2].tolist() == [-1, -1, -1]
    assert any("missing.mtl" in w and "not found" in w for w in a.warnings)
    assert {e["name"]: e for e in a.elements}["g/o"]["count"] == 7


def test_obj_interleaved_negative_indices_follow_the_spec(tmp_path: Path) -> None:
    relative = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf -3 -2 -1\nv 5 0 0\nv 6 0 0\nv 5 1 0\nf -3 -2 -1\n"
    absolute = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nv 5 0 0\nv 6 0 0\nv 5 1 0\nf 4 5 6\n"
    (tmp_path / "rel.obj").write_text(relative)
    (tmp_path / "abs.obj").write_text(absolute)
    a, b = load_asset(tmp_path / "rel.obj"), load_asset(tmp_path / "abs.obj")
    assert a.faces.tolist() == b.faces.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert "relative" in a.loader and b.loader == "pytorch3d.io.load_obj"
    assert load_asset(tmp_path / "rel.obj").faces.tolist() == [[0, 1, 2], [3, 4, 5]]


def _same_asset(a: LoadedAsset, b: LoadedAsset) -> None:
    assert np.array_equal(a.verts, b.verts) and np.array_equal(a.faces, b.faces)
    for attr in ("face_uvs", "face_materials", "uvs", "normals", "colors"):
        x, y = getattr(a, attr), getattr(b, attr)
        assert (x is None) == (y is None), attr
        if x is not None:
            assert np.allclose(x, y), attr


def test_vectorised_obj_reader_matches_pytorch3d(samples: Path, tmp_path: Path, monkeypatch) -> None:
    textured_neg = (
        "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nusemtl a\nf -4/-3 -3/-2 -2/-1\n"
        "usemtl b\nf -4/-3 -2/-1 -1/-1\nusemtl a\nf 1/1 2/2 4/3\n"
    )
    (tmp_path / "neg.obj").write_text(textured_neg)
    files = [samples / "textured_cube.obj", tmp_path / "neg.obj"]
    files.append(make_assets.make_mesh_file(tmp_path / "tri.obj", 500, "obj"))
    reference = [load_asset(p) for p in files]
    assert all(r.loader == "pytorch3d.io.load_obj" for r in reference)
    monkeypatch.setattr(types, "PYTORCH3D_MAX_FACES", 0)
    for path, ref in zip(files, reference, strict=True):
        fast = load_asset(path)
        assert fast.loader.startswith("mesh_io vectorised"), fast.loader
        _same_asset(fast, ref)
    (tmp_path / "forms.obj").write_text(OBJ_FORMS)  # mixed corner forms: not vectorisable, PyTorch3D reads it
    assert load_asset(tmp_path / "forms.obj").loader == "pytorch3d.io.load_obj"


def test_vectorised_obj_matches_the_python_reference_on_relative_indices(tmp_path: Path, monkeypatch) -> None:
    part = "v {x} 0 0\nv {y} 0 0\nv {x} 1 0\nvn 0 0 {z}\nusemtl {m}\nf -3/-3/-1 -2/-2/-1 -1/-1/-1\n"
    text = "vt 0 0\nvt 1 0\nvt 0 1\n" + part.format(x=0, y=1, z=1, m="a") + part.format(x=5, y=6, z=-1, m="b")
    (tmp_path / "rel.obj").write_text(text)
    fast = load_asset(tmp_path / "rel.obj")
    assert fast.loader.startswith("mesh_io vectorised") and fast.faces.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert fast.face_materials.tolist() == [0, 1] and np.allclose(fast.normals[3:], [0, 0, -1])
    monkeypatch.setattr(obj, "_parse_obj_vectorised", lambda data, scan: None)
    slow = load_asset(tmp_path / "rel.obj")
    assert "relative" in slow.loader and not slow.loader.startswith("mesh_io vectorised")
    _same_asset(fast, slow)


def test_obj_vertex_colours_and_tabs(tmp_path: Path) -> None:
    path = tmp_path / "c.obj"
    path.write_text("v\t0 0 0 255 0 0\nv 1 0 0 0 255 0\nv 0 1 0 0 0 255\nf\t1 2 3\n")
    a = load_asset(path)
    assert a.num_faces == 1 and np.allclose(a.colors, np.eye(3))


def test_binary_little_endian_ply(samples: Path) -> None:
    import trimesh

    a = load_asset(samples / "torus_binary.ply")
    assert (a.format, a.encoding, a.num_vertices, a.num_faces) == ("ply", "binary_little_endian", 1024, 2048)
    assert a.loader == "pytorch3d.io.IO().load_mesh"
    ref = trimesh.load(samples / "torus_binary.ply", process=False)
    assert np.allclose(a.verts, ref.vertices) and np.array_equal(np.sort(a.faces, 0), np.sort(ref.faces, 0))
    assert a.normals.shape == (1024, 3) and a.colors.shape == (1024, 3)
    assert np.allclose(a.colors * 255, ref.visual.vertex_colors[:, :3], atol=0.5)
    props = a.elements[0]["properties"]
    assert ["red", "uchar"] in props and a.elements[1] == {
        "name": "face",
        "count": 2048,
        "properties": [["vertex_indices", "list uchar int"]],
    }
    assert "format binary_little_endian 1.0" in a.header and a.header.rstrip().endswith("end_header")
    stats = geometry_stats(a)
    assert stats["watertight"] and stats["euler_characteristic"] == 0 and stats["components"] == 1
    assert stats["surface_area"] == pytest.approx(ref.area, rel=1e-5)
    assert stats["volume"] == pytest.approx(abs(ref.volume), rel=1e-5)


def test_big_endian_ply_with_polygons_and_extra_element(samples: Path) -> None:
    a = load_asset(samples / "cylinder_be.ply")
    assert (a.encoding, a.num_vertices, a.num_faces) == ("binary_big_endian", 48, 24 * 2 + 2 * 22)
    assert {e["name"]: e["count"] for e in a.elements} == {"vertex": 48, "face": 26, "edge": 24}
    stats = geometry_stats(a)
    assert stats["watertight"] and stats["euler_characteristic"] == 2 and stats["winding_consistent"]
    check = cross_check(a)
    assert check["agree"] is True and check["num_faces"] == 92, check


def test_point_cloud_ascii_ply(samples: Path) -> None:
    a = load_asset(samples / "points_colored.ply")
    assert (a.encoding, a.num_vertices, a.num_faces, a.is_point_cloud) == ("ascii", 600, 0, True)
    assert a.loader == "pytorch3d.io.IO().load_pointcloud"
    assert a.colors.shape == (600, 4) and a.normals.shape == (600, 3)
    assert np.allclose(a.colors[a.verts[:, 2] < -0.5, 3], 128 / 255) and np.allclose(a.colors[a.verts[:, 2] > 0, 3], 1)
    assert not a.warnings  # a PLY without faces is a normal point cloud
    stats = geometry_stats(a)
    assert stats["is_point_cloud"] and stats["num_edges"] == 0 and stats["has_colors"]
    assert cross_check(a)["agree"] is True


def _force_own_ply_reader(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise ValueError("disabled for the test")

    monkeypatch.setattr(ply, "_ply_pytorch3d", refuse)


@pytest.mark.parametrize("fmt", ["ply", "ply_ascii", "ply_be"])
def test_vectorised_ply_reader_matches_pytorch3d(tmp_path: Path, monkeypatch, fmt: str) -> None:
    path = make_assets.make_mesh_file(tmp_path / "m.ply", 3000, fmt)
    a = load_asset(path)
    assert a.loader.startswith("pytorch3d")
    _force_own_ply_reader(monkeypatch)
    b = load_asset(path)
    assert b.loader.startswith("mesh_io PLY reader")
    assert np.array_equal(a.verts, b.verts) and np.array_equal(a.faces, b.faces)


def test_ply_property_variants(tmp_path: Path) -> None:
    """Float colours with alpha, u/v, face colours, MeshLab wedge texcoords, an extra element: all read."""
    head = (
        "ply\nformat ascii 1.0\ncomment TextureFile tex.png\nelement vertex 4\nproperty double x\nproperty double y\n"
        "property double z\nproperty float r\nproperty float g\nproperty float b\nproperty float alpha\n"
        "property float u\nproperty float v\nelement face 2\nproperty list uchar int vertex_indices\n"
        "property list uchar float texcoord\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
        "element material 1\nproperty float shininess\nend_header\n"
    )
    body = (
        "0 0 0 1 0 0 1 0 0\n1 0 0 0 1 0 1 1 0\n1 1 0 0 0 1 0.5 1 1\n0 1 0 1 1 1 1 0 1\n"
        "3 0 1 2 6 0 0 1 0 1 1 255 0 0\n3 0 2 3 6 0 0 1 1 0 1 0 0 255\n7\n"
    )
    (tmp_path / "v.ply").write_text(head + body)
    make_assets.checker_texture(16, 2).save(tmp_path / "tex.png")
    a = load_asset(tmp_path / "v.ply")
    assert (a.num_vertices, a.num_faces) == (4, 2)
    assert a.colors.shape == (4, 4) and a.colors[2, 3] == pytest.approx(0.5)
    assert np.allclose(a.face_colors[:, :3], [[1, 0, 0], [0, 0, 1]])
    assert a.face_uvs.shape == (2, 3) and np.allclose(a.uvs[a.face_uvs[1]], [[0, 0], [1, 1], [0, 1]])
    assert a.texture is not None and a.texture.size == (16, 16)
    assert {e["name"] for e in a.elements} == {"vertex", "face", "material"}


def test_ply_crlf_and_irregular_spacing(tmp_path: Path) -> None:
    text = (
        "ply\r\nformat  ascii 1.0\r\nelement vertex 3\r\nproperty float  x\r\nproperty float y\r\nproperty float z\r\n"
    )
    text += (
        "element face 1\r\nproperty list uchar int vertex_index\r\nend_header\r\n0 0 0\r\n1 0 0\r\n0 1 0\r\n3 0 1 2\r\n"
    )
    (tmp_path / "crlf.ply").write_text(text, newline="")
    a = load_asset(tmp_path / "crlf.ply")
    assert (a.num_vertices, a.num_faces) == (3, 1)


def test_stl_binary_and_ascii(samples: Path, tmp_path: Path) -> None:
    a = load_asset(samples / "icosphere.stl")
    assert (a.encoding, a.num_vertices, a.num_faces) == ("binary", 960, 320)
    assert a.face_normals.shape == (320, 3)
    stats = geometry_stats(a)
    assert stats["duplicate_vertices"] == 960 - 162 and stats["watertight"] and stats["euler_characteristic"] == 2
    assert cross_check(a)["agree"] is True
    ascii_stl = "solid t\n" + "".join(
        f"facet normal 0 0 1\nouter loop\nvertex {x} 0 0\nvertex {x + 1} 0 0\nvertex {x} 1 0\nendloop\nendfacet\n"
        for x in range(3)
    )
    (tmp_path / "a.stl").write_text(ascii_stl + "endsolid t\n")
    b = load_asset(tmp_path / "a.stl")
    assert (b.encoding, b.num_vertices, b.num_faces) == ("ascii", 9, 3)
    check = cross_check(b)
    assert check["num_faces"] == 3 and check["agree"] is not None


def test_off_plain_coloured_and_polygons(samples: Path, tmp_path: Path) -> None:
    a = load_asset(samples / "octahedron.off")
    assert (a.num_vertices, a.num_faces, a.loader) == (6, 8, "pytorch3d.io.IO().load_mesh")
    assert a.colors.shape == (6, 3) and a.colors.max() <= 1
    assert geometry_stats(a)["volume"] == pytest.approx(4 / 3)
    (tmp_path / "poly.off").write_text("COFF\n5 2 0\n0 0 0 255 0 0 255\n1 0 0 0 255 0 255\n1 1 0 0 0 255 255\n"
                                       "0 1 0 9 9 9 255\n2 2 2 9 9 9 255\n4 0 1 2 3 1 0 0\n3 1 2 4 0 1 0\n")  # fmt: skip
    b = load_asset(tmp_path / "poly.off")
    assert (b.num_vertices, b.num_faces) == (5, 3) and b.colors.shape == (5, 4)
    assert np.allclose(b.face_colors, [[1, 0, 0], [1, 0, 0], [0, 1, 0]])
    assert cross_check(b)["num_faces"] == 3


def test_glb_textured(samples: Path) -> None:
    a = load_asset(samples / "textured_sphere.glb")
    assert (a.format, a.encoding, a.num_vertices, a.num_faces) == ("glb", "binary", 642, 1280)
    assert a.texture is not None and a.texture.size == (64, 64) and a.uvs.shape == (642, 2)
    assert a.materials[0]["name"] == "checker" and '"accessors"' in a.header
    assert a.elements[0]["count"] == 642 and a.elements[0]["mode"] == "triangles"
    check = cross_check(a)
    assert check["agree"] is True and check["reader"].startswith("pytorch3d"), check


def test_gltf_with_external_buffer(tmp_path: Path) -> None:
    import trimesh

    verts, faces = make_assets.icosphere(1)
    files = trimesh.exchange.gltf.export_gltf(trimesh.Scene(trimesh.Trimesh(verts, faces, process=False)))
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    a = load_asset(tmp_path / "model.gltf")
    assert (a.format, a.encoding, a.num_vertices, a.num_faces) == ("gltf", "json", 42, 80)
    check = cross_check(a)
    assert check["agree"] is True and "JSON" in check["reader"]


@pytest.mark.parametrize("fmt", make_assets.MESH_FORMATS)
def test_synthetic_files_in_every_format(tmp_path: Path, fmt: str) -> None:
    ext = fmt.split("_")[0]
    path = make_assets.make_mesh_file(tmp_path / f"m.{ext}", 1000, fmt)
    a = load_asset(path)
    assert a.num_faces == 1000
    stored = 3000 if fmt == "stl" else len(make_assets.synthetic_mesh(1000)[0])
    assert a.num_vertices == stored
    check = cross_check(a)
    assert check["agree"] is True, check
