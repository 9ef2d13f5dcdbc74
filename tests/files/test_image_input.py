"""Image inputs: hostile and unusual pictures get a sentence or a documented conversion, never a crash."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from pipelines.files.image_input import ImageFileError, ImageLimits, read_image, square_resize


def _png_header_only(path, width, height):
    """A PNG whose IHDR declares width × height but carries almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n"
    for kind, body in ((b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\x00" * 7)), (b"IEND", b"")):
        data += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    path.write_bytes(data)
    return path


def test_rgb_png_round_trip(tmp_path):
    arr = (np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.rgb.shape == (20, 30, 3) and out.rgb.dtype == np.float32
    assert np.allclose(out.rgb * 255, arr, atol=0.5) and out.notes == [] and out.original_size == (30, 20)


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "I;16", "P"])
def test_modes_become_rgb(tmp_path, mode):
    im = Image.new(mode, (16, 12))
    im.save(tmp_path / "m.tiff" if mode in ("CMYK",) else tmp_path / "m.png")
    path = tmp_path / ("m.tiff" if mode == "CMYK" else "m.png")
    out = read_image(path)
    assert out.rgb.shape == (12, 16, 3) and 0 <= out.rgb.min() <= out.rgb.max() <= 1


def test_rgba_is_composited_over_white(tmp_path):
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(tmp_path / "t.png")
    out = read_image(tmp_path / "t.png")
    assert np.allclose(out.rgb, 1.0) and any("white" in n for n in out.notes)


def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    out = read_image(tmp_path / "a.gif")
    assert out.rgb[0, 0, 0] > 0.9 and any("frames" in n for n in out.notes)


def test_large_picture_is_resized(tmp_path):
    Image.new("RGB", (3000, 1500), (10, 200, 30)).save(tmp_path / "big.jpg")
    out = read_image(tmp_path / "big.jpg", ImageLimits(max_side=512))
    assert out.rgb.shape == (256, 512, 3) and any("Resized" in n for n in out.notes)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: _png_header_only(p / "huge.png", 20_000, 20_000), "refused before decoding"),
        (lambda p: _png_header_only(p / "tiny.png", 1, 1), "at least"),
        (lambda p: (p / "x.png").write_bytes(b"not a picture at all") and p / "x.png", "not a picture"),
        (lambda p: _png_header_only(p / "cut.png", 64, 64), "could not be decoded"),
    ],
)
def test_bad_pictures_get_a_sentence(tmp_path, make, words):
    path = make(tmp_path)
    with pytest.raises(ImageFileError, match=words):
        read_image(path)


def test_truncated_jpeg(tmp_path):
    arr = (np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageFileError, match="could not be decoded"):
        read_image(tmp_path / "cut.jpg")


def test_square_resize():
    rgb = np.zeros((40, 80, 3), np.float32)
    rgb[:, 20:60] = 1.0
    out = square_resize(rgb, 16)
    assert out.shape == (16, 16, 3) and out.min() > 0.9
