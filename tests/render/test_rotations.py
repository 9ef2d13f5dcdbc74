"""Rotations: every representation round-trips through PyTorch3D to 1e-5, the hat operator, Transform3d on a mesh."""

from __future__ import annotations

import math

import pytest
import torch
from pytorch3d.transforms import (
    euler_angles_to_matrix,
    matrix_to_euler_angles,
    matrix_to_quaternion,
    quaternion_to_matrix,
    so3_exp_map,
    so3_log_map,
)

from pipelines.render import rotations
from pipelines.render.procedural import procedural_mesh


def random_rotation_vectors(n: int, device, seed: int = 0) -> torch.Tensor:
    """Rotation vectors with angles in [0.05, 3.0] rad (away from the log map's singularities), drawn on the CPU."""
    gen = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=1)
    angle = 0.05 + 2.95 * torch.rand(n, 1, generator=gen)
    return (axis * angle).to(device)


def test_rotation_vector_round_trips(device):
    vec = random_rotation_vectors(64, device)
    R = so3_exp_map(vec)
    assert torch.allclose(so3_log_map(R), vec, atol=1e-5)
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3, device=device).expand(64, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(R), torch.ones(64, device=device), atol=1e-5)


def test_quaternion_round_trips(device):
    R = so3_exp_map(random_rotation_vectors(64, device, seed=1))
    assert torch.allclose(quaternion_to_matrix(matrix_to_quaternion(R)), R, atol=1e-5)


@pytest.mark.parametrize("convention", rotations.EULER_CONVENTIONS)
def test_euler_round_trips(device, convention):
    R = so3_exp_map(random_rotation_vectors(32, device, seed=2))
    assert torch.allclose(euler_angles_to_matrix(matrix_to_euler_angles(R, convention), convention), R, atol=1e-5)


def test_hat_is_the_cross_product_and_exp_of_hat_is_so3_exp_map(device):
    vec = random_rotation_vectors(16, device, seed=3)
    other = random_rotation_vectors(16, device, seed=4)
    hat = rotations.hat(vec)  # (16, 3, 3)
    assert torch.allclose(hat @ other[..., None], torch.cross(vec, other, dim=1)[..., None], atol=1e-6)
    assert torch.allclose(hat, -hat.transpose(1, 2))
    assert torch.allclose(torch.linalg.matrix_exp(hat), so3_exp_map(vec), atol=1e-5)


def test_every_typed_form_gives_the_same_matrix():
    R, _ = rotations.to_matrix("euler", "30, 45, 0", "XYZ")
    info = rotations.describe(R, "XYZ")
    forms = {
        "axis-angle": info["axis_angle"]["rotation_vector_rad"],
        "matrix": [x for row in info["matrix"] for x in row],
        "quaternion": info["quaternion_wxyz"],
        "euler": info["euler_deg"]["angles"],
    }
    for rep, values in forms.items():
        again, _ = rotations.to_matrix(rep, values, "XYZ")
        assert torch.allclose(again, R, atol=1e-5), rep
    axis = info["axis_angle"]["axis"]
    again, _ = rotations.to_matrix("axis-angle", [*axis, info["axis_angle"]["angle_deg"]])
    assert torch.allclose(again, R, atol=1e-5)
    assert all(err < 1e-5 for err in info["round_trip_max_abs_error"].values())


def test_typed_values_are_checked():
    with pytest.raises(ValueError, match="not a rotation"):
        rotations.to_matrix("matrix", "1 0 0 0 1 0 0 0 2")
    with pytest.raises(ValueError, match="9 numbers"):
        rotations.to_matrix("matrix", "1 0 0")
    with pytest.raises(ValueError, match="Could not read"):
        rotations.to_matrix("euler", "ten, 20, 30")
    with pytest.raises(ValueError, match="must not be zero"):
        rotations.to_matrix("quaternion", "0 0 0 0")
    with pytest.raises(ValueError, match="convention"):
        rotations.to_matrix("euler", "1 2 3", "XXY")
    _, notes = rotations.to_matrix("quaternion", "2 0 0 0")
    assert "normalised" in notes[0]
    _, notes = rotations.to_matrix("matrix", "1 0 0 0 1 0 0 0 1.0004")
    assert "snapped" in notes[0]


def test_transform3d_moves_the_mesh_like_the_matrix(device):
    mesh = procedural_mesh("cube", device=device)
    R, _ = rotations.to_matrix("axis-angle", [0, 1, 0, 90], device=device)
    moved = rotations.apply_to_mesh(mesh, R, (0.1, 0.0, -0.2))
    expected = mesh.verts_packed() @ R.T.float() + torch.tensor([0.1, 0.0, -0.2], device=device)
    assert torch.allclose(moved.verts_packed(), expected, atol=1e-6)
    # a quarter turn about +Y takes +X to -Z
    x_axis = rotations.transform(R).transform_points(torch.tensor([[1.0, 0.0, 0.0]], device=device))
    assert torch.allclose(x_axis, torch.tensor([[0.0, 0.0, -1.0]], device=device), atol=1e-6)
    assert math.isclose(float(torch.linalg.det(R)), 1.0, abs_tol=1e-9)
