"""Pose and shape the SMPL-layout body: posed mesh (GLB/OBJ), skeleton, skinning-weight heat map, renders."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.core.device import resolve_device
from pipelines.core.events import Done, Event, Preview, Progress, to_uint8
from pipelines.smpl import body_model
from pipelines.smpl.body_model import JOINT_NAMES, BodyModel

POSE_PRESETS = ("t-pose", "a-pose", "walking", "sitting", "arms-up", "random")
EXPORTS = ("glb", "obj")
SKIN = (0.86, 0.70, 0.60)
OPTIONAL_FILES = {"SMPL body model": body_model.OFFICIAL_MODEL_NAMES}
"""Files an operator may put in --models-dir for this pipeline (the Health panel collects them)."""


def health_notes(models_dir: Path | None) -> dict[str, str]:
    """Lines for the Health panel: which body model the SMPL tab uses by default."""
    return {"smpl_body_model": body_model.model_in_use(models_dir)}


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
# Poses
# ----------------------------------------------------------------------------------------------------------------


def axis_rotvec(axis: str, degrees: float) -> np.ndarray:
    out = np.zeros(3)
    out["xyz".index(axis)] = np.radians(degrees)
    return out


def _compose(*rotvecs: np.ndarray) -> np.ndarray:
    """The axis-angle of R(r1) R(r2) ... (applied right to left)."""
    from scipy.spatial.transform import Rotation

    rot = Rotation.identity()
    for r in rotvecs:
        rot = rot * Rotation.from_rotvec(r)
    return rot.as_rotvec()


def preset_pose(name: str, seed: int = 0) -> np.ndarray:
    """(24, 3) axis-angle pose of a named preset (SMPL frame: hip flexion is -x, knee bend +x, left elbow bend -y)."""
    j = {n: i for i, n in enumerate(JOINT_NAMES)}
    pose = np.zeros((24, 3))

    def arms_down(angle: float) -> None:
        pose[j["left_shoulder"]] = axis_rotvec("z", -angle)
        pose[j["right_shoulder"]] = axis_rotvec("z", angle)

    if name == "t-pose":
        return pose
    if name == "a-pose":
        arms_down(45)
        pose[j["left_collar"]] = axis_rotvec("z", -5)
        pose[j["right_collar"]] = axis_rotvec("z", 5)
    elif name == "walking":
        pose[j["left_hip"]] = axis_rotvec("x", -28)
        pose[j["right_hip"]] = axis_rotvec("x", 18)
        pose[j["left_knee"]] = axis_rotvec("x", 12)
        pose[j["right_knee"]] = axis_rotvec("x", 35)
        pose[j["right_ankle"]] = axis_rotvec("x", 12)
        pose[j["left_shoulder"]] = _compose(axis_rotvec("x", 25), axis_rotvec("z", -72))
        pose[j["right_shoulder"]] = _compose(axis_rotvec("x", -25), axis_rotvec("z", 72))
        pose[j["left_elbow"]] = axis_rotvec("y", -15)
        pose[j["right_elbow"]] = axis_rotvec("y", 30)
        pose[j["spine1"]] = axis_rotvec("y", 4)
        pose[j["spine3"]] = axis_rotvec("y", -6)
    elif name == "sitting":
        pose[j["left_hip"]] = _compose(axis_rotvec("x", -88), axis_rotvec("y", 6))
        pose[j["right_hip"]] = _compose(axis_rotvec("x", -88), axis_rotvec("y", -6))
        pose[j["left_knee"]] = axis_rotvec("x", 88)
        pose[j["right_knee"]] = axis_rotvec("x", 88)
        pose[j["left_shoulder"]] = _compose(axis_rotvec("x", -20), axis_rotvec("z", -70))
        pose[j["right_shoulder"]] = _compose(axis_rotvec("x", -20), axis_rotvec("z", 70))
        pose[j["left_elbow"]] = axis_rotvec("y", -55)
        pose[j["right_elbow"]] = axis_rotvec("y", 55)
        pose[j["spine1"]] = axis_rotvec("x", 6)
        pose[j["neck"]] = axis_rotvec("x", 8)
    elif name == "arms-up":
        arms_down(-60)
        pose[j["left_elbow"]] = axis_rotvec("z", 25)
        pose[j["right_elbow"]] = axis_rotvec("z", -25)
        pose[j["left_hip"]] = axis_rotvec("z", 8)
        pose[j["right_hip"]] = axis_rotvec("z", -8)
    elif name == "random":
        return random_pose(seed)
    else:
        raise ValueError(f"Unknown pose preset {name!r}: choose one of {', '.join(POSE_PRESETS)}.")
    return pose


# Plausible per-joint ranges (degrees, x/y/z) for random poses, around a relaxed standing pose.
_RANGES = {
    "spine1": (15, 10, 8), "spine2": (10, 10, 8), "spine3": (10, 10, 8), "neck": (15, 20, 10), "head": (10, 15, 8),
    "left_hip": (35, 12, 12), "right_hip": (35, 12, 12), "left_knee": (0, 0, 0), "right_knee": (0, 0, 0),
    "left_ankle": (10, 5, 5), "right_ankle": (10, 5, 5), "left_collar": (5, 5, 8), "right_collar": (5, 5, 8),
    "left_shoulder": (35, 25, 30), "right_shoulder": (35, 25, 30), "left_elbow": (0, 0, 0), "right_elbow": (0, 0, 0),
    "left_wrist": (15, 15, 15), "right_wrist": (15, 15, 15),
}  # fmt: skip


def random_pose(seed: int) -> np.ndarray:
    """A plausible (24, 3) pose: a preset, jittered within joint ranges, knees and elbows bent the natural way."""
    rng = np.random.default_rng(seed)
    base = preset_pose(str(rng.choice(["a-pose", "walking", "arms-up", "a-pose", "walking"])))
    j = {n: i for i, n in enumerate(JOINT_NAMES)}
    pose = base.copy()
    for name, (rx, ry, rz) in _RANGES.items():
        jitter = rng.uniform(-1, 1, 3) * np.radians([rx, ry, rz]) * 0.6
        pose[j[name]] = _compose(jitter, base[j[name]])
    for side, sign in (("left", -1.0), ("right", 1.0)):
        pose[j[f"{side}_knee"]] += axis_rotvec("x", rng.uniform(0, 25))
        pose[j[f"{side}_elbow"]] += axis_rotvec("y", sign * rng.uniform(0, 70))
    return pose


def parse_pose(values: Sequence[float]) -> np.ndarray:
    """72 numbers -> (24, 3), with a clear message for anything else."""
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size != 72:
        raise ValueError(f"A pose has 72 values (24 joints × 3 axis-angle components); {arr.size} were given.")
    if not np.isfinite(arr).all():
        raise ValueError("The pose contains NaN or infinite values.")
    return arr.reshape(24, 3)


def parse_betas(values: Sequence[float], num_betas: int) -> np.ndarray:
    """Shape coefficients padded with zeros to the model's count; too many, or absurd values, are refused."""
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size > num_betas:
        raise ValueError(f"The body model has {num_betas} shape coefficients; {arr.size} were given.")
    if not np.isfinite(arr).all() or np.abs(arr).max(initial=0) > 10:
        raise ValueError("Shape coefficients must be finite numbers between -10 and 10.")
    return np.concatenate([arr, np.zeros(num_betas - arr.size)])


def joint_index(name: str) -> int:
    if name not in JOINT_NAMES:
        raise ValueError(f"Unknown joint {name!r}: choose one of {', '.join(JOINT_NAMES)}.")
    return JOINT_NAMES.index(name)


# ----------------------------------------------------------------------------------------------------------------
# Views: meshes, skeleton, renders
# ----------------------------------------------------------------------------------------------------------------


def pose_body(
    model: BodyModel, betas: np.ndarray, pose: np.ndarray, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Posed (V, 3) vertices and (24, 3) joints of one body, as numpy."""
    m = model.to(device)
    b = torch.as_tensor(betas, dtype=torch.float32).reshape(1, -1).to(device)
    p = torch.as_tensor(pose, dtype=torch.float32).reshape(1, 24, 3).to(device)
    with torch.no_grad():
        verts, joints = m.forward(b, p)
    return verts[0].cpu().numpy(), joints[0].cpu().numpy()


# Five anchor colours of the viridis ramp (dark blue to yellow), interpolated linearly.
_VIRIDIS_ANCHORS = np.array(
    [[0.267, 0.005, 0.329], [0.229, 0.322, 0.546], [0.128, 0.567, 0.551], [0.369, 0.789, 0.383], [0.993, 0.906, 0.144]],
    dtype=np.float32,
)


def heat_colors(weights: np.ndarray) -> np.ndarray:
    """(V,) weights in [0, 1] -> (V, 3) colours: grey where zero, then a viridis-like ramp."""
    w = np.clip(np.asarray(weights, dtype=np.float32), 0.0, 1.0)
    x = w * (len(_VIRIDIS_ANCHORS) - 1)
    lo = np.minimum(np.floor(x).astype(np.int64), len(_VIRIDIS_ANCHORS) - 2)
    frac = (x - lo)[:, None]
    cmap = _VIRIDIS_ANCHORS[lo] * (1 - frac) + _VIRIDIS_ANCHORS[lo + 1] * frac  # (V, 3)
    grey = np.full_like(cmap, 0.72)
    return np.where(w[:, None] > 1e-4, cmap, grey)


def export_glb(verts: np.ndarray, faces: np.ndarray, colors: np.ndarray, out: Path) -> Path:
    """A GLB with per-vertex colours and smooth normals (Y up, as glTF and SMPL both are)."""
    import trimesh

    mesh = trimesh.Trimesh(verts, faces, process=False)
    rgba = np.concatenate([np.clip(colors, 0, 1), np.ones((len(colors), 1))], 1)
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=(rgba * 255).round().astype(np.uint8))
    out.write_bytes(trimesh.exchange.gltf.export_glb(trimesh.Scene(mesh), include_normals=True))
    return out


def export_obj(verts: np.ndarray, faces: np.ndarray, out: Path) -> Path:
    """A plain OBJ (positions and triangles, 1-based)."""
    lines = ["# posed body, metres, +Y up"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in verts]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    out.write_text("\n".join(lines) + "\n")
    return out


def render_views(
    verts: np.ndarray,
    faces: np.ndarray,
    colors: np.ndarray,
    *,
    size: int,
    azims: Sequence[float] = (0.0, 90.0),
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Front and side renders (Phong, one point light) side by side: uint8 (size, size * len(azims), 3)."""
    from pipelines.render import rendering

    center = (verts.min(0) + verts.max(0)) / 2
    extent = float((verts.max(0) - verts.min(0)).max())
    mesh = rendering.mesh_from_arrays(verts - center, faces, colors=colors, normalize=False, device=device)
    raster, _ = rendering.make_raster_settings(size, device=device)
    images = []
    for azim in azims:
        cams = rendering.make_cameras("perspective", 1.75 * extent, 8.0, azim, fov=35.0, device=device)
        eye = cams.get_camera_center()[0].cpu().numpy()
        lights = rendering.make_lights("point", eye + np.array([0.5, 1.5, 0.0]) * extent, device=device)
        shader = rendering.make_shader(
            "hard-phong",
            cameras=cams,
            lights=lights,
            materials=rendering.make_materials(specular=(0.15, 0.15, 0.15), shininess=20.0, device=device),
            blend_params=rendering.BlendParams(background_color=(0.96, 0.96, 0.97)),
            device=device,
        )
        image = rendering.make_renderer(cams, raster, shader)(mesh)[0, ..., :3]
        images.append(to_uint8(image))
    return np.concatenate(images, 1)


def skeleton_figure(joints: np.ndarray, parents: Sequence[int], highlight: int | None = None, title: str = "") -> Any:
    """Plotly 3D skeleton: bones as lines, joints as labelled markers, Y up; `highlight` drawn larger in red."""
    import plotly.graph_objects as go

    xs: list[float | None] = []
    ys: list[float | None] = []
    zs: list[float | None] = []
    for j, p in enumerate(parents):
        if p >= 0:
            for k in (p, j):
                xs.append(float(joints[k, 0]))
                ys.append(float(joints[k, 1]))
                zs.append(float(joints[k, 2]))
            xs.append(None)
            ys.append(None)
            zs.append(None)
    colors = ["#d62728" if j == highlight else ("#1f77b4" if "left" in n else "#2ca02c" if "right" in n else "#555")
              for j, n in enumerate(JOINT_NAMES)]  # fmt: skip
    sizes = [9 if j == highlight else 5 for j in range(len(JOINT_NAMES))]
    fig = go.Figure(
        [
            go.Scatter3d(x=xs, y=ys, z=zs, mode="lines", line=dict(color="#888", width=6), hoverinfo="skip", name="bones"),
            go.Scatter3d(
                x=joints[:, 0], y=joints[:, 1], z=joints[:, 2], mode="markers", name="joints",
                marker=dict(size=sizes, color=colors), text=list(JOINT_NAMES),
                hovertemplate="%{text}<br>(%{x:.3f}, %{y:.3f}, %{z:.3f})<extra></extra>",
            ),
        ]
    )  # fmt: skip
    fig.update_layout(
        title=title,
        height=420,
        margin=dict(l=0, r=0, t=30 if title else 0, b=0),
        showlegend=False,
        scene=dict(
            aspectmode="data",
            camera=dict(up=dict(x=0, y=1, z=0), eye=dict(x=0.5, y=0.35, z=2.9)),
            xaxis_title="x (left)",
            yaxis_title="y (up)",
            zaxis_title="z (front)",
        ),
    )
    return fig


@dataclass
class PoseView:
    """What the Shape-and-pose panel shows for one body."""

    verts: np.ndarray  # (V, 3)
    joints: np.ndarray  # (24, 3)
    mesh_glb: Path
    heat_glb: Path
    figure: Any
    stats: dict[str, float]


def pose_view(
    model: BodyModel, betas: np.ndarray, pose: np.ndarray, heat_joint: str, out_dir: Path, device: torch.device
) -> PoseView:
    """Pose the body and write the viewer files (posed GLB in skin colour, heat-map GLB) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    hj = joint_index(heat_joint)
    verts, joints = pose_body(model, betas, pose, device)
    faces = model.faces.numpy()
    mesh_glb = export_glb(verts, faces, np.tile(SKIN, (len(verts), 1)), out_dir / "posed.glb")
    heat = heat_colors(model.weights[:, hj].numpy())
    heat_glb = export_glb(verts, faces, heat, out_dir / f"weights_{heat_joint}.glb")
    lo, hi = verts.min(0), verts.max(0)
    stats = {
        "height_m": float(hi[1] - lo[1]),
        "width_m": float(hi[0] - lo[0]),
        "depth_m": float(hi[2] - lo[2]),
        "vertices_weighted_to_joint": float((model.weights[:, hj] > 0).sum()),
    }
    fig = skeleton_figure(joints, model.parents, hj, title=f"Skeleton ({heat_joint} highlighted)")
    return PoseView(verts, joints, mesh_glb, heat_glb, fig, stats)


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
    faces = model.faces.numpy()
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
