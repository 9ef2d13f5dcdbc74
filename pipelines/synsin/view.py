"""Render novel views of one picture with a trained SynSin model: predicted depth, the feature point cloud, the
projected features before refinement, the refined view and a camera-sweep GIF.

The model is the studio checkpoint shipped in assets/synsin/ unless a checkpoint is named (a studio file or an
official one, from --models-dir or an upload). The picture is a held-out room (rendered at the model's size; the
true target view and depth are then shown beside the prediction) or an uploaded image (read by `read_image`,
centre-cropped and resized). Requested poses beyond the trained range are clamped, and the result says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from pipelines.core.device import resolve_device
from pipelines.core.events import Done, Event, Preview, Progress, to_uint8
from pipelines.core.headline import Headline
from pipelines.core.paths import ASSETS_DIR
from pipelines.files.image_input import read_image, square_resize
from pipelines.render.images import image_grid, save_gif
from pipelines.synsin import checkpoints, evaluate, figures, rooms
from pipelines.synsin.geometry import PoseLimits, RelPose, compose_camera, relative_transform
from pipelines.synsin.model import SynSin

SHIPPED = ASSETS_DIR / "synsin" / "synsin_rooms64.pt"
"""The studio-trained checkpoint the tab loads by default (see assets/synsin/MODEL_CARD.md)."""
HEADLINE = (
    Headline("psnr_view", "PSNR against the true view", "dB", "psnr_copy_input"),
    Headline("depth_absrel", "Depth AbsRel", ""),
)
OPTIONAL_FILES = {"SynSin official checkpoint": checkpoints.OFFICIAL_FILE_NAMES}
"""Files an operator may put in --models-dir for this pipeline (the Health panel collects them)."""


@dataclass(frozen=True)
class Config:
    checkpoint: str = ""
    """'' = the shipped studio model; a file name in models_dir; or a path to a .pt/.pth (studio or official)."""
    models_dir: Path | None = None
    """The operator's model folder (--models-dir), searched for checkpoint names."""
    image: Path | None = None
    """An uploaded picture (any size; centre-cropped to a square). None renders a held-out room."""
    heldout_room: int = 0
    """Which held-out room to render when no picture is given (0-999)."""
    yaw_deg: float = 10.0
    """Turn left (+) or right (-), degrees."""
    pitch_deg: float = 0.0
    """Tilt up (+) or down (-), degrees."""
    right: float = 0.0
    """Move right (+) or left (-), scene units."""
    up: float = 0.0
    """Move up (+) or down (-), scene units."""
    forward: float = 0.2
    """Move forward (+) or back (-), scene units."""
    sweep_frames: int = 24
    """Frames of the camera-sweep GIF (0 = no sweep)."""
    cloud_points: int = 4000
    """Points drawn in the Plotly feature cloud (subsampled)."""
    limit_yaw_deg: float = 20.0
    """The trained range: requests beyond it are clamped (the shipped model saw ±20°, ±10°, ±0.6/0.2/0.6)."""
    limit_pitch_deg: float = 10.0
    """Trained tilt range (degrees)."""
    limit_move: float = 0.6
    """Trained sideways/forward range (scene units)."""
    limit_up: float = 0.2
    """Trained vertical range (scene units)."""
    device: str = "auto"
    """auto (CUDA when present), cpu, or cuda[:N]."""
    seed: int = 0
    """Seeds the noise of the decoder's conditional norms (the same view every time)."""
    out_dir: Path | None = None
    """Where the pictures and the GIF go."""

    @classmethod
    def quick(cls) -> Config:
        return cls()

    @classmethod
    def tiny(cls) -> Config:
        return cls(sweep_frames=3, cloud_points=200)

    @property
    def limits(self) -> PoseLimits:
        return PoseLimits(self.limit_yaw_deg, self.limit_pitch_deg, self.limit_move, self.limit_up, self.limit_move)


def resolve_checkpoint(cfg: Config) -> Path:
    """The checkpoint file the config names (shipped by default), or a ValueError sentence."""
    name = (cfg.checkpoint or "").strip()
    if not name:
        if not SHIPPED.is_file():
            raise ValueError(f"The shipped SynSin model ({SHIPPED.name}) is missing; train one with synsin-train.")
        return SHIPPED
    candidates = [Path(name)]
    if cfg.models_dir is not None:
        candidates.insert(0, Path(cfg.models_dir) / name)
    for path in candidates:
        if path.is_file():
            return path
    raise ValueError(f"No checkpoint {name!r} was found (looked in --models-dir and as a path).")


def load_input(cfg: Config, model: SynSin) -> tuple[torch.Tensor, dict | None, list[str]]:
    """The input (1, 3, S, S) in [0, 1]; for a held-out room also its truth {tgt, src_depth, tgt_depth}; notes."""
    size = model.spec.image_size
    if cfg.image is not None:
        loaded = read_image(cfg.image)
        rgb = square_resize(loaded.rgb, size)
        notes = list(loaded.notes) + [f"Centre-cropped and resized to {size}×{size} px (the model's size)."]
        return torch.from_numpy(rgb).permute(2, 0, 1)[None].float(), None, notes
    if not (0 <= cfg.heldout_room <= 999):
        raise ValueError("heldout_room must be 0-999.")
    room = rooms.make_room(rooms.heldout_seed(cfg.heldout_room))
    gen = rooms.camera_generator(rooms.heldout_seed(cfg.heldout_room))
    r, t = rooms.source_cameras(room, 1, gen)
    img, depth = rooms.render(room, r, t, size, model.spec.fov_deg)
    return img, {"room": room, "r": r, "t": t, "src_depth": depth}, []


def truth_view(truth: dict, pose: RelPose, size: int, fov: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The held-out room rendered from the requested target camera: RGB (1, 3, S, S), depth (1, 1, S, S)."""
    r_rel, t_rel = relative_transform(pose)
    r_tgt, t_tgt = compose_camera(truth["r"], truth["t"][:, None], r_rel[None], t_rel[None, None])
    return rooms.render(truth["room"], r_tgt, t_tgt[:, 0], size, fov)


def sweep_poses(n: int, limits: PoseLimits) -> list[RelPose]:
    """A loop: turn left and right while gliding sideways and forward (stays inside the trained range)."""
    out = []
    for i in range(n):
        a = 2 * math.pi * i / n
        out.append(RelPose(0.8 * limits.yaw_deg * math.sin(a), 0.0, 0.6 * limits.right * math.sin(a), 0.0,
                           0.5 * limits.forward * (1 - math.cos(a)) / 2))  # fmt: skip
    return out


def novel_view(model: SynSin, feats, points, pose: RelPose, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(refined (3, S, S), projected features (C, S, S)) for one pose, under no_grad."""
    r_rel, t_rel = relative_transform(pose)
    with torch.no_grad():
        image, projected, _ = model.render(feats, points, r_rel[None].to(device), t_rel[None].to(device))
    return image[0].clamp(0, 1), projected[0]


def run(cfg: Config) -> Iterator[Event]:
    """Load the model and the picture, render the requested view and the sweep; Done carries pictures and info."""
    if not (0 <= cfg.sweep_frames <= 120) or not (10 <= cfg.cloud_points <= 50_000):
        raise ValueError("sweep_frames must be 0-120 and cloud_points 10-50,000.")
    if cfg.out_dir is None:
        raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    total = 3 + cfg.sweep_frames
    yield Progress(0, total, {}, "loading the model")
    path = resolve_checkpoint(cfg)
    try:
        model, info = checkpoints.load_generator(path, device)
    except checkpoints.CheckpointError as err:
        raise ValueError(str(err)) from err
    for m in model.modules():
        if hasattr(m, "seed"):
            m.seed = m.seed + cfg.seed * 1000
    src, truth, notes = load_input(cfg, model)
    pose, clamp_notes = RelPose(cfg.yaw_deg, cfg.pitch_deg, cfg.right, cfg.up, cfg.forward).clamped(cfg.limits)
    notes += clamp_notes + list(info.get("notes", []))
    yield Progress(1, total, {}, "predicting depth and features")
    src = src.to(device)
    with torch.no_grad():
        feats, depth, points = model.encode(src)
    view, projected = novel_view(model, feats, points, pose, device)
    mean, basis = figures.feature_basis(feats[0])
    s = model.spec.image_size
    pictures = {
        "input": src[0].permute(1, 2, 0).cpu(),
        "depth": figures.depth_picture(depth[0].cpu()),
        "projected": figures.feature_picture(projected.cpu(), mean.cpu(), basis.cpu()),
        "view": view.permute(1, 2, 0).cpu(),
    }
    metrics = {"image_size": float(s), "depth_min": float(depth.min()), "depth_max": float(depth.max()),
               "poses_clamped": float(len(clamp_notes))}  # fmt: skip
    if truth is not None:
        tgt, _ = truth_view(truth, pose, s, model.spec.fov_deg)
        pictures["truth"] = tgt[0].permute(1, 2, 0)
        metrics["psnr_view"] = float(evaluate.psnr(view[None].cpu(), tgt))
        metrics["psnr_copy_input"] = float(evaluate.psnr(src.cpu(), tgt))
        metrics["depth_absrel"] = float(evaluate.abs_rel(depth.cpu(), truth["src_depth"]))
    yield Preview(2, image=to_uint8(figures.upscale(pictures["view"])), caption="refined view")
    files = _write_pictures(out_dir, pictures)
    frames = []
    for i, p in enumerate(sweep_poses(cfg.sweep_frames, cfg.limits)):
        frame, _ = novel_view(model, feats, points, p, device)
        frames.append(to_uint8(figures.upscale(frame.permute(1, 2, 0).cpu())))
        yield Progress(3 + i, total, {}, f"sweep frame {i + 1}/{cfg.sweep_frames}")
    if frames:
        files["sweep"] = save_gif(frames, out_dir / "sweep.gif", fps=12)
    colors = src[0].flatten(1).T
    figure = figures.cloud_figure(points[0], colors, cfg.cloud_points, cfg.seed)
    summary = {"checkpoint": path.name, "kind": info["kind"], "pose": pose.__dict__, "notes": notes,
               "model": info["spec"], "trained_steps": info.get("step")}  # fmt: skip
    (out_dir / "view.json").write_text(json.dumps(summary, indent=2, default=str))
    files["summary"] = out_dir / "view.json"
    yield Done(metrics=metrics, files=files, info={"summary": summary, "cloud": figure, "notes": notes})


def _write_pictures(out_dir: Path, pictures: dict[str, torch.Tensor]) -> dict[str, Path]:
    """Each picture enlarged to >= 256 px as PNG, plus a strip of them all."""
    files = {}
    for name, img in pictures.items():
        path = out_dir / f"{name}.png"
        Image.fromarray(to_uint8(figures.upscale(img))).save(path)
        files[name] = path
    strip = image_grid([figures.upscale(p) for p in pictures.values()], cols=len(pictures), pad=4)
    Image.fromarray(to_uint8(strip)).save(out_dir / "strip.png")
    files["strip"] = out_dir / "strip.png"
    return files
