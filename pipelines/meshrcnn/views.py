"""Views of a Mesh R-CNN prediction for the tab: the voxel grid in Plotly, the detection picture (box and mask), and
the foreground estimate that says whether an uploaded picture shows an object at all."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image, ImageDraw

from pipelines.core.events import to_uint8
from pipelines.meshrcnn import frame

MAX_VOXEL_MARKERS = 20_000
BORDER_TOLERANCE = 0.08
"""A pixel is foreground when its colour differs from the border's median by more than this (0-1 per channel)."""


def foreground_box(image: torch.Tensor) -> tuple[tuple[int, int, int, int] | None, float]:
    """(x0, y0, x1, y1) of the pixels of `image` (S, S, 3) unlike its border's median colour, and their fraction."""
    border = torch.cat([image[0], image[-1], image[:, 0], image[:, -1]])  # (4S, 3)
    median = border.median(dim=0).values
    fg = (image - median).abs().amax(-1) > BORDER_TOLERANCE  # (S, S)
    ys, xs = torch.nonzero(fg, as_tuple=True)
    if len(xs) == 0:
        return None, 0.0
    return (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())), float(fg.float().mean())


def detection_picture(
    image: torch.Tensor, box: tuple[int, int, int, int] | None, mask: torch.Tensor | None, size: int
) -> np.ndarray:
    """uint8 (size, size, 3): the image with the mask tinted and the box drawn."""
    s = image.shape[0]
    rgb = image.clone().float()
    if mask is not None:
        tint = torch.tensor([1.0, 0.35, 0.2])
        rgb = torch.where(mask[..., None], 0.75 * rgb + 0.25 * tint, rgb)
    pic = Image.fromarray(to_uint8(rgb)).resize((size, size), Image.Resampling.NEAREST)
    if box is not None:
        k = size / s
        x0, y0, x1, y1 = box
        ImageDraw.Draw(pic).rectangle(
            [x0 * k, y0 * k, (x1 + 1) * k - 1, (y1 + 1) * k - 1], outline=(20, 200, 60), width=3
        )
    return np.asarray(pic)


def voxel_figure(occupied: torch.Tensor, zrange: tuple[float, float] | None = None) -> go.Figure:
    """Plotly markers at the occupied cells of (V, V, V) [z, y, x], coloured by depth, in voxel space (x right, y up
    as in the image, z towards the camera), with equal axes."""
    z, y, x = torch.nonzero(occupied, as_tuple=True)
    v = occupied.shape[0]
    if len(x) > MAX_VOXEL_MARKERS:
        keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:MAX_VOXEL_MARKERS]
        z, y, x = z[keep], y[keep], x[keep]
    centers = frame.voxel_centers(v)[z, y, x] if len(x) else torch.zeros(0, 3)  # (M, 3) voxel space
    fig = go.Figure(
        go.Scatter3d(
            x=centers[:, 0].tolist(),
            y=(-centers[:, 1]).tolist(),
            z=(-centers[:, 2]).tolist(),
            mode="markers",
            marker={"size": 3, "symbol": "square", "color": (-centers[:, 2]).tolist(), "colorscale": "Viridis"},
            hovertemplate="x %{x:.2f}<br>y %{y:.2f}<br>depth %{z:.2f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"{len(x)} occupied voxels of {v}³",
        scene={
            "aspectmode": "cube",
            "xaxis": {"range": [-1, 1]},
            "yaxis": {"range": [-1, 1]},
            "zaxis": {"range": [-1, 1]},
        },
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        height=360,
    )
    return fig


INSTANCE_COLORS = ((230, 60, 50), (40, 160, 230), (250, 190, 30), (60, 190, 90), (170, 90, 220), (240, 120, 200))


def scene_picture(
    image: torch.Tensor,
    boxes: torch.Tensor,
    masks: torch.Tensor,
    captions: list[str],
    size: int,
) -> np.ndarray:
    """uint8 (size, size, 3): the scene `image` (S, S, 3) with each object's mask (K, S, S) tinted in its own colour,
    its box (K, 4) (x0, y0, x1, y1 pixels, x1 and y1 one past the last pixel) drawn and its caption written."""
    s = image.shape[0]
    rgb = image.clone().float()
    for k in range(len(boxes)):
        tint = torch.tensor(INSTANCE_COLORS[k % len(INSTANCE_COLORS)]) / 255.0
        rgb = torch.where(masks[k][..., None], 0.55 * rgb + 0.45 * tint, rgb)
    pic = Image.fromarray(to_uint8(rgb)).resize((size, size), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(pic)
    scale = size / s
    for k, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        color = INSTANCE_COLORS[k % len(INSTANCE_COLORS)]
        draw.rectangle([x0 * scale, y0 * scale, x1 * scale - 1, y1 * scale - 1], outline=color, width=2)
        if k < len(captions):
            draw.text((x0 * scale + 3, max(0.0, y0 * scale - 12)), captions[k], fill=color)
    return np.asarray(pic)
