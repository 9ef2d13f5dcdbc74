"""SynSin weights: the studio's own checkpoints and the official `facebookresearch/synsin` ones, through one loader.

Everything loads with `torch.load(weights_only=True)`; the only class allowed besides tensors and plain values is
`argparse.Namespace` (the official files keep their options in one). A pickle that names any other class is refused
before anything in it runs. Official state dicts are mapped to the studio's module names (the `model.module.` prefix
stripped, geometry buffers and the loss's VGG dropped) and their spectral-norm triples folded into plain weights
(W = weight_orig / σ, σ = uᵀ W v), then loaded strictly: a missing, unexpected or wrongly shaped tensor becomes a
sentence.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from pipelines.core.weights import WeightsFileError, load_weights
from pipelines.synsin.model import ModelSpec, SynSin

FORMAT = "3d-studio-synsin"
VERSION = 1
MAX_CHECKPOINT_MB = 1024
OFFICIAL_FILE_NAMES = ("synsin.pth", "realestate/synsin.pth", "kitti/synsin.pth", "synsin_realestate.pth",
                       "synsin_kitti.pth")  # fmt: skip
"""Official checkpoints an operator may put in --models-dir (RealEstate10K and KITTI models)."""
GENERATOR_PREFIXES = ("encoder.", "pts_regressor.", "pts_transformer.splatter.", "projector.")
IGNORED_PREFIXES = ("loss_function.", "netD.", "pts_transformer.xyzs", "min_z", "max_z", "discretized_zs")
OFFICIAL_DECODER = "resnet_256W8UpDown64"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is a sentence for the user."""


def read(path: str | Path) -> Any:
    """`torch.load` with weights_only (plus argparse.Namespace), every failure as a CheckpointError sentence."""
    try:
        return load_weights(path, MAX_CHECKPOINT_MB, [argparse.Namespace])
    except WeightsFileError as err:
        raise CheckpointError(str(err)) from None


def fold_spectral(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each spectral-norm triple (`weight_orig`, `weight_u`, `weight_v`) by the weight it stands for."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(".weight_u") or key.endswith(".weight_v"):
            continue
        if key.endswith(".weight_orig"):
            stem = key[: -len("_orig")]
            u, v = state.get(stem + "_u"), state.get(stem + "_v")
            if u is None or v is None:
                raise CheckpointError(f"{key} has no matching weight_u/weight_v (an incomplete spectral-norm layer).")
            w = value.float()
            if w.ndim < 2 or u.numel() != w.shape[0] or v.numel() != w[0].numel():
                raise CheckpointError(f"{key} {tuple(w.shape)} does not match its spectral-norm vectors.")
            sigma = torch.dot(u.float(), w.reshape(w.shape[0], -1) @ v.float())
            out[stem] = w / sigma
        else:
            out[key] = value
    return out


def _strip(key: str) -> str:
    for prefix in ("model.module.", "module.model.", "model.", "module."):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def spec_from_options(opts: Any) -> tuple[ModelSpec, list[str]]:
    """The ModelSpec an official options namespace describes, and notes on what differs from the studio's path."""
    get = (lambda k, d: getattr(opts, k, d)) if opts is not None else (lambda k, d: d)
    notes = []
    refine = get("refine_model_type", OFFICIAL_DECODER)
    if refine != OFFICIAL_DECODER:
        raise CheckpointError(f"This checkpoint uses the {refine!r} refinement network; only {OFFICIAL_DECODER!r} "
                              "(SynSin's published models) is supported.")  # fmt: skip
    if get("use_rgb_features", False) or "modifier" in str(get("depth_predictor_type", "unet")):
        raise CheckpointError("This checkpoint is an ablation (RGB features or a feature modifier), not SynSin.")
    if get("accumulation", "alphacomposite") != "alphacomposite":
        notes.append(f"It was trained with {get('accumulation', '')!r} accumulation; alpha compositing is used here.")
    spec = ModelSpec(
        image_size=int(get("W", 256)), ngf=int(get("ngf", 64)), unet_filters=32, unet_levels=8, feature_dim=64,
        min_z=float(get("min_z", 1.0)), max_z=float(get("max_z", 100.0)),
        inverse_depth=bool(get("use_inverse_depth", False)), radius_px=float(get("radius", 4.0)),
        points_per_pixel=int(get("pp_pixel", 128)), tau=float(get("tau", 1.0)),
    )  # fmt: skip
    return spec, notes


def official_generator_state(raw: Any) -> tuple[dict[str, torch.Tensor], Any, list[str]]:
    """(generator state with studio names, unfolded; the options namespace or None; ignored key groups)."""
    if isinstance(raw, dict) and "state_dict" in raw:
        state, opts = raw["state_dict"], raw.get("opts")
    elif isinstance(raw, dict):
        state, opts = raw, None
    else:
        raise CheckpointError(f"This file holds a {type(raw).__name__}, not a state dict.")
    gen: dict[str, torch.Tensor] = {}
    ignored: set[str] = set()
    unknown: list[str] = []
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        name = _strip(key)
        if name.startswith(GENERATOR_PREFIXES):
            gen[name] = value
        elif name.startswith(IGNORED_PREFIXES):
            ignored.add(name.split(".")[0])
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"{len(unknown)} tensors belong to no SynSin module (e.g. {', '.join(unknown[:3])}).")
    if not gen:
        raise CheckpointError("This file holds no SynSin generator weights (no encoder/depth/decoder tensors).")
    return gen, opts, sorted(ignored)


def load_strict(model: SynSin, state: dict[str, torch.Tensor]) -> None:
    """Load `state` into `model` with every key and shape checked; a difference becomes one sentence."""
    expected = model.state_dict()
    state = dict(state)
    for key in expected:  # running-mean counters are optional in older files
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]  # fmt: skip
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        problems.append(f"{len(wrong)} with other shapes (e.g. {'; '.join(wrong[:2])})")
    if problems:
        raise CheckpointError("The weights do not fit this SynSin network: " + "; ".join(problems) + ".")
    model.load_state_dict(state, strict=True)


def spec_from_dict(values: dict) -> ModelSpec:
    known = {f.name for f in fields(ModelSpec)}
    return ModelSpec(**{k: v for k, v in values.items() if k in known})


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> tuple[SynSin, dict[str, Any]]:
    """A SynSin generator (eval mode, folded weights) from a studio or official checkpoint, and what it was:
    {"kind": "studio" | "official", "spec": ..., "notes": [...], plus the studio file's metadata}."""
    raw = read(path)
    if isinstance(raw, dict) and raw.get("format") == FORMAT:
        if int(raw.get("version", 0)) > VERSION:
            raise CheckpointError(f"{Path(path).name} was written by a newer studio (version {raw.get('version')}).")
        try:
            spec = spec_from_dict(raw["spec"])
            state = fold_spectral(raw["generator"])
        except (KeyError, TypeError) as err:
            raise CheckpointError(f"{Path(path).name} is a studio SynSin file with missing parts ({err}).") from err
        info = {"kind": "studio", "notes": [], **{k: raw.get(k) for k in ("step", "metrics", "config", "train_time_s")}}
    else:
        gen, opts, ignored = official_generator_state(raw)
        spec, notes = spec_from_options(opts)
        if opts is None:
            notes.append("No options were stored; the official RealEstate10K settings were assumed.")
        state = fold_spectral(gen)
        info = {"kind": "official", "notes": notes, "ignored": ignored}
    try:
        model = SynSin(spec, spectral=False)
    except ValueError as err:
        raise CheckpointError(f"The checkpoint describes a network this studio cannot build: {err}") from err
    load_strict(model, state)
    info["spec"] = spec.as_dict()
    return model.to(device).eval(), info


def save_studio(path: Path, generator: SynSin, **extra: Any) -> Path:
    """A studio checkpoint: format tag, the spec as plain values, the generator's state (spectral triples kept, so
    training can resume) and `extra` plain values (step, metrics, config, discriminator/optimiser states)."""
    payload = {"format": FORMAT, "version": VERSION, "spec": generator.spec.as_dict(),
               "generator": {k: v.detach().cpu() for k, v in generator.state_dict().items()}, **extra}  # fmt: skip
    return _write(payload, Path(path))


def export_model(src: str | Path, dst: str | Path) -> Path:
    """A training checkpoint (checkpoint.pt) reduced to what inference needs: the generator, its spec and the
    run's step, time, metrics and config (no discriminator or optimiser states)."""
    raw = read(src)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(f"{Path(src).name} is not a studio SynSin checkpoint.")
    keep = ("format", "version", "spec", "generator", "step", "train_time_s", "metrics", "config", "history")
    payload = {k: raw[k] for k in keep if k in raw}
    return _write(payload, Path(dst))


def _write(payload: dict[str, Any], path: Path) -> Path:
    """torch.save through a temporary file, so a reader never sees half a checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path
