"""Pictures of a SynSin pass: depth maps, projected features (first three principal components as RGB), grids of
held-out results, the feature point cloud in Plotly, and enlargement for display."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
import torch.nn.functional as F

from pipelines.core.events import to_uint8
from pipelines.render.images import colormap, image_grid

DISPLAY_SIZE = 256


def upscale(image: torch.Tensor, size: int = DISPLAY_SIZE) -> torch.Tensor:
    """(H, W, 3) float → at least `size` px on its short side (nearest neighbour, so pixels stay visible)."""
    h, w = image.shape[:2]
    k = max(1, -(-size // min(h, w)))
    if k == 1:
        return image
    return F.interpolate(image.permute(2, 0, 1)[None], scale_factor=k, mode="nearest")[0].permute(1, 2, 0)


def depth_picture(depth: torch.Tensor, lo: float | None = None, hi: float | None = None) -> torch.Tensor:
    """(1, S, S) or (S, S) depth → (S, S, 3) viridis, near = bright (range from the map itself unless given)."""
    d = depth.reshape(depth.shape[-2:]).float()
    lo = float(d.min()) if lo is None else lo
    hi = float(d.max()) if hi is None else hi
    return colormap(1.0 - (d - lo) / max(hi - lo, 1e-6))


def feature_basis(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (C,), basis (C, 3)) of the first three principal components of features (C, P)."""
    x = features.detach().float().T  # (P, C)
    mean = x.mean(0)
    _, _, v = torch.pca_lowrank(x - mean, q=min(3, x.shape[1]), center=False)
    if v.shape[1] < 3:
        v = torch.cat([v, v.new_zeros(v.shape[0], 3 - v.shape[1])], 1)
    return mean, v


def feature_picture(features: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Features (C, S, S) as RGB (S, S, 3) through a PCA basis, each component stretched to [0, 1] by its
    2nd-98th percentiles; pixels with all-zero features (no point landed) stay black."""
    c, h, w = features.shape
    x = features.detach().float().reshape(c, -1).T
    empty = x.abs().sum(1) < 1e-8
    y = (x - mean) @ basis  # (P, 3)
    lo = torch.quantile(y[~empty], 0.02, dim=0) if (~empty).any() else y.min(0).values
    hi = torch.quantile(y[~empty], 0.98, dim=0) if (~empty).any() else y.max(0).values
    y = ((y - lo) / (hi - lo).clamp(min=1e-6)).clamp(0, 1)
    y[empty] = 0.0
    return y.reshape(h, w, 3)


def results_grid(first: dict[str, torch.Tensor], n: int = 4) -> np.ndarray:
    """Rows of held-out pairs: source | target | SynSin | constant-depth splat | true-depth splat (holes = input pixel)
    | predicted depth (median-scaled) | true depth."""
    tiles = []
    n = min(n, len(first["source"]))
    for i in range(n):
        row = [first["source"][i], first["target"][i], first["synsin"][i]]
        for key in ("splat_constant_depth", "splat_true_depth"):
            if key in first:
                row.append(first[key][i])
        row = [t.permute(1, 2, 0).float().cpu() for t in row]
        true = first["true_depth"][i].cpu()
        lo, hi = float(true.min()), float(true.max())
        row.append(depth_picture(first["depth"][i].cpu() * (true.median() / first["depth"][i].median().cpu()), lo, hi))
        row.append(depth_picture(true, lo, hi))
        tiles.extend(row)
    cols = len(tiles) // n
    grid = image_grid(tiles, cols, pad=1)
    return to_uint8(upscale(grid, 128 * n))


def cloud_figure(points_view: torch.Tensor, colors: torch.Tensor, max_points: int = 4000, seed: int = 0) -> go.Figure:
    """Plotly scatter of the feature point cloud (P, 3) in the source camera's frame, coloured by `colors` (P, 3)
    in [0, 1], subsampled to `max_points` (seeded). Axes: x right, y up, z forward (depth), for reading ease."""
    p = points_view.detach().float().cpu()
    c = colors.detach().float().cpu().clamp(0, 1)
    if len(p) > max_points:
        idx = torch.randperm(len(p), generator=torch.Generator().manual_seed(seed))[:max_points]
        p, c = p[idx], c[idx]
    rgb = [f"rgb({int(r * 255)},{int(g * 255)},{int(b * 255)})" for r, g, b in c.tolist()]
    fig = go.Figure(
        go.Scatter3d(
            x=(-p[:, 0]).tolist(),
            y=p[:, 2].tolist(),
            z=p[:, 1].tolist(),
            mode="markers",
            marker={"size": 2, "color": rgb},
            name="feature points",
        )  # fmt: skip
    )
    fig.add_trace(go.Scatter3d(x=[0], y=[0], z=[0], mode="markers", marker={"size": 6, "color": "red"}, name="camera"))
    fig.update_layout(
        height=420, margin={"l": 0, "r": 0, "t": 30, "b": 0}, title=f"{len(p)} of {len(points_view)} points",
        scene={"xaxis_title": "right", "yaxis_title": "depth (forward)", "zaxis_title": "up", "aspectmode": "data"},
    )  # fmt: skip
    return fig
