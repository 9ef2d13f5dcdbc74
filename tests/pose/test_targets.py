"""Pose's uploaded targets: image and mask read, checked for size and content, and refused before decoding when too
large."""

from __future__ import annotations

import dataclasses

import pytest

from pipelines.pose import pipeline as pose
from pipelines.pose import targets
from pipelines.pose.targets import read_image_and_mask


def test_image_and_mask_of_different_sizes(tmp_path):
    from PIL import Image

    Image.new("RGB", (64, 48)).save(tmp_path / "a.png")
    Image.new("L", (32, 32), 255).save(tmp_path / "m.png")
    with pytest.raises(ValueError, match=r"64×48 pixels but the mask is 32×32"):
        read_image_and_mask(str(tmp_path / "a.png"), str(tmp_path / "m.png"))
    cfg = dataclasses.replace(
        pose.Config.tiny(),
        out_dir=tmp_path / "o",
        target_image=str(tmp_path / "a.png"),
        target_mask=str(tmp_path / "m.png"),
    )
    with pytest.raises(ValueError, match="same size"):
        list(pose.run(cfg))


def test_empty_mask(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 40)).save(tmp_path / "a.png")
    Image.new("L", (40, 40), 0).save(tmp_path / "m.png")
    with pytest.raises(ValueError, match="The mask is empty"):
        read_image_and_mask(str(tmp_path / "a.png"), str(tmp_path / "m.png"))


def test_oversized_target_images_are_refused_before_decoding(tmp_path, monkeypatch):
    from PIL import Image, PngImagePlugin

    Image.new("RGB", (64, 48)).save(tmp_path / "a.png")
    Image.new("L", (64, 48), 255).save(tmp_path / "m.png")

    def no_decoding(self):
        raise AssertionError("the image was decoded before its size was checked")

    with monkeypatch.context() as patch:
        patch.setattr(targets, "MAX_TARGET_PIXELS", 1000)
        patch.setattr(PngImagePlugin.PngImageFile, "load", no_decoding)
        with pytest.raises(ValueError, match=r"64×48 pixels, above the 0.001-megapixel limit"):
            read_image_and_mask(str(tmp_path / "a.png"), str(tmp_path / "m.png"))
    with monkeypatch.context() as patch:  # PIL's own decompression-bomb error is not an OSError
        patch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
        with pytest.raises(ValueError, match=r"a\.png\) has too many pixels"):
            read_image_and_mask(str(tmp_path / "a.png"), str(tmp_path / "m.png"))
