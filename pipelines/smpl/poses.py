"""Body poses in the SMPL layout: named presets, seeded random plausible poses, and parsing of typed-in values.

A pose is (24, 3) axis-angle in radians, joint 0 the global orientation, in SMPL's frame (+Y up, facing +Z).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipelines.smpl.layout import JOINT_NAMES

POSE_PRESETS = ("t-pose", "a-pose", "walking", "sitting", "arms-up", "random")


def axis_rotvec(axis: str, degrees: float) -> np.ndarray:
    out = np.zeros(3)
    out["xyz".index(axis)] = np.radians(degrees)
    return out


def _compose(*rotvecs: np.ndarray) -> np.ndarray:
    """The axis-angle of R(r1) R(r2) ... (applied right to left)."""
    from scipy.spatial.transform import Rotation

    rot = Rotation.identity()
    for r in rotvecs:
        rot = rot * Rotation.from_rotvec(r)
    return rot.as_rotvec()


def preset_pose(name: str, seed: int = 0) -> np.ndarray:
    """(24, 3) axis-angle pose of a named preset (SMPL frame: hip flexion is -x, knee bend +x, left elbow bend -y)."""
    j = {n: i for i, n in enumerate(JOINT_NAMES)}
    pose = np.zeros((24, 3))

    def arms_down(angle: float) -> None:
        pose[j["left_shoulder"]] = axis_rotvec("z", -angle)
        pose[j["right_shoulder"]] = axis_rotvec("z", angle)

    if name == "t-pose":
        return pose
    if name == "a-pose":
        arms_down(45)
        pose[j["left_collar"]] = axis_rotvec("z", -5)
        pose[j["right_collar"]] = axis_rotvec("z", 5)
    elif name == "walking":
        pose[j["left_hip"]] = axis_rotvec("x", -28)
        pose[j["right_hip"]] = axis_rotvec("x", 18)
        pose[j["left_knee"]] = axis_rotvec("x", 12)
        pose[j["right_knee"]] = axis_rotvec("x", 35)
        pose[j["right_ankle"]] = axis_rotvec("x", 12)
        pose[j["left_shoulder"]] = _compose(axis_rotvec("x", 25), axis_rotvec("z", -72))
        pose[j["right_shoulder"]] = _compose(axis_rotvec("x", -25), axis_rotvec("z", 72))
        pose[j["left_elbow"]] = axis_rotvec("y", -15)
        pose[j["right_elbow"]] = axis_rotvec("y", 30)
        pose[j["spine1"]] = axis_rotvec("y", 4)
        pose[j["spine3"]] = axis_rotvec("y", -6)
    elif name == "sitting":
        pose[j["left_hip"]] = _compose(axis_rotvec("x", -88), axis_rotvec("y", 6))
        pose[j["right_hip"]] = _compose(axis_rotvec("x", -88), axis_rotvec("y", -6))
        pose[j["left_knee"]] = axis_rotvec("x", 88)
        pose[j["right_knee"]] = axis_rotvec("x", 88)
        pose[j["left_shoulder"]] = _compose(axis_rotvec("x", -20), axis_rotvec("z", -70))
        pose[j["right_shoulder"]] = _compose(axis_rotvec("x", -20), axis_rotvec("z", 70))
        pose[j["left_elbow"]] = axis_rotvec("y", -55)
        pose[j["right_elbow"]] = axis_rotvec("y", 55)
        pose[j["spine1"]] = axis_rotvec("x", 6)
        pose[j["neck"]] = axis_rotvec("x", 8)
    elif name == "arms-up":
        arms_down(-60)
        pose[j["left_elbow"]] = axis_rotvec("z", 25)
        pose[j["right_elbow"]] = axis_rotvec("z", -25)
        pose[j["left_hip"]] = axis_rotvec("z", 8)
        pose[j["right_hip"]] = axis_rotvec("z", -8)
    elif name == "random":
        return random_pose(seed)
    else:
        raise ValueError(f"Unknown pose preset {name!r}: choose one of {', '.join(POSE_PRESETS)}.")
    return pose


# Plausible per-joint ranges (degrees, x/y/z) for random poses, around a relaxed standing pose.
_RANGES = {
    "spine1": (15, 10, 8), "spine2": (10, 10, 8), "spine3": (10, 10, 8), "neck": (15, 20, 10), "head": (10, 15, 8),
    "left_hip": (35, 12, 12), "right_hip": (35, 12, 12), "left_knee": (0, 0, 0), "right_knee": (0, 0, 0),
    "left_ankle": (10, 5, 5), "right_ankle": (10, 5, 5), "left_collar": (5, 5, 8), "right_collar": (5, 5, 8),
    "left_shoulder": (35, 25, 30), "right_shoulder": (35, 25, 30), "left_elbow": (0, 0, 0), "right_elbow": (0, 0, 0),
    "left_wrist": (15, 15, 15), "right_wrist": (15, 15, 15),
}  # fmt: skip


def random_pose(seed: int) -> np.ndarray:
    """A plausible (24, 3) pose: a preset, jittered within joint ranges, knees and elbows bent the natural way."""
    rng = np.random.default_rng(seed)
    base = preset_pose(str(rng.choice(["a-pose", "walking", "arms-up", "a-pose", "walking"])))
    j = {n: i for i, n in enumerate(JOINT_NAMES)}
    pose = base.copy()
    for name, (rx, ry, rz) in _RANGES.items():
        jitter = rng.uniform(-1, 1, 3) * np.radians([rx, ry, rz]) * 0.6
        pose[j[name]] = _compose(jitter, base[j[name]])
    for side, sign in (("left", -1.0), ("right", 1.0)):
        pose[j[f"{side}_knee"]] += axis_rotvec("x", rng.uniform(0, 25))
        pose[j[f"{side}_elbow"]] += axis_rotvec("y", sign * rng.uniform(0, 70))
    return pose


def parse_pose(values: Sequence[float]) -> np.ndarray:
    """72 numbers -> (24, 3), with a clear message for anything else."""
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size != 72:
        raise ValueError(f"A pose has 72 values (24 joints × 3 axis-angle components); {arr.size} were given.")
    if not np.isfinite(arr).all():
        raise ValueError("The pose contains NaN or infinite values.")
    return arr.reshape(24, 3)


def parse_betas(values: Sequence[float], num_betas: int) -> np.ndarray:
    """Shape coefficients padded with zeros to the model's count; too many, or absurd values, are refused."""
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size > num_betas:
        raise ValueError(f"The body model has {num_betas} shape coefficients; {arr.size} were given.")
    if not np.isfinite(arr).all() or np.abs(arr).max(initial=0) > 10:
        raise ValueError("Shape coefficients must be finite numbers between -10 and 10.")
    return np.concatenate([arr, np.zeros(num_betas - arr.size)])


def joint_index(name: str) -> int:
    if name not in JOINT_NAMES:
        raise ValueError(f"Unknown joint {name!r}: choose one of {', '.join(JOINT_NAMES)}.")
    return JOINT_NAMES.index(name)
