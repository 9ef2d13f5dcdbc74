"""The Plotly view of a loaded asset: a coloured Mesh3d (with optional edges) or a Scatter3d of points."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipelines.files.convert import material_face_colors
from pipelines.files.types import LoadedAsset

if TYPE_CHECKING:
    import plotly.graph_objects


def _texture_colors(asset: LoadedAsset) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Colours read from the texture: (V, 3) per vertex for per-vertex uvs, else (F, 3) per face (mean corner uv)."""
    if asset.texture is None or asset.uvs is None:
        return None, None
    img = np.asarray(asset.texture.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
    h, w = img.shape[:2]

    def lookup(uv: np.ndarray) -> np.ndarray:
        u = np.mod(uv[:, 0], 1.0)
        v = np.mod(uv[:, 1], 1.0)
        return img[
            np.clip(((1.0 - v) * (h - 1)).round().astype(int), 0, h - 1),
            np.clip((u * (w - 1)).round().astype(int), 0, w - 1),
        ]

    if asset.face_uvs is None:
        return lookup(asset.uvs), None
    corner = np.maximum(asset.face_uvs, 0)
    return None, lookup(asset.uvs[corner].mean(axis=1))


def _rgb_strings(colors: np.ndarray) -> list[str]:
    rgb = (np.clip(colors[:, :3], 0, 1) * 255).round().astype(int)
    return [f"rgb({r},{g},{b})" for r, g, b in rgb.tolist()]


def plotly_figure(
    asset: LoadedAsset,
    max_faces: int = 60_000,
    point_size: float = 2.0,
    wireframe: bool = False,
    show_axes: bool = True,
    max_points: int = 200_000,
) -> plotly.graph_objects.Figure:
    """A Plotly view: Mesh3d (texture sampled to vertex/face colours, else vertex, face or material colours) or a
    coloured Scatter3d for points; bigger inputs are shown as a random subset (noted in the title); equal aspect."""
    import plotly.graph_objects as go

    rng = np.random.default_rng(0)
    title = asset.path.name
    if asset.is_point_cloud:
        trace, note = _points_trace(asset, rng, point_size, max_points)
        traces = [trace]
    else:
        traces, note = _mesh_traces(asset, rng, max_faces, wireframe)
    title += note
    axis = {"visible": bool(show_axes), "showbackground": False}
    fig = go.Figure(data=traces)
    fig.update_layout(
        title={"text": title, "font": {"size": 13}},
        scene={"aspectmode": "data", "xaxis": dict(axis), "yaxis": dict(axis), "zaxis": dict(axis)},
        margin={"l": 0, "r": 0, "t": 36, "b": 0},
        showlegend=False,
        height=520,
    )
    return fig


def _points_trace(
    asset: LoadedAsset, rng: np.random.Generator, point_size: float, max_points: int
) -> tuple[plotly.graph_objects.Scatter3d, str]:
    """The points (a random subset above `max_points`) as a coloured Scatter3d, and the title's note."""
    import plotly.graph_objects as go

    note = ""
    idx = np.arange(asset.num_vertices)
    if len(idx) > max_points:
        idx = np.sort(rng.choice(len(idx), max_points, replace=False))
        note = f": showing {max_points:,} of {asset.num_vertices:,} points (random subset)"
    pts = asset.verts[idx]
    color = _rgb_strings(asset.colors[idx]) if asset.colors is not None else "#4c78a8"
    trace = go.Scatter3d(
        x=pts[:, 0],
        y=pts[:, 1],
        z=pts[:, 2],
        mode="markers",
        marker={"size": float(point_size), "color": color, "line": {"width": 0}},
        hoverinfo="skip",
        name="points",
    )  # fmt: skip
    return trace, note


def _mesh_traces(asset: LoadedAsset, rng: np.random.Generator, max_faces: int, wireframe: bool) -> tuple[list, str]:
    """The triangles (a random subset above `max_faces`) as a coloured Mesh3d, plus edges, and the title's note."""
    import plotly.graph_objects as go

    note = ""
    traces = []
    faces = asset.faces
    keep = np.arange(len(faces))
    if len(faces) > max_faces:
        keep = np.sort(rng.choice(len(faces), max_faces, replace=False))
        note = f": showing {max_faces:,} of {len(faces):,} triangles (random subset)"
    sub = faces[keep]
    used, inv = np.unique(sub, return_inverse=True)
    sub = inv.reshape(-1, 3)
    v = asset.verts[used]
    style = _mesh_style(asset, used, keep)
    traces.append(
        go.Mesh3d(
            x=v[:, 0],
            y=v[:, 1],
            z=v[:, 2],
            i=sub[:, 0],
            j=sub[:, 1],
            k=sub[:, 2],
            flatshading=True,
            hoverinfo="skip",
            name="mesh",
            lighting={"ambient": 0.55, "diffuse": 0.8, "specular": 0.15, "roughness": 0.6},
            **style,
        )  # fmt: skip
    )
    if wireframe:
        traces.append(_edges_trace(sub, v, rng))
    return traces, note


def _mesh_style(asset: LoadedAsset, used: np.ndarray, keep: np.ndarray) -> dict:
    """Mesh3d colour arguments: texture colours, else vertex, face or material colours, else one colour."""
    tex_v, tex_f = _texture_colors(asset)
    face_colors = asset.face_colors if asset.face_colors is not None else material_face_colors(asset)
    style: dict = {}
    if tex_v is not None:
        style["vertexcolor"] = _rgb_strings(tex_v[used])
    elif tex_f is not None:
        style["facecolor"] = _rgb_strings(tex_f[keep])
    elif asset.colors is not None:
        style["vertexcolor"] = _rgb_strings(asset.colors[used])
    elif face_colors is not None:
        style["facecolor"] = _rgb_strings(face_colors[keep])
    else:
        style["color"] = "#9fb3c8"
    return style


def _edges_trace(sub: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> plotly.graph_objects.Scatter3d:
    """The unique edges of the shown triangles (at most 150,000, a random subset above) as line segments."""
    import plotly.graph_objects as go

    edges = np.unique(np.sort(sub[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1), axis=0)
    if len(edges) > 150_000:
        edges = edges[np.sort(rng.choice(len(edges), 150_000, replace=False))]
    seg = np.full((len(edges) * 3, 3), np.nan)
    seg[0::3], seg[1::3] = v[edges[:, 0]], v[edges[:, 1]]
    return go.Scatter3d(
        x=seg[:, 0],
        y=seg[:, 1],
        z=seg[:, 2],
        mode="lines",
        line={"color": "#222222", "width": 1},
        hoverinfo="skip",
        name="edges",
    )  # fmt: skip
