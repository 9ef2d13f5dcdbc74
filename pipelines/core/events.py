"""The events a pipeline generator yields: Progress, Preview and Done."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Progress:
    """One step of work: `losses` are plain floats (call `.item()` only here, when reporting)."""

    step: int
    total: int
    losses: dict[str, float] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True)
class Preview:
    """Something to show while the work goes on.

    `image` is uint8 (H, W, 3); `mesh` a GLB/PLY/OBJ path for a 3D viewer; `figure` a Plotly figure.
    """

    step: int
    image: np.ndarray | None = None
    mesh: Path | None = None
    figure: Any = None
    caption: str = ""

    def __post_init__(self) -> None:
        if self.image is not None:
            img = self.image
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise TypeError(f"Preview.image must be uint8 (H, W, 3), got {img.dtype} {img.shape}")


@dataclass(frozen=True)
class Done:
    """The end of a run: scalar `metrics`, downloadable `files` (name -> path), and JSON-able or
    figure-valued `info` for views that are not metrics (summaries, tables, figures)."""

    metrics: dict[str, float] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


Event = Progress | Preview | Done


def to_uint8(image: Any) -> np.ndarray:
    """A float image in [0, 1] (torch or numpy, (H, W, 3|4) or (H, W)) as uint8 (H, W, 3)."""
    if hasattr(image, "detach"):
        image = image.detach().float().cpu().numpy()
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        arr = (np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(arr)
