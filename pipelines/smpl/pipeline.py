"""Pose and shape the SMPL-layout body: posed mesh (GLB/OBJ), skeleton, skinning-weight heat map, renders."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.core.device import resolve_device
from pipelines.core.events import Done, Event, Preview, Progress
from pipelines.core.headline import Headline
from pipelines.smpl import body_model
from pipelines.smpl.body_views import SKIN, export_obj, heat_colors, pose_view, render_views
from pipelines.smpl.layout import JOINT_NAMES
from pipelines.smpl.model_files import OFFICIAL_MODEL_NAMES, model_in_use
from pipelines.smpl.poses import joint_index, parse_betas, parse_pose, preset_pose

HEADLINE = (Headline("height_m", "Height", "m"), Headline("pose_and_export_s", "posed and exported in", "s"))
"""The result card's numbers: the body's height and the time to pose it and write its files."""

EXPORTS = ("glb", "obj")
OPTIONAL_FILES = {"SMPL body model": OFFICIAL_MODEL_NAMES}
"""Files an operator may put in --models-dir for this pipeline (the Health panel collects them)."""


def health_notes(models_dir: Path | None) -> dict[str, str]:
    """Lines for the Health panel: which body model the SMPL tab uses by default."""
    return {"smpl_body_model": model_in_use(models_dir)}


@dataclass(frozen=True)
class Config:
    body_model: str = ""
    """'' uses the first SMPL file in models_dir, else the procedural body; 'procedural'; a file name in models_dir; or a path to an .npz."""
    models_dir: Path | None = None
    """The operator's model folder (--models-dir): official SMPL files are found here, and .pkl is trusted only from here."""
    pose_preset: str = "a-pose"
    """Starting pose: t-pose, a-pose, walking, sitting, arms-up, or random (a plausible pose drawn with `seed`)."""
    pose: tuple[float, ...] = ()
    """72 axis-angle values in radians (24 joints x, y, z; joint 0 is the global orientation); replaces the preset when given."""
    betas: tuple[float, ...] = ()
    """Shape coefficients (about one standard deviation per unit); missing ones are 0."""
    heat_joint: str = "left_shoulder"
    """The joint whose skinning weights are shown as a heat map."""
    exports: tuple[str, ...] = ("glb", "obj")
    """Posed-mesh files to write: glb and/or obj (the heat-map GLB is always written)."""
    image_size: int = 384
    """Side of each rendered preview view (front and side), in pixels."""
    device: str = "auto"
    """auto, cpu or cuda[:N]."""
    seed: int = 0
    """Seed of the random pose preset."""
    out_dir: Path | None = None
    """Where the meshes and renders go (the app and CLI set one per run)."""

    @classmethod
    def quick(cls) -> Config:
        return cls()

    @classmethod
    def tiny(cls) -> Config:
        return cls(pose_preset="walking", image_size=96, exports=("glb",))

    @classmethod
    def full(cls) -> Config:
        return cls(image_size=512)


# ----------------------------------------------------------------------------------------------------------------
# The pipeline
# ----------------------------------------------------------------------------------------------------------------


def run(cfg: Config) -> Iterator[Event]:
    """Load the body model, pose it, write the posed mesh, heat map and renders; `Done.info` has the skeleton."""
    unknown = sorted(set(cfg.exports) - set(EXPORTS))
    if unknown:
        raise ValueError(f"Unknown export {unknown[0]!r}: choose from {', '.join(EXPORTS)}.")
    if not 32 <= cfg.image_size <= 2048:
        raise ValueError("image_size must be between 32 and 2048 pixels.")
    if cfg.out_dir is None:
        raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
    joint_index(cfg.heat_joint)
    device = resolve_device(cfg.device)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    total = 5

    t0 = time.perf_counter()
    model = body_model.load(cfg.body_model, cfg.models_dir)
    pose = parse_pose(cfg.pose) if cfg.pose else preset_pose(cfg.pose_preset, cfg.seed)
    betas = parse_betas(cfg.betas, model.num_betas)
    load_s = time.perf_counter() - t0
    yield Progress(
        1, total, {}, f"loaded {model.name}: {model.num_verts} vertices, {model.num_betas} shape coefficients"
    )

    t0 = time.perf_counter()
    view = pose_view(model, betas, pose, cfg.heat_joint, out_dir, device)
    pose_s = time.perf_counter() - t0
    yield Progress(2, total, {}, "posed and wrote the viewer files")

    files: dict[str, Path] = {"heat_glb": view.heat_glb}
    faces = model.faces.cpu().numpy()
    if "glb" in cfg.exports:
        files["glb"] = view.mesh_glb
    if "obj" in cfg.exports:
        files["obj"] = export_obj(view.verts, faces, out_dir / "posed.obj")
    yield Progress(3, total, {}, f"exported {', '.join(cfg.exports) or 'nothing'}")

    # One view per step: a CPU render of a few hundred pixels takes about a second.
    skin_colors = np.tile(SKIN, (len(view.verts), 1))
    heat = heat_colors(model.weights[:, joint_index(cfg.heat_joint)].numpy())
    views: list[np.ndarray] = []
    for i, (colors, azim) in enumerate(((skin_colors, 0.0), (skin_colors, 90.0), (heat, 0.0), (heat, 180.0))):
        views.append(render_views(view.verts, faces, colors, size=cfg.image_size, azims=(azim,), device=device))
        if i == 1:
            yield Preview(
                4,
                image=np.concatenate(views, 1),
                mesh=view.mesh_glb,
                figure=view.figure,
                caption="posed body, front and side",
            )
        else:
            yield Progress(min(3 + i // 2, total - 1), total, {}, f"rendered view {i + 1} of 4")
    image = np.concatenate(views, 1)
    _save_png(image, out_dir / "render.png")
    files["render"] = out_dir / "render.png"
    yield Preview(5, image=image, mesh=view.heat_glb, caption=f"skinning weights of {cfg.heat_joint} (front, back)")
    yield Progress(total, total, {}, "done")

    metrics = {"load_s": load_s, "pose_and_export_s": pose_s, **view.stats}
    metrics.update(vertices=float(model.num_verts), faces=float(len(faces)), joints=float(model.num_joints))
    yield Done(
        metrics=metrics,
        files=files,
        info={
            "model": model.summary(),
            "joints": {n: [round(float(x), 5) for x in view.joints[i]] for i, n in enumerate(JOINT_NAMES)},
            "pose": [round(float(x), 5) for x in pose.reshape(-1)],
            "betas": [round(float(x), 5) for x in betas],
            "figure": view.figure,
            "mesh": view.mesh_glb,
            "heat_mesh": view.heat_glb,
            "render": image,
        },
    )


def _save_png(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(image).save(path)
