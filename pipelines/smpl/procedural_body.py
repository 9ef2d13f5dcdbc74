"""The procedural default body, rigged in the SMPL layout: designed joints, skinning weights, joint regressor and
shape directions on the surface from `procedural_mesh` (numpy; `assets/make_body.py` writes the asset)."""

from __future__ import annotations

import numpy as np

from pipelines.smpl.layout import JOINT_NAMES, NUM_JOINTS, SMPL_PARENTS
from pipelines.smpl.procedural_mesh import cone_sdf, procedural_surface, uniform_laplacian

# Rest (T-pose) joint positions in metres; +X is the subject's left. Mirrored for the right side.
_JOINTS_LEFT = {
    "pelvis": (0.0, 0.0, 0.0),
    "left_hip": (0.085, -0.075, -0.005),
    "spine1": (0.0, 0.11, -0.02),
    "left_knee": (0.10, -0.48, 0.005),
    "spine2": (0.0, 0.24, -0.01),
    "left_ankle": (0.105, -0.885, -0.04),
    "spine3": (0.0, 0.30, -0.005),
    "left_foot": (0.115, -0.935, 0.085),
    "neck": (0.0, 0.50, -0.025),
    "left_collar": (0.075, 0.43, -0.015),
    "head": (0.0, 0.585, 0.0),
    "left_shoulder": (0.175, 0.44, -0.02),
    "left_elbow": (0.435, 0.44, -0.035),
    "left_wrist": (0.67, 0.44, -0.035),
    "left_hand": (0.755, 0.435, -0.035),
}


def procedural_joints() -> np.ndarray:
    """(24, 3) designed rest joints of the procedural body (the regressed ones land within millimetres)."""
    out = np.zeros((NUM_JOINTS, 3))
    for j, name in enumerate(JOINT_NAMES):
        if name.startswith("right_"):
            x, y, z = _JOINTS_LEFT["left_" + name[6:]]
            out[j] = (-x, y, z)
        else:
            out[j] = _JOINTS_LEFT[name]
    return out


# Where each joint's skinning influence lies: a tapered capsule (a, b, radius at a, radius at b) around its bone.
def _influence_capsules(joints: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float, float]]:
    J = {n: joints[i] for i, n in enumerate(JOINT_NAMES)}
    caps: dict[str, tuple] = {
        "pelvis": (J["pelvis"] + (0, -0.04, -0.01), J["spine1"], 0.13, 0.135),
        "spine1": (J["spine1"], J["spine2"], 0.135, 0.15),
        "spine2": (J["spine2"], J["spine3"], 0.15, 0.155),
        "spine3": (J["spine3"], J["neck"] + (0, -0.06, 0), 0.155, 0.12),
        "neck": (J["neck"], J["head"], 0.052, 0.05),
        "head": (J["head"] + (0, 0.04, 0.01), J["head"] + (0, 0.1, 0.01), 0.1, 0.09),
    }
    for side, s in (("left", 1.0), ("right", -1.0)):
        caps.update(
            {
                f"{side}_hip": (J[f"{side}_hip"], J[f"{side}_knee"], 0.085, 0.052),
                f"{side}_knee": (J[f"{side}_knee"], J[f"{side}_ankle"], 0.05, 0.031),
                f"{side}_ankle": (
                    J[f"{side}_ankle"] + (0, -0.035, -0.03),
                    J[f"{side}_foot"] + (0, 0.0, -0.03),
                    0.04,
                    0.035,
                ),
                f"{side}_foot": (J[f"{side}_foot"] + (0, 0.0, 0.015), J[f"{side}_foot"] + (0, 0.0, 0.05), 0.03, 0.027),
                f"{side}_collar": (J[f"{side}_collar"], J[f"{side}_shoulder"] - (0.04 * s, 0, 0), 0.06, 0.06),
                f"{side}_shoulder": (J[f"{side}_shoulder"] + (0.02 * s, 0, 0), J[f"{side}_elbow"], 0.05, 0.036),
                f"{side}_elbow": (J[f"{side}_elbow"], J[f"{side}_wrist"], 0.037, 0.026),
                f"{side}_wrist": (J[f"{side}_wrist"], J[f"{side}_hand"], 0.03, 0.035),
                f"{side}_hand": (
                    J[f"{side}_hand"] + (0.015 * s, 0, 0),
                    J[f"{side}_hand"] + (0.06 * s, 0, 0),
                    0.03,
                    0.02,
                ),
            }
        )
    return [tuple(np.asarray(v, float) if i < 2 else v for i, v in enumerate(caps[n])) for n in JOINT_NAMES]


def _skinning_weights(verts: np.ndarray, faces: np.ndarray, joints: np.ndarray, top_k: int = 4) -> np.ndarray:
    """(V, 24) smooth weights: soft-min over 'distance outside each bone's capsule', diffused over the surface."""
    caps = _influence_capsules(joints)
    s = np.stack([cone_sdf(verts, a, b, ra, rb) for a, b, ra, rb in caps], 1)  # (V, 24)
    logits = -(s - s.min(1, keepdims=True)) / 0.02
    w = np.exp(logits)
    w /= w.sum(1, keepdims=True)
    avg = uniform_laplacian(faces, len(verts))
    for _ in range(12):
        w = 0.5 * w + 0.5 * (avg @ w)
    # Keep the strongest few and zero the rest, so a joint moves only the vertices it claims.
    order = np.argsort(-w, axis=1)
    keep = np.zeros_like(w, dtype=bool)
    np.put_along_axis(keep, order[:, :top_k], True, axis=1)
    w = np.where(keep & (w > 0.01), w, 0.0)
    return w / w.sum(1, keepdims=True)


def _joint_regressor(verts: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(24, V): for each joint, Gaussian weights over the ring of surface vertices around it, across its bone."""
    caps = _influence_capsules(joints)
    reg = np.zeros((NUM_JOINTS, len(verts)))
    parents = SMPL_PARENTS
    for j in range(NUM_JOINTS):
        children = [c for c, p in enumerate(parents) if p == j]
        if children and j not in (0, 9):
            axis = joints[children[0]] - joints[j]
        elif j in (0, 9):
            axis = np.array([0.0, 1.0, 0.0])
        else:
            axis = joints[j] - joints[parents[j]]
        axis = axis / np.linalg.norm(axis)
        rel = verts - joints[j]
        along = rel @ axis
        across = np.linalg.norm(rel - along[:, None] * axis, axis=1)
        radius = max(caps[j][2], caps[j][3])
        sel = (np.abs(along) < 0.03) & (across < 1.5 * radius)
        if sel.sum() < 8:
            sel = np.argsort(np.linalg.norm(rel, axis=1))[:16]
            wts = np.zeros(len(verts))
            wts[sel] = 1.0
        else:
            wts = np.where(sel, np.exp(-0.5 * (along / 0.015) ** 2), 0.0)
        idx = np.flatnonzero(wts)
        reg[j, idx] = _tilt_to_mean(wts[idx], verts[idx], joints[j])
    return reg


def _tilt_to_mean(w0: np.ndarray, pts: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Positive weights closest to `w0` (in relative entropy) whose weighted mean of `pts` is `target`.

    They have the form w0 * exp(lam . (p - target)); `lam` minimises a convex log-sum-exp, found by damped Newton.
    """
    d = pts - target  # (K, 3)
    logw0 = np.log(w0 / w0.sum())
    lam = np.zeros(3)
    for _ in range(100):
        z = logw0 + d @ lam
        p = np.exp(z - z.max())
        p /= p.sum()
        mean = p @ d
        if np.linalg.norm(mean) < 1e-6:
            break
        cov = (d * p[:, None]).T @ d - np.outer(mean, mean)
        lam -= np.linalg.solve(cov + 1e-6 * np.eye(3), mean)
    return p


def _shape_directions(verts: np.ndarray, faces: np.ndarray, weights: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(V, 3, 10) shape blend shapes, each about one standard deviation of a named body trait."""
    idx = {n: i for i, n in enumerate(JOINT_NAMES)}

    def mask(*names: str) -> np.ndarray:
        return weights[:, [idx[n] for n in names]].sum(1)

    sides = ("left", "right")
    legs = mask(*(f"{s}_{p}" for s in sides for p in ("hip", "knee", "ankle", "foot")))
    arms = mask(*(f"{s}_{p}" for s in sides for p in ("shoulder", "elbow", "wrist", "hand")))
    collars = mask("left_collar", "right_collar")
    head = mask("head")
    torso = mask("pelvis", "spine1", "spine2", "spine3")
    caps = _influence_capsules(joints)
    # Each vertex's offset from the axis of the bones that carry it: scaling it thickens limbs and torso.
    radial = np.zeros_like(verts)
    for j, (a, b, _, _) in enumerate(caps):
        ab = b - a
        t = np.clip(((verts - a) @ ab) / (ab @ ab), 0.0, 1.0)
        radial += weights[:, j : j + 1] * (verts - (a + t[:, None] * ab))
    normals = _vertex_normals(verts, faces)
    x, y = verts[:, 0], verts[:, 1]
    hip_y = joints[idx["left_hip"], 1]
    dirs = np.zeros((len(verts), 3, 10))
    dirs[:, :, 0] = 0.045 * verts * np.array([0.35, 1.0, 0.35])  # stature
    dirs[:, :, 1] = radial * (0.16 * torso + 0.11 * legs + 0.09 * arms + 0.12 * collars + 0.1 * mask("neck"))[:, None]
    dirs[:, 0, 2] = 0.018 * np.tanh(x / 0.08) * (arms + collars + 0.6 * mask("spine3"))  # shoulder breadth
    dirs[:, 1, 3] = 0.05 * (y - hip_y) * legs  # leg length
    dirs[:, 0, 4] = 0.012 * np.tanh(x / 0.05) * legs + 0.1 * x * mask("pelvis")  # hip width
    dirs[:, 0, 5] = 0.05 * np.sign(x) * np.maximum(np.abs(x) - 0.175, 0.0) * arms  # arm length
    belly = mask("pelvis", "spine1", "spine2") * np.clip(normals[:, 2], 0.0, 1.0) ** 2
    dirs[:, 2, 6] = 0.025 * belly * np.exp(-(((y - 0.1) / 0.14) ** 2))  # belly
    dirs[:, :, 7] = radial * (0.15 * arms + 0.1 * mask("spine3", "spine2") * np.clip(normals[:, 2], 0, 1))[:, None]
    head_c = joints[idx["head"]] + np.array([0.0, 0.07, 0.01])
    dirs[:, :, 8] = 0.08 * (verts - head_c) * head[:, None]  # head size
    dirs[:, 1, 9] = 0.06 * np.clip(y - 0.05, 0.0, 0.4) * (1.0 - legs)  # torso length
    return dirs


SHAPE_NAMES: tuple[str, ...] = (
    "stature", "girth", "shoulder breadth", "leg length", "hip width", "arm length", "belly", "muscle",
    "head size", "torso length",
)  # fmt: skip


def _vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = verts[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    vn = np.zeros_like(verts)
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)


def build_procedural_body(spacing: float = 0.007, target_faces: int = 12_000) -> dict[str, np.ndarray]:
    """The procedural body as arrays in the official SMPL layout (see the module docstring).

    Pose blend shapes are zero: the body is skinned by LBS alone.
    """
    joints = procedural_joints()
    verts, faces = procedural_surface(spacing, target_faces)
    weights = _skinning_weights(verts, faces, joints)
    regressor = _joint_regressor(verts, joints)
    shapedirs = _shape_directions(verts, faces, weights, joints)
    kintree = np.array([[4294967295, *SMPL_PARENTS[1:]], list(range(NUM_JOINTS))], dtype=np.int64)
    return {
        "v_template": verts.astype(np.float32),
        "shapedirs": shapedirs.astype(np.float32),
        "posedirs": np.zeros((len(verts), 3, 9 * (NUM_JOINTS - 1)), np.float32),
        "J_regressor": regressor.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": kintree,
        "f": faces.astype(np.int32),
    }
