"""Rotations as axis-angle, matrix, quaternion and Euler angles, converted through PyTorch3D, with round-trip errors.

Matrices here act on column vectors (x' = R x), as `so3_exp_map` and `axis_angle_to_matrix` return them.
`Transform3d` multiplies row vectors from the right (x' = x M), so applying R to a mesh uses `rotate(R^T)`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import torch
from pytorch3d.structures import Meshes
from pytorch3d.transforms import (
    Transform3d,
    euler_angles_to_matrix,
    matrix_to_euler_angles,
    matrix_to_quaternion,
    quaternion_to_matrix,
    so3_exp_map,
    so3_log_map,
    standardize_quaternion,
)
from pytorch3d.transforms.so3 import hat  # noqa: F401  (re-exported: the lab shows it)

REPRESENTATIONS = ("axis-angle", "matrix", "quaternion", "euler")
EULER_CONVENTIONS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX", "XYX", "XZX", "YXY", "YZY", "ZXZ", "ZYZ")
ORTHONORMAL_TOL = 1e-3  # a typed matrix this close to a rotation is snapped to the nearest one


def parse_numbers(values: str | Sequence[float]) -> list[float]:
    """Numbers from text ('0.1, 0.2 0.3', brackets allowed) or a sequence; ValueError with a sentence."""
    if isinstance(values, str):
        parts = [p for p in re.split(r"[\s,;\[\]()]+", values.strip()) if p]
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise ValueError(
                f"Could not read numbers from {values!r}: type them separated by commas or spaces."
            ) from None
    else:
        numbers = [float(v) for v in values]
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError("The rotation contains NaN or infinite numbers.")
    return numbers


def to_matrix(
    representation: str,
    values: str | Sequence[float],
    convention: str = "XYZ",
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, list[str]]:
    """The (3, 3) rotation matrix a user typed, plus notes.

    axis-angle: 3 numbers (a rotation vector whose length is the angle in radians) or 4 (axis x, y, z and the
    angle in degrees); matrix: 9 numbers row by row; quaternion: 4 numbers w, x, y, z (normalised);
    euler: 3 angles in degrees about the axes of `convention` (intrinsic, as PyTorch3D reads them).
    """
    nums = parse_numbers(values)
    notes: list[str] = []
    dev = torch.device(device)

    def tensor(x: Sequence[float]) -> torch.Tensor:
        return torch.tensor(x, dtype=dtype, device=dev)

    if representation == "axis-angle":
        if len(nums) == 4:
            axis = tensor(nums[:3])
            if float(axis.norm()) < 1e-12:
                raise ValueError("The rotation axis must not be zero.")
            vec = axis / axis.norm() * math.radians(nums[3])
        elif len(nums) == 3:
            vec = tensor(nums)
        else:
            raise ValueError(
                "Axis-angle takes 3 numbers (rotation vector, radians) or 4 (axis x, y, z, angle in degrees)."
            )
        return so3_exp_map(vec[None])[0], notes
    if representation == "matrix":
        if len(nums) != 9:
            raise ValueError("A rotation matrix takes 9 numbers, row by row.")
        m = tensor(nums).reshape(3, 3)
        err = float((m @ m.T - torch.eye(3, dtype=dtype, device=dev)).abs().max())
        det = float(torch.linalg.det(m))
        if err > ORTHONORMAL_TOL or det <= 0:
            raise ValueError(
                f"That matrix is not a rotation (|R Rᵀ − I| = {err:.3g}, det = {det:.3g}): rows must be orthonormal with det +1."
            )
        u, _, vh = torch.linalg.svd(m)
        snapped = u @ vh
        if err > 1e-9:
            notes.append(f"The matrix was snapped to the nearest rotation (it was off by {err:.2g}).")
        return snapped, notes
    if representation == "quaternion":
        if len(nums) != 4:
            raise ValueError("A quaternion takes 4 numbers: w, x, y, z.")
        q = tensor(nums)
        if float(q.norm()) < 1e-12:
            raise ValueError("The quaternion must not be zero.")
        if abs(float(q.norm()) - 1.0) > 1e-6:
            notes.append(f"The quaternion was normalised (its length was {float(q.norm()):.4g}).")
        return quaternion_to_matrix(q / q.norm()), notes
    if representation == "euler":
        if len(nums) != 3:
            raise ValueError("Euler angles take 3 numbers, in degrees.")
        conv = convention.upper()
        if conv not in EULER_CONVENTIONS:
            raise ValueError(f"Unknown Euler convention {convention!r}: choose one of {', '.join(EULER_CONVENTIONS)}.")
        return euler_angles_to_matrix(torch.deg2rad(tensor(nums)), conv), notes
    raise ValueError(f"Unknown representation {representation!r}: choose one of {', '.join(REPRESENTATIONS)}.")


def round_trip_errors(matrix: torch.Tensor, convention: str = "XYZ") -> dict[str, float]:
    """Max |R - R'| after R -> representation -> R' for each representation, and exp(hat(log R)) vs R."""
    R = matrix[None]  # (1, 3, 3)
    log = so3_log_map(R)  # (1, 3)
    return {
        "axis-angle (so3_log_map → so3_exp_map)": float((so3_exp_map(log) - R).abs().max()),
        "quaternion": float((quaternion_to_matrix(matrix_to_quaternion(R)) - R).abs().max()),
        f"euler {convention}": float(
            (euler_angles_to_matrix(matrix_to_euler_angles(R, convention), convention) - R).abs().max()
        ),
        "matrix_exp(hat(log R))": float((torch.linalg.matrix_exp(hat(log)) - R).abs().max()),
    }


def transform(matrix: torch.Tensor, translation: Sequence[float] = (0.0, 0.0, 0.0)) -> Transform3d:
    """A Transform3d that rotates by `matrix` (column-vector convention) and then translates."""
    m = matrix.to(torch.float32)
    t = torch.as_tensor(translation, dtype=torch.float32, device=m.device).reshape(1, 3)
    return Transform3d(device=m.device).rotate(m.T[None]).translate(t)


def apply_to_mesh(mesh: Meshes, matrix: torch.Tensor, translation: Sequence[float] = (0.0, 0.0, 0.0)) -> Meshes:
    """The mesh's vertices moved by R then t (textures kept)."""
    tf = transform(matrix.to(mesh.device), translation)
    return mesh.update_padded(tf.transform_points(mesh.verts_padded()))


def describe(
    matrix: torch.Tensor, convention: str = "XYZ", translation: Sequence[float] = (0.0, 0.0, 0.0)
) -> dict[str, Any]:
    """The same rotation in every representation, the hat matrix of its log, the 4x4 Transform3d matrix and the
    round-trip errors. Angles in degrees except the rotation vector (radians)."""
    R = matrix.to(torch.float64)
    log = so3_log_map(R[None])[0]  # (3,)
    angle = float(log.norm())
    axis = (log / angle).tolist() if angle > 1e-12 else [0.0, 0.0, 1.0]
    quat = standardize_quaternion(matrix_to_quaternion(R[None]))[0]
    euler = torch.rad2deg(matrix_to_euler_angles(R[None], convention))[0]

    def rounded(t: torch.Tensor | list, digits: int = 6) -> Any:
        data = t.tolist() if isinstance(t, torch.Tensor) else t
        if isinstance(data, list):
            return [rounded(x, digits) for x in data]
        return round(float(data), digits) + 0.0

    return {
        "matrix": rounded(R),
        "axis_angle": {
            "rotation_vector_rad": rounded(log),
            "axis": rounded(axis),
            "angle_deg": rounded(math.degrees(angle), 4),
        },
        "quaternion_wxyz": rounded(quat),
        "euler_deg": {"convention": convention, "angles": rounded(euler, 4)},
        "hat_of_log": rounded(hat(log[None])[0]),
        "transform3d_matrix (row vectors: x' = x M)": rounded(transform(R, translation).get_matrix()[0]),
        "round_trip_max_abs_error": {k: float(f"{v:.3g}") for k, v in round_trip_errors(R, convention).items()},
    }
