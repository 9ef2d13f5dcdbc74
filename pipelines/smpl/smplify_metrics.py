"""Joint errors of a fit against the truth (synthetic cases): MPJPE after aligning the pelvis, PA-MPJPE after a
similarity (Procrustes) alignment, in millimetres."""

from __future__ import annotations

import numpy as np


def procrustes_align(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`pred` (P, 3) moved by the similarity (scale, rotation, translation) that best fits it to `target`."""
    mp, mt = pred.mean(0), target.mean(0)
    x, y = pred - mp, target - mt
    u, s, vt = np.linalg.svd(x.T @ y)
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt))
    rot = u @ np.diag(d) @ vt  # x @ rot ~ y
    scale = (s * d).sum() / (x**2).sum()
    return scale * x @ rot + mt


def joint_errors_mm(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Mean 3D joint error after aligning the pelvis (MPJPE) and after a similarity alignment (PA-MPJPE), in mm."""
    root = (pred - pred[0]) - (target - target[0])
    return {
        "mpjpe_mm": float(1000 * np.linalg.norm(root, axis=1).mean()),
        "pa_mpjpe_mm": float(1000 * np.linalg.norm(procrustes_align(pred, target) - target, axis=1).mean()),
    }
