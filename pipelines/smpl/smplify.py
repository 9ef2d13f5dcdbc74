"""SMPLify: fit body pose, shape and camera translation to 2D keypoints (synthetic or OpenPose-style uploads).

Camera convention: the keypoints' own pixel frame, as OpenPose writes it (OpenCV: x right, y down, the camera
looks along +Z). The body's frame is SMPL's (+Y up, facing +Z); its initial global orientation is a half turn
about X, which stands it upright in front of the camera, facing it. Renders convert to PyTorch3D with
`cameras_from_opencv_projection`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.core.device import resolve_device
from pipelines.core.events import Done, Event, Preview, Progress
from pipelines.smpl import body_model
from pipelines.smpl.body_model import JOINT_NAMES, BodyModel, axis_angle_to_matrix, forward_kinematics

SOURCES = ("synthetic", "upload")
J = {n: i for i, n in enumerate(JOINT_NAMES)}
TORSO = (J["left_shoulder"], J["right_shoulder"], J["left_hip"], J["right_hip"])
MAX_JSON_BYTES = 5_000_000
PRIOR_FILE_NAMES = ("gmm_08.pkl", "gmm_08.npz")
"""The official SMPLify GMM pose prior, looked for in --models-dir."""
OPTIONAL_FILES = {"SMPLify GMM pose prior": PRIOR_FILE_NAMES}
"""Files an operator may put in --models-dir for this pipeline (the Health panel collects them)."""
MAX_IMAGE_PIXELS = 40_000_000

# OpenPose keypoint index -> SMPL joint, for the two OpenPose layouts (face points have no SMPL joint).
BODY_25_TO_SMPL = {
    1: "neck", 2: "right_shoulder", 3: "right_elbow", 4: "right_wrist", 5: "left_shoulder", 6: "left_elbow",
    7: "left_wrist", 8: "pelvis", 9: "right_hip", 10: "right_knee", 11: "right_ankle", 12: "left_hip",
    13: "left_knee", 14: "left_ankle", 19: "left_foot", 22: "right_foot",
}  # fmt: skip
COCO_18_TO_SMPL = {
    1: "neck", 2: "right_shoulder", 3: "right_elbow", 4: "right_wrist", 5: "left_shoulder", 6: "left_elbow",
    7: "left_wrist", 8: "right_hip", 9: "right_knee", 10: "right_ankle", 11: "left_hip", 12: "left_knee",
    13: "left_ankle",
}  # fmt: skip
LAYOUTS = {25: ("OpenPose BODY_25", BODY_25_TO_SMPL), 18: ("COCO-18", COCO_18_TO_SMPL), 24: ("SMPL-24", None)}

# Bending penalty: (joint, axis, sign) where exp(sign * angle) grows as the joint bends the unnatural way.
BEND_TERMS = (
    (J["left_elbow"], 1, 1.0),
    (J["right_elbow"], 1, -1.0),
    (J["left_knee"], 0, -1.0),
    (J["right_knee"], 0, -1.0),
)

# Fallback pose prior: independent Gaussians around a relaxed standing pose, std in radians about x, y, z. Knees
# hinge about x and elbows about y, so their other axes are tight (a GMM learnt from motion capture knows this).
_FALLBACK_STD = {
    "left_hip": (0.5, 0.25, 0.25), "right_hip": (0.5, 0.25, 0.25), "spine1": (0.15, 0.12, 0.1),
    "left_knee": (0.45, 0.04, 0.04), "right_knee": (0.45, 0.04, 0.04), "spine2": (0.12, 0.1, 0.08),
    "left_ankle": (0.25, 0.1, 0.1), "right_ankle": (0.25, 0.1, 0.1), "spine3": (0.12, 0.1, 0.08),
    "left_foot": (0.05, 0.05, 0.05), "right_foot": (0.05, 0.05, 0.05), "neck": (0.25, 0.3, 0.15),
    "left_collar": (0.1, 0.1, 0.15), "right_collar": (0.1, 0.1, 0.15), "head": (0.2, 0.25, 0.15),
    "left_shoulder": (0.5, 0.5, 0.5), "right_shoulder": (0.5, 0.5, 0.5), "left_elbow": (0.06, 0.6, 0.15),
    "right_elbow": (0.06, 0.6, 0.15), "left_wrist": (0.3, 0.3, 0.3), "right_wrist": (0.3, 0.3, 0.3),
    "left_hand": (0.05, 0.05, 0.05), "right_hand": (0.05, 0.05, 0.05),
}  # fmt: skip


@dataclass(frozen=True)
class Config:
    source: str = "synthetic"
    """synthetic: a random plausible body seen by a known camera, with noise and missing joints; upload: `keypoints` (+ `image`)."""
    keypoints: str = ""
    """OpenPose-style JSON (BODY_25, COCO-18, or 24 joints in SMPL order) for source=upload."""
    image: str = ""
    """The photo the keypoints belong to (optional, for the overlay and the principal point)."""
    body_model: str = ""
    """'' uses the first SMPL file in models_dir, else the procedural body; 'procedural'; a file name in models_dir; or an .npz path."""
    models_dir: Path | None = None
    """The operator's model folder: SMPL files and the GMM pose prior (gmm_08.npz / gmm_08.pkl) are found here."""
    pose_prior: str = ""
    """A GMM pose prior file (means, covars, weights); '' uses gmm_08 from models_dir when present, else the fallback Gaussian."""
    focal_length: float = 5000.0
    """Focal length in pixels (SMPLify's fixed 5000)."""
    image_size: int = 512
    """Side of the synthetic image, in pixels."""
    noise_px: float = 2.0
    """Standard deviation of the Gaussian noise added to synthetic keypoints, in pixels."""
    missing_joints: int = 2
    """How many synthetic keypoints (outside the torso) are dropped, as a detector misses joints."""
    num_betas: int = 10
    """Shape coefficients fitted (at most the model's)."""
    camera_iters: int = 20
    """L-BFGS steps of the first stage (camera translation and global orientation from the torso)."""
    stage_iters: int = 20
    """L-BFGS steps of each of the four pose-and-shape stages."""
    pose_prior_weights: tuple[float, ...] = (404.0, 404.0, 57.4, 4.78)
    """Pose-prior weight of each stage (SMPLify's; squared in the objective). The bend penalty uses 3.17 times it."""
    shape_weights: tuple[float, ...] = (100.0, 50.0, 10.0, 5.0)
    """Shape-prior weight of each stage (squared in the objective)."""
    robust_sigma: float = 100.0
    """Scale of the Geman-McClure robust reprojection term, in pixels."""
    device: str = "auto"
    """auto, cpu or cuda[:N]."""
    seed: int = 0
    """Seed of the synthetic body, camera, noise and missing joints."""
    out_dir: Path | None = None
    """Where the fitted mesh, parameters and overlays go (the app and CLI set one per run)."""

    @classmethod
    def quick(cls) -> Config:
        return cls(camera_iters=15, stage_iters=12)

    @classmethod
    def tiny(cls) -> Config:
        return cls(image_size=192, camera_iters=4, stage_iters=3)

    @classmethod
    def full(cls) -> Config:
        return cls(camera_iters=30, stage_iters=40)


# ----------------------------------------------------------------------------------------------------------------
# Keypoints
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Keypoints:
    """2D targets on the SMPL joints: `xy` (24, 2) pixels, `conf` (24,) in [0, 1] (0 = missing)."""

    xy: np.ndarray
    conf: np.ndarray
    width: int
    height: int
    layout: str
    image: np.ndarray | None = None  # uint8 (H, W, 3)


def parse_keypoints_json(text: str, name: str = "The keypoint file") -> tuple[np.ndarray, str, int]:
    """OpenPose-style JSON -> (K, 3) rows of x, y, confidence, the layout name, and the person picked.

    Accepts {"people": [{"pose_keypoints_2d": [x, y, c, ...]}, ...]} (the person with the largest total
    confidence is used), a bare {"pose_keypoints_2d": [...]}, or a flat list; K must be 25, 18 or 24.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{name} is not valid JSON ({err.msg} at line {err.lineno}).") from None
    people = data.get("people") if isinstance(data, dict) else None
    if isinstance(data, dict) and people is None and "pose_keypoints_2d" in data:
        people = [data]
    if isinstance(data, list):
        people = [{"pose_keypoints_2d": data}]
    if not isinstance(people, list) or not people:
        raise ValueError(
            f'{name} has no people: expected OpenPose JSON like {{"people": [{{"pose_keypoints_2d": [...]}}]}}.'
        )
    rows = []
    for person in people:
        flat = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
        if not isinstance(flat, list):
            raise ValueError(f"{name}: each person needs a pose_keypoints_2d list.")
        try:
            arr = np.asarray(flat, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: pose_keypoints_2d must hold numbers only.") from None
        if arr.size % 3:
            raise ValueError(
                f"{name}: pose_keypoints_2d has {arr.size} numbers, not a multiple of 3 (x, y, confidence)."
            )
        k = arr.size // 3
        if k not in LAYOUTS:
            raise ValueError(f"{name} has {k} joints; expected 25 (OpenPose BODY_25), 18 (COCO-18) or 24 (SMPL order).")
        rows.append(arr.reshape(k, 3))
    best = int(np.argmax([np.nansum(r[:, 2]) for r in rows]))
    kp = rows[best]
    if not np.isfinite(kp).all():
        bad = int(np.flatnonzero(~np.isfinite(kp).all(1))[0])
        raise ValueError(f"{name} contains NaN or infinite values (keypoint {bad}).")
    if (kp[:, 2] < 0).any():
        raise ValueError(f"{name} has negative confidences; they must lie in [0, 1].")
    if not (kp[:, 2] > 0).any():
        raise ValueError(f"{name}: every keypoint has confidence 0, so there is nothing to fit.")
    return kp, LAYOUTS[len(kp)][0], best


def to_smpl_joints(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, 3) keypoints in one of `LAYOUTS` -> SMPL-joint targets (24, 2) and confidences (24,) (0 = no target)."""
    xy = np.zeros((24, 2))
    conf = np.zeros(24)
    mapping = LAYOUTS[len(kp)][1]
    if mapping is None:
        xy, conf = kp[:, :2].copy(), np.clip(kp[:, 2], 0.0, 1.0)
    else:
        for k, joint in mapping.items():
            xy[J[joint]] = kp[k, :2]
            conf[J[joint]] = np.clip(kp[k, 2], 0.0, 1.0)
    return xy, conf


def load_upload(keypoints_path: str, image_path: str) -> Keypoints:
    """Read and validate an uploaded keypoint JSON (and optional image) with one clear message per problem."""
    if not keypoints_path:
        raise ValueError("Upload a keypoint JSON file (OpenPose format) to fit, or use a synthetic case.")
    path = Path(keypoints_path)
    if not path.is_file():
        raise ValueError(f"Keypoint file {path.name} was not found.")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ValueError(f"The keypoint file is larger than {MAX_JSON_BYTES // 1_000_000} MB; it should be a few KB.")
    kp, layout, _ = parse_keypoints_json(path.read_text(errors="replace"), f"The keypoint file {path.name}")
    xy, conf = to_smpl_joints(kp)
    if conf.max() <= 0:
        raise ValueError("None of the keypoints maps to a body joint (face points alone cannot be fitted).")
    image = None
    if image_path:
        image = _read_image(Path(image_path))
        height, width = image.shape[:2]
    else:
        vis = xy[conf > 0]
        width, height = (int(math.ceil(v)) for v in (vis.max(0) * 1.15 + 20))
    vis = xy[conf > 0]
    if (vis < -0.5 * np.array([width, height])).any() or (vis > 1.5 * np.array([width, height])).any():
        raise ValueError("The keypoints lie far outside the image: are they for this image, in pixels?")
    torso = [
        (a, b)
        for a, b in ((J["left_shoulder"], J["left_hip"]), (J["right_shoulder"], J["right_hip"]))
        if conf[a] > 0 and conf[b] > 0
    ]
    if not torso:
        raise ValueError("SMPLify needs a shoulder and the hip on the same side to estimate the camera distance.")
    return Keypoints(xy, conf, width, height, layout, image)


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise ValueError(
                    f"The image is {img.width}×{img.height}; at most {MAX_IMAGE_PIXELS // 1_000_000} megapixels are accepted."
                )
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path.name} is not a readable image ({err}).") from None


# ----------------------------------------------------------------------------------------------------------------
# Priors
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class PosePrior:
    """Negative log-likelihood of the 69 body-pose values (joints 1..23) under the best of K Gaussians.

    `means` (K, 69), `precisions` (K, 69, 69), `offsets` (K,) = -log weight + 0.5 log det covariance, shifted so the
    smallest is 0. One component with a diagonal precision is the fallback prior.
    """

    means: torch.Tensor
    precisions: torch.Tensor
    offsets: torch.Tensor
    name: str

    def __call__(self, body_pose: torch.Tensor) -> torch.Tensor:
        """(N, 69) -> (N,) energy: min over components of 0.5 Mahalanobis^2 + offset."""
        d = body_pose[:, None, :] - self.means[None]  # (N, K, 69)
        maha = torch.einsum("nki,kij,nkj->nk", d, self.precisions, d)
        return (0.5 * maha + self.offsets[None]).min(1).values

    @property
    def mean_pose(self) -> torch.Tensor:
        """(69,) the starting pose: the mean of the most probable component (smallest offset)."""
        return self.means[int(self.offsets.argmin())]

    def to(self, device: torch.device) -> PosePrior:
        return PosePrior(self.means.to(device), self.precisions.to(device), self.offsets.to(device), self.name)


def relaxed_pose() -> np.ndarray:
    """(24, 3) a relaxed standing pose: arms lowered 65 degrees, elbows bent 25 and knees 20 degrees."""
    from pipelines.smpl.pipeline import axis_rotvec

    pose = np.zeros((24, 3))
    pose[J["left_shoulder"]] = axis_rotvec("z", -65)
    pose[J["right_shoulder"]] = axis_rotvec("z", 65)
    pose[J["left_elbow"]] = axis_rotvec("y", -25)
    pose[J["right_elbow"]] = axis_rotvec("y", 25)
    pose[J["left_knee"]] = axis_rotvec("x", 20)
    pose[J["right_knee"]] = axis_rotvec("x", 20)
    return pose


def fallback_prior() -> PosePrior:
    """A documented stand-in for SMPLify's GMM: independent Gaussians around `relaxed_pose()`, per-joint std."""
    std = np.array([_FALLBACK_STD[n] for n in JOINT_NAMES[1:]]).reshape(-1)  # (69,)
    mean = torch.tensor(relaxed_pose()[1:].reshape(-1), dtype=torch.float32)
    prec = torch.diag(torch.tensor(1.0 / std**2, dtype=torch.float32))
    return PosePrior(mean[None], prec[None], torch.zeros(1), "fallback Gaussian (relaxed pose, per-joint std)")


def gmm_prior(path: Path, trusted_dir: Path | None) -> PosePrior:
    """SMPLify's GMM pose prior (`gmm_08.pkl` or an `.npz` with means (K, 69), covars (K, 69, 69), weights (K,))."""
    if path.suffix.lower() == ".npz":
        data = body_model.read_npz(path)
    elif path.suffix.lower() == ".pkl":
        if trusted_dir is None or path.resolve().parent != Path(trusted_dir).resolve():
            raise ValueError(f"{path.name}: .pkl pose priors are accepted only from --models-dir.")
        data = body_model.read_trusted_pickle(path)
    else:
        raise ValueError(f"{path.name}: a pose prior must be an .npz (or a .pkl in --models-dir).")
    try:
        means = np.asarray(data["means"], dtype=np.float64)
        covars = np.asarray(data["covars"], dtype=np.float64)
        weights = np.asarray(data["weights"], dtype=np.float64).reshape(-1)
    except KeyError as err:
        raise ValueError(f"{path.name} lacks {err.args[0]}: a GMM prior needs means, covars and weights.") from None
    k = len(weights)
    if means.shape != (k, 69) or covars.shape != (k, 69, 69) or k == 0:
        raise ValueError(
            f"{path.name}: expected means (K, 69), covars (K, 69, 69), weights (K,); got {means.shape}, {covars.shape}, {weights.shape}."
        )
    try:
        chol = np.linalg.cholesky(covars)
    except np.linalg.LinAlgError:
        raise ValueError(f"{path.name}: the covariances are not positive definite.") from None
    logdet = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1)
    offsets = -np.log(weights / weights.sum()) + 0.5 * logdet
    return PosePrior(
        torch.tensor(means, dtype=torch.float32),
        torch.tensor(np.linalg.inv(covars), dtype=torch.float32),
        torch.tensor(offsets - offsets.min(), dtype=torch.float32),
        f"GMM ({k} components) from {path.name}",
    )


def load_prior(choice: str, models_dir: Path | None) -> PosePrior:
    """The pose prior a setting names; '' looks for gmm_08.npz / gmm_08.pkl in models_dir, else the fallback."""
    if choice:
        path = Path(choice)
        if models_dir is not None and path.name == choice:
            path = Path(models_dir) / choice
        if not path.is_file():
            raise ValueError(f"Pose prior file {path.name} was not found.")
        return gmm_prior(path, models_dir)
    if models_dir is not None:
        for name in PRIOR_FILE_NAMES:
            if (Path(models_dir) / name).is_file():
                return gmm_prior(Path(models_dir) / name, models_dir)
    return fallback_prior()


# ----------------------------------------------------------------------------------------------------------------
# The objective
# ----------------------------------------------------------------------------------------------------------------


def geman_mcclure(residual: torch.Tensor, sigma: float) -> torch.Tensor:
    """sigma^2 r^2 / (sigma^2 + r^2): quadratic for small residuals, flat (sigma^2) for outliers."""
    r2 = residual * residual
    return sigma**2 * r2 / (sigma**2 + r2)


def project(points_cam: torch.Tensor, focal: float, center: torch.Tensor) -> torch.Tensor:
    """Pinhole projection of (N, P, 3) camera-frame points to (N, P, 2) pixels (OpenCV frame)."""
    z = points_cam[..., 2:].clamp(min=1e-3)
    return focal * points_cam[..., :2] / z + center


def bend_penalty(pose: torch.Tensor) -> torch.Tensor:
    """(N, 24, 3) -> (N,): sum of exp(2 * sign * angle) over elbows (y) and knees (x), large when bent backwards."""
    terms = [torch.exp((2.0 * sign * pose[:, j, axis]).clamp(max=30.0)) for j, axis, sign in BEND_TERMS]
    return torch.stack(terms, 1).sum(1)


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


def stages_of(cfg: Config) -> list[Stage]:
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
                f"stage {i + 1}", cfg.stage_iters, ("global_orient", "body_pose", "betas", "transl"), wp, ws, 3.17 * wp
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
    if stage.depth_w:
        terms["depth"] = stage.depth_w**2 * (state.transl[0, 2] - depth_init) ** 2
    return sum(terms.values()), terms


# ----------------------------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------------------------
# Synthetic cases and pictures
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Synthetic:
    keypoints: Keypoints
    betas: np.ndarray  # (B,)
    pose: np.ndarray  # (24, 3) with the global orientation in the camera frame
    transl: np.ndarray  # (3,)
    joints_cam: np.ndarray  # (24, 3) true joints in the camera frame
    verts_cam: np.ndarray  # (V, 3)


def make_synthetic(model: BodyModel, cfg: Config, num_betas: int) -> Synthetic:
    """A random plausible body (seeded) in front of a known camera; its joints projected, noised, some dropped."""
    from scipy.spatial.transform import Rotation

    from pipelines.smpl.pipeline import random_pose

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


def render_overlay(
    verts_cam: np.ndarray, faces: np.ndarray, background: np.ndarray, focal: float, center: np.ndarray, scale: float,
    color: tuple[float, float, float], alpha: float, device: torch.device,
) -> np.ndarray:  # fmt: skip
    """The mesh (camera frame, OpenCV) rendered over `background` (uint8 (h, w, 3), `scale` x the keypoint frame)."""
    from pytorch3d.utils import cameras_from_opencv_projection

    from pipelines.render import rendering

    h, w = background.shape[:2]
    k = torch.tensor(
        [[focal * scale, 0, center[0] * scale], [0, focal * scale, center[1] * scale], [0, 0, 1]], dtype=torch.float32
    )
    cams = cameras_from_opencv_projection(
        torch.eye(3)[None], torch.zeros(1, 3), k[None], torch.tensor([[h, w]], dtype=torch.float32)
    ).to(device)
    mesh = rendering.mesh_from_arrays(
        verts_cam, faces, colors=np.tile(color, (len(verts_cam), 1)), normalize=False, device=device
    )
    raster, _ = rendering.make_raster_settings((h, w), device=device)
    lights = rendering.make_lights(
        "directional", (0.3, -0.6, -1.0), ambient=(0.45,) * 3, diffuse=(0.55,) * 3, specular=(0.1,) * 3, device=device
    )
    shader = rendering.make_shader(
        "hard-phong", cameras=cams, lights=lights, materials=rendering.make_materials(shininess=20.0, device=device),
        blend_params=rendering.BlendParams(background_color=(0.0, 0.0, 0.0)), device=device,
    )  # fmt: skip
    rgba = rendering.make_renderer(cams, raster, shader)(mesh)[0].detach().cpu().numpy()  # (h, w, 4)
    mask = (rgba[..., 3:] > 0) * alpha
    out = background.astype(np.float32) / 255.0 * (1 - mask) + np.clip(rgba[..., :3], 0, 1) * mask
    return (out * 255 + 0.5).astype(np.uint8)


def draw_keypoints(
    image: np.ndarray,
    scale: float,
    targets: np.ndarray,
    conf: np.ndarray,
    fitted: np.ndarray | None,
    parents: tuple[int, ...],
    caption: str,
) -> np.ndarray:
    """Targets as green rings, the fitted skeleton in red (bones and joints), scaled by `scale`; uint8 out."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(image)
    draw = ImageDraw.Draw(img)
    r = max(2, round(min(img.size) / 110))
    if fitted is not None:
        p = fitted * scale
        for j, par in enumerate(parents):
            if par >= 0:
                draw.line([tuple(p[par]), tuple(p[j])], fill=(214, 39, 40), width=max(1, r // 2 + 1))
        for x, y in p:
            draw.ellipse([x - r * 0.8, y - r * 0.8, x + r * 0.8, y + r * 0.8], fill=(214, 39, 40))
    for (x, y), c in zip(targets * scale, conf):
        if c > 0:
            draw.ellipse(
                [x - r * 1.4, y - r * 1.4, x + r * 1.4, y + r * 1.4], outline=(20, 160, 60), width=max(1, r // 2 + 1)
            )
    if caption:
        from PIL import ImageFont

        size = max(11, img.height // 36)
        draw.rectangle([0, 0, img.width, size + 6], fill=(255, 255, 255))
        draw.text((4, 2), caption, fill=(0, 0, 0), font=ImageFont.load_default(size=size))
    return np.asarray(img)


def display_background(kp: Keypoints, max_side: int = 640) -> tuple[np.ndarray, float]:
    """The picture under the overlays (the photo, or a light canvas), at most `max_side` pixels, and its scale."""
    scale = min(1.0, max_side / max(kp.width, kp.height))
    w, h = max(1, round(kp.width * scale)), max(1, round(kp.height * scale))
    if kp.image is None:
        return np.full((h, w, 3), 242, np.uint8), scale
    from PIL import Image

    return np.asarray(Image.fromarray(kp.image).resize((w, h), Image.BILINEAR)), scale


# ----------------------------------------------------------------------------------------------------------------
# The pipeline
# ----------------------------------------------------------------------------------------------------------------


def run(cfg: Config) -> Iterator[Event]:
    """Camera stage, then four SMPLify stages; previews per stage, the loss curve, 2D and 3D errors at the end."""
    if cfg.source not in SOURCES:
        raise ValueError(f"Unknown source {cfg.source!r}: choose synthetic or upload.")
    if cfg.out_dir is None:
        raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
    if not (cfg.focal_length > 0 and math.isfinite(cfg.focal_length)):
        raise ValueError("The focal length must be a positive number of pixels.")
    if not 64 <= cfg.image_size <= 4096:
        raise ValueError("image_size must be between 64 and 4096 pixels.")
    if cfg.camera_iters < 1 or cfg.stage_iters < 1:
        raise ValueError("camera_iters and stage_iters must be at least 1.")
    stages = stages_of(cfg)
    device = resolve_device(cfg.device)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    model_cpu = body_model.load(cfg.body_model, cfg.models_dir)
    num_betas = max(1, min(cfg.num_betas, model_cpu.num_betas))
    prior = load_prior(cfg.pose_prior, cfg.models_dir).to(device)
    synthetic = make_synthetic(model_cpu, cfg, num_betas) if cfg.source == "synthetic" else None
    kp = synthetic.keypoints if synthetic else load_upload(cfg.keypoints, cfg.image)
    total = sum(s.iters for s in stages)
    yield Progress(0, total, {}, f"{model_cpu.name}, {prior.name}; {int((kp.conf > 0).sum())} keypoints ({kp.layout})")
    if synthetic is not None:
        kp.image = _synthetic_photo(synthetic, model_cpu, cfg, device)
        yield Progress(0, total, {}, "rendered the synthetic photo")
    model = model_cpu.to(device)
    jm = JointModel.of(model, num_betas)

    focal = float(cfg.focal_length)
    center = torch.tensor([kp.width / 2, kp.height / 2], dtype=torch.float32, device=device)
    target = torch.tensor(kp.xy, dtype=torch.float32, device=device)
    conf = torch.tensor(kp.conf, dtype=torch.float32, device=device)
    state = FitState(
        torch.tensor(flip_orientation(), dtype=torch.float32, device=device)[None],
        prior.mean_pose.clone()[None],
        torch.zeros(1, num_betas, device=device),
        torch.zeros(1, 3, device=device),
    )
    state.transl = init_translation(jm, state.betas, state.pose(), target, conf, focal, center)
    depth_init = state.transl[0, 2].clone()
    background, scale = display_background(kp)

    def joints_now() -> np.ndarray:
        with torch.no_grad():
            return (jm.joints(state.betas, state.pose()) + state.transl[:, None])[0].cpu().numpy()

    def err_2d(joints_cam: np.ndarray) -> float:
        proj = focal * joints_cam[:, :2] / joints_cam[:, 2:] + kp_center
        seen = kp.conf > 0
        return float(np.linalg.norm(proj[seen] - kp.xy[seen], axis=1).mean())

    kp_center = np.array([kp.width / 2, kp.height / 2])
    init_joints = joints_now()
    init_metrics = {"init_err_2d_px": err_2d(init_joints)}
    if synthetic is not None:
        init_metrics.update({f"init_{k}": v for k, v in joint_errors_mm(init_joints, synthetic.joints_cam).items()})
    overlays = [
        draw_keypoints(
            background,
            scale,
            kp.xy,
            kp.conf,
            _project_np(init_joints, focal, kp_center),
            model.parents,
            "initial guess",
        )
    ]
    yield Preview(0, image=overlays[-1], caption="initial guess: camera from torso lengths")

    step = 0
    for stage in stages:
        params = [getattr(state, name).requires_grad_(True) for name in stage.params]
        lr = 1.0
        optimizer = _lbfgs(params, lr)
        terms_now: dict[str, torch.Tensor] = {}

        def closure(
            stage: Stage = stage, params: list[torch.Tensor] = params, terms_now: dict[str, torch.Tensor] = terms_now
        ) -> torch.Tensor:
            for p in params:
                p.grad = None
            loss, terms = objective(state, jm, prior, target, conf, stage, focal, center, cfg.robust_sigma, depth_init)
            loss.backward()
            terms_now.clear()
            terms_now.update(terms)
            return loss

        for _ in range(stage.iters):
            saved = [p.detach().clone() for p in params]
            optimizer.step(closure)
            step += 1
            note = ""
            if not all(torch.isfinite(p).all() and torch.isfinite(t).all() for p, t in zip(params, terms_now.values())):
                # A line search that overshot into inf/NaN: go back and continue with shorter steps.
                with torch.no_grad():
                    for p, old in zip(params, saved):
                        p.copy_(old)
                    _, terms = objective(
                        state, jm, prior, target, conf, stage, focal, center, cfg.robust_sigma, depth_init
                    )
                terms_now.clear()
                terms_now.update(terms)
                lr *= 0.25
                optimizer = _lbfgs(params, lr)
                note = " (a step overshot; retrying with shorter steps)"
            losses = {k: float(v.detach()) for k, v in terms_now.items()}
            losses["total"] = sum(losses.values())
            losses["err_2d_px"] = err_2d(joints_now())
            yield Progress(step, total, losses, f"{stage.name}: 2D error {losses['err_2d_px']:.1f} px{note}")
        for p in params:
            p.requires_grad_(False)
        fitted = joints_now()
        caption = f"after {stage.name}: 2D error {err_2d(fitted):.1f} px"
        overlays.append(
            draw_keypoints(
                background, scale, kp.xy, kp.conf, _project_np(fitted, focal, kp_center), model.parents, caption
            )
        )
        yield Preview(step, image=overlays[-1], caption=caption)

    # The result: mesh, overlays, parameters, metrics.
    with torch.no_grad():
        verts, joints = model.forward(state.betas, state.pose(), state.transl)
    verts_cam, joints_cam = verts[0].cpu().numpy(), joints[0].cpu().numpy()
    faces = model.faces.numpy()
    metrics: dict[str, float] = {"err_2d_px": err_2d(joints_cam), **init_metrics}
    if synthetic is not None:
        metrics.update(joint_errors_mm(joints_cam, synthetic.joints_cam))
        noise_free = _project_np(synthetic.joints_cam, focal, kp_center)
        metrics["err_2d_true_px"] = float(
            np.linalg.norm(_project_np(joints_cam, focal, kp_center) - noise_free, axis=1).mean()
        )
    metrics["fit_s"] = time.perf_counter() - t_start
    metrics["camera_depth_m"] = float(state.transl[0, 2])

    files = _write_results(out_dir, cfg, model, state, verts_cam, faces, focal, kp, synthetic)
    yield Progress(total, total, {}, "wrote the fitted mesh and parameters; rendering the overlay")
    final = render_overlay(verts_cam, faces, background, focal, kp_center, scale, (0.55, 0.75, 0.95), 0.6, device)
    final = draw_keypoints(
        final,
        scale,
        kp.xy,
        kp.conf,
        _project_np(joints_cam, focal, kp_center),
        model.parents,
        f"fit: 2D error {metrics['err_2d_px']:.1f} px",
    )
    stages_img = np.concatenate([overlays[0], overlays[1], overlays[-1], final], 1)
    _save_png(final, out_dir / "overlay.png")
    _save_png(stages_img, out_dir / "stages.png")
    files["overlay"] = out_dir / "overlay.png"
    files["stages"] = out_dir / "stages.png"
    yield Preview(step, image=final, mesh=files["glb"], caption=f"fitted: 2D error {metrics['err_2d_px']:.1f} px")
    info: dict[str, Any] = {
        "model": model.summary(),
        "prior": prior.name,
        "keypoints": {"layout": kp.layout, "visible": int((kp.conf > 0).sum()), "width": kp.width, "height": kp.height},
        "params": {k: v.round(5).tolist() for k, v in state.detached().items()},
        "stages_image": stages_img,
        "overlay_image": final,
        "mesh": files["glb"],
    }
    yield Done(metrics=metrics, files=files, info=info)


def _lbfgs(params: list[torch.Tensor], lr: float) -> torch.optim.LBFGS:
    return torch.optim.LBFGS(params, lr=lr, max_iter=10, history_size=20, line_search_fn="strong_wolfe")


def _project_np(joints_cam: np.ndarray, focal: float, center: np.ndarray) -> np.ndarray:
    return focal * joints_cam[:, :2] / np.maximum(joints_cam[:, 2:], 1e-3) + center


def _synthetic_photo(syn: Synthetic, model: BodyModel, cfg: Config, device: torch.device) -> np.ndarray:
    """The 'photo' of a synthetic case: the true body rendered through the known camera on a light background."""
    size = cfg.image_size
    canvas = np.full((size, size, 3), 236, np.uint8)
    return render_overlay(
        syn.verts_cam,
        model.faces.numpy(),
        canvas,
        cfg.focal_length,
        np.array([size / 2, size / 2]),
        1.0,
        (0.86, 0.7, 0.6),
        1.0,
        device,
    )


def _write_results(
    out_dir: Path, cfg: Config, model: BodyModel, state: FitState, verts_cam: np.ndarray, faces: np.ndarray,
    focal: float, kp: Keypoints, synthetic: Synthetic | None,
) -> dict[str, Path]:  # fmt: skip
    from pipelines.smpl.pipeline import export_glb, export_obj

    upright = verts_cam * np.array([1.0, -1.0, -1.0])  # camera frame -> Y up, facing the viewer (glTF)
    upright = upright - upright.mean(0)
    files = {
        "glb": export_glb(upright, faces, np.tile((0.55, 0.75, 0.95), (len(upright), 1)), out_dir / "fit.glb"),
        "obj": export_obj(upright, faces, out_dir / "fit.obj"),
    }
    params = {k: v.tolist() for k, v in state.detached().items()}
    params.update(focal_length=focal, image_size=[kp.width, kp.height], body_model=model.name, frame="OpenCV camera")
    if synthetic is not None:
        params["truth"] = {
            "betas": synthetic.betas.tolist(),
            "pose": synthetic.pose.tolist(),
            "transl": synthetic.transl.tolist(),
        }
    (out_dir / "params.json").write_text(json.dumps(params, indent=1))
    files["params"] = out_dir / "params.json"
    if synthetic is not None:
        flat = np.concatenate([kp.xy, kp.conf[:, None]], 1).reshape(-1)
        doc = {
            "format": "SMPL-24 joints in SMPL order",
            "image_size": [kp.width, kp.height],
            "people": [{"pose_keypoints_2d": flat.round(3).tolist()}],
        }
        (out_dir / "keypoints.json").write_text(json.dumps(doc))
        files["keypoints"] = out_dir / "keypoints.json"
        if kp.image is not None:
            _save_png(kp.image, out_dir / "image.png")
            files["image"] = out_dir / "image.png"
    return files


def _save_png(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(image).save(path)
