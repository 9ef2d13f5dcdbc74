"""SMPLify's pose priors: the GMM learnt from motion capture (an operator's `gmm_08` file) or a documented fallback
Gaussian, and the penalty on elbows and knees bent the unnatural way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipelines.smpl.layout import JOINT_NAMES
from pipelines.smpl.model_files import read_npz, read_trusted_pickle
from pipelines.smpl.poses import axis_rotvec

J = {n: i for i, n in enumerate(JOINT_NAMES)}
PRIOR_FILE_NAMES = ("gmm_08.pkl", "gmm_08.npz")
"""The official SMPLify GMM pose prior, looked for in --models-dir."""

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
        data = read_npz(path)
    elif path.suffix.lower() == ".pkl":
        if trusted_dir is None or path.resolve().parent != Path(trusted_dir).resolve():
            raise ValueError(f"{path.name}: .pkl pose priors are accepted only from --models-dir.")
        data = read_trusted_pickle(path)
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


def bend_penalty(pose: torch.Tensor) -> torch.Tensor:
    """(N, 24, 3) -> (N,): sum of exp(2 * sign * angle) over elbows (y) and knees (x), large when bent backwards."""
    terms = [torch.exp((2.0 * sign * pose[:, j, axis]).clamp(max=30.0)) for j, axis, sign in BEND_TERMS]
    return torch.stack(terms, 1).sum(1)
