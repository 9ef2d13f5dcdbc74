"""Geometry statistics, exports, conversions, the Plotly view and upload staging of pipelines.files."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from assets import make_assets
from pipelines.files.convert import sample_points, to_pytorch3d
from pipelines.files.export import export_glb, export_obj_zip, export_ply, export_points_ply
from pipelines.files.loader import load_asset
from pipelines.files.plotly_view import plotly_figure
from pipelines.files.stats import geometry_stats
from pipelines.files.types import Limits
from pipelines.files.upload import stage_upload
from tests.files.conftest import mesh_asset, unit_cube

# ----------------------------------------------------------------------------------------------------------------
# Geometry statistics
# ----------------------------------------------------------------------------------------------------------------


def test_stats_unit_cube() -> None:
    s = geometry_stats(mesh_asset(*unit_cube()))
    assert s["surface_area"] == pytest.approx(6) and s["volume"] == pytest.approx(1)
    assert s["watertight"] and s["manifold"] and s["winding_consistent"]
    assert (s["num_edges"], s["euler_characteristic"], s["components"]) == (18, 2, 1)
    assert s["bbox_min"] == [0, 0, 0] and s["bbox_max"] == [1, 1, 1] and s["centroid"] == [0.5, 0.5, 0.5]
    assert s["degenerate_faces"] == s["duplicate_faces"] == s["duplicate_vertices"] == 0


def test_stats_duplicated_and_degenerate_faces() -> None:
    v, f = unit_cube()
    dup = geometry_stats(mesh_asset(v, np.vstack([f, f[:1]])))
    assert dup["duplicate_faces"] == 1 and not dup["watertight"] and not dup["manifold"]
    assert dup["non_manifold_edges"] == 3 and dup["volume"] is None
    degen = geometry_stats(mesh_asset(v, np.vstack([f, [[0, 0, 1]], [[0, 1, 1]]])))
    assert degen["degenerate_faces"] == 2 and degen["watertight"]  # repeated-index faces leave the topology
    flat = geometry_stats(mesh_asset(np.vstack([v, [[2, 0, 0], [3, 0, 0], [4, 0, 0]]]), np.vstack([f, [[8, 9, 10]]])))
    assert flat["degenerate_faces"] == 1 and flat["components"] == 2


def test_stats_two_disjoint_cubes_and_open_box() -> None:
    v, f = unit_cube()
    two = geometry_stats(mesh_asset(np.vstack([v, v + 3]), np.vstack([f, f + 8])))
    assert two["components"] == 2 and two["euler_characteristic"] == 4 and two["volume"] == pytest.approx(2)
    box = geometry_stats(mesh_asset(v, f[1:]))
    assert not box["watertight"] and box["manifold"] and box["boundary_edges"] == 3 and box["volume"] is None
    assert box["euler_characteristic"] == 1


def test_stats_weld_duplicate_positions() -> None:
    v, f = unit_cube()
    soup = geometry_stats(mesh_asset(v[f.ravel()], np.arange(36).reshape(12, 3)))  # STL-style corners
    assert soup["duplicate_vertices"] == 28 and soup["watertight"] and soup["euler_characteristic"] == 2


def test_stats_million_faces_is_fast() -> None:
    verts, faces = make_assets.synthetic_mesh(1_000_000)
    asset = mesh_asset(verts, faces)
    geometry_stats(mesh_asset(*unit_cube()))  # imports scipy outside the timing
    t0 = time.process_time()  # CPU time of this process: other jobs on a shared machine do not count
    s = geometry_stats(asset)
    elapsed = time.process_time() - t0
    assert s["num_faces"] == 1_000_000 and s["components"] == 1 and s["watertight"] is False  # cut-short torus
    assert elapsed < 3.0, f"geometry_stats used {elapsed:.2f} s of CPU for 1M faces (about 1 s is expected)"


# ----------------------------------------------------------------------------------------------------------------
# Exports, sampling, views
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["textured_cube.obj", "torus_binary.ply", "two_materials.obj", "textured_sphere.glb"])
def test_exports_round_trip(samples: Path, tmp_path: Path, name: str) -> None:
    a = load_asset(samples / name)
    for binary in (True, False):
        b = load_asset(export_ply(a, tmp_path / f"b{binary}.ply", binary=binary))
        assert (b.num_vertices, b.num_faces) == (a.num_vertices, a.num_faces)
        assert np.allclose(b.verts, a.verts) and np.array_equal(b.faces, a.faces)
        assert (b.texture is None) == (a.texture is None) and (b.colors is None) == (a.colors is None)
    z = export_obj_zip(a, tmp_path / "o.zip")
    main = stage_upload([z], tmp_path / "unzipped")
    c = load_asset(main)
    assert (c.num_vertices, c.num_faces) == (a.num_vertices, a.num_faces) and np.array_equal(c.faces, a.faces)
    assert (c.texture is None) == (a.texture is None)
    assert [m["name"] for m in c.materials][: len(a.materials)] == [m["name"] for m in a.materials]
    g = load_asset(export_glb(a, tmp_path / "m.glb"))
    assert g.num_faces == a.num_faces and (g.texture is None) == (a.texture is None)
    if a.face_uvs is None and a.face_materials is None:
        assert g.num_vertices == a.num_vertices


def test_point_cloud_exports(samples: Path, tmp_path: Path) -> None:
    a = load_asset(samples / "points_colored.ply")
    g = load_asset(export_glb(a, tmp_path / "p.glb"))
    assert (g.num_vertices, g.num_faces) == (6 * 600, 8 * 600) and g.colors is not None
    p = load_asset(export_glb(a, tmp_path / "pp.glb", points_as="points"))
    assert p.is_point_cloud and p.num_vertices == 600
    b = load_asset(export_ply(a, tmp_path / "p.ply", binary=True))
    assert b.is_point_cloud and np.allclose(b.colors, a.colors, atol=1 / 255)


def test_sample_points_on_sphere(tmp_path: Path) -> None:
    import torch

    verts, faces = make_assets.icosphere(3)
    asset = mesh_asset(verts, faces)
    state = torch.random.get_rng_state()
    pts, nrm = sample_points(asset, 5000, seed=3)
    assert torch.equal(state, torch.random.get_rng_state()), "sampling must not move the global RNG"
    assert pts.shape == nrm.shape == (5000, 3) and pts.dtype == np.float32
    assert np.abs(np.linalg.norm(pts, axis=1) - 1).max() < 0.01
    assert np.allclose(np.linalg.norm(nrm, axis=1), 1, atol=1e-4)
    assert np.einsum("ij,ij->i", pts, nrm).min() > 0.9  # outward normals
    again, _ = sample_points(asset, 5000, seed=3)
    assert np.array_equal(pts, again)
    out = export_points_ply(pts, nrm, None, tmp_path / "s.ply")
    cloud = load_asset(out)
    assert cloud.is_point_cloud and cloud.num_vertices == 5000 and cloud.normals is not None


def test_to_pytorch3d(samples: Path) -> None:
    from pytorch3d.renderer import TexturesUV
    from pytorch3d.structures import Pointclouds

    cube = to_pytorch3d(load_asset(samples / "textured_cube.obj"))
    assert isinstance(cube.textures, TexturesUV) and cube.faces_packed().shape == (12, 3)
    assert cube.textures.maps_padded().shape == (1, 128, 128, 3)
    cloud = to_pytorch3d(load_asset(samples / "points_colored.ply"))
    assert isinstance(cloud, Pointclouds) and cloud.features_packed().shape == (600, 3)


def test_plotly_figure(samples: Path) -> None:
    mesh = load_asset(samples / "torus_binary.ply")
    fig = plotly_figure(mesh, max_faces=500, wireframe=True, show_axes=False)
    assert [t.type for t in fig.data] == ["mesh3d", "scatter3d"]
    assert len(fig.data[0].i) == 500 and "500 of 2,048" in fig.layout.title.text
    assert fig.layout.scene.aspectmode == "data" and fig.layout.scene.xaxis.visible is False
    assert len(fig.data[0].vertexcolor) == len(fig.data[0].x)
    cube = plotly_figure(load_asset(samples / "textured_cube.obj"))
    assert len(cube.data[0].facecolor) == 12  # texture sampled per face (corner uvs)
    cloud = plotly_figure(load_asset(samples / "points_colored.ply"), point_size=4)
    assert cloud.data[0].type == "scatter3d" and cloud.data[0].marker.size == 4 and len(cloud.data[0].x) == 600


# ----------------------------------------------------------------------------------------------------------------
# Upload staging
# ----------------------------------------------------------------------------------------------------------------


def test_stage_obj_with_mtl_and_texture(samples: Path, tmp_path: Path) -> None:
    files = [samples / n for n in ("textured_cube.png", "textured_cube.mtl", "textured_cube.obj", "icosphere.stl")]
    main = stage_upload(files, tmp_path / "up", Limits())
    assert main.name == "textured_cube.obj"
    a = load_asset(main)
    assert a.texture is not None and any("2 3D files" in w and "icosphere.stl" in w for w in a.warnings)


def test_stage_zip_with_folders(samples: Path, tmp_path: Path) -> None:
    obj = (samples / "textured_cube.obj").read_text().replace("mtllib textured_cube.mtl", "mtllib mat/cube.mtl")
    mtl = (samples / "textured_cube.mtl").read_text().replace("map_Kd textured_cube.png", "map_Kd ../tex/cube.png")
    z = tmp_path / "bundle.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("model/cube.obj", obj)
        zf.writestr("model/mat/cube.mtl", mtl)
        zf.writestr("model/tex/cube.png", (samples / "textured_cube.png").read_bytes())
        zf.writestr("__MACOSX/model/._cube.obj", b"junk")
    main = stage_upload([z], tmp_path / "up")
    assert main.relative_to(tmp_path / "up").as_posix() == "model/cube.obj"
    assert not (tmp_path / "up" / "__MACOSX").exists()
    a = load_asset(main)
    # the MTL sits in model/mat/ and its texture in model/tex/: both inside the staged upload, so both are used
    assert a.materials[0]["name"] == "checker" and a.texture is not None and a.texture_name == "cube.png"
    outside = load_asset(main, root=main.parent / "mat")  # a root that excludes the file: falls back
    assert outside.texture is not None
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "cube.obj").write_text(obj)  # not staged: references must stay in the OBJ's own folder
    alone = load_asset(lone / "cube.obj")
    assert alone.materials == [{"name": "checker"}] and any("mat/cube.mtl" in w for w in alone.warnings)
