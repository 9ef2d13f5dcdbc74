"""Device resolution: CUDA when present, the CPU otherwise; explicit requests fail loudly."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA if available else CPU; `cuda`/`cuda:N` without CUDA raises ValueError."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"Unknown device {name!r}: use auto, cpu or cuda[:N].") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"Device {name!r} was requested but CUDA is not available on this machine.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"Device {name!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s).")
    elif device.type != "cpu":
        raise ValueError(f"Unsupported device {name!r}: use auto, cpu or cuda[:N].")
    return device


def default_preset(device: torch.device) -> str:
    """The preset a device gets by default: `full` on a GPU, `quick` on a CPU."""
    return "full" if device.type == "cuda" else "quick"


def describe_device(device: torch.device) -> str:
    """A short human description: `CPU (2 threads)` or `NVIDIA H100 (79.6 GiB)`."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name} ({props.total_memory / 2**30:.1f} GiB)"
    return f"CPU ({torch.get_num_threads()} threads)"
