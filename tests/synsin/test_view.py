"""SynSin views with the shipped model: a held-out room at a clamped extreme pose, uploads in odd formats, and
bad checkpoints refused with a sentence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from pipelines.core.events import Done
from pipelines.synsin import view


def run_view(tmp_path, **fields) -> Done:
    cfg = dataclasses.replace(view.Config.tiny(), out_dir=tmp_path / "out", device="cpu", **fields)
    events = list(view.run(cfg))
    assert isinstance(events[-1], Done)
    return events[-1]


def test_heldout_room_extreme_pose_is_clamped_and_said(tmp_path):
    done = run_view(tmp_path, yaw_deg=80.0, forward=3.0)
    assert done.metrics["poses_clamped"] == 2
    assert any("clamped" in n for n in done.info["notes"])
    assert done.info["summary"]["pose"]["yaw_deg"] == 20.0
    for key in ("view", "depth", "projected", "truth", "sweep", "strip"):
        assert done.files[key].is_file()
    assert min(np.asarray(Image.open(done.files["view"])).shape[:2]) >= 256  # shown at >= 256 px
    assert np.isfinite(done.metrics["psnr_view"]) and 0 <= done.metrics["depth_absrel"] < 1


@pytest.mark.parametrize("mode, size", [("L", (37, 23)), ("RGBA", (90, 61))])
def test_uploads_in_odd_modes_and_sizes(tmp_path, mode, size):
    path = tmp_path / f"in_{mode}.png"
    rng = np.random.default_rng(0)
    channels = {"L": 1, "RGBA": 4}[mode]
    pixels = rng.integers(0, 255, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(pixels.squeeze(), mode=mode).save(path)
    done = run_view(tmp_path, image=path, sweep_frames=0)
    assert "truth" not in done.files and done.files["view"].is_file()
    assert any("resized" in n for n in done.info["notes"])


def test_bad_checkpoints_and_pictures_get_sentences(tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        run_view(tmp_path, checkpoint=str(broken))
    with pytest.raises(ValueError, match="No checkpoint"):
        run_view(tmp_path, checkpoint="missing.pth")
    fake = tmp_path / "fake.png"
    fake.write_text("not a picture")
    with pytest.raises(ValueError, match="not a picture"):
        run_view(tmp_path, image=fake)
