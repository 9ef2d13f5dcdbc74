"""Renders the Mesh R-CNN tab's example pictures: held-out shapes (ids the training never draws) and held-out floor
scenes for detection mode, 128 px PNGs.

Run from the repository root: `python assets/meshrcnn/make_examples.py`."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from pipelines.meshrcnn import data, scenes  # noqa: E402

IDS = (500, 501, 502, 503, 504, 505)
"""Held-out sample numbers (shape id HELD_OUT_OFFSET + n), beyond the evaluation's first 100."""
SCENES = (504, 508)
"""Held-out scene numbers (scene id HELD_OUT_SCENES + n), beyond the detector evaluation's first 200."""


def main() -> None:
    out = Path(__file__).resolve().parent / "examples"
    out.mkdir(exist_ok=True)
    samples = [data.make_sample(data.HELD_OUT_OFFSET + n) for n in IDS]
    images, _ = data.render(samples, 128, torch.device("cpu"))
    for n, sample, image in zip(IDS, samples, images):
        pixels = (image.numpy() * 255 + 0.5).astype(np.uint8)
        Image.fromarray(pixels).save(out / f"heldout_{n}_{sample.category}.png")
    floors = [scenes.make_scene(scenes.HELD_OUT_SCENES + n) for n in SCENES]
    images, _ = scenes.render_scenes(floors, scenes.IMAGE_SIZE, torch.device("cpu"))
    for n, scene, image in zip(SCENES, floors, images):
        pixels = (image.numpy() * 255 + 0.5).astype(np.uint8)
        Image.fromarray(pixels).save(out / f"scene_{n}_{len(scene.objects)}_objects.png")


if __name__ == "__main__":
    main()
