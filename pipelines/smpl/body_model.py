"""The SMPL body model: validated arrays as tensors on one device, posed by `lbs`, and the one loader every file
(official SMPL or the procedural body) goes through.

Coordinate frame and file layout: see `pipelines.smpl.layout`. Reading files: `model_files`; the LBS maths:
`lbs`; the procedural default body: `procedural_body`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.smpl.layout import MAX_VERTICES, NUM_JOINTS, REQUIRED_KEYS, BodyModelError
from pipelines.smpl.lbs import lbs
from pipelines.smpl.model_files import (
    PROCEDURAL,
    PROCEDURAL_PATH,
    dense,
    read_model_file,
    resolve_model_path,
)
from pipelines.smpl.procedural_body import build_procedural_body


@dataclass(frozen=True)
class BodyModel:
    """A loaded body model on one device. Tensor shapes as in `layout`'s docstring; `parents` from the kintree."""

    v_template: torch.Tensor  # (V, 3)
    shapedirs: torch.Tensor  # (V, 3, B)
    posedirs: torch.Tensor  # (V, 3, 9 (J - 1))
    j_regressor: torch.Tensor  # (J, V)
    weights: torch.Tensor  # (V, J)
    faces: torch.Tensor  # (F, 3) long
    parents: tuple[int, ...]
    name: str = PROCEDURAL
    source: str = ""

    @property
    def num_verts(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[2])

    @property
    def num_joints(self) -> int:
        return len(self.parents)

    @property
    def device(self) -> torch.device:
        return self.v_template.device

    def to(self, device: torch.device | str, dtype: torch.dtype = torch.float32) -> BodyModel:
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype)

        return BodyModel(
            move(self.v_template),
            move(self.shapedirs),
            move(self.posedirs),
            move(self.j_regressor),
            move(self.weights),
            self.faces.to(device),
            self.parents,
            self.name,
            self.source,
        )

    def forward(
        self,
        betas: torch.Tensor | None = None,
        pose: torch.Tensor | None = None,
        transl: torch.Tensor | None = None,
        *,
        return_verts: bool = True,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Posed (verts (N, V, 3) or None, joints (N, J, 3)) for betas (N, B<=num_betas), pose (N, J, 3), transl (N, 3)."""
        ref = pose if pose is not None else betas
        n = 1 if ref is None else ref.shape[0]
        dtype, device = self.v_template.dtype, self.device
        if betas is None:
            betas = torch.zeros(n, self.num_betas, dtype=dtype, device=device)
        if betas.shape[1] > self.num_betas:
            raise ValueError(f"The body model has {self.num_betas} shape coefficients; {betas.shape[1]} were given.")
        if pose is None:
            pose = torch.zeros(n, self.num_joints, 3, dtype=dtype, device=device)
        verts, joints = lbs(
            betas,
            pose,
            self.v_template,
            self.shapedirs,
            self.posedirs,
            self.j_regressor,
            self.parents,
            self.weights,
            return_verts=return_verts,
        )
        if transl is not None:
            joints = joints + transl[:, None]
            verts = None if verts is None else verts + transl[:, None]
        return verts, joints

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "vertices": self.num_verts,
            "faces": int(self.faces.shape[0]),
            "joints": self.num_joints,
            "shape_coefficients": self.num_betas,
            "pose_blend_coefficients": int(self.posedirs.shape[2]),
            "pose_blend_shapes_nonzero": bool(self.posedirs.abs().max() > 0),
        }


def parents_from_kintree(kintree: np.ndarray) -> tuple[int, ...]:
    """Parent index of each joint from a (2, J) kintree table (root: a parent id that names no joint)."""
    ids = [int(i) for i in kintree[1]]
    index = {jid: col for col, jid in enumerate(ids)}
    if len(index) != len(ids):
        raise BodyModelError("kintree_table names the same joint twice.")
    parents = []
    for col, parent_id in enumerate(kintree[0]):
        parent = index.get(int(parent_id), -1)
        parents.append(parent)
        if col > 0 and not 0 <= parent < col:
            raise BodyModelError(
                f"kintree_table must list each joint after its parent (joint {col} has parent {int(parent_id)})."
            )
    if parents[0] != -1:
        raise BodyModelError("kintree_table: the first joint must be the root (its parent names no joint).")
    return tuple(parents)


def from_arrays(arrays: dict[str, Any], *, name: str, source: str = "") -> BodyModel:
    """Validate arrays in the SMPL layout and return a CPU float32 `BodyModel` (every loader ends here)."""
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise BodyModelError(
            f"{name} is missing {', '.join(missing)}: an SMPL model file needs {', '.join(REQUIRED_KEYS)}."
        )
    a = {k: dense(arrays[k], k, name) for k in REQUIRED_KEYS}
    v_template = a["v_template"]
    if v_template.ndim != 2 or v_template.shape[1] != 3 or v_template.shape[0] < 4:
        raise BodyModelError(f"{name}: v_template must have shape (V, 3); it has {v_template.shape}.")
    nv = v_template.shape[0]
    if nv > MAX_VERTICES:
        raise BodyModelError(f"{name}: {nv} vertices is more than the {MAX_VERTICES} this app accepts.")
    kintree = a["kintree_table"]
    if kintree.ndim != 2 or kintree.shape[0] != 2:
        raise BodyModelError(f"{name}: kintree_table must have shape (2, J); it has {kintree.shape}.")
    nj = kintree.shape[1]
    if nj != NUM_JOINTS:
        raise BodyModelError(
            f"{name}: the kinematic tree has {nj} joints; this app uses SMPL's {NUM_JOINTS}-joint tree."
        )
    parents = parents_from_kintree(kintree.astype(np.int64))
    expect = {
        "shapedirs": (nv, 3, None),
        "posedirs": (nv, 3, 9 * (nj - 1)),
        "J_regressor": (nj, nv),
        "weights": (nv, nj),
        "f": (None, 3),
    }
    for key, shape in expect.items():
        arr = a[key]
        if arr.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, arr.shape)):
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise BodyModelError(f"{name}: {key} must have shape {want} to match the template; it has {arr.shape}.")
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        if not np.issubdtype(a[key].dtype, np.number) or not np.isfinite(a[key]).all():
            raise BodyModelError(f"{name}: {key} must hold finite numbers.")
    faces = a["f"]
    if not np.issubdtype(faces.dtype, np.integer) and not np.all(np.mod(faces, 1) == 0):
        raise BodyModelError(f"{name}: f must hold integer vertex indices.")
    faces = faces.astype(np.int64)
    if faces.size == 0 or faces.min() < 0 or faces.max() >= nv:
        raise BodyModelError(f"{name}: face indices must lie in [0, {nv - 1}].")
    sums = a["weights"].sum(1)
    if np.abs(sums - 1.0).max() > 1e-3:
        raise BodyModelError(f"{name}: each vertex's skinning weights must sum to 1 (one sums to {sums.min():.3f}).")

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    return BodyModel(
        t(v_template),
        t(a["shapedirs"]),
        t(a["posedirs"]),
        t(a["J_regressor"]),
        t(a["weights"]),
        torch.from_numpy(faces),
        parents,
        name,
        source,
    )


def load_body_model(path: str | Path, *, trusted_dir: Path | None = None) -> BodyModel:
    """Load an SMPL-layout model from `.npz` (never unpickles) or `.pkl` (only from the operator's `trusted_dir`).

    `.pkl` files go through a restricted unpickler (`model_files.read_model_file`), so a hostile pickle cannot run
    code, and chumpy is not needed.
    """
    path = Path(path)
    return from_arrays(read_model_file(path, trusted_dir=trusted_dir), name=path.name, source=str(path))


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime: float, size: int, trusted_dir: str | None) -> BodyModel:
    del mtime, size  # part of the cache key only: a replaced file is read again
    return load_body_model(path, trusted_dir=None if trusted_dir is None else Path(trusted_dir))


def load(choice: str = "", models_dir: Path | None = None) -> BodyModel:
    """The body model a `body_model` setting names (see `resolve_model_path`), cached while the file is unchanged.

    The procedural body loads from `assets/procedural_body.npz` through the same loader as an official file; if
    that asset is missing it is rebuilt in memory (a few seconds) and validated by the same code.
    """
    path = resolve_model_path(choice, models_dir)
    if path is None:
        if PROCEDURAL_PATH.is_file():
            path = PROCEDURAL_PATH
        else:
            return _procedural_in_memory()
    if not path.is_file():
        raise BodyModelError(f"Body model file {path.name} was not found.")
    st = path.stat()
    trusted = None if models_dir is None else str(Path(models_dir).resolve())
    return _load_cached(str(path.resolve()), st.st_mtime, st.st_size, trusted)


@functools.lru_cache(maxsize=1)
def _procedural_in_memory() -> BodyModel:
    return from_arrays(build_procedural_body(), name=PROCEDURAL, source="built in memory")
