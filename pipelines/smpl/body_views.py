"""What the Shape-and-pose panel shows for one body: the posed mesh and a heat map of one joint's skinning weights
(GLB/OBJ), Phong renders, and a Plotly skeleton."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pytorch3d.renderer import BlendParams

from pipelines.core.events import to_uint8
from pipelines.render.factories import (
    make_cameras,
    make_lights,
    make_materials,
    make_raster_settings,
    make_renderer,
    make_shader,
)
from pipelines.render.mesh_convert import mesh_from_arrays
from pipelines.smpl.body_model import BodyModel
from pipelines.smpl.layout import JOINT_NAMES
from pipelines.smpl.poses import joint_index

SKIN = (0.86, 0.70, 0.60)


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

    center = (verts.min(0) + verts.max(0)) / 2
    extent = float((verts.max(0) - verts.min(0)).max())
    mesh = mesh_from_arrays(verts - center, faces, colors=colors, normalize=False, device=device)
    raster, _ = make_raster_settings(size, device=device)
    images = []
    for azim in azims:
        cams = make_cameras("perspective", 1.75 * extent, 8.0, azim, fov=35.0, device=device)
        eye = cams.get_camera_center()[0].cpu().numpy()
        lights = make_lights("point", eye + np.array([0.5, 1.5, 0.0]) * extent, device=device)
        shader = make_shader(
            "hard-phong",
            cameras=cams,
            lights=lights,
            materials=make_materials(specular=(0.15, 0.15, 0.15), shininess=20.0, device=device),
            blend_params=BlendParams(background_color=(0.96, 0.96, 0.97)),
            device=device,
        )
        image = make_renderer(cams, raster, shader)(mesh)[0, ..., :3]
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
    faces = model.faces.cpu().numpy()
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
