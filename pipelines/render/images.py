"""Pictures of buffers (viridis, id colours), image grids, and GIF / MP4 writers."""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

# --- pictures of buffers --------------------------------------------------------------------------------

_VIRIDIS = torch.tensor(
    [[0.267, 0.005, 0.329], [0.283, 0.141, 0.458], [0.254, 0.265, 0.530], [0.207, 0.372, 0.553], [0.164, 0.471, 0.558],
     [0.128, 0.567, 0.551], [0.135, 0.659, 0.518], [0.267, 0.749, 0.441], [0.478, 0.821, 0.318], [0.741, 0.873, 0.150],
     [0.993, 0.906, 0.144]]
)  # fmt: skip


def colormap(values: torch.Tensor) -> torch.Tensor:
    """Viridis for values in [0, 1]: (...,) -> (..., 3)."""
    lut = _VIRIDIS.to(values.device)
    x = values.clamp(0, 1) * (len(lut) - 1)
    lo = x.floor().long().clamp(max=len(lut) - 2)
    frac = (x - lo)[..., None]
    return lut[lo] * (1 - frac) + lut[lo + 1] * frac


def id_colors(ids: torch.Tensor, background: Sequence[float] = (0.0, 0.0, 0.0)) -> torch.Tensor:
    """A distinct colour per integer id (golden-ratio hues), `background` where id < 0: (...,) -> (..., 3)."""
    uniq, inverse = np.unique(ids.reshape(-1).cpu().numpy(), return_inverse=True)  # colour each id once
    hues = np.mod(np.maximum(uniq, 0) * 0.6180339887, 1.0)
    palette = np.array([colorsys.hsv_to_rgb(h, 0.65, 0.95) for h in hues], dtype=np.float32).reshape(-1, 3)
    palette[uniq < 0] = np.asarray(background, dtype=np.float32)
    return torch.as_tensor(palette[inverse.reshape(-1)], device=ids.device).reshape(*ids.shape, 3)


def image_grid(images: Sequence[torch.Tensor], cols: int, pad: int = 2, fill: float = 1.0) -> torch.Tensor:
    """Tile equal-sized (H, W, 3) images in rows of `cols`, with `pad` pixels of `fill` between them."""
    if not images:
        raise ValueError("image_grid needs at least one image.")
    h, w, c = images[0].shape
    rows = math.ceil(len(images) / cols)
    out = torch.full(
        (rows * (h + pad) - pad, cols * (w + pad) - pad, c), fill, dtype=images[0].dtype, device=images[0].device
    )
    for i, img in enumerate(images):
        r, col = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, col * (w + pad) : col * (w + pad) + w] = img
    return out


def save_png(image: torch.Tensor, path: Path) -> Path:
    """Write an (H, W, 3) float image in [0, 1] as a PNG; returns the path."""
    from PIL import Image

    pixels = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    Image.fromarray(pixels).save(path)
    return path


# --- animations -------------------------------------------------------------------------------------------


def save_gif(frames: Sequence[np.ndarray], path: Path, fps: float) -> Path:
    """Write uint8 (H, W, 3) frames as a looping GIF."""
    from PIL import Image

    if not frames:
        raise ValueError("No frames to write.")
    images = [Image.fromarray(f) for f in frames]
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=max(20, round(1000 / fps)), loop=0, optimize=False
    )
    return Path(path)


def save_mp4(frames: Sequence[np.ndarray], path: Path, fps: float) -> Path:
    """Write uint8 (H, W, 3) frames as an H.264 MP4 (yuv420p, so browsers play it; odd sizes are padded)."""
    import imageio.v2 as imageio

    if not frames:
        raise ValueError("No frames to write.")
    writer = imageio.get_writer(
        path, fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=1, ffmpeg_log_level="error"
    )
    try:
        for frame in frames:
            h, w = frame.shape[:2]
            writer.append_data(np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge"))
    finally:
        writer.close()
    return Path(path)
