"""Mesh R-CNN checkpoints: the studio's own (a plain dict of tensors and plain values) and the official
`voxmesh_R50.pth` (detectron2-free), both read with `torch.load(weights_only=True)`; every failure is one sentence.

The official file is the training script's `Checkpoint` dict, whose weights are at `best_states.model` (or
`latest_states.model`), possibly with DDP's `module.` prefixes; a bare state dict is taken as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pipelines.core.weights import WeightsFileError, load_weights
from pipelines.meshrcnn.model import ModelSpec, VoxMesh

FORMAT = "3d-studio-meshrcnn"
VERSION = 1
OFFICIAL_NAMES = ("voxmesh_R50.pth", "meshrcnn_shapenet_voxmesh_R50.pth")
"""File names looked for in the models dir (the official model zoo's ShapeNet VoxMesh checkpoint)."""
MAX_CHECKPOINT_MB = 1024


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with a sentence saying why."""


def save(path: Path, model: VoxMesh, extra: dict[str, Any]) -> Path:
    """Write the model (state dict + spec) and `extra` plain values (config, step, history, optimiser state)."""
    payload = {"format": FORMAT, "version": VERSION, "spec": model.spec.to_plain(), "model": model.state_dict()}
    return write(path, {**payload, **extra})


def write(path: Path, payload: dict[str, Any]) -> Path:
    """`torch.save` of a plain dict through a temporary file, so a reader never sees half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def read(path: Path) -> dict[str, Any]:
    """`torch.load(weights_only=True)` of a file, with every way it can fail turned into a CheckpointError."""
    try:
        data = load_weights(path, MAX_CHECKPOINT_MB)
    except WeightsFileError as err:
        raise CheckpointError(str(err)) from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path.name} holds a {type(data).__name__}, not a checkpoint dictionary.")
    return data


def official_state_dict(data: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The model weights inside an official checkpoint dict (or the dict itself if it is a bare state dict)."""
    for key in ("best_states", "latest_states"):
        states = data.get(key)
        if isinstance(states, dict) and isinstance(states.get("model"), dict):
            data = states["model"]
            break
    else:
        if isinstance(data.get("model"), dict):
            data = data["model"]
    out = {}
    for k, v in data.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"The checkpoint's weights include {k!r}, which is not a tensor.")
        while k.startswith("module."):
            k = k[len("module.") :]
        out[k] = v
    return out


def load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    """`load_state_dict(strict=True)` with the differences said in one sentence instead of a traceback."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) (first: {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) (first: {', '.join(unexpected[:3])})")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} shape mismatch(es) (first: {k} is {tuple(state[k].shape)} in the file, "
                f"{tuple(own[k].shape)} in the model)"
            )
        raise CheckpointError(f"{name} does not fit this Mesh R-CNN model: {'; '.join(parts)}.")
    model.load_state_dict(state, strict=True)


def load_model(path: Path) -> tuple[VoxMesh, dict[str, Any]]:
    """A studio or official checkpoint as an eval-mode model on the CPU, and the file's other contents (for the
    official file: its `metrics` etc.; `kind` says which it was)."""
    data = read(path)
    if data.get("format") == FORMAT:
        if int(data.get("version", 0)) > VERSION:
            raise CheckpointError(f"{Path(path).name} was written by a newer studio (version {data['version']}).")
        try:
            spec = ModelSpec.from_plain(dict(data["spec"]))
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{Path(path).name} has an unreadable model description: {err}") from err
        model = VoxMesh(spec)
        load_strict(model, dict(data["model"]), Path(path).name)
        info = {k: v for k, v in data.items() if k not in ("model", "optimizer")}
        info["kind"] = "studio"
    else:
        model = VoxMesh(ModelSpec.official())
        load_strict(model, official_state_dict(data), Path(path).name)
        info = {"kind": "official", "metrics": data.get("metrics", {})}
    return model.eval(), info


def find_official(models_dir: Path | None) -> Path | None:
    """The official checkpoint in the operator's models dir, if one is there."""
    if models_dir is None:
        return None
    for name in OFFICIAL_NAMES:
        if (Path(models_dir) / name).is_file():
            return Path(models_dir) / name
    return None
