"""Makes the start-here cards' thumbnails (assets/showcase/*.png, 320 px) with the studio's own renderers: the book's
cow, teapot and pedestrian stand-ins, the SMPL-layout body, a procedural room (SynSin), and crops of the pictures
the shipped GIRAFFE and Mesh R-CNN models made (their model cards keep them in assets/).

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
from pipelines.synsin import rooms  # noqa: E402
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


def crop(path: Path, box: tuple[int, int, int, int]) -> np.ndarray:
    """A region (left, top, right, bottom) of a picture the shipped models' cards keep in assets/."""
    with Image.open(path) as picture:
        region = picture.convert("RGB").crop(box)
    scale = SIZE / max(region.size)
    region = region.resize((round(region.width * scale), round(region.height * scale)), Image.Resampling.LANCZOS)
    square = Image.new("RGB", (SIZE, SIZE), (245, 245, 247))
    square.paste(region, ((SIZE - region.width) // 2, (SIZE - region.height) // 2))
    return np.asarray(square)


def room() -> np.ndarray:
    """A held-out procedural room as SynSin's source camera sees it."""
    gen = rooms.camera_generator(rooms.heldout_seed(3))
    scene = rooms.make_room(rooms.heldout_seed(3))
    r, t = rooms.source_cameras(scene, 1, gen)
    rgb, _ = rooms.render(scene, r, t, SIZE, 60.0)
    return to_uint8(rgb[0].permute(1, 2, 0))  # (3, S, S) → (S, S, 3)


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
    save(crop(ROOT / "assets/giraffe/samples.png", (0, 0, 258, 258)), "giraffe.png")  # 4 samples of the shipped model
    save(
        crop(ROOT / "assets/meshrcnn/heldout_preview.png", (0, 260, 388, 518)), "meshrcnn.png"
    )  # lamp, chair: image, voxels, mesh
    save(room(), "synsin.png")
    save(render("cow", shader="hard-flat", azim=80.0), "mesh_fit.png")


if __name__ == "__main__":
    main()
