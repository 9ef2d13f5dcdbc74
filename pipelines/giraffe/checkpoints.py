"""GIRAFFE checkpoints: the studio's own (plain tensors and JSON, resumable) and the official `checkpoint_*.pt` files.

Everything loads with `torch.load(weights_only=True)`; the only classes allowed beyond tensors and containers are
numpy's scalar and dtype types (the official files keep a numpy float for `loss_val_best`). A pickle that carries
code, a truncated or corrupt file, or weights of another shape becomes one sentence (`CheckpointError`) and
nothing in it is executed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.core.config import to_jsonable
from pipelines.core.weights import WeightsFileError, load_weights
from pipelines.giraffe import specs, training
from pipelines.giraffe.generator import Generator, GeneratorSpec
from pipelines.giraffe.networks2d import DCDiscriminator, renderer_blocks

MAX_CHECKPOINT_MB = 1024
MAX_PARAMS = 60_000_000


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with a sentence that says why."""


def _numpy_globals() -> list:
    """numpy's scalar reconstructor and dtype classes: what a pickled numpy float needs, and nothing else."""
    core = getattr(np, "_core", None) or np.core
    return [core.multiarray.scalar, np.dtype, *(type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32"))]


def safe_load(path: Path) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU (numpy scalars allowed), every failure as a CheckpointError."""
    try:
        return load_weights(path, MAX_CHECKPOINT_MB, _numpy_globals())
    except WeightsFileError as err:
        raise CheckpointError(str(err)) from None


def check_spec(spec: GeneratorSpec) -> None:
    """Refuses generator specs that cannot be built, or are too big, with a sentence."""
    renderer_blocks(spec.image_size, spec.feature_res)
    if spec.n_feat // 2 < spec.min_feat:
        raise ValueError(f"The renderer's width ({spec.n_feat}) must be at least twice its floor ({spec.min_feat}).")
    near, far = spec.depth_range
    if not (0 < near < far <= 100):
        raise ValueError(f"The depth range must satisfy 0 < near < far <= 100, got {spec.depth_range}.")
    if not (1.0 <= spec.fov <= 120.0):
        raise ValueError(f"The field of view must be 1-120 degrees, got {spec.fov}.")
    f = spec.object_field
    n = 8 * f.hidden * f.hidden * f.n_blocks + 4 * f.z_dim * f.hidden + spec.n_feat**2 * 9
    if n > MAX_PARAMS:
        raise ValueError(
            f"This generator would have about {n / 1e6:.0f}M parameters; the limit is {MAX_PARAMS / 1e6:.0f}M."
        )


# --- the studio's checkpoints ---------------------------------------------------------------------------------------


@dataclass
class Loaded:
    """A loaded checkpoint: the generator spec, the state dicts found, where it came from, and plain extras."""

    spec: GeneratorSpec
    generator_test: dict[str, torch.Tensor]
    payload: dict[str, Any]
    source: str


def save_studio(path: Path, state: training.GanState, spec: GeneratorSpec, cfg: Any, shared: torch.Generator,
                losses: dict[str, float]) -> Path:  # fmt: skip
    """Write a resumable checkpoint atomically (a temporary file, then a rename)."""
    extra = {
        "config": json.dumps(to_jsonable(cfg), sort_keys=True),
        "rng_shared": shared.get_state(),
        "losses": {k: float(v) for k, v in losses.items()},
    }
    payload = training.state_payload(state, specs.spec_to_json(spec), extra)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_studio(path: Path) -> Loaded:
    """A studio checkpoint (format `3d-studio-giraffe`), checked."""
    return studio_from_payload(safe_load(path), Path(path))


def studio_from_payload(payload: Any, path: Path) -> Loaded:
    """Check a loaded studio checkpoint and describe it."""
    if not isinstance(payload, dict) or payload.get("format") != training.STUDIO_FORMAT:
        raise CheckpointError(
            f"{Path(path).name} is not a studio GIRAFFE checkpoint (no '{training.STUDIO_FORMAT}' mark)."
        )
    if payload.get("version") != training.STUDIO_VERSION:
        raise CheckpointError(f"{Path(path).name} is version {payload.get('version')}; this studio reads version 1.")
    spec = specs.spec_from_json(str(payload.get("spec", "{}")))
    check_spec(spec)
    return Loaded(spec, payload["generator_test"], payload, f"studio checkpoint {Path(path).name}")


def restore_state(state: training.GanState, loaded: Loaded) -> None:
    """Put a studio checkpoint's networks, optimisers and step into a freshly built state."""
    p = loaded.payload
    for name, module in (("generator", state.generator), ("generator_test", state.generator_test),
                         ("discriminator", state.discriminator)):  # fmt: skip
        load_strict(module, p[name], name)
    state.opt_g.load_state_dict(p["opt_g"])
    state.opt_d.load_state_dict(p["opt_d"])
    state.step = int(p["step"])


def load_strict(module: torch.nn.Module, weights: Any, what: str) -> None:
    """`module.load_state_dict(weights, strict=True)`, with the differences (missing, unexpected, shapes) said in
    one sentence before anything is copied."""
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise CheckpointError(f"The {what} weights are not a dictionary of tensors.")
    own = module.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    shapes = [f"{k} {tuple(weights[k].shape)} (expected {tuple(own[k].shape)})"
              for k in own if k in weights and weights[k].shape != own[k].shape]  # fmt: skip
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} of another shape (e.g. {'; '.join(shapes[:2])})")
        raise CheckpointError(f"The {what} weights do not fit this model: {', '.join(parts)}.")
    module.load_state_dict(weights, strict=True)


# --- the official checkpoints ---------------------------------------------------------------------------------------


def _split_model(model: dict[str, Any], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in model.items() if k.startswith(prefix)}


def official_config_for(path: Path, model: dict[str, Any]) -> str:
    """The built-in configuration for an official file: by its name, else by the shapes it holds."""
    name = Path(path).name
    if name in specs.OFFICIAL_FILES:
        return specs.OFFICIAL_FILES[name]
    feat = model.get("generator.decoder.feat_out.weight")
    if not isinstance(feat, torch.Tensor):
        raise CheckpointError(f"{name} has no GIRAFFE generator weights (no 'generator.decoder.feat_out.weight').")
    return "cars64" if feat.shape[0] == 128 else "cars256"


def load_official(path: Path) -> Loaded:
    """An official GIRAFFE checkpoint ({'model': GIRAFFE state dict, 'it', 'epoch_it', 'loss_val_best', ...}),
    checked strictly against the matching official configuration."""
    return official_from_payload(safe_load(path), Path(path))


def official_from_payload(payload: Any, path: Path) -> Loaded:
    """Check a loaded official checkpoint strictly against its configuration and describe it."""
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), dict):
        raise CheckpointError(f"{Path(path).name} has no 'model' dictionary: not an official GIRAFFE checkpoint.")
    model = payload["model"]
    config = official_config_for(path, model)
    spec = specs.official_spec(config)
    generator = Generator(spec)
    ema = _split_model(model, "generator_test.") or _split_model(model, "generator.")
    load_strict(generator, ema, f"{config} generator")
    disc = _split_model(model, "discriminator.")
    if disc:
        load_strict(DCDiscriminator(spec.image_size, 512), disc, f"{config} discriminator")
    return Loaded(spec, ema, {"config": config, "it": payload.get("it")}, f"official {config} ({Path(path).name})")


def load_any(path: Path) -> Loaded:
    """A studio or an official checkpoint, told apart by their contents."""
    payload = safe_load(path)
    if isinstance(payload, dict) and payload.get("format") == training.STUDIO_FORMAT:
        return studio_from_payload(payload, Path(path))
    return official_from_payload(payload, Path(path))


def make_generator(loaded: Loaded, device: torch.device) -> Generator:
    """The EMA generator of a loaded checkpoint, in eval mode on `device`."""
    generator = Generator(loaded.spec)
    load_strict(generator, loaded.generator_test, "generator")
    return generator.to(device).eval().requires_grad_(False)
