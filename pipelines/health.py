"""What this installation can do: device, versions, compiled ops, optional user files, presets."""

from __future__ import annotations

import importlib.metadata
import platform
from pathlib import Path

import torch

from pipelines import REGISTRY, get
from pipelines.core.device import default_preset, describe_device


def optional_files() -> dict[str, tuple[str, ...]]:
    """What an operator may put in --models-dir, collected from the pipelines that declare `OPTIONAL_FILES`."""
    found: dict[str, tuple[str, ...]] = {}
    for name in REGISTRY:
        found.update(getattr(get(name), "OPTIONAL_FILES", {}))
    return found


def _notes(models_dir: Path | None) -> dict[str, str]:
    notes: dict[str, str] = {}
    for name in REGISTRY:
        describe = getattr(get(name), "health_notes", None)
        if describe is not None:
            notes.update(describe(models_dir))
    return notes


def compiled_ops_status() -> tuple[bool, str]:
    """Whether PyTorch3D's compiled ops load and run (a tiny rasterisation on the CPU)."""
    try:
        from pytorch3d.renderer import FoVPerspectiveCameras, MeshRasterizer, RasterizationSettings
        from pytorch3d.utils import ico_sphere

        mesh = ico_sphere(0)
        raster = MeshRasterizer(
            cameras=FoVPerspectiveCameras(T=torch.tensor([[0.0, 0.0, 3.0]])),
            raster_settings=RasterizationSettings(image_size=8),
        )
        fragments = raster(mesh)
        covered = int((fragments.pix_to_face >= 0).sum())
        return covered > 0, f"rasterised an ico-sphere: {covered} of 64 pixels covered"
    except Exception as err:  # noqa: BLE001 - the panel reports the failure
        return False, f"{type(err).__name__}: {err}"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def health(device: torch.device, models_dir: Path | None) -> dict:
    """A JSON-able report for the Health panel and `python -m pipelines --health`."""
    ok, detail = compiled_ops_status()
    found: dict[str, list[str]] = {}
    for what, names in optional_files().items():
        found[what] = [n for n in names if models_dir is not None and (models_dir / n).is_file()]
    checkpoints = sorted(p.name for p in models_dir.glob("*.pt")) if models_dir and models_dir.is_dir() else []
    return {
        "device": describe_device(device),
        "device_type": device.type,
        "cuda_available": torch.cuda.is_available(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "pytorch3d": _version("easypytorch3d"),
            "gradio": _version("gradio"),
            "trimesh": _version("trimesh"),
            "open3d": _version("open3d"),
        },
        "pytorch3d_compiled_ops": {"ok": ok, "detail": detail},
        "models_dir": None if models_dir is None else str(models_dir),
        "optional_files": {k: (v or "not found: the procedural default is used") for k, v in found.items()},
        "checkpoints": checkpoints,
        **_notes(models_dir),
        "default_preset": {name: default_preset(device) for name in REGISTRY},
    }
