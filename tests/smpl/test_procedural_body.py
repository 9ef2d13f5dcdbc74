"""The procedural body: a closed, plausible, rigged body, and `assets/procedural_body.npz` is exactly what the
builder makes today (so the committed asset and the code cannot drift apart)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipelines.smpl import body_model
from pipelines.smpl.layout import JOINT_NAMES
from pipelines.smpl.model_files import PROCEDURAL_PATH, read_npz
from pipelines.smpl.procedural_body import build_procedural_body, procedural_joints

J = {n: i for i, n in enumerate(JOINT_NAMES)}


@pytest.fixture(scope="module")
def procedural() -> body_model.BodyModel:
    return body_model.load_body_model(PROCEDURAL_PATH)


def test_the_procedural_body_is_a_closed_plausible_body(procedural):
    assert PROCEDURAL_PATH.stat().st_size < 2_000_000
    assert 2_000 <= procedural.num_verts <= 10_000 and procedural.num_betas == 10
    faces = procedural.faces.numpy()
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all(), "every edge has exactly two faces: a closed surface"
    v = procedural.v_template.numpy()
    height = v[:, 1].max() - v[:, 1].min()
    assert 1.6 < height < 1.9 and v[:, 0].max() > 0.7  # T-pose: arms out along +-X
    assert np.allclose(procedural.weights.sum(1).numpy(), 1.0, atol=1e-5)
    _, joints = procedural.forward()
    assert np.abs(joints[0].numpy() - procedural_joints()).max() < 2e-3
    assert joints[0, J["left_hip"], 0] > 0 and joints[0, J["head"], 1] > joints[0, J["neck"], 1]
    # The first shape direction is stature: +1 makes the body taller.
    taller, _ = procedural.forward(torch.eye(10)[:1], torch.zeros(1, 24, 3))
    assert taller[0, :, 1].max() - taller[0, :, 1].min() > height + 0.03


@pytest.mark.slow
def test_the_committed_asset_is_rebuilt_bit_for_bit():
    """About half a minute on a CPU: marching cubes, simplification, rigging."""
    committed = read_npz(PROCEDURAL_PATH)
    built = build_procedural_body()
    assert sorted(built) == sorted(committed)
    for key, value in built.items():
        assert value.dtype == committed[key].dtype and value.shape == committed[key].shape, key
        assert np.array_equal(value, committed[key]), f"{key} differs from assets/procedural_body.npz"
