"""Linear blend skinning as pure functions of tensors: Rodrigues' rotations, forward kinematics and SMPL's `lbs`.

Nothing here reads files or knows the body model: callers pass the arrays (shapes in `pipelines.smpl.layout`).
"""

from __future__ import annotations

import torch


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula, (..., 3) axis-angle -> (..., 3, 3) rotation matrices.

    R = I + a K + b K^2 with K the cross-product matrix of r, a = sin(t)/t, b = (1 - cos t)/t^2 and
    K^2 = r r^T - t^2 I. Below 1e-4 rad a and b switch to their Taylor series, so gradients stay finite at zero.
    Written with elementwise products: tiny batched matmuls are slow on a busy multi-threaded CPU.
    """
    theta2 = (rotvec * rotvec).sum(-1)[..., None, None]  # (..., 1, 1)
    small = theta2 < 1e-8
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)
    theta = safe2.sqrt()
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / safe2)
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*rotvec.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device)
    outer = rotvec[..., :, None] * rotvec[..., None, :]
    return eye * (1.0 - b * theta2) + a * k + b * outer


def _mm3(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) @ (..., 3, k) by broadcasting: for 3x3 blocks this beats a batched matmul call on the CPU."""
    return (a[..., :, :, None] * b[..., None, :, :]).sum(-2)


def _left_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(R, K) @ (N, K, C) -> (N, R, C) as one 2D matmul (a broadcast batched matmul is much slower on a CPU)."""
    n, k, c = b.shape
    return (a @ b.permute(1, 0, 2).reshape(k, n * c)).reshape(-1, n, c).permute(1, 0, 2)


def forward_kinematics(
    rot: torch.Tensor, joints_rest: torch.Tensor, parents: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """World rotations (N, J, 3, 3) and posed joints (N, J, 3) from local rotations (N, J, 3, 3) and rest joints
    (N, J, 3): each joint turns about its rest position, then follows its parent (parents[j] < j)."""
    world_rot: list[torch.Tensor] = [rot[:, 0]]
    world_pos: list[torch.Tensor] = [joints_rest[:, 0]]
    for j in range(1, len(parents)):
        p = parents[j]
        offset = joints_rest[:, j] - joints_rest[:, p]  # (N, 3)
        world_pos.append(world_pos[p] + (world_rot[p] * offset[:, None, :]).sum(-1))
        world_rot.append(_mm3(world_rot[p], rot[:, j]))
    return torch.stack(world_rot, 1), torch.stack(world_pos, 1)


def lbs(
    betas: torch.Tensor,
    pose: torch.Tensor,
    v_template: torch.Tensor,
    shapedirs: torch.Tensor,
    posedirs: torch.Tensor,
    j_regressor: torch.Tensor,
    parents: tuple[int, ...],
    weights: torch.Tensor,
    *,
    return_verts: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """SMPL's linear blend skinning for a batch of N bodies.

    Args:
        betas: (N, B) shape coefficients (B <= the model's shape directions; the rest count as zero).
        pose: (N, J, 3) axis-angle rotation of every joint relative to its parent; joint 0 is the global orientation.
        v_template: (V, 3) mean-shape rest vertices.
        shapedirs: (V, 3, B') shape blend shapes, B' >= B.
        posedirs: (V, 3, 9 (J - 1)) pose blend shapes.
        j_regressor: (J, V) joint regressor.
        parents: J parent indices, parents[0] == -1, parents[j] < j.
        weights: (V, J) skinning weights.
        return_verts: False skips the vertices (SMPLify's data term needs only the joints).

    Returns:
        verts (N, V, 3) posed vertices (None when `return_verts` is False) and joints (N, J, 3) posed joints.

    Steps: shape the template (v_template + shapedirs . betas), regress rest joints from it, add the pose blend
    shapes driven by (R_j - I) for j >= 1, pose the joints down the kinematic tree, then move every vertex by the
    weighted sum of its joints' rigid transforms.
    """
    n, num_betas = betas.shape
    num_joints = len(parents)
    num_verts = v_template.shape[0]
    # 1. Shape the template.
    # Plain 2D matmuls: einsum would batch over the vertices here, which is far slower on a CPU.
    shape_offsets = betas @ shapedirs[..., :num_betas].reshape(num_verts * 3, num_betas).T  # (N, V * 3)
    v_shaped = v_template + shape_offsets.reshape(n, num_verts, 3)  # (N, V, 3)
    # 2. Regress the rest joints from the shaped template.
    joints_rest = _left_mm(j_regressor, v_shaped)  # (N, J, 3)
    # 3. Pose the joints down the kinematic tree.
    rot = axis_angle_to_matrix(pose.reshape(n, num_joints, 3))  # (N, J, 3, 3)
    rots, joints = forward_kinematics(rot, joints_rest, parents)
    if not return_verts:
        return None, joints

    # 4. Add the pose blend shapes, driven by (R_j - I) for j >= 1.
    eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
    pose_feature = (rot[:, 1:] - eye).reshape(n, -1)  # (N, 9 (J - 1))
    pose_offsets = pose_feature @ posedirs.reshape(num_verts * 3, -1).T  # (N, V * 3)
    v_posed = v_shaped + pose_offsets.reshape(n, num_verts, 3)  # (N, V, 3)
    # 5. Skin: move every vertex by the weighted sum of its joints' rigid transforms.
    # The transform that carries a rest-pose point near joint j to its posed place: x -> R_j (x - j_rest) + j_posed.
    trans = joints - (rots * joints_rest[:, :, None, :]).sum(-1)  # (N, J, 3)
    blend = torch.cat([rots.reshape(n, num_joints, 9), trans], -1)  # (N, J, 12)
    per_vertex = _left_mm(weights, blend)  # (N, V, 12)
    # v' = M v + t per vertex, with M's columns taken one at a time (a sum over a size-3 axis is slow on a CPU).
    m = per_vertex[..., :9].reshape(n, -1, 3, 3)
    verts = (
        per_vertex[..., 9:]
        + m[..., 0] * v_posed[..., 0:1]
        + m[..., 1] * v_posed[..., 1:2]
        + m[..., 2] * v_posed[..., 2:3]
    )
    return verts, joints
