"""The ShapeNet protocol's numbers against hand-computed cases, and voxel IoU."""

from __future__ import annotations

import pytest
import torch
from pytorch3d.utils import ico_sphere

from pipelines.meshrcnn import evaluate
from pipelines.meshrcnn.losses import mesh_losses
from pipelines.render.procedural import sample_surface
from pipelines.train.metrics import chamfer_distance, f1_score


def test_f1_and_chamfer_by_hand():
    gt = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]])
    pred = torch.tensor([[0.0, 0, 0.2], [1, 0, 0.4], [5, 0, 0]])
    # pred -> gt: 0.2, 0.4, 2.0 ; gt -> pred: 0.2, 0.4, 1.0 (point 2 is nearer pred[1] at sqrt(1+0.16)), 2.0
    f1, precision, recall = f1_score(pred, gt, 0.3)
    assert float(precision) == pytest.approx(1 / 3) and float(recall) == pytest.approx(1 / 4)
    assert float(f1) == pytest.approx(2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4))
    cham = chamfer_distance(pred, gt)
    expected = (0.04 + 0.16 + 4.0) / 3 + (0.04 + 0.16 + 1.16 + 4.0) / 4
    assert float(cham) == pytest.approx(expected, rel=1e-5)


def test_protocol_scale_and_voxel_iou():
    gt = torch.tensor([[[0.0, 0, 0], [2, 1, 0.5]]])
    assert float(evaluate.protocol_scale(gt)) == pytest.approx(5.0)
    logits = torch.full((1, 2, 2, 2), -5.0)
    logits[0, 0] = 5.0  # 4 of 8 voxels predicted
    truth = torch.zeros(1, 2, 2, 2)
    truth[0, 0, 0] = 1  # 2 of those are true
    assert float(evaluate.voxel_iou(logits, truth, 0.2)) == pytest.approx(0.5)


def test_mesh_losses_are_small_on_the_truth():
    mesh = ico_sphere(2)
    g = torch.Generator().manual_seed(0)
    pts, nrm = sample_surface(mesh.verts_packed(), mesh.faces_packed(), 4000, g)
    right = mesh_losses([mesh], pts[None], nrm[None], n_samples=2000, with_normals=True)
    moved = mesh_losses([mesh.offset_verts(torch.tensor([0.3, 0.0, 0.0]))], pts[None], nrm[None], 2000, True)
    assert float(right["chamfer"]) < 0.1 * float(moved["chamfer"])
    assert float(right["normal"]) < 0.05 < float(moved["normal"])
    assert float(right["edge"]) == pytest.approx(float(moved["edge"]))
