"""Batches: list / padded / packed shapes, index maps and faces_packed offsets for known meshes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pytorch3d.structures import Meshes

from pipelines.render.batches import as_meshes, batch_figure, batch_report, demo_batch


def _three_meshes() -> list[tuple[np.ndarray, np.ndarray]]:
    """Known sizes: (V, F) = (4, 2), (3, 1), (6, 4)."""
    rng = np.random.default_rng(0)
    quad = (rng.normal(size=(4, 3)), np.array([[0, 1, 2], [0, 2, 3]]))
    tri = (rng.normal(size=(3, 3)), np.array([[2, 1, 0]]))
    fan = (rng.normal(size=(6, 3)), np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 5]]))
    return [quad, tri, fan]


def test_report_shapes_and_index_maps() -> None:
    r = batch_report(_three_meshes())
    json.dumps(r, allow_nan=False)
    assert r["num_meshes"] == 3
    assert r["list"]["verts_list_shapes"] == [[4, 3], [3, 3], [6, 3]]
    assert r["list"]["faces_list_shapes"] == [[2, 3], [1, 3], [4, 3]]
    assert r["padded"]["verts_padded_shape"] == [3, 6, 3]
    assert r["padded"]["faces_padded_shape"] == [3, 4, 3]
    assert r["padded"]["verts_real_rows"] == 13 and r["padded"]["verts_padding_rows"] == 18 - 13
    assert r["padded"]["faces_real_rows"] == 7 and r["padded"]["faces_padding_rows"] == 12 - 7
    assert r["packed"]["verts_packed_shape"] == [13, 3]
    assert r["packed"]["faces_packed_shape"] == [7, 3]
    maps = r["index_maps"]
    assert maps["num_verts_per_mesh"] == [4, 3, 6]
    assert maps["num_faces_per_mesh"] == [2, 1, 4]
    assert maps["mesh_to_verts_packed_first_idx"] == [0, 4, 7]
    assert maps["mesh_to_faces_packed_first_idx"] == [0, 2, 3]
    assert maps["verts_packed_to_mesh_idx"]["runs"] == [
        {"mesh": 0, "start": 0, "stop": 4, "length": 4},
        {"mesh": 1, "start": 4, "stop": 7, "length": 3},
        {"mesh": 2, "start": 7, "stop": 13, "length": 6},
    ]
    assert maps["verts_packed_to_mesh_idx"]["first"] == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2]
    assert maps["faces_packed_to_mesh_idx"]["first"] == [0, 0, 1, 2, 2, 2, 2]
    # flat padded rows of each mesh: mesh i starts at i * V_max = 6 i
    assert maps["verts_padded_to_packed_idx"]["first"] == [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 16]
    assert [m["verts_padding_rows"] for m in r["per_mesh"]] == [2, 3, 0]
    assert all(r["checks"].values())


def test_faces_packed_offsets() -> None:
    r = batch_report(_three_meshes())
    per = r["faces_packed_offsets"]["per_mesh"]
    assert [p["offset"] for p in per] == [0, 4, 7]
    assert per[1]["faces_list_row0"] == [2, 1, 0] and per[1]["faces_packed_row0"] == [6, 5, 4]
    assert per[2]["faces_list_row0"] == [0, 1, 2] and per[2]["faces_packed_row0"] == [7, 8, 9]
    # The same by hand against PyTorch3D's tensors.
    meshes = _three_meshes()
    m = as_meshes(meshes)
    expected = np.concatenate([f + off for (_, f), off in zip(meshes, [0, 4, 7], strict=True)])
    np.testing.assert_array_equal(m.faces_packed().numpy(), expected)
    padded = m.faces_padded().numpy()
    assert (padded[1, 1:] == -1).all() and (padded[0, 2:] == -1).all()


def test_meshes_and_list_give_the_same_report() -> None:
    meshes = _three_meshes()
    m = Meshes(
        verts=[torch.tensor(v, dtype=torch.float32) for v, _ in meshes],
        faces=[torch.tensor(f) for _, f in meshes],
    )
    assert batch_report(m) == batch_report(meshes)


def test_demo_batch() -> None:
    m = demo_batch()
    assert m.num_verts_per_mesh().tolist() == [8, 42, 128]
    assert m.num_faces_per_mesh().tolist() == [12, 80, 256]
    # Cube triangles face outwards: normal . (face centre - cube centre) > 0.
    cube_v, cube_f = m.verts_list()[0], m.faces_list()[0]
    tri = cube_v[cube_f]  # (12, 3, 3)
    normal = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert ((normal * (tri.mean(1) - cube_v.mean(0))).sum(1) > 0).all()
    assert all(batch_report(m)["checks"].values())


def test_batch_figure_marks_padding() -> None:
    fig = batch_figure(_three_meshes())
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 4
    verts_padded, faces_padded, verts_packed, faces_packed = heat[0], heat[2], heat[1], heat[3]
    assert np.isnan(np.array(verts_padded.z, dtype=float)).sum() == 5  # padding rows
    assert np.isnan(np.array(faces_padded.z, dtype=float)).sum() == 5
    np.testing.assert_array_equal(np.array(verts_packed.z)[0], [0] * 4 + [1] * 3 + [2] * 6)
    np.testing.assert_array_equal(np.array(faces_packed.z)[0], [0] * 2 + [1] + [2] * 4)


def test_batch_figure_samples_long_tensors() -> None:
    big = (np.random.default_rng(1).normal(size=(5000, 3)), np.zeros((0, 3), dtype=np.int64))
    fig = batch_figure([big, _three_meshes()[0]])
    assert all(len(t.x) <= 1500 for t in fig.data if t.type == "heatmap")


@pytest.mark.parametrize(
    ("meshes", "match"),
    [
        ([], "empty"),
        ([(np.zeros((3, 3)), np.array([[0, 1, 3]]))], "indices"),
        ([(np.zeros((3, 3)), np.array([[0, 1, -1]]))], "indices"),
        ([(np.full((3, 3), np.nan), np.array([[0, 1, 2]]))], "NaN"),
        ([(np.zeros((3, 2)), np.array([[0, 1, 2]]))], "vertices"),
        ([(np.zeros((3, 3)), np.array([[0.0, 1.0, 2.0]]))], "integer"),
        ([np.zeros((3, 3))], "pair"),
    ],
)
def test_bad_batches_are_refused(meshes: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        batch_report(meshes)
