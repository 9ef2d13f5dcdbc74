"""Pose pictures: the target/render/overlay panel used for previews and video frames, and the GIF/MP4 writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipelines.core.events import to_uint8
from pipelines.pose.scene import Scene, Target
from pipelines.render.images import save_gif, save_mp4

VIDEO_FORMATS = ("gif", "mp4")


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((size, size), Image.NEAREST))


def overlay(mask: torch.Tensor, alpha: torch.Tensor) -> np.ndarray:
    """Target mask in red, current silhouette in cyan; where they agree the pixel turns white. uint8 (S, S, 3)."""
    m, a = mask.detach().float().cpu(), alpha.detach().float().cpu()
    rgb = torch.stack([m, a, a], -1) * 0.9 + 0.05
    return to_uint8(rgb)


def panel(
    target: Target,
    size: int,
    alpha: torch.Tensor,
    rgb: torch.Tensor | None,
    tile: int = 160,
    hard: torch.Tensor | None = None,
) -> np.ndarray:
    """[target | current render | overlay], each `tile` px: the live preview and a video frame; with `hard`
    (S, S, 3) the camera's hard Phong render goes beside the soft one, as in the book's per-iteration pictures.
    uint8 (tile, 3·tile or 4·tile, 3)."""
    mask = target.masks[size]
    if rgb is not None and size in target.rgbs:
        left, middle = to_uint8(target.rgbs[size]), to_uint8(rgb)
    else:
        left, middle = to_uint8(mask), to_uint8(alpha)
    shown = [left, middle] + ([] if hard is None else [to_uint8(hard)]) + [overlay(mask, alpha)]
    return np.concatenate([_resize(t, tile) for t in shown], axis=1)


FINAL_PX = 256
"""Side of each tile of the final picture, rendered at this size (the fit itself runs at smaller sizes)."""


def final_views(
    scene: Scene,
    target: Target,
    start: torch.Tensor,
    truth: torch.Tensor | None,
    estimate: torch.Tensor,
    size: int = FINAL_PX,
) -> np.ndarray:
    """[target | the mesh from the start camera | from the estimated camera | overlay of the target's and the
    estimate's masks], each rendered at `size` px by the hard Phong shader: the target is the true pose's render when
    it is known, else the uploaded picture (resized). Camera centres are (3,). uint8 (size, 4·size, 3)."""
    background = torch.tensor(scene.background, device=scene.device)
    with torch.no_grad():
        began, ended = (scene.hard_phong(c.reshape(1, 3).to(scene.device), size) for c in (start, estimate))
        if truth is not None:
            seen = scene.hard_phong(truth.reshape(1, 3).to(scene.device), size)
            left, mask = to_uint8(seen), ((seen - background).abs().amax(-1) > 1e-4).float()
        else:
            largest = max(target.masks)
            left = _resize(to_uint8(target.rgbs.get(largest, target.masks[largest])), size)
            mask = torch.from_numpy(_resize(to_uint8(target.masks[largest]), size)[..., 0]).float() / 255
        alpha = ((ended - background).abs().amax(-1) > 1e-4).float()
    return np.concatenate([left, to_uint8(began), to_uint8(ended), overlay(mask, alpha)], axis=1)


def write_videos(
    frames: list[np.ndarray], out_dir: Path, stem: str, formats: tuple[str, ...], fps: int = 12
) -> dict[str, Path]:
    """The frames as `stem`.gif and/or `stem`.mp4 under `out_dir` (save_gif / save_mp4): {format: path}."""
    writers = {"gif": save_gif, "mp4": save_mp4}
    chosen = [fmt for fmt in VIDEO_FORMATS if fmt in formats] if frames else []
    return {fmt: writers[fmt](frames, out_dir / f"{stem}.{fmt}", fps) for fmt in chosen}
