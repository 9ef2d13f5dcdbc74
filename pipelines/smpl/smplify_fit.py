"""SMPLify's fit: the joints-only body, the unknowns, the camera's first guess, the staged objective, and the
L-BFGS loop that runs one stage.

Camera frame: OpenCV (x right, y down, looking along +Z), as the keypoints are; pixels from `project`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from pytorch3d.transforms import matrix_to_axis_angle

from pipelines.smpl.body_model import BodyModel
from pipelines.smpl.layout import JOINT_NAMES
from pipelines.smpl.lbs import axis_angle_to_matrix, forward_kinematics
from pipelines.smpl.priors import PosePrior, bend_penalty

J = {n: i for i, n in enumerate(JOINT_NAMES)}
TORSO = (J["left_shoulder"], J["right_shoulder"], J["left_hip"], J["right_hip"])

# SMPLify's interpenetration term approximates the body by capsules and penalises overlapping spheres of parts that
# must not meet. Ours: capsules along bones (joint a, joint b, radius in metres), spheres at 4 points on each.
_CAPSULES = {
    "torso": (J["pelvis"], J["neck"], 0.11),
    "l_forearm": (J["left_elbow"], J["left_wrist"], 0.04),
    "r_forearm": (J["right_elbow"], J["right_wrist"], 0.04),
    "l_thigh": (J["left_hip"], J["left_knee"], 0.06),
    "r_thigh": (J["right_hip"], J["right_knee"], 0.06),
    "l_shin": (J["left_knee"], J["left_ankle"], 0.045),
    "r_shin": (J["right_knee"], J["right_ankle"], 0.045),
}
_COLLIDING = (
    ("l_forearm", "torso"), ("r_forearm", "torso"), ("l_forearm", "r_forearm"), ("l_forearm", "l_thigh"),
    ("r_forearm", "r_thigh"), ("l_shin", "r_shin"), ("l_thigh", "r_shin"), ("r_thigh", "l_shin"),
)  # fmt: skip
_SPHERE_T = torch.tensor([0.125, 0.375, 0.625, 0.875])


def interpenetration(joints: torch.Tensor) -> torch.Tensor:
    """Sum of squared overlaps of the spheres of parts that must not meet, from joints (24, 3) in metres: ()."""
    total = joints.new_zeros(())
    spheres = {}
    for name, (a, b, _) in _CAPSULES.items():
        t = _SPHERE_T.to(joints)[:, None]
        spheres[name] = joints[a] + t * (joints[b] - joints[a])  # (4, 3)
    for p, q in _COLLIDING:
        reach = _CAPSULES[p][2] + _CAPSULES[q][2]
        gap = torch.cdist(spheres[p], spheres[q])  # (4, 4)
        total = total + ((reach - gap).clamp(min=0) ** 2).sum()
    return total


def flipped(global_orient: torch.Tensor) -> torch.Tensor:
    """The global orientation (1, 3) turned half a turn about the body's own vertical axis (SMPLify's flip)."""
    half_turn = axis_angle_to_matrix(torch.tensor([[0.0, math.pi, 0.0]], device=global_orient.device))
    return matrix_to_axis_angle(axis_angle_to_matrix(global_orient) @ half_turn)


def shoulders_px(kp: torch.Tensor, conf: torch.Tensor) -> float:
    """2D distance between the shoulder keypoints in pixels (inf when one is missing): SMPLify tries both facing
    directions when it is below its pix_thsh (25 px), since the body may then face either way."""
    a, b = J["left_shoulder"], J["right_shoulder"]
    if conf[a] <= 0 or conf[b] <= 0:
        return math.inf
    return float((kp[a] - kp[b]).norm())


def geman_mcclure(residual: torch.Tensor, sigma: float) -> torch.Tensor:
    """sigma^2 r^2 / (sigma^2 + r^2): quadratic for small residuals, flat (sigma^2) for outliers."""
    r2 = residual * residual
    return sigma**2 * r2 / (sigma**2 + r2)


def project(points_cam: torch.Tensor, focal: float, center: torch.Tensor) -> torch.Tensor:
    """Pinhole projection of (N, P, 3) camera-frame points to (N, P, 2) pixels (OpenCV frame)."""
    z = points_cam[..., 2:].clamp(min=1e-3)
    return focal * points_cam[..., :2] / z + center


@dataclass
class JointModel:
    """The body reduced to its joints: rest joints are linear in the betas, so the vertices are not needed."""

    rest: torch.Tensor  # (24, 3) J_regressor @ v_template
    dirs: torch.Tensor  # (24, 3, B) J_regressor @ shapedirs
    parents: tuple[int, ...]

    @classmethod
    def of(cls, model: BodyModel, num_betas: int) -> JointModel:
        rest = model.j_regressor @ model.v_template
        dirs = torch.einsum("jv,vcb->jcb", model.j_regressor, model.shapedirs[..., :num_betas])
        return cls(rest, dirs, model.parents)

    def joints(self, betas: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """(N, B), (N, 24, 3) -> posed joints (N, 24, 3) in the body frame (the same kinematics as `lbs`)."""
        rest = self.rest + (self.dirs * betas[:, None, None, :]).sum(-1)  # (N, 24, 3)
        _, joints = forward_kinematics(axis_angle_to_matrix(pose), rest, self.parents)
        return joints


@dataclass
class FitState:
    """The unknowns: global orientation (1, 3), body pose (1, 69), betas (1, B), camera translation (1, 3)."""

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor
    transl: torch.Tensor

    def pose(self) -> torch.Tensor:
        return torch.cat([self.global_orient, self.body_pose], 1).reshape(1, 24, 3)

    def detached(self) -> dict[str, np.ndarray]:
        return {
            k: getattr(self, k).detach().cpu().numpy()[0] for k in ("global_orient", "body_pose", "betas", "transl")
        }


def flip_orientation() -> np.ndarray:
    """Axis-angle of the half turn about X that maps the body frame (Y up, facing +Z) to the camera's (Y down)."""
    return np.array([math.pi, 0.0, 0.0])


def init_translation(
    jm: JointModel,
    betas: torch.Tensor,
    pose: torch.Tensor,
    kp: torch.Tensor,
    conf: torch.Tensor,
    focal: float,
    center: torch.Tensor,
) -> torch.Tensor:
    """Camera translation by similar triangles: depth = focal * (3D torso length) / (2D torso length).

    Torso lengths are shoulder-to-hip on each side where both keypoints are seen; x and y then put the model's
    torso centre on the keypoints' torso centre at that depth.
    """
    with torch.no_grad():
        joints = jm.joints(betas, pose)[0]  # (24, 3)
        l3, l2 = [], []
        for a, b in ((J["left_shoulder"], J["left_hip"]), (J["right_shoulder"], J["right_hip"])):
            if conf[a] > 0 and conf[b] > 0:
                l3.append((joints[a] - joints[b]).norm())
                l2.append((kp[a] - kp[b]).norm())
        if not l3:
            raise ValueError("SMPLify needs a shoulder and the hip on the same side to estimate the camera distance.")
        depth = focal * torch.stack(l3).mean() / torch.stack(l2).mean().clamp(min=1.0)
        seen = [j for j in TORSO if conf[j] > 0]
        centre_2d = kp[seen].mean(0)
        centre_3d = joints[seen].mean(0)
        xy = (centre_2d - center) * depth / focal - centre_3d[:2]
        return torch.cat([xy, (depth - centre_3d[2])[None]])[None]


@dataclass
class Stage:
    name: str
    iters: int
    params: tuple[str, ...]
    pose_w: float = 0.0
    shape_w: float = 0.0
    bend_w: float = 0.0
    torso_only: bool = False
    depth_w: float = 0.0
    interp_w: float = 0.0


class StageSpec(Protocol):
    """The settings the stage schedule reads (SMPLify's Config has them)."""

    camera_iters: int
    stage_iters: int
    pose_prior_weights: Sequence[float]
    shape_weights: Sequence[float]
    interpenetration_weight: float


def stages_of(cfg: StageSpec) -> list[Stage]:
    """Stage 0 finds the camera from the torso; stages 1-4 fit everything with falling prior weights."""
    if len(cfg.pose_prior_weights) != len(cfg.shape_weights) or not cfg.pose_prior_weights:
        raise ValueError(
            "pose_prior_weights and shape_weights must list one weight per stage, the same number of each."
        )
    out = [Stage("camera", cfg.camera_iters, ("transl", "global_orient"), torso_only=True, depth_w=100.0)]
    for i, (wp, ws) in enumerate(zip(cfg.pose_prior_weights, cfg.shape_weights)):
        # SMPLify weighs its bend residuals 10 exp(+-angle) by 0.317 w_pose: 3.17 w_pose on exp(+-angle).
        out.append(
            Stage(
                f"stage {i + 1}",
                cfg.stage_iters,
                ("global_orient", "body_pose", "betas", "transl"),
                wp,
                ws,
                3.17 * wp,
                interp_w=cfg.interpenetration_weight,
            )
        )
    return out


def objective(
    state: FitState,
    jm: JointModel,
    prior: PosePrior,
    kp: torch.Tensor,
    conf: torch.Tensor,
    stage: Stage,
    focal: float,
    center: torch.Tensor,
    sigma: float,
    depth_init: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """SMPLify's energy for one stage: robust reprojection + w_p^2 prior + w_b^2 |beta|^2 + w_a^2 bend (+ depth)."""
    pose = state.pose()
    joints = jm.joints(state.betas, pose) + state.transl[:, None]  # (1, 24, 3) camera frame
    proj = project(joints, focal, center)[0]  # (24, 2)
    w = conf.clone()
    if stage.torso_only:
        mask = torch.zeros_like(w)
        mask[list(TORSO)] = 1.0
        w = w * mask
        data = ((w[:, None] ** 2) * (proj - kp) ** 2).sum()
    else:
        data = ((w[:, None] ** 2) * geman_mcclure(proj - kp, sigma)).sum()
    terms = {"data": data}
    if stage.pose_w:
        terms["pose_prior"] = stage.pose_w**2 * prior(state.body_pose).sum()
        terms["bend"] = stage.bend_w**2 * bend_penalty(pose).sum()
    if stage.shape_w:
        terms["shape"] = stage.shape_w**2 * (state.betas**2).sum()
    if stage.interp_w:
        terms["interpenetration"] = stage.interp_w**2 * interpenetration(joints[0])
    if stage.depth_w:
        terms["depth"] = stage.depth_w**2 * (state.transl[0, 2] - depth_init) ** 2
    return sum(terms.values()), terms


def lbfgs(params: list[torch.Tensor], lr: float) -> torch.optim.LBFGS:
    return torch.optim.LBFGS(params, lr=lr, max_iter=10, history_size=20, line_search_fn="strong_wolfe")


def fit_stage(
    state: FitState,
    jm: JointModel,
    prior: PosePrior,
    kp: torch.Tensor,
    conf: torch.Tensor,
    stage: Stage,
    focal: float,
    center: torch.Tensor,
    sigma: float,
    depth_init: torch.Tensor,
) -> Iterator[tuple[dict[str, float], str]]:
    """L-BFGS on the stage's unknowns (in `state`, in place), `stage.iters` steps: after each, the loss terms (and
    their total) as floats and a note (non-empty when a step overshot and was retried with shorter steps)."""
    params = [getattr(state, name).requires_grad_(True) for name in stage.params]
    lr = 1.0
    optimizer = lbfgs(params, lr)
    terms_now: dict[str, torch.Tensor] = {}

    def closure() -> torch.Tensor:
        for p in params:
            p.grad = None
        loss, terms = objective(state, jm, prior, kp, conf, stage, focal, center, sigma, depth_init)
        loss.backward()
        terms_now.clear()
        terms_now.update(terms)
        return loss

    for _ in range(stage.iters):
        saved = [p.detach().clone() for p in params]
        optimizer.step(closure)
        note = ""
        if not all(torch.isfinite(p).all() and torch.isfinite(t).all() for p, t in zip(params, terms_now.values())):
            # A line search that overshot into inf/NaN: go back and continue with shorter steps.
            with torch.no_grad():
                for p, old in zip(params, saved):
                    p.copy_(old)
                _, terms = objective(state, jm, prior, kp, conf, stage, focal, center, sigma, depth_init)
            terms_now.clear()
            terms_now.update(terms)
            lr *= 0.25
            optimizer = lbfgs(params, lr)
            note = " (a step overshot; retrying with shorter steps)"
        losses = {k: float(v.detach()) for k, v in terms_now.items()}
        losses["total"] = sum(losses.values())
        yield losses, note
    for p in params:
        p.requires_grad_(False)
