"""A turntable of a mesh under the Shading lab's render settings, exported as GIF and MP4 (and its first frame as
a PNG: one frame is a still, which is how the book's lighting figures are made)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from pipelines.core.device import resolve_device
from pipelines.core.events import Done, Event, Preview, Progress, to_uint8
from pipelines.core.headline import Headline
from pipelines.render.book_figures import BookFigure
from pipelines.render.images import save_gif, save_mp4
from pipelines.shading.lab import turntable
from pipelines.shading.meshes import load_mesh_with_notes
from pipelines.shading.settings import RenderSettings, guard_memory

HEADLINE = (Headline("frames_per_second_rendered", "Rendered at", "frames/s"),)
"""The result card's number: rendering speed."""

FORMATS = ("gif", "mp4")
MAX_FRAMES = 720
MAX_FRAME_BYTES = 2 * 2**30  # every frame is kept (uint8) until the animations are written


# The book's chapter-2 renders: the cow from the front (dist 2.7, elev 0, azim 180) under PyTorch3D's default point
# light and material colours, then one change at a time.
_BOOK_VIEW = {
    "shader": "hard-phong", "light": "point", "light_xyz": (0.0, 0.0, -3.0), "light_ambient": (0.5, 0.5, 0.5),
    "light_diffuse": (0.3, 0.3, 0.3), "light_specular": (0.2, 0.2, 0.2), "shininess": 64.0, "dist": 2.7,
    "elev": 0.0, "azim": 180.0, "background": (1.0, 1.0, 1.0),
}  # fmt: skip
_SPECULAR_VIEW = {**_BOOK_VIEW, "elev": 10.0, "azim": -150.0, "light_xyz": (2.0, 2.0, -2.0)}


def _lighting(number: str, title: str, book: str, change: dict[str, object]) -> BookFigure:
    settings = json.dumps({**_BOOK_VIEW, **change})
    return BookFigure(
        number, title, book, "shading-turntable", {"mesh": "cow", "frames": 1, "settings": settings}, "still"
    )


FIGURES = (
    _lighting("2.5", "The cow lit from the front", "The cow rendered from the front (distance 2.7, elevation 0, azimuth 180) with a point light at (0, 0, -3) between the camera and the cow: ambient, diffuse and a faint specular highlight.", {}),
    _lighting("2.6", "The light behind the cow", "The same render with the point light moved behind the cow, to (0, 0, 1): the side facing the camera gets no diffuse light and only the ambient term remains.", {"light_xyz": (0.0, 0.0, 1.0)}),
    _lighting("2.7", "Almost no ambient light", "The light still behind the cow and the ambient colour lowered to 0.01: the cow nearly disappears, which shows how much of the previous picture was ambient.", {"light_xyz": (0.0, 0.0, 1.0), "light_ambient": (0.01, 0.01, 0.01)}),
    _lighting("2.8", "A green specular highlight", "The camera at elevation 10 and azimuth -150, the light at (2, 2, -2), and a green specular colour with shininess 10: wide green highlights.", {**_SPECULAR_VIEW, "material_specular": (0.0, 1.0, 0.0), "shininess": 10.0}),
    _lighting("2.9", "A red specular highlight", "The same view with a red specular colour and shininess 20: smaller, sharper red highlights.", {**_SPECULAR_VIEW, "material_specular": (1.0, 0.0, 0.0), "shininess": 20.0}),
    _lighting("2.10", "No specular term", "The same view with the specular colour set to black: only ambient and diffuse shading remain, and the surface looks matte.", {**_SPECULAR_VIEW, "material_specular": (0.0, 0.0, 0.0)}),
)  # fmt: skip
"""The book's lighting figures (Figs 2.5-2.10), each one frame of this pipeline."""


@dataclass(frozen=True)
class Config:
    mesh: str = "cow"
    """A book subject (cow, teapot), a procedural mesh (ico-sphere, torus, cube), a bundled asset's file name, or a path to a 3D file."""
    settings: str = ""
    """Render settings as a JSON object (the Shading lab's settings; empty keeps the defaults)."""
    frames: int = 36
    """Frames in one full turn of the camera's azimuth."""
    fps: float = 12.0
    """Frames per second of the animations."""
    image_size: int = 0
    """Frame side in pixels; 0 keeps the settings' image size."""
    formats: tuple[str, ...] = FORMATS
    """Animations to write: gif, mp4 or both."""
    device: str = "auto"
    """auto, cpu or cuda[:N]."""
    seed: int = 0
    """Unused (rendering is deterministic); recorded for the run store."""
    out_dir: Path | None = None
    """Where the animations go."""

    @classmethod
    def quick(cls) -> Config:
        return cls(frames=24, image_size=192)

    @classmethod
    def tiny(cls) -> Config:
        return cls(frames=4, image_size=48)


def parse_settings(text: str | dict | None) -> RenderSettings:
    """RenderSettings from a JSON object (text or dict); empty means the defaults."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return RenderSettings()
    if isinstance(text, str):
        try:
            text = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"The render settings are not valid JSON: {err.msg} (line {err.lineno}).") from None
    return RenderSettings.from_dict(text)


def run(cfg: Config) -> Iterator[Event]:
    """Render `frames` views around the mesh (azimuth steps of 360/frames), then write the animations."""
    unknown = sorted(set(cfg.formats) - set(FORMATS))
    if unknown or not cfg.formats:
        raise ValueError(f"Formats must be gif and/or mp4, got {', '.join(cfg.formats) or 'none'}.")
    if not 1 <= cfg.frames <= MAX_FRAMES:
        raise ValueError(f"Frames must be between 1 and {MAX_FRAMES}.")
    if not 0.5 <= cfg.fps <= 60:
        raise ValueError("Frames per second must be between 0.5 and 60.")
    if cfg.out_dir is None:
        raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
    settings = parse_settings(cfg.settings)
    if cfg.image_size:
        settings = settings.replace(image_size=cfg.image_size)
    frame_bytes = cfg.frames * settings.image_size**2 * 3
    if frame_bytes > MAX_FRAME_BYTES:
        raise ValueError(
            f"{cfg.frames} frames of {settings.image_size} px would hold {frame_bytes / 2**30:.1f} GiB of pictures; "
            f"the limit is {MAX_FRAME_BYTES / 2**30:.0f} GiB: use fewer frames or a smaller image size."
        )
    device = resolve_device(cfg.device)
    mesh, notes = load_mesh_with_notes(cfg.mesh, device)
    chunk = 1 if settings.image_size >= 512 else 4
    settings, guard_notes = guard_memory(settings, chunk)
    notes += guard_notes

    frames = []
    start = time.monotonic()
    last_preview = 0.0
    for i, frame in enumerate(turntable(mesh, settings, cfg.frames, device=device, chunk=chunk), start=1):
        frames.append(to_uint8(frame))
        yield Progress(i, cfg.frames, {}, f"frame {i}/{cfg.frames}")
        if time.monotonic() - last_preview > 0.5 or i == cfg.frames:
            last_preview = time.monotonic()
            yield Preview(i, image=frames[-1], caption=f"frame {i}/{cfg.frames}")
    render_s = time.monotonic() - start

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    if "gif" in cfg.formats:
        files["gif"] = save_gif(frames, out / "turntable.gif", cfg.fps)
    if "mp4" in cfg.formats:
        files["mp4"] = save_mp4(frames, out / "turntable.mp4", cfg.fps)
    (out / "settings.json").write_text(json.dumps(settings.to_dict(), indent=2))
    files["settings"] = out / "settings.json"
    files["still"] = out / "still.png"
    Image.fromarray(frames[0]).save(files["still"])
    metrics = {
        "frames": float(cfg.frames),
        "render_seconds": render_s,
        "frames_per_second_rendered": cfg.frames / max(render_s, 1e-9),
    }
    yield Done(metrics=metrics, files=files, info={"notes": notes, "settings": settings.to_dict()})
