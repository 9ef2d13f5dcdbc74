"""Makes the start-here cards' thumbnails (assets/showcase/*.png, 320 px) with the studio's own renderers: the book's
cow, teapot and pedestrian stand-ins, the SMPL-layout body, and procedural primitives for the generative tabs.

Run: .venv/bin/python scripts/showcase_thumbnails.py (a few seconds on a CPU; deterministic)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from pipelines.core.events import Done, to_uint8  # noqa: E402
from pipelines.shading import lab  # noqa: E402
from pipelines.shading.meshes import load_mesh  # noqa: E402
from pipelines.shading.settings import RenderSettings  # noqa: E402
from pipelines.smpl import pipeline as smpl  # noqa: E402
from tabs.showcase import THUMBNAILS  # noqa: E402

SIZE = 320


def render(name: str, **settings: float | str) -> np.ndarray:
    """One subject rendered by the Shading lab at a three-quarter view."""
    base = RenderSettings(image_size=SIZE, elev=25.0, azim=40.0, dist=2.1, background=(0.96, 0.96, 0.97))
    s = dataclasses.replace(base, **settings)
    return to_uint8(lab.render(load_mesh(name), s, device="cpu").image[0])


def body() -> np.ndarray:
    """The SMPL-layout body in the smpl pipeline's own render."""
    done = None
    for event in smpl.run(dataclasses.replace(smpl.Config.tiny(), device="cpu", out_dir=Path("/tmp/showcase-smpl"))):
        if isinstance(event, Done):
            done = event
    image = np.asarray(done.info["render"])
    return image


def save(image: np.ndarray, name: str) -> None:
    THUMBNAILS.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(image)
    picture.thumbnail((SIZE, SIZE))
    picture.save(THUMBNAILS / name, optimize=True)


def main() -> None:
    torch.manual_seed(0)
    save(render("cow"), "nerf.png")
    save(render("cow", azim=-50.0, elev=10.0), "volume.png")
    save(render("cow", azim=150.0, elev=45.0, shader="soft-silhouette"), "pose.png")
    save(render("teapot"), "shading.png")
    save(body(), "smpl.png")
    save(render("cube", azim=30.0), "giraffe.png")
    save(render("ico-sphere", shader="hard-flat"), "meshrcnn.png")
    save(render("torus", elev=50.0), "synsin.png")
    save(render("cow", shader="hard-flat", azim=80.0), "mesh_fit.png")


if __name__ == "__main__":
    main()
