"""The SMPL file layout and skeleton: the arrays a model file holds, the 24 joints, and the error a bad file raises.

Coordinate frame of the body (as in SMPL): +Y up, the body faces +Z, +X is the subject's left; metres.

File layout (official SMPL, and the procedural body in `assets/procedural_body.npz`):

| key | shape | meaning |
|---|---|---|
| `v_template` | (V, 3) | rest-pose (T-pose) vertices of the mean shape |
| `shapedirs` | (V, 3, B) | shape blend shapes, one per coefficient (beta) |
| `posedirs` | (V, 3, 9 (J-1)) | pose blend shapes, driven by the entries of (R_j - I), j = 1..J-1 |
| `J_regressor` | (J, V) | joint locations as fixed linear combinations of the vertices (dense or sparse) |
| `weights` | (V, J) | skinning weights, rows sum to 1 |
| `kintree_table` | (2, J) | row 0: parent id of each joint (root: any id not in row 1), row 1: joint ids |
| `f` | (F, 3) | triangles |
"""

from __future__ import annotations

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand",
    "right_hand",
)  # fmt: skip
SMPL_PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
NUM_JOINTS = 24
REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
MAX_VERTICES = 200_000


class BodyModelError(ValueError):
    """A body-model file that cannot be used; the message says why in one sentence."""
