"""Procedural objects, the camera-aligned frames, voxels against masks, and cubify of known grids."""

from __future__ import annotations

import pytest
import torch
from pytorch3d.ops import cubify

from pipelines.meshrcnn import data, frame
from pipelines.meshrcnn.objects import CATEGORIES, make_object, part_mesh


def test_frames_round_trip():
    pts = torch.tensor([[0.1, -0.2, -1.3], [-0.3, 0.25, -1.8], [0.0, 0.0, -0.9]])
    assert torch.allclose(frame.unproject(frame.project(pts)), pts, atol=1e-5)
    vox = frame.camera_to_voxel(pts, data.STUDIO_ZRANGE)
    assert torch.allclose(frame.voxel_to_camera(vox, data.STUDIO_ZRANGE), pts, atol=1e-5)
    # x right and y up in the camera frame stay right and (after the flip) down the image in voxel space
    assert vox[0, 0] > 0 and vox[0, 1] > 0


def test_objects_are_normalised_and_seeded():
    for shape_id in range(16):
        category, parts = make_object(shape_id)
        assert category in CATEGORIES
        verts = torch.cat([part_mesh(p)[0] for p in parts])
        half_diag = float((verts.amax(0) - verts.amin(0)).norm() / 2)
        assert half_diag == pytest.approx(0.5, abs=1e-4)
    assert make_object(3) == make_object(3)
    assert make_object(data.HELD_OUT_OFFSET + 3) != make_object(3)


def test_voxels_match_the_rendered_mask():
    samples = [data.make_sample(i) for i in range(6)]
    _, masks = data.render(samples, 48, torch.device("cpu"))
    vox = torch.stack([s.voxels(24, data.STUDIO_ZRANGE) for s in samples]).float()
    silhouette = vox.amax(1) > 0  # (N, y, x)
    small = torch.nn.functional.interpolate(masks.float()[:, None], size=24, mode="area")[:, 0] > 0.5
    iou = (silhouette & small).sum() / (silhouette | small).sum()
    assert iou > 0.75
    pts, nrm = samples[0].points(500)
    assert pts.shape == (500, 3) and torch.allclose(nrm.norm(dim=1), torch.ones(500), atol=1e-4)
    assert float(pts[:, 2].max()) < 0  # in front of the camera (looking down -Z)


def test_cubify_of_a_known_grid_is_watertight():
    grid = torch.zeros(1, 4, 4, 4)
    grid[0, 1:3, 1:3, 1:3] = 1  # a 2x2x2 block: a cube of 3x3x3 lattice points on its surface
    mesh = cubify(grid, 0.5, align="center")
    assert mesh.num_verts_per_mesh().item() == 26  # 27 lattice points minus the hidden centre
    assert mesh.num_faces_per_mesh().item() == 6 * 4 * 2  # 6 sides of 2x2 squares, 2 triangles each
    edges = mesh.faces_packed()[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2).sort(dim=1).values
    _, counts = torch.unique(edges, dim=0, return_counts=True)
    assert bool((counts == 2).all())  # every edge shared by exactly two faces: closed
    # two separate voxels share nothing
    grid2 = torch.zeros(1, 4, 4, 4)
    grid2[0, 0, 0, 0] = grid2[0, 3, 3, 3] = 1
    mesh2 = cubify(grid2, 0.5, align="center")
    assert mesh2.num_verts_per_mesh().item() == 16 and mesh2.num_faces_per_mesh().item() == 24
