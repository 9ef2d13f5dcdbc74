"""Reading a user's picture safely: size checked from the header before decoding, every PIL mode to RGB float.

`read_image` is the one entry point for image inputs (SynSin, Mesh R-CNN, keypoint overlays): a file that is not a
picture, is truncated, declares an enormous size or is too small to use raises `ImageFileError` with a sentence a
user understands; what was changed on the way (alpha flattened, 16-bit scaled, first frame of an animation, resized)
comes back as notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pipelines.files.upload import image_size

IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "GIF", "PPM")


class ImageFileError(ValueError):
    """A picture that cannot be used; the message is a sentence for the user."""


@dataclass(frozen=True)
class ImageLimits:
    """Largest picture decoded (pixels, from the header), smallest side accepted, and the longest side kept
    (larger pictures are resized down after decoding)."""

    max_pixels: int = 50_000_000
    min_side: int = 8
    max_side: int = 1024


@dataclass
class LoadedImage:
    """`rgb` float32 (H, W, 3) in [0, 1]; `original_size` (width, height) from the header; `notes` for the user."""

    rgb: np.ndarray
    original_size: tuple[int, int]
    notes: list[str] = field(default_factory=list)


def _to_rgb(im: Image.Image, notes: list[str]) -> Image.Image:
    """Any PIL mode as 8-bit RGB; transparent pixels composited over white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = float(arr.max()) if arr.size else 0.0
        scale = 255.0 / top if top > 255 else 1.0
        im = Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8), mode="L")
        notes.append("A 16-bit or high-range picture was scaled to 8 bits.")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
        notes.append("Transparent pixels were composited over white.")
    if im.mode == "CMYK":
        notes.append("A CMYK picture was converted to RGB.")
    if im.mode == "L":
        notes.append("A grey picture was repeated into three channels.")
    return im.convert("RGB")


def read_image(path: str | Path, limits: ImageLimits = ImageLimits()) -> LoadedImage:
    """Decode the picture at `path` as float RGB, refusing bad input before the expensive step."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise ImageFileError(f"{name} was not found.")
    size = image_size(path)
    if size is None:
        raise ImageFileError(f"{name} is not a picture this app reads (PNG, JPEG, BMP, TIFF, WebP, GIF, PPM).")
    w, h = size
    if w * h > limits.max_pixels:
        raise ImageFileError(
            f"{name} is {w}×{h} pixels ({w * h / 1e6:.0f} MP); pictures over {limits.max_pixels / 1e6:.0f} MP "
            "are refused before decoding. Resize it and upload it again."
        )
    if min(w, h) < limits.min_side:
        raise ImageFileError(f"{name} is {w}×{h} pixels; a picture needs at least {limits.min_side} px on each side.")
    notes: list[str] = []
    try:
        with Image.open(path, formats=IMAGE_FORMATS) as im:
            if getattr(im, "n_frames", 1) > 1:
                notes.append(f"{name} has {im.n_frames} frames; the first one is used.")
            im.seek(0)
            im.load()
            im = ImageOps.exif_transpose(im) or im
            rgb = _to_rgb(im, notes)
    except Image.DecompressionBombError as e:
        raise ImageFileError(f"{name} declares an enormous size; it was not decoded.") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageFileError(f"{name} could not be decoded (truncated or damaged file): {e}.") from e
    longest = max(rgb.size)
    if longest > limits.max_side:
        scale = limits.max_side / longest
        new_size = (max(1, round(rgb.size[0] * scale)), max(1, round(rgb.size[1] * scale)))
        rgb = rgb.resize(new_size, Image.Resampling.LANCZOS)
        notes.append(f"Resized from {w}×{h} to {new_size[0]}×{new_size[1]} px.")
    return LoadedImage(np.asarray(rgb, dtype=np.float32) / 255.0, (w, h), notes)


def square_resize(rgb: np.ndarray, size: int) -> np.ndarray:
    """The largest centred square of float RGB `rgb` (H, W, 3), resized to (size, size, 3)."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = (np.clip(rgb[top : top + side, left : left + side], 0, 1) * 255).round().astype(np.uint8)
    out = Image.fromarray(crop).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(out, dtype=np.float32) / 255.0
