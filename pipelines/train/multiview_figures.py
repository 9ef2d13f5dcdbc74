"""Pictures of multi-view data: Plotly figures of the cameras and of the ray sampler, a contact sheet of the views
and silhouettes, and a JSON summary."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import torch
from pytorch3d.renderer import FoVPerspectiveCameras

from pipelines.core.events import to_uint8
from pipelines.render.images import image_grid
from pipelines.train.multiview_data import MultiviewData
from pipelines.train.multiview_render import ray_grid


def rays_figure_traces(
    cameras: FoVPerspectiveCameras,
    image_size: int,
    n_pts_per_ray: int,
    min_depth: float,
    max_depth: float,
    rays_per_side: int = 5,
    max_points_per_ray: int = 12,
) -> list[go.Scatter3d]:
    """Plotly traces of a sparse grid of rays of the first camera, and their sample points."""
    bundle = ray_grid(cameras[[0]], image_size, n_pts_per_ray, min_depth, max_depth)
    pick = torch.linspace(0, image_size - 1, rays_per_side).round().long()
    origins = bundle.origins[0][pick][:, pick].reshape(-1, 3)
    dirs = bundle.directions[0][pick][:, pick].reshape(-1, 3)
    lengths = bundle.lengths[0][pick][:, pick].reshape(len(origins), -1)
    step = max(1, lengths.shape[1] // max_points_per_ray)
    pts = origins[:, None] + dirs[:, None] * lengths[:, ::step, None]  # (R, P', 3)
    near = origins + dirs * min_depth
    far = origins + dirs * max_depth
    seg = torch.stack([near, far, torch.full_like(near, float("nan"))], 1).reshape(-1, 3).cpu().numpy()
    p = pts.reshape(-1, 3).cpu().numpy()
    return [
        go.Scatter3d(
            x=seg[:, 0], y=seg[:, 1], z=seg[:, 2], mode="lines", line=dict(color="#d62728", width=4), name="rays"
        ),
        go.Scatter3d(
            x=p[:, 0],
            y=p[:, 1],
            z=p[:, 2],
            mode="markers",
            marker=dict(size=1.5, color="#2ca02c"),
            name=f"samples ({n_pts_per_ray} per ray" + (f", 1 in {step} shown)" if step > 1 else ")"),
        ),
    ]


def cameras_figure(
    data: MultiviewData,
    *,
    rays: bool = False,
    n_pts_per_ray: int = 64,
    min_depth: float = 0.1,
    max_depth: float = 3.0,
    max_faces: int = 20_000,
) -> go.Figure:
    """The object with every camera's frustum (training views blue, held-out orange) and, if `rays`, the ray
    sampler of the first camera: a 5x5 grid of its rays from `min_depth` to `max_depth` with their samples."""
    fig = go.Figure()
    if data.verts is not None and data.faces is not None and len(data.faces):
        v = data.verts.cpu().numpy()
        f = data.faces.cpu().numpy()
        if len(f) > max_faces:
            f = f[:: math.ceil(len(f) / max_faces)]
        mesh_kw = {}
        if data.colors is not None:
            c = (data.colors.cpu().clamp(0, 1).numpy() * 255).astype(int)
            mesh_kw["vertexcolor"] = [f"rgb({r},{g},{b})" for r, g, b in c]
        else:
            mesh_kw["color"] = "#b0b8d0"
        fig.add_trace(
            go.Mesh3d(x=v[:, 0], y=v[:, 1], z=v[:, 2], i=f[:, 0], j=f[:, 1], k=f[:, 2], name="object", **mesh_kw)
        )
    cams = data.cameras()
    depth = 0.35 * data.distance
    corners_ndc = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]], device=data.device)
    xyd = torch.cat([corners_ndc, torch.full((4, 1), depth, device=data.device)], 1)  # (4, 3)
    corners = cams.unproject_points(xyd[None].expand(len(cams), 4, 3), world_coordinates=True)  # (N, 4, 3)
    centres = cams.get_camera_center()  # (N, 3)
    test = set(data.test_idx.tolist())
    for group, color, label in ((False, "#1f77b4", "training cameras"), (True, "#ff7f0e", "held-out cameras")):
        segs = []
        for i in range(len(cams)):
            if (i in test) != group:
                continue
            c, q = centres[i].cpu().numpy(), corners[i].cpu().numpy()
            for k in range(4):
                segs += [c, q[k], [np.nan] * 3]
            segs += [q[0], q[1], q[2], q[3], q[0], [np.nan] * 3]
        if segs:
            s = np.asarray(segs, dtype=np.float64)
            fig.add_trace(
                go.Scatter3d(x=s[:, 0], y=s[:, 1], z=s[:, 2], mode="lines", line=dict(color=color, width=3), name=label)
            )
    if rays:
        for trace in rays_figure_traces(cams, data.image_size, n_pts_per_ray, min_depth, max_depth):
            fig.add_trace(trace)
    fig.update_layout(
        scene=dict(
            aspectmode="data",
            xaxis_title="x",
            yaxis_title="y (up)",
            zaxis_title="z",
            camera=dict(up=dict(x=0, y=1, z=0), eye=dict(x=1.2, y=0.9, z=1.6)),
        ),
        height=480,
        margin=dict(l=0, r=0, t=30, b=0),
        legend=dict(orientation="h"),
        title=f"{len(cams)} cameras ({len(test)} held out)" + (" with the rays of camera 0" if rays else ""),
    )
    return fig


def contact_sheet(data: MultiviewData, max_views: int = 40, cols: int = 8) -> np.ndarray:
    """The views (top) and their silhouettes (bottom) tiled, uint8 (H, W, 3); held-out views get an orange frame."""

    n = min(max_views, len(data.images))
    test = set(data.test_idx.tolist())
    tiles, sils = [], []
    for i in range(n):
        img = data.images[i].clone()
        sil = data.silhouettes[i][..., None].expand(-1, -1, 3).clone()
        if i in test:
            for t in (img, sil):
                border = torch.tensor([1.0, 0.5, 0.05], device=t.device)
                t[:2], t[-2:], t[:, :2], t[:, -2:] = border, border, border, border
        tiles.append(img)
        sils.append(sil)
    cols = min(cols, n)
    top, bottom = image_grid(tiles, cols), image_grid(sils, cols)
    gap = torch.ones(6, top.shape[1], 3, device=top.device)
    return to_uint8(torch.cat([top, gap, bottom], 0))


def summary(data: MultiviewData) -> dict:
    """JSON summary of the data set (for the UI and the run's info)."""
    return {
        "views": int(len(data.images)),
        "image_size": data.image_size,
        "train_views": data.train_idx.tolist(),
        "held_out_views": data.test_idx.tolist(),
        "elevation_deg": data.elevation,
        "distance": data.distance,
        "fov_deg": data.fov,
        "azimuths_deg": [round(float(a), 2) for a in data.azimuth.tolist()],
        "mean_silhouette_coverage": round(float(data.silhouettes.mean()), 4),
        "object_faces": None if data.faces is None else int(len(data.faces)),
    }
