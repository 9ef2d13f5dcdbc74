"""SMPLify's synthetic cases: a seeded random plausible body in front of a known camera, its joints projected,
noised and some dropped, and its 'photo' rendered; the truth stays beside it for the 3D errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from pipelines.smpl.body_model import BodyModel
from pipelines.smpl.keypoints import Keypoints
from pipelines.smpl.poses import random_pose
from pipelines.smpl.smplify_fit import TORSO, flip_orientation
from pipelines.smpl.smplify_pictures import render_overlay


class SyntheticSpec(Protocol):
    """The settings a synthetic case reads (SMPLify's Config has them)."""

    seed: int
    image_size: int
    focal_length: float
    noise_px: float
    missing_joints: int


@dataclass
class Synthetic:
    """A synthetic case: the keypoints to fit and the truth behind them (camera frame, OpenCV)."""

    keypoints: Keypoints
    betas: np.ndarray  # (B,)
    pose: np.ndarray  # (24, 3) with the global orientation in the camera frame
    transl: np.ndarray  # (3,)
    joints_cam: np.ndarray  # (24, 3) true joints in the camera frame
    verts_cam: np.ndarray  # (V, 3)


def make_synthetic(model: BodyModel, cfg: SyntheticSpec, num_betas: int) -> Synthetic:
    """A random plausible body (seeded) in front of a known camera; its joints projected, noised, some dropped."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    betas = (torch.randn(num_betas, generator=gen) * 0.8).clamp(-2, 2).numpy()
    pose = random_pose(int(rng.integers(1 << 31)))
    yaw, pitch = np.radians(rng.uniform(-35, 35)), np.radians(rng.uniform(-8, 8))
    orient = Rotation.from_rotvec(flip_orientation()) * Rotation.from_euler("xy", [pitch, yaw])
    pose[0] = orient.as_rotvec()
    with torch.no_grad():
        verts, joints = model.forward(
            torch.tensor(betas, dtype=torch.float32)[None], torch.tensor(pose, dtype=torch.float32)[None]
        )
    verts, joints = verts[0].numpy(), joints[0].numpy()
    size, f = cfg.image_size, cfg.focal_length
    height = verts[:, 1].max() - verts[:, 1].min()
    depth = f * height / (0.8 * size)
    lo, hi = verts.min(0), verts.max(0)
    transl = np.array([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, depth]) + np.append(rng.normal(0, 0.03, 2), 0)
    joints_cam, verts_cam = joints + transl, verts + transl
    xy = f * joints_cam[:, :2] / joints_cam[:, 2:] + size / 2
    xy = xy + torch.randn(24, 2, generator=gen).numpy() * cfg.noise_px
    conf = rng.uniform(0.7, 1.0, 24)
    candidates = [j for j in range(24) if j not in TORSO]
    drop = rng.choice(candidates, size=min(max(cfg.missing_joints, 0), len(candidates)), replace=False)
    conf[drop] = 0.0
    xy[drop] = 0.0
    kp = Keypoints(xy, conf, size, size, "synthetic (SMPL-24)")
    return Synthetic(kp, betas, pose, transl, joints_cam, verts_cam)


def synthetic_photo(syn: Synthetic, model: BodyModel, cfg: SyntheticSpec, device: torch.device) -> np.ndarray:
    """The 'photo' of a synthetic case: the true body rendered through the known camera on a light background."""
    size = cfg.image_size
    canvas = np.full((size, size, 3), 236, np.uint8)
    return render_overlay(
        syn.verts_cam,
        model.faces.cpu().numpy(),
        canvas,
        cfg.focal_length,
        np.array([size / 2, size / 2]),
        1.0,
        (0.86, 0.7, 0.6),
        1.0,
        device,
    )
