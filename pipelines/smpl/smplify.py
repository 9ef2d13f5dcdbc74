"""SMPLify: fit body pose, shape and camera translation to 2D keypoints (synthetic or OpenPose-style uploads).

Camera convention: the keypoints' own pixel frame, as OpenPose writes it (OpenCV: x right, y down, the camera
looks along +Z). The body's frame is SMPL's (+Y up, facing +Z); its initial global orientation is a half turn
about X, which stands it upright in front of the camera, facing it. Renders convert to PyTorch3D with
`cameras_from_opencv_projection`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.core.device import resolve_device
from pipelines.core.events import Done, Event, Preview, Progress
from pipelines.core.headline import Headline
from pipelines.render.book_figures import BookFigure
from pipelines.smpl import body_model
from pipelines.smpl.body_model import BodyModel
from pipelines.smpl.keypoints import Keypoints, load_upload
from pipelines.smpl.priors import PRIOR_FILE_NAMES, PosePrior, load_prior
from pipelines.smpl.smplify_fit import (
    FitState,
    JointModel,
    Stage,
    fit_stage,
    flip_orientation,
    flipped,
    init_translation,
    shoulders_px,
    stages_of,
)
from pipelines.smpl.smplify_metrics import joint_errors_mm
from pipelines.smpl.smplify_pictures import display_background, draw_keypoints, project_np, render_overlay, save_png
from pipelines.smpl.smplify_results import write_results
from pipelines.smpl.smplify_synthetic import Synthetic, make_synthetic, synthetic_photo

HEADLINE = (
    Headline("mpjpe_mm", "Joint error", "mm", "init_mpjpe_mm"),
    Headline("err_2d_px", "2D error", "px", "init_err_2d_px"),
)
"""The result card's numbers: 3D joint error after pelvis alignment (synthetic cases) and 2D keypoint error."""

SOURCES = ("synthetic", "upload")
OPTIONAL_FILES = {"SMPLify GMM pose prior": PRIOR_FILE_NAMES}
"""Files an operator may put in --models-dir for this pipeline (the Health panel collects them)."""


FIGURES = (
    BookFigure(
        "8 (SMPLify)",
        "SMPLify stage by stage",
        "Chapter 8 fits SMPL to 2D keypoints: the camera from the torso first, then four stages of pose, shape and "
        "camera with falling prior weights, drawing the projected joints over the picture after each stage.",
        "smplify",
        {},
        "stages",
    ),
)
"""The book's chapter-8 fit as a figure."""


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
    interpenetration_weight: float = 10.0
    """Weight (squared in the objective) of the interpenetration term: overlapping spheres of body parts that must
    not meet (forearms and torso, the legs); 0 = off."""
    flip_threshold_px: float = 25.0
    """SMPLify's pix_thsh: when the shoulders are closer than this in the picture, the fit is run facing both ways
    (the orientation and its half turn about the body's vertical) and the better one is kept; 0 = off."""
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


@dataclass
class _Fit:
    """One run's working set: the model and prior on the device, the keypoint targets, the unknowns, the picture."""

    model: BodyModel  # on the run's device
    jm: JointModel
    prior: PosePrior
    kp: Keypoints
    synthetic: Synthetic | None
    focal: float
    center: torch.Tensor  # (2,) principal point, pixels
    target: torch.Tensor  # (24, 2) keypoints, pixels
    conf: torch.Tensor  # (24,)
    state: FitState
    depth_init: torch.Tensor  # the camera stage's first depth guess
    background: np.ndarray  # uint8 (h, w, 3) under the overlays
    scale: float  # background pixels per keypoint pixel
    kp_center: np.ndarray  # (2,) principal point, pixels
    device: torch.device

    def joints_now(self) -> np.ndarray:
        """(24, 3) the current fit's joints in the camera frame."""
        with torch.no_grad():
            return (self.jm.joints(self.state.betas, self.state.pose()) + self.state.transl[:, None])[0].cpu().numpy()

    def err_2d(self, joints_cam: np.ndarray) -> float:
        """Mean distance in pixels between the projected joints and the keypoints that were seen."""
        proj = self.focal * joints_cam[:, :2] / joints_cam[:, 2:] + self.kp_center
        seen = self.kp.conf > 0
        return float(np.linalg.norm(proj[seen] - self.kp.xy[seen], axis=1).mean())

    def overlay(self, joints_cam: np.ndarray, caption: str, image: np.ndarray | None = None) -> np.ndarray:
        """The keypoints and the skeleton of `joints_cam` drawn over `image` (default: the background)."""
        projected = project_np(joints_cam, self.focal, self.kp_center)
        picture = self.background if image is None else image
        return draw_keypoints(picture, self.scale, self.kp.xy, self.kp.conf, projected, self.model.parents, caption)


def run(cfg: Config) -> Iterator[Event]:
    """Camera stage, then four SMPLify stages; previews per stage, the loss curve, 2D and 3D errors at the end."""
    _check(cfg)
    stages = stages_of(cfg)
    device = resolve_device(cfg.device)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    total = sum(s.iters for s in stages)
    fit = yield from _setup(cfg, device, total)
    if 0 < shoulders_px(fit.target, fit.conf) < cfg.flip_threshold_px:
        total += sum(s.iters for s in stages[1:])  # the fit runs facing both ways

    init_joints = fit.joints_now()
    init_metrics = {"init_err_2d_px": fit.err_2d(init_joints)}
    if fit.synthetic is not None:
        init_metrics.update({f"init_{k}": v for k, v in joint_errors_mm(init_joints, fit.synthetic.joints_cam).items()})
    overlays = [fit.overlay(init_joints, "initial guess")]
    yield Preview(0, image=overlays[-1], caption="initial guess: camera from torso lengths")

    step = yield from _stages(cfg, fit, stages[:1], 0, total, overlays)
    both_ways = 0 < shoulders_px(fit.target, fit.conf) < cfg.flip_threshold_px
    if both_ways:
        start = FitState(
            *(
                t.detach().clone()
                for t in (fit.state.global_orient, fit.state.body_pose, fit.state.betas, fit.state.transl)
            )
        )
        step = yield from _stages(cfg, fit, stages[1:], step, total, overlays)
        kept, fit.state = fit.state, start
        fit.state.global_orient = flipped(start.global_orient)
        step = yield from _stages(cfg, fit, stages[1:], step, total, overlays, " (turned)")
        if fit.err_2d(fit.joints_now()) > _err_of(fit, kept):
            fit.state = kept
    else:
        step = yield from _stages(cfg, fit, stages[1:], step, total, overlays)

    # The result: mesh, overlays, parameters, metrics.
    with torch.no_grad():
        verts, joints = fit.model.forward(fit.state.betas, fit.state.pose(), fit.state.transl)
    verts_cam, joints_cam = verts[0].cpu().numpy(), joints[0].cpu().numpy()
    metrics: dict[str, float] = {"err_2d_px": fit.err_2d(joints_cam), **init_metrics, **_truth_errors(fit, joints_cam)}
    metrics["fit_s"] = time.perf_counter() - t_start
    metrics["camera_depth_m"] = float(fit.state.transl[0, 2])
    yield from _write_and_show(fit, out_dir, overlays, verts_cam, joints_cam, metrics, step, total)


def _stages(
    cfg: Config, fit: _Fit, stages: list[Stage], step: int, total: int, overlays: list[np.ndarray], label: str = ""
) -> Generator[Event, None, int]:
    """Run `stages` on `fit.state` in place, streaming progress and one overlay per stage; returns the step count."""
    for stage in stages:
        fitting = fit_stage(
            fit.state, fit.jm, fit.prior, fit.target, fit.conf, stage, fit.focal, fit.center, cfg.robust_sigma,
            fit.depth_init,
        )  # fmt: skip
        for losses, note in fitting:
            step += 1
            losses["err_2d_px"] = fit.err_2d(fit.joints_now())
            yield Progress(step, total, losses, f"{stage.name}{label}: 2D error {losses['err_2d_px']:.1f} px{note}")
        fitted = fit.joints_now()
        caption = f"after {stage.name}{label}: 2D error {fit.err_2d(fitted):.1f} px"
        overlays.append(fit.overlay(fitted, caption))
        yield Preview(step, image=overlays[-1], caption=caption)
    return step


def _err_of(fit: _Fit, state: FitState) -> float:
    """The 2D error of another state of the same fit."""
    current, fit.state = fit.state, state
    try:
        return fit.err_2d(fit.joints_now())
    finally:
        fit.state = current


def _check(cfg: Config) -> None:
    """Refuse settings that cannot work, with one sentence each (before anything is loaded or written)."""
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


def _setup(cfg: Config, device: torch.device, total: int) -> Generator[Event, None, _Fit]:
    """Load the model and the prior, make or read the keypoints, and start the unknowns at the first camera guess."""
    model_cpu = body_model.load(cfg.body_model, cfg.models_dir)
    num_betas = max(1, min(cfg.num_betas, model_cpu.num_betas))
    prior = load_prior(cfg.pose_prior, cfg.models_dir).to(device)
    synthetic = make_synthetic(model_cpu, cfg, num_betas) if cfg.source == "synthetic" else None
    kp = synthetic.keypoints if synthetic else load_upload(cfg.keypoints, cfg.image)
    yield Progress(0, total, {}, f"{model_cpu.name}, {prior.name}; {int((kp.conf > 0).sum())} keypoints ({kp.layout})")
    if synthetic is not None:
        kp.image = synthetic_photo(synthetic, model_cpu, cfg, device)
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
    kp_center = np.array([kp.width / 2, kp.height / 2])
    return _Fit(
        model, jm, prior, kp, synthetic, focal, center, target, conf, state, depth_init, background, scale, kp_center,
        device,
    )  # fmt: skip


def _truth_errors(fit: _Fit, joints_cam: np.ndarray) -> dict[str, float]:
    """For a synthetic case, the 3D joint errors and the 2D error against the noise-free keypoints; else nothing."""
    if fit.synthetic is None:
        return {}
    errors = joint_errors_mm(joints_cam, fit.synthetic.joints_cam)
    noise_free = project_np(fit.synthetic.joints_cam, fit.focal, fit.kp_center)
    errors["err_2d_true_px"] = float(
        np.linalg.norm(project_np(joints_cam, fit.focal, fit.kp_center) - noise_free, axis=1).mean()
    )
    return errors


def _write_and_show(
    fit: _Fit, out_dir: Path, overlays: list[np.ndarray], verts_cam: np.ndarray, joints_cam: np.ndarray,
    metrics: dict[str, float], step: int, total: int,
) -> Iterator[Event]:  # fmt: skip
    """Write the files, render the fitted mesh over the picture (the last preview), and end with `Done`."""
    faces = fit.model.faces.cpu().numpy()
    files = write_results(out_dir, fit.model, fit.state, verts_cam, faces, fit.focal, fit.kp, fit.synthetic)
    yield Progress(total, total, {}, "wrote the fitted mesh and parameters; rendering the overlay")
    final = render_overlay(
        verts_cam, faces, fit.background, fit.focal, fit.kp_center, fit.scale, (0.55, 0.75, 0.95), 0.6, fit.device
    )
    final = fit.overlay(joints_cam, f"fit: 2D error {metrics['err_2d_px']:.1f} px", image=final)
    stages_img = np.concatenate([overlays[0], overlays[1], overlays[-1], final], 1)
    save_png(final, out_dir / "overlay.png")
    save_png(stages_img, out_dir / "stages.png")
    files["overlay"] = out_dir / "overlay.png"
    files["stages"] = out_dir / "stages.png"
    yield Preview(step, image=final, mesh=files["glb"], caption=f"fitted: 2D error {metrics['err_2d_px']:.1f} px")
    kp = fit.kp
    info: dict[str, Any] = {
        "model": fit.model.summary(),
        "prior": fit.prior.name,
        "keypoints": {"layout": kp.layout, "visible": int((kp.conf > 0).sum()), "width": kp.width, "height": kp.height},
        "params": {k: v.round(5).tolist() for k, v in fit.state.detached().items()},
        "stages_image": stages_img,
        "overlay_image": final,
        "mesh": files["glb"],
    }
    yield Done(metrics=metrics, files=files, info=info)
