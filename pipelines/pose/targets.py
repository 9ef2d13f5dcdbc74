"""Pose targets: the mesh rendered at the hidden pose, or an uploaded photo and its mask, as per-size masks and
RGB images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipelines.pose.fit import FitOptions
from pipelines.pose.scene import RGB_BACKGROUND, Scene, Target

# Uploaded target photos above this many pixels are refused before they are decoded.
MAX_TARGET_PIXELS = 40_000_000


def render_target(scene: Scene, camera_position: torch.Tensor, opts: FitOptions, shader: str = "soft") -> Target:
    """The target seen from the hidden pose at every size. shader soft: by the same soft renderer that is optimised
    (so the loss is zero at the truth): soft silhouette, and soft Phong RGB when the loss uses colour. shader hard
    (the book): a hard Phong render, whose mask is its pixels that differ from the background."""
    masks, rgbs = {}, {}
    with torch.no_grad():
        for s in opts.settings():
            if shader == "hard":
                rgbs[s.image_size] = scene.hard_phong(camera_position, s.image_size)
                background = torch.tensor(scene.background, device=scene.device)
                masks[s.image_size] = ((rgbs[s.image_size] - background).abs().amax(-1) > 1e-4).float()
                continue
            if opts.needs_rgb:
                rgbs[s.image_size], _ = scene.phong(camera_position, s)
            masks[s.image_size] = scene.silhouette(camera_position, s)
    return Target(masks, rgbs)


def read_image_and_mask(image_path: str, mask_path: str) -> tuple[np.ndarray, np.ndarray]:
    """An uploaded target: RGB (H, W, 3) and mask (H, W) as float in [0, 1], checked for size and content.

    The mask is the alpha channel when the mask file has a non-trivial one, else its grey level; > 0.5 is object.
    """
    from PIL import Image, UnidentifiedImageError

    def open_image(path: str, what: str) -> Image.Image:
        if not path or not Path(path).is_file():
            raise ValueError(f"The target {what} file was not found: upload an image for the {what}.")
        too_big = f"above the {MAX_TARGET_PIXELS / 1e6:g}-megapixel limit"
        try:
            img = Image.open(path)  # reads the header only: the size is checked before any pixel is decoded
            if img.width * img.height > MAX_TARGET_PIXELS:
                img.close()
                raise ValueError(f"The target {what} is {img.width}×{img.height} pixels, {too_big}.")
            img.load()
        except Image.DecompressionBombError as err:  # PIL's own bomb check, at open: not an OSError
            raise ValueError(f"The target {what} ({Path(path).name}) has too many pixels, {too_big}.") from err
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"The target {what} ({Path(path).name}) is not an image that can be read.") from err
        return img

    image = open_image(image_path, "image")
    mask = open_image(mask_path, "mask")
    if image.size != mask.size:
        raise ValueError(
            f"The target image is {image.width}×{image.height} pixels but the mask is {mask.width}×{mask.height}: "
            "they must be the same size."
        )
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    alpha = np.asarray(mask.convert("RGBA"), dtype=np.float32)[..., 3] / 255.0 if "A" in mask.getbands() else None
    if alpha is None or alpha.min() > 0.99:
        alpha = np.asarray(mask.convert("L"), dtype=np.float32) / 255.0
    binary = (alpha > 0.5).astype(np.float32)
    if binary.sum() == 0:
        raise ValueError("The mask is empty: no pixel marks the object (object pixels must be white or opaque).")
    return rgb, binary


def _square(arr: np.ndarray, fill: float) -> np.ndarray:
    """Pad (H, W, ...) to a square around its centre (the camera is square)."""
    h, w = arr.shape[:2]
    n = max(h, w)
    out = np.full((n, n, *arr.shape[2:]), fill, dtype=arr.dtype)
    top, left = (n - h) // 2, (n - w) // 2
    out[top : top + h, left : left + w] = arr
    return out


def image_target(
    rgb: np.ndarray,
    mask: np.ndarray,
    sizes: list[int],
    device: torch.device,
    background_color: tuple[float, float, float] = RGB_BACKGROUND,
) -> Target:
    """An uploaded image and mask as a Target: padded to square, resized per size, background set to
    `background_color`."""
    from PIL import Image

    rgb_sq, mask_sq = _square(rgb, 1.0), _square(mask, 0.0)
    masks, rgbs = {}, {}
    for size in sizes:
        m = np.asarray(Image.fromarray((mask_sq * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)) / 255.0
        c = np.asarray(Image.fromarray((rgb_sq * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)) / 255.0
        hard = (m > 0.5).astype(np.float32)
        if hard.sum() == 0:
            raise ValueError(
                f"The mask's object vanishes at {size} px: use a larger mask region or larger image sizes."
            )
        masks[size] = torch.from_numpy(hard).to(device)
        background = np.asarray(background_color, dtype=np.float32)
        rgbs[size] = torch.from_numpy((c * hard[..., None] + (1 - hard[..., None]) * background).astype(np.float32)).to(
            device
        )
    return Target(masks, rgbs)
