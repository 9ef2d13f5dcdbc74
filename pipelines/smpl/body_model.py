"""The SMPL body model: one loader for the SMPL file layout, one LBS function, and the procedural default body.

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

import functools
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.core.paths import ASSETS_DIR

PROCEDURAL_PATH = ASSETS_DIR / "procedural_body.npz"
PROCEDURAL = "procedural"

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


# ----------------------------------------------------------------------------------------------------------------
# Linear blend skinning: pure functions of tensors
# ----------------------------------------------------------------------------------------------------------------


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula, (..., 3) axis-angle -> (..., 3, 3) rotation matrices.

    R = I + a K + b K^2 with K the cross-product matrix of r, a = sin(t)/t, b = (1 - cos t)/t^2 and
    K^2 = r r^T - t^2 I. Below 1e-4 rad a and b switch to their Taylor series, so gradients stay finite at zero.
    Written with elementwise products: tiny batched matmuls are slow on a busy multi-threaded CPU.
    """
    theta2 = (rotvec * rotvec).sum(-1)[..., None, None]  # (..., 1, 1)
    small = theta2 < 1e-8
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)
    theta = safe2.sqrt()
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / safe2)
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*rotvec.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device)
    outer = rotvec[..., :, None] * rotvec[..., None, :]
    return eye * (1.0 - b * theta2) + a * k + b * outer


def _mm3(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) @ (..., 3, k) by broadcasting: for 3x3 blocks this beats a batched matmul call on the CPU."""
    return (a[..., :, :, None] * b[..., None, :, :]).sum(-2)


def _left_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(R, K) @ (N, K, C) -> (N, R, C) as one 2D matmul (a broadcast batched matmul is much slower on a CPU)."""
    n, k, c = b.shape
    return (a @ b.permute(1, 0, 2).reshape(k, n * c)).reshape(-1, n, c).permute(1, 0, 2)


def forward_kinematics(
    rot: torch.Tensor, joints_rest: torch.Tensor, parents: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """World rotations (N, J, 3, 3) and posed joints (N, J, 3) from local rotations (N, J, 3, 3) and rest joints
    (N, J, 3): each joint turns about its rest position, then follows its parent (parents[j] < j)."""
    world_rot: list[torch.Tensor] = [rot[:, 0]]
    world_pos: list[torch.Tensor] = [joints_rest[:, 0]]
    for j in range(1, len(parents)):
        p = parents[j]
        offset = joints_rest[:, j] - joints_rest[:, p]  # (N, 3)
        world_pos.append(world_pos[p] + (world_rot[p] * offset[:, None, :]).sum(-1))
        world_rot.append(_mm3(world_rot[p], rot[:, j]))
    return torch.stack(world_rot, 1), torch.stack(world_pos, 1)


def lbs(
    betas: torch.Tensor,
    pose: torch.Tensor,
    v_template: torch.Tensor,
    shapedirs: torch.Tensor,
    posedirs: torch.Tensor,
    j_regressor: torch.Tensor,
    parents: tuple[int, ...],
    weights: torch.Tensor,
    *,
    return_verts: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """SMPL's linear blend skinning for a batch of N bodies.

    Args:
        betas: (N, B) shape coefficients (B <= the model's shape directions; the rest count as zero).
        pose: (N, J, 3) axis-angle rotation of every joint relative to its parent; joint 0 is the global orientation.
        v_template: (V, 3) mean-shape rest vertices.
        shapedirs: (V, 3, B') shape blend shapes, B' >= B.
        posedirs: (V, 3, 9 (J - 1)) pose blend shapes.
        j_regressor: (J, V) joint regressor.
        parents: J parent indices, parents[0] == -1, parents[j] < j.
        weights: (V, J) skinning weights.
        return_verts: False skips the vertices (SMPLify's data term needs only the joints).

    Returns:
        verts (N, V, 3) posed vertices (None when `return_verts` is False) and joints (N, J, 3) posed joints.

    Steps: shape the template (v_template + shapedirs . betas), regress rest joints from it, add the pose blend
    shapes driven by (R_j - I) for j >= 1, pose the joints down the kinematic tree, then move every vertex by the
    weighted sum of its joints' rigid transforms.
    """
    n, num_betas = betas.shape
    num_joints = len(parents)
    num_verts = v_template.shape[0]
    # Plain 2D matmuls: einsum would batch over the vertices here, which is far slower on a CPU.
    shape_offsets = betas @ shapedirs[..., :num_betas].reshape(num_verts * 3, num_betas).T  # (N, V * 3)
    v_shaped = v_template + shape_offsets.reshape(n, num_verts, 3)  # (N, V, 3)
    joints_rest = _left_mm(j_regressor, v_shaped)  # (N, J, 3)
    rot = axis_angle_to_matrix(pose.reshape(n, num_joints, 3))  # (N, J, 3, 3)
    rots, joints = forward_kinematics(rot, joints_rest, parents)
    if not return_verts:
        return None, joints

    eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
    pose_feature = (rot[:, 1:] - eye).reshape(n, -1)  # (N, 9 (J - 1))
    pose_offsets = pose_feature @ posedirs.reshape(num_verts * 3, -1).T  # (N, V * 3)
    v_posed = v_shaped + pose_offsets.reshape(n, num_verts, 3)  # (N, V, 3)
    # The transform that carries a rest-pose point near joint j to its posed place: x -> R_j (x - j_rest) + j_posed.
    trans = joints - (rots * joints_rest[:, :, None, :]).sum(-1)  # (N, J, 3)
    blend = torch.cat([rots.reshape(n, num_joints, 9), trans], -1)  # (N, J, 12)
    per_vertex = _left_mm(weights, blend)  # (N, V, 12)
    # v' = M v + t per vertex, with M's columns taken one at a time (a sum over a size-3 axis is slow on a CPU).
    m = per_vertex[..., :9].reshape(n, -1, 3, 3)
    verts = (
        per_vertex[..., 9:]
        + m[..., 0] * v_posed[..., 0:1]
        + m[..., 1] * v_posed[..., 1:2]
        + m[..., 2] * v_posed[..., 2:3]
    )
    return verts, joints


# ----------------------------------------------------------------------------------------------------------------
# The model: validated arrays as tensors
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BodyModel:
    """A loaded body model on one device. Tensor shapes as in the module docstring; `parents` from the kintree."""

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
    a = {k: _dense(arrays[k], k, name) for k in REQUIRED_KEYS}
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


def _dense(value: Any, key: str, name: str) -> np.ndarray:
    if hasattr(value, "toarray"):  # scipy.sparse (the official J_regressor)
        value = value.toarray()
    if isinstance(value, _ChumpyArray):
        value = value.array
    arr = np.asarray(value)
    if arr.dtype == object:
        raise BodyModelError(f"{name}: {key} is not a numeric array.")
    return arr


# ----------------------------------------------------------------------------------------------------------------
# Loading files
# ----------------------------------------------------------------------------------------------------------------


def load_body_model(path: str | Path, *, trusted_dir: Path | None = None) -> BodyModel:
    """Load an SMPL-layout model from `.npz` (never unpickles) or `.pkl` (only from the operator's `trusted_dir`).

    `.pkl` files go through a restricted unpickler that builds only numpy arrays, scipy sparse matrices and
    stand-ins for chumpy arrays, so a hostile pickle cannot run code, and chumpy is not needed.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise BodyModelError(f"Body model file {name} was not found.")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return from_arrays(read_npz(path), name=name, source=str(path))
    if suffix == ".pkl":
        if trusted_dir is None or path.resolve().parent != Path(trusted_dir).resolve():
            raise BodyModelError(
                f"{name}: .pkl body models are accepted only from the operator's --models-dir; upload an .npz instead."
            )
        return from_arrays(read_trusted_pickle(path), name=name, source=str(path))
    raise BodyModelError(f"{name}: a body model must be an .npz file (or a .pkl in --models-dir).")


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an `.npz`, read with `allow_pickle=False`; object arrays are refused with a clear message."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise BodyModelError(f"{path.name} is not a readable .npz archive.") from err
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise BodyModelError(f"{path.name} is a single .npy array, not an .npz archive of named arrays.")
    try:
        with archive as data:
            out = {}
            for key in data.files:
                try:
                    out[key] = data[key]
                except ValueError as err:
                    if key in REQUIRED_KEYS:
                        raise BodyModelError(
                            f"{path.name}: {key} is stored as Python objects (pickle), which this app does not load; "
                            "save it as a plain numeric array."
                        ) from err
            return out
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise BodyModelError(f"{path.name} is not a readable .npz archive ({err}).") from err


class _ChumpyArray:
    """Stands in for a pickled chumpy array: keeps only its value (`x`)."""

    def __setstate__(self, state: Any) -> None:
        self.array = np.asarray(state.get("x") if isinstance(state, dict) else state)


def _stub(*_args: Any) -> _ChumpyArray:
    return _ChumpyArray()


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds numpy arrays, scipy sparse matrices and chumpy stand-ins, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in ("_reconstruct", "scalar"):
            return getattr((getattr(np, "_core", None) or np.core).multiarray, name)
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module.startswith("numpy") and name == "dtype":
            return np.dtype
        if module.startswith("scipy.sparse") and name in ("csc_matrix", "csr_matrix", "coo_matrix"):
            import scipy.sparse

            return getattr(scipy.sparse, name)
        if module == "_codecs" and name == "encode":  # how protocol-2 pickles store bytes
            import codecs

            return codecs.encode
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _reconstructor
        if module in ("__builtin__", "builtins") and name == "object":
            return object
        if module.startswith("chumpy"):
            return _ChumpyArray
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    if base is not object:
        raise pickle.UnpicklingError("refusing to rebuild a non-plain object")
    return object.__new__(cls)


def read_trusted_pickle(path: Path) -> dict[str, Any]:
    """A pickled dict of arrays (official SMPL/GMM `.pkl`, Python 2 or 3) through the restricted unpickler."""
    try:
        with open(path, "rb") as fh:
            data = _RestrictedUnpickler(io.BytesIO(fh.read()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError, ImportError) as err:
        raise BodyModelError(f"{path.name} could not be read as a pickled dict of arrays ({err}).") from err
    if not isinstance(data, dict):
        raise BodyModelError(f"{path.name} does not hold a dict of arrays.")
    return {str(k): (v.array if isinstance(v, _ChumpyArray) else v) for k, v in data.items()}


OFFICIAL_MODEL_NAMES = (
    "SMPL_NEUTRAL.npz",
    "SMPL_MALE.npz",
    "SMPL_FEMALE.npz",
    "SMPL_NEUTRAL.pkl",
    "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl",
)
"""The official SMPL file names looked for in --models-dir, in order of preference."""


def official_model_names() -> tuple[str, ...]:
    """The SMPL file names looked for in --models-dir (the Health panel lists them too)."""
    return OFFICIAL_MODEL_NAMES


def find_models(models_dir: Path | None) -> list[Path]:
    """SMPL model files in the operator's folder: the known names first, then other `*smpl*.npz|pkl` files."""
    if models_dir is None or not Path(models_dir).is_dir():
        return []
    models_dir = Path(models_dir)
    found = [models_dir / n for n in official_model_names() if (models_dir / n).is_file()]
    for p in sorted(models_dir.iterdir()):
        if p.is_file() and p.suffix.lower() in (".npz", ".pkl") and "smpl" in p.name.lower() and p not in found:
            found.append(p)
    return found


def resolve_model_path(choice: str, models_dir: Path | None) -> Path | None:
    """The file a `body_model` setting names: '' = the first official model in `models_dir`, else procedural
    (None); 'procedural' = None; a bare file name is looked up in `models_dir`; anything else is a path."""
    choice = (choice or "").strip()
    if choice.lower() == PROCEDURAL:
        return None
    if not choice:
        found = find_models(models_dir)
        return found[0] if found else None
    path = Path(choice)
    if models_dir is not None and path.name == choice and (Path(models_dir) / choice).is_file():
        return Path(models_dir) / choice
    return path


def model_in_use(models_dir: Path | None) -> str:
    """One line for the Health panel: which body model the SMPL tab uses by default."""
    path = resolve_model_path("", models_dir)
    if path is None:
        return f"procedural body ({PROCEDURAL_PATH.name}); no SMPL file in --models-dir"
    return f"{path.name} from --models-dir"


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


# ----------------------------------------------------------------------------------------------------------------
# The procedural body: a closed surface from blended capsules and ellipsoids, rigged in the SMPL layout
# ----------------------------------------------------------------------------------------------------------------

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


def _limb(a: tuple, b: tuple, ra: float, rb: float) -> tuple:
    return ("cone", np.array(a, float), np.array(b, float), ra, rb)


def _blob(c: tuple, r: tuple) -> tuple:
    return ("ellipsoid", np.array(c, float), np.array(r, float))


def _mirror(prim: tuple) -> tuple:
    flip = np.array([-1.0, 1.0, 1.0])
    if prim[0] == "cone":
        return ("cone", prim[1] * flip, prim[2] * flip, prim[3], prim[4])
    return ("ellipsoid", prim[1] * flip, prim[2])


def _surface_primitives() -> list[tuple]:
    """Capsules (tapered) and ellipsoids whose smooth union is the body surface."""
    centre = [
        ("torso",),
        _limb((-0.15, 0.415, -0.025), (0.15, 0.415, -0.025), 0.058, 0.058),  # shoulder girdle
        _limb((0.0, 0.42, -0.025), (0.0, 0.6, -0.005), 0.054, 0.048),  # neck
        _blob((0.0, 0.665, 0.012), (0.077, 0.108, 0.093)),  # head
        _blob((0.0, 0.595, 0.045), (0.058, 0.045, 0.05)),  # jaw
        _blob((0.0, 0.655, 0.1), (0.012, 0.022, 0.02)),  # nose
    ]
    left = [
        _blob((0.07, -0.095, -0.06), (0.08, 0.09, 0.072)),  # buttock
        _limb((0.085, -0.075, 0.0), (0.1, -0.48, 0.005), 0.085, 0.053),  # thigh
        _limb((0.1, -0.48, 0.005), (0.105, -0.885, -0.04), 0.05, 0.031),  # shin
        _blob((0.103, -0.63, -0.03), (0.047, 0.105, 0.048)),  # calf
        _limb((0.105, -0.925, -0.06), (0.12, -0.935, 0.13), 0.035, 0.027),  # foot
        _blob((0.113, -0.93, 0.04), (0.042, 0.03, 0.07)),  # instep
        _blob((0.18, 0.43, -0.02), (0.06, 0.058, 0.058)),  # deltoid
        _limb((0.175, 0.44, -0.02), (0.435, 0.44, -0.035), 0.047, 0.036),  # upper arm
        _limb((0.435, 0.44, -0.035), (0.67, 0.44, -0.035), 0.037, 0.026),  # forearm
        _blob((0.752, 0.435, -0.035), (0.078, 0.02, 0.045)),  # hand
        _limb((0.69, 0.43, 0.0), (0.735, 0.43, 0.045), 0.013, 0.011),  # thumb
    ]
    return centre + left + [_mirror(p) for p in left]


# Torso cross-sections bottom to top: height y, half-width, half-depth, depth centre (m).
_TORSO_PROFILE = np.array(
    [
        [-0.15, 0.135, 0.085, -0.03],
        [-0.08, 0.160, 0.105, -0.025],
        [0.00, 0.158, 0.100, -0.015],
        [0.10, 0.138, 0.092, -0.005],
        [0.20, 0.148, 0.098, 0.0],
        [0.29, 0.160, 0.104, 0.0],
        [0.37, 0.158, 0.096, -0.01],
        [0.43, 0.135, 0.075, -0.02],
    ]
)


def _torso_sdf(p: np.ndarray) -> np.ndarray:
    """A lofted elliptic cylinder through `_TORSO_PROFILE` (smooth, monotone interpolation), with flat ends."""
    from scipy.interpolate import PchipInterpolator

    prof = _TORSO_PROFILE
    y0, y1 = prof[0, 0], prof[-1, 0]
    yc = np.clip(p[:, 1], y0, y1)
    rx, rz, cz = (PchipInterpolator(prof[:, 0], prof[:, k])(yc) for k in (1, 2, 3))
    side = (np.hypot(p[:, 0] / rx, (p[:, 2] - cz) / rz) - 1.0) * np.minimum(rx, rz)
    cap = np.maximum(y0 - p[:, 1], p[:, 1] - y1)
    return np.minimum(np.maximum(side, cap), 0.0) + np.hypot(np.maximum(side, 0.0), np.maximum(cap, 0.0))


def _cone_sdf(p: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float) -> np.ndarray:
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    closest = a + t[:, None] * ab
    return np.linalg.norm(p - closest, axis=1) - (ra + (rb - ra) * t)


def _ellipsoid_sdf(p: np.ndarray, c: np.ndarray, r: np.ndarray) -> np.ndarray:
    return (np.linalg.norm((p - c) / r, axis=1) - 1.0) * r.min()


def _smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def body_sdf(points: np.ndarray, blend: float = 0.025) -> np.ndarray:
    """Approximate signed distance (m, negative inside) of the procedural body at (P, 3) points."""
    d = np.full(len(points), np.inf)
    for prim in _surface_primitives():
        if prim[0] == "torso":
            di = _torso_sdf(points)
        elif prim[0] == "cone":
            di = _cone_sdf(points, *prim[1:])
        else:
            di = _ellipsoid_sdf(points, *prim[1:])
        d = di if not np.isfinite(d).any() else _smooth_min(d, di, blend)
    return d


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


def _uniform_laplacian(faces: np.ndarray, nv: int):
    import scipy.sparse as sp

    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2]])
    adj = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(nv, nv)).tocsr()
    adj.data[:] = 1.0
    deg = np.asarray(adj.sum(1)).ravel()
    return sp.diags(1.0 / np.maximum(deg, 1)) @ adj  # row-normalised neighbour average


def _skinning_weights(verts: np.ndarray, faces: np.ndarray, joints: np.ndarray, top_k: int = 4) -> np.ndarray:
    """(V, 24) smooth weights: soft-min over 'distance outside each bone's capsule', diffused over the surface."""
    caps = _influence_capsules(joints)
    s = np.stack([_cone_sdf(verts, a, b, ra, rb) for a, b, ra, rb in caps], 1)  # (V, 24)
    logits = -(s - s.min(1, keepdims=True)) / 0.02
    w = np.exp(logits)
    w /= w.sum(1, keepdims=True)
    avg = _uniform_laplacian(faces, len(verts))
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


def procedural_surface(spacing: float = 0.007, target_faces: int = 12_000) -> tuple[np.ndarray, np.ndarray]:
    """A closed, smooth body surface in the T-pose: (V, 3) float vertices and (F, 3) int faces.

    The smooth union of the primitives is sampled on a grid, meshed with marching cubes, smoothed (Taubin) and
    simplified (quadric decimation) to about `target_faces` triangles.
    """
    from skimage import measure

    lo = np.array([-0.9, -1.0, -0.2])
    hi = np.array([0.9, 0.82, 0.24])
    n = np.ceil((hi - lo) / spacing).astype(int) + 1
    axes = [lo[i] + spacing * np.arange(n[i]) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    sdf = np.concatenate([body_sdf(chunk) for chunk in np.array_split(grid, 16)]).reshape(n).astype(np.float32)
    verts, faces, _, _ = measure.marching_cubes(-sdf, level=0.0, spacing=(spacing,) * 3)
    verts = verts + lo
    return _simplify(verts, faces, target_faces)


def _simplify(verts: np.ndarray, faces: np.ndarray, target_faces: int) -> tuple[np.ndarray, np.ndarray]:
    import open3d as o3d

    # Marching cubes can put two vertices at one point; merging them would pinch the surface, so keep them.
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(verts), o3d.utility.Vector3iVector(faces))
    mesh = mesh.simplify_quadric_decimation(target_number_of_triangles=target_faces)
    mesh.remove_unreferenced_vertices()
    mesh = mesh.filter_smooth_taubin(number_of_iterations=10)
    v = _unfold(np.asarray(mesh.vertices).copy(), np.asarray(mesh.triangles).astype(np.int64))
    f = np.asarray(mesh.triangles).astype(np.int64)
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    if not (counts == 2).all():
        raise RuntimeError("the procedural body surface is not closed; change the primitives or the grid spacing")
    tri = v[f]
    volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    if volume < 0:  # outward normals
        f = f[:, ::-1].copy()
    return v, f


def _folded_faces(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Faces that meet a neighbour at more than 90 degrees (fold-overs left by simplification)."""
    tri = verts[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    owner = np.tile(np.arange(len(faces)), 3)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    pairs = owner[order].reshape(-1, 2)  # a closed surface: every edge has exactly two faces
    dots = (normals[pairs[:, 0]] * normals[pairs[:, 1]]).sum(1)
    return np.unique(pairs[dots < 0])


def _unfold(verts: np.ndarray, faces: np.ndarray, rounds: int = 50) -> np.ndarray:
    """Smooth the neighbourhoods of folded faces (vertex := mean of its neighbours) until none is left."""
    avg = _uniform_laplacian(faces, len(verts))
    for _ in range(rounds):
        bad = _folded_faces(verts, faces)
        if len(bad) == 0:
            break
        near = np.zeros(len(verts))
        near[faces[bad].ravel()] = 1.0
        near = (avg @ near) > 0  # the fold's vertices and their neighbours
        verts[near] = (avg @ verts)[near]
    return verts


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
