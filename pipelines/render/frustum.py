"""The camera inspector's 3D scene: the frustum's corners and a Plotly figure of the world axes, the camera, its
frustum and axes, the sample points and an optional mesh."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from pipelines.render.camera_spec import CameraSpec, view_rt
from pipelines.render.projection import in_view_mask, project, unproject_ndc, view_to_world


def _image_corners_ndc(spec: CameraSpec) -> np.ndarray:
    """NDC xy of the image corners (4, 2): top-left, top-right, bottom-right, bottom-left in the image."""
    h, w = spec.image_size
    s = min(h, w)
    ax, ay = w / s, h / s
    # NDC +X is left and +Y up, so the image's top-left corner is (+ax, +ay).
    return np.array([[ax, ay], [-ax, ay], [-ax, -ay], [ax, -ay]], dtype=np.float64)


def frustum_corners(spec: CameraSpec, depth: float) -> np.ndarray:
    """World points (4, 3) that project onto the image corners top-left, top-right, bottom-right,
    bottom-left (screen (0, 0), (W, 0), (W, H), (0, H)) at view depth `depth`."""
    return view_to_world(spec, unproject_ndc(spec, _image_corners_ndc(spec), float(depth)))


def _lines(segments: list[tuple[np.ndarray, np.ndarray]]) -> tuple[list, list, list]:
    xs: list = []
    ys: list = []
    zs: list = []
    for a, b in segments:
        xs += [a[0], b[0], None]
        ys += [a[1], b[1], None]
        zs += [a[2], b[2], None]
    return xs, ys, zs


def _frustum_depths(spec: CameraSpec, depths: np.ndarray) -> tuple[float | None, float]:
    """(near, far) view depths of the drawn frustum, from the view depths (M,) of the scene's points."""
    depths = depths[np.isfinite(depths) & (depths > 0)]
    display = float(depths.max() * 1.1) if len(depths) else 1.0
    near = spec.znear if spec.kind.startswith("fov-") else None
    far = min(spec.zfar, display) if spec.kind.startswith("fov-") else display
    if near is not None and near >= far:
        far = near * 1.5 if near > 0 else near + 1.0
    return near, far


def _frustum_segments(
    spec: CameraSpec, centre: np.ndarray, near: float | None, far: float
) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """The frustum's edges as world segments, and its far corners (4, 3)."""
    perspective = spec.kind in ("fov-perspective", "perspective")
    far_world = frustum_corners(spec, far)  # (4, 3)
    segments: list[tuple[np.ndarray, np.ndarray]] = []
    rects = [far_world]
    if near is not None and (near > 0 or not perspective):
        near_world = frustum_corners(spec, near)
        rects.append(near_world)
        segments += [(near_world[k], far_world[k]) for k in range(4)]
    elif perspective:
        segments += [(centre, far_world[k]) for k in range(4)]
    else:  # orthographic without near plane: box from the camera plane
        plane = frustum_corners(spec, 0.0)
        rects.append(plane)
        segments += [(plane[k], far_world[k]) for k in range(4)]
    if perspective and near is not None:
        segments += [(centre, rects[1][k]) for k in range(4)]
    for rect in rects:
        segments += [(rect[k], rect[(k + 1) % 4]) for k in range(4)]
    return segments, far_world


def _world_axes(axis_len: float) -> list[go.Scatter3d]:
    """The world's X, Y, Z axes (red, green, blue), labelled."""
    traces = []
    for k, (name, colour) in enumerate((("X", "red"), ("Y", "green"), ("Z", "blue"))):
        tip = np.zeros(3)
        tip[k] = axis_len
        traces.append(
            go.Scatter3d(
                x=[0, tip[0]],
                y=[0, tip[1]],
                z=[0, tip[2]],
                mode="lines+text",
                line={"color": colour, "width": 6},
                text=["", f"world {name}"],
                textfont={"color": colour},
                name=f"world {name}",
                hoverinfo="name",
            )
        )
    return traces


def _camera_axes(centre: np.ndarray, R: np.ndarray, cam_len: float) -> list[go.Scatter3d]:
    """The camera's own axes (PyTorch3D's view frame), dashed, from its centre."""
    traces = []
    for k, (label, colour) in enumerate((("+X left", "red"), ("+Y up", "green"), ("+Z forward", "blue"))):
        tip = centre + cam_len * R[:, k]  # view axis k in world = column k of R
        traces.append(
            go.Scatter3d(
                x=[centre[0], tip[0]],
                y=[centre[1], tip[1]],
                z=[centre[2], tip[2]],
                mode="lines+text",
                line={"color": colour, "width": 4, "dash": "dash"},
                text=["", f"cam {label}"],
                textfont={"color": colour, "size": 10},
                name=f"camera {label}",
                hoverinfo="name",
            )
        )
    return traces


def _points_trace(spec: CameraSpec, pts: np.ndarray) -> go.Scatter3d:
    """The sample points (P, 3), green in view and red not, labelled p0, p1, ..."""
    proj = project(spec, pts)
    in_view = in_view_mask(spec, proj["view"], proj["screen"])
    return go.Scatter3d(
        x=pts[:, 0],
        y=pts[:, 1],
        z=pts[:, 2],
        mode="markers+text",
        marker={"size": 5, "color": ["green" if f else "red" for f in in_view]},
        text=[f"p{i}" for i in range(len(pts))],
        name="sample points",
    )


def _mesh_trace(verts: np.ndarray, mesh_faces: np.ndarray, max_faces: int) -> go.Mesh3d:
    """The mesh (V, 3), (F, 3) as a translucent Mesh3d, with at most `max_faces` faces, evenly subsampled."""
    faces = np.asarray(mesh_faces, dtype=np.int64).reshape(-1, 3)
    title_note = ""
    mesh_v = verts
    if len(faces) > max_faces > 0:
        faces = faces[np.linspace(0, len(faces) - 1, max_faces).astype(np.int64)]
        used, faces = np.unique(faces, return_inverse=True)  # send only the vertices still in use
        mesh_v, faces = verts[used], faces.reshape(-1, 3)
        title_note = f" (showing {max_faces} faces)"
    return go.Mesh3d(
        x=mesh_v[:, 0],
        y=mesh_v[:, 1],
        z=mesh_v[:, 2],
        i=faces[:, 0],
        j=faces[:, 1],
        k=faces[:, 2],
        color="lightsteelblue",
        opacity=0.6,
        flatshading=True,
        name="mesh" + title_note,
    )


def frustum_figure(
    spec: CameraSpec,
    points_world: np.ndarray | None = None,
    mesh_verts: np.ndarray | None = None,
    mesh_faces: np.ndarray | None = None,
    max_faces: int = 20000,
) -> go.Figure:
    """3D Plotly scene in world coordinates: world axes (X red, Y green, Z blue, labelled), the camera
    centre, its frustum, the camera's own axes (+X left, +Y up, +Z forward, PyTorch3D's view frame),
    the sample points (green in view, red not) and optionally a mesh (Mesh3d, at most `max_faces`
    faces, evenly subsampled). Equal aspect (aspectmode "data").

    The frustum: for the FoV kinds, the near plane at znear and a far cap at min(zfar, display depth);
    for the others a pyramid (box when orthographic) to the display depth, where the display depth
    reaches just past the farthest point or vertex in front of the camera (a unit depth when none)."""
    R, T = view_rt(spec)
    centre = -R @ T
    pts = None if points_world is None else np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    verts = None if mesh_verts is None else np.asarray(mesh_verts, dtype=np.float64).reshape(-1, 3)

    scene_pts = [np.zeros((1, 3))] + [a for a in (pts, verts) if a is not None and len(a)]
    all_pts = np.concatenate(scene_pts)
    near, far = _frustum_depths(spec, (all_pts @ R + T)[:, 2])
    segments, far_world = _frustum_segments(spec, centre, near, far)

    extent = float(np.abs(np.concatenate([all_pts, centre[None], far_world])).max()) or 1.0
    axis_len = 0.5 * extent
    fig = go.Figure()
    for trace in _world_axes(axis_len):
        fig.add_trace(trace)
    xs, ys, zs = _lines(segments)
    fig.add_trace(go.Scatter3d(x=xs, y=ys, z=zs, mode="lines", line={"color": "black", "width": 3}, name="frustum"))
    cam_len = 0.35 * min(far, extent) if far > 0 else 0.35 * extent
    for trace in _camera_axes(centre, R, cam_len):
        fig.add_trace(trace)
    fig.add_trace(
        go.Scatter3d(
            x=[centre[0]],
            y=[centre[1]],
            z=[centre[2]],
            mode="markers+text",
            marker={"size": 6, "color": "black", "symbol": "diamond"},
            text=["camera"],
            name="camera centre",
        )
    )
    if pts is not None and len(pts):
        fig.add_trace(_points_trace(spec, pts))
    if verts is not None and mesh_faces is not None and len(verts):
        fig.add_trace(_mesh_trace(verts, mesh_faces, max_faces))
    fig.update_layout(
        title=f"{spec.kind} camera, image {spec.image_size[1]}x{spec.image_size[0]} (W x H)",
        scene={"aspectmode": "data", "xaxis_title": "X", "yaxis_title": "Y", "zaxis_title": "Z"},
        # PyTorch3D's world is +Y up: start the Plotly view that way.
        scene_camera={"up": {"x": 0, "y": 1, "z": 0}, "eye": {"x": 1.2, "y": 0.9, "z": 1.6}},
        margin={"l": 0, "r": 0, "t": 40, "b": 0},
        legend={"itemsizing": "constant"},
    )
    return fig
