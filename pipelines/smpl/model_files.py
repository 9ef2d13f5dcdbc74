"""Body-model files: where they are (the operator's --models-dir, the procedural asset) and how they are read.

`.npz` files are read without unpickling; `.pkl` files (official SMPL, the SMPLify GMM prior) only from the
operator's folder, through a restricted unpickler. Readers return plain arrays; `body_model.from_arrays` validates.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.core.paths import ASSETS_DIR
from pipelines.core.weights import ArchiveError, check_archive
from pipelines.smpl.layout import REQUIRED_KEYS, BodyModelError

PROCEDURAL_PATH = ASSETS_DIR / "procedural_body.npz"
PROCEDURAL = "procedural"
MAX_UNPACKED_MB = 1024
"""The most an `.npz` body model may unpack to (the official SMPL files unpack to under 300 MB)."""


def read_model_file(path: Path, *, trusted_dir: Path | None = None) -> dict[str, Any]:
    """The arrays of an SMPL-layout model file: `.npz` (never unpickles) or `.pkl` (only from the operator's
    `trusted_dir`).

    `.pkl` files go through a restricted unpickler that builds only numpy arrays, scipy sparse matrices and
    stand-ins for chumpy arrays, so a hostile pickle cannot run code, and chumpy is not needed.
    """
    name = path.name
    if not path.is_file():
        raise BodyModelError(f"Body model file {name} was not found.")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return read_npz(path)
    if suffix == ".pkl":
        if trusted_dir is None or path.resolve().parent != Path(trusted_dir).resolve():
            raise BodyModelError(
                f"{name}: .pkl body models are accepted only from the operator's --models-dir; upload an .npz instead."
            )
        return read_trusted_pickle(path)
    raise BodyModelError(f"{name}: a body model must be an .npz file (or a .pkl in --models-dir).")


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an `.npz`, read with `allow_pickle=False`; object arrays are refused with a clear message."""
    try:
        check_archive(path, MAX_UNPACKED_MB, compressed_ok=True)  # np.savez_compressed is fine; a zip bomb is not
    except ArchiveError as err:
        raise BodyModelError(str(err)) from None
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


def dense(value: Any, key: str, name: str) -> np.ndarray:
    """One value of a model file as a numpy array (sparse and chumpy values made dense); objects are refused."""
    if hasattr(value, "toarray"):  # scipy.sparse (the official J_regressor)
        value = value.toarray()
    if isinstance(value, _ChumpyArray):
        value = value.array
    arr = np.asarray(value)
    if arr.dtype == object:
        raise BodyModelError(f"{name}: {key} is not a numeric array.")
    return arr


OFFICIAL_MODEL_NAMES = (
    "SMPL_NEUTRAL.npz",
    "SMPL_MALE.npz",
    "SMPL_FEMALE.npz",
    "SMPL_NEUTRAL.pkl",
    "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
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
