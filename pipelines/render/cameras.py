"""Camera models, coordinate-frame conversions and the camera inspector's views."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image, ImageDraw
from pytorch3d.renderer import (
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    HardPhongShader,
    MeshRasterizer,
    OrthographicCameras,
    PerspectiveCameras,
    PointLights,
    RasterizationSettings,
    TexturesVertex,
    look_at_view_transform,
)
from pytorch3d.renderer.blending import BlendParams
from pytorch3d.renderer.cameras import CamerasBase
from pytorch3d.renderer.mesh.rasterizer import Fragments
from pytorch3d.structures import Meshes
from pytorch3d.utils import cameras_from_opencv_projection, opencv_from_cameras_projection

# Coordinate conventions (the one written note; everything else in the project uses PyTorch3D's):
#
# PyTorch3D  world -> view: X_view = X_world @ R + T (row vectors). View frame: +X left, +Y up,
#            +Z forward (into the screen). NDC: +X left, +Y up; the SHORTER image side spans
#            [-1, 1], the longer one [-u, u] with u = long/short. Screen (transform_points_screen):
#            pixels, origin at the top-left corner of the image, +X right, +Y down, so pixel
#            (row i, column j) covers [j, j+1) x [i, i+1) and its centre is (j + 0.5, i + 0.5).
# OpenCV     x_cam = R_cv @ X_world + t_cv (column vectors), +X right, +Y down, +Z forward;
#            u = K @ x_cam / z in pixels. We follow pytorch3d.utils' conversion, which has no
#            half-pixel shift: OpenCV's (u, v) equals PyTorch3D's screen (x, y) exactly.
# OpenGL/glTF camera-to-world pose (4x4); the camera looks down -Z, +Y up, +X right. Projection
#            by vertical field of view `yfov` and aspect = width / height over the whole image
#            (orthographic: half-extents xmag, ymag in world units).
#
# Between the view frames: x_cv = diag(-1, -1, 1) x_p3d and x_gl = diag(-1, 1, -1) x_p3d.

CAMERA_KINDS = ("fov-perspective", "perspective", "fov-orthographic", "orthographic")

MAX_IMAGE_SIDE = 4096
BACKGROUND = (1.0, 1.0, 1.0)  # render background colour, float RGB
MESH_COLOR = (0.72, 0.76, 0.86)  # vertex colour for meshes without a texture

_FLIP_CV = np.diag([-1.0, -1.0, 1.0])  # PyTorch3D view frame <-> OpenCV camera frame
_FLIP_GL = np.diag([-1.0, 1.0, -1.0])  # PyTorch3D view frame <-> OpenGL camera frame
_R_TOL = 1e-3  # tolerance on |R R^T - I| and |det R - 1| for user-typed rotations


def _nested_floats(value: Any, shape: tuple[int, ...], name: str) -> tuple:
    """Nested tuple of floats of the given shape, or ValueError with a user sentence."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers of shape {shape}.") from exc
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}.")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return tuple(map(tuple, arr.tolist())) if arr.ndim == 2 else tuple(arr.tolist())


@dataclass(frozen=True)
class CameraSpec:
    """One camera, as the inspector edits it. Validated on construction (ValueError with a sentence).

    Pose: `R`, `T` (PyTorch3D row-vector world->view, X_view = X_world @ R + T) when both are given,
    otherwise `look_at_view_transform(dist, elev, azim)` around the world origin (degrees).
    A nearly orthonormal R (within 1e-3, e.g. typed with four decimals) is snapped to the nearest
    rotation; anything further off is refused.
    Intrinsics by kind:
      fov-perspective   `fov` (degrees) across the shorter image side, `znear`, `zfar`.
      perspective       fx, fy, px, py: NDC units if `in_ndc`, else pixels (principal point in
                        image coordinates, +X right, +Y down, like OpenCV's cx, cy).
      fov-orthographic  `scale` (scale_xyz), `znear`, `zfar`; the shorter side spans 2 / scale world units.
      orthographic      fx, fy, px, py as for perspective; NDC x = fx * x_view + px.
    `image_size` is (H, W).
    """

    kind: str = "fov-perspective"  # one of CAMERA_KINDS
    dist: float = 2.7  # look-at distance to the world origin (used when R, T are not given)
    elev: float = 20.0  # look-at elevation, degrees
    azim: float = 30.0  # look-at azimuth, degrees
    R: tuple | None = None  # (3, 3) world->view rotation, row-vector convention
    T: tuple | None = None  # (3,) world->view translation
    fov: float = 60.0  # degrees across the shorter image side (fov-perspective)
    znear: float = 0.1  # near clipping depth (FoV kinds)
    zfar: float = 100.0  # far clipping depth (FoV kinds)
    fx: float = 1.0  # focal length x (perspective / orthographic)
    fy: float = 1.0  # focal length y
    px: float = 0.0  # principal point x
    py: float = 0.0  # principal point y
    in_ndc: bool = True  # fx, fy, px, py in NDC units (True) or pixels (False)
    scale: float = 1.0  # fov-orthographic scale_xyz
    image_size: tuple[int, int] = (256, 256)  # (H, W) pixels, each side 1..4096

    def __post_init__(self) -> None:
        if self.kind not in CAMERA_KINDS:
            raise ValueError(f"Unknown camera kind {self.kind!r}; choose one of {', '.join(CAMERA_KINDS)}.")
        for f in fields(self):
            if f.name in ("kind", "R", "T", "image_size", "in_ndc"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise ValueError(f"Camera field {f.name} must be a number, got {value!r}.")
            if not math.isfinite(float(value)):
                raise ValueError(f"Camera field {f.name} must be a finite number, got {value}.")
            object.__setattr__(self, f.name, float(value))
        object.__setattr__(self, "in_ndc", bool(self.in_ndc))

        try:
            h, w = (int(v) for v in self.image_size)
        except (TypeError, ValueError) as exc:
            raise ValueError("Image size must be two integers (height, width).") from exc
        if not all(float(a) == b for a, b in zip(self.image_size, (h, w), strict=True)):
            raise ValueError("Image size must be whole numbers of pixels.")
        if not (0 < h <= MAX_IMAGE_SIDE and 0 < w <= MAX_IMAGE_SIDE):
            raise ValueError(f"Image size must be between 1 and {MAX_IMAGE_SIDE} pixels per side, got {h} x {w}.")
        object.__setattr__(self, "image_size", (h, w))

        if not self.znear < self.zfar:
            raise ValueError(f"znear ({self.znear}) must be smaller than zfar ({self.zfar}).")
        if self.kind == "fov-perspective" and self.znear <= 0:
            raise ValueError("A perspective camera needs znear > 0.")
        if not 0.0 < self.fov < 180.0:
            raise ValueError(f"Field of view must be between 0 and 180 degrees, got {self.fov}.")
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError("Focal lengths fx and fy must be positive.")
        if self.scale <= 0:
            raise ValueError("The orthographic scale must be positive.")

        if (self.R is None) != (self.T is None):
            raise ValueError("Give both R and T, or neither (then dist/elev/azim place the camera).")
        if self.R is None:
            if self.dist <= 0:
                raise ValueError("Camera distance must be positive.")
            return
        R = np.asarray(_nested_floats(self.R, (3, 3), "R"))
        T = _nested_floats(self.T, (3,), "T")
        if np.abs(R @ R.T - np.eye(3)).max() > _R_TOL or abs(np.linalg.det(R) - 1.0) > _R_TOL:
            raise ValueError("R must be a rotation matrix (orthonormal rows, determinant +1).")
        u, _, vt = np.linalg.svd(R)  # snap to the nearest rotation (polar decomposition)
        object.__setattr__(self, "R", tuple(map(tuple, (u @ vt).tolist())))
        object.__setattr__(self, "T", T)


# ---------------------------------------------------------------------------------------------
# Building cameras and reading their pose


def view_rt(spec: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
    """(R (3, 3), T (3,)) float64 in PyTorch3D's convention: from the spec or from dist/elev/azim."""
    if spec.R is not None:
        return np.array(spec.R, dtype=np.float64), np.array(spec.T, dtype=np.float64)
    R, T = look_at_view_transform(dist=spec.dist, elev=spec.elev, azim=spec.azim)  # (1, 3, 3), (1, 3)
    return R[0].double().numpy(), T[0].double().numpy()


def camera_center(spec: CameraSpec) -> np.ndarray:
    """Camera centre in world coordinates, (3,): C = -R T (column form)."""
    R, T = view_rt(spec)
    return -R @ T


def build_camera(spec: CameraSpec, device: torch.device | str = "cpu") -> CamerasBase:
    """The PyTorch3D camera (batch of 1) for a spec, with image_size set where the class takes one."""
    R, T = view_rt(spec)
    R_t = torch.tensor(R, dtype=torch.float32, device=device)[None]  # (1, 3, 3)
    T_t = torch.tensor(T, dtype=torch.float32, device=device)[None]  # (1, 3)
    size = (spec.image_size,)
    if spec.kind == "fov-perspective":
        return FoVPerspectiveCameras(
            znear=spec.znear, zfar=spec.zfar, fov=spec.fov, degrees=True, R=R_t, T=T_t, device=device
        )
    if spec.kind == "fov-orthographic":
        return FoVOrthographicCameras(
            znear=spec.znear, zfar=spec.zfar, scale_xyz=((spec.scale,) * 3,), R=R_t, T=T_t, device=device
        )
    cls = PerspectiveCameras if spec.kind == "perspective" else OrthographicCameras
    return cls(
        focal_length=((spec.fx, spec.fy),),
        principal_point=((spec.px, spec.py),),
        R=R_t,
        T=T_t,
        in_ndc=spec.in_ndc,
        image_size=size,
        device=device,
    )


def ndc_intrinsics(spec: CameraSpec) -> tuple[float, float, float, float]:
    """(fx, fy, px, py) in PyTorch3D NDC units for any kind: NDC x = fx * x' + px, where
    x' = x_view / z_view for perspective kinds and x' = x_view for orthographic ones.
    Screen-unit values convert with s = min(H, W) / 2: f_ndc = f_pix / s, p_ndc = (W/2 - p_pix) / s."""
    h, w = spec.image_size
    s = min(h, w) / 2.0
    if spec.kind == "fov-perspective":
        f = 1.0 / math.tan(math.radians(spec.fov) / 2.0)
        return f, f, 0.0, 0.0
    if spec.kind == "fov-orthographic":
        return spec.scale, spec.scale, 0.0, 0.0
    if spec.in_ndc:
        return spec.fx, spec.fy, spec.px, spec.py
    return spec.fx / s, spec.fy / s, (w / 2.0 - spec.px) / s, (h / 2.0 - spec.py) / s


def _points_tensor(points_world: np.ndarray, device: torch.device | str) -> torch.Tensor:
    pts = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    if not np.isfinite(pts).all():
        raise ValueError("Sample points must be finite numbers.")
    return torch.tensor(pts, dtype=torch.float32, device=device)[None]  # (1, P, 3)


def project(spec: CameraSpec, points_world: np.ndarray, device: torch.device | str = "cpu") -> dict[str, np.ndarray]:
    """World points (P, 3) -> {"view", "ndc", "screen"} each (P, 3) float64, through PyTorch3D:
    get_world_to_view_transform, transform_points_ndc, transform_points_screen."""
    cam = build_camera(spec, device)
    pts = _points_tensor(points_world, device)  # (1, P, 3)
    with torch.no_grad():
        view = cam.get_world_to_view_transform().transform_points(pts)  # (1, P, 3)
        ndc = cam.transform_points_ndc(pts)  # (1, P, 3)
        screen = cam.transform_points_screen(pts, image_size=(spec.image_size,))  # (1, P, 3)
    return {k: v[0].double().cpu().numpy() for k, v in (("view", view), ("ndc", ndc), ("screen", screen))}


def _in_view(spec: CameraSpec, view: np.ndarray, screen: np.ndarray) -> np.ndarray:
    """(P,) bool: in front of the camera (z_view > 0; within [znear, zfar] for the FoV kinds, which
    clip there) and inside the image rectangle [0, W] x [0, H] in screen pixels."""
    h, w = spec.image_size
    z = view[:, 2]
    front = z > 0
    if spec.kind.startswith("fov-"):
        front &= (z >= spec.znear) & (z <= spec.zfar)
    with np.errstate(invalid="ignore"):
        inside = (screen[:, 0] >= 0) & (screen[:, 0] <= w) & (screen[:, 1] >= 0) & (screen[:, 1] <= h)
    return front & inside & np.isfinite(screen[:, :2]).all(axis=1)


def _num(x: float, digits: int = 6) -> float | None:
    return round(float(x), digits) if math.isfinite(float(x)) else None


def point_table(spec: CameraSpec, points_world: np.ndarray) -> list[dict]:
    """One flat, JSON-able row per point (ready for a DataFrame):
    "point" (index), "world_x/y/z", "view_x/y/z" (get_world_to_view_transform), "ndc_x/y/z"
    (transform_points_ndc: the same as transform_points / get_full_projection_transform for NDC-defined
    cameras; for a screen-defined camera (in_ndc False) those two return f * x/z + p, which is neither
    NDC nor pixels, so the table uses the NDC transform), "screen_x/y" (transform_points_screen, pixels,
    origin top-left, pixel centres at +0.5), "in_view" (see below). Non-finite values (points on the
    camera plane) become None.

    in_view: z_view > 0 (and znear <= z_view <= zfar for the FoV kinds) and the screen point lies in
    [0, W] x [0, H]; for square images that is NDC [-1, 1]^2, for others the longer side spans [-u, u].
    ndc_z is the camera's own depth encoding (FoV kinds: 0 at znear, 1 at zfar; perspective: 1 / z_view;
    orthographic: z_view)."""
    pts = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    proj = project(spec, pts)
    in_view = _in_view(spec, proj["view"], proj["screen"])
    rows = []
    for i in range(len(pts)):
        row: dict[str, Any] = {"point": i}
        for name, arr, axes in (
            ("world", pts, "xyz"),
            ("view", proj["view"], "xyz"),
            ("ndc", proj["ndc"], "xyz"),
            ("screen", proj["screen"], "xy"),
        ):
            for k, axis in enumerate(axes):
                row[f"{name}_{axis}"] = _num(arr[i, k])
        row["in_view"] = bool(in_view[i])
        rows.append(row)
    return rows


def default_sample_points(verts: np.ndarray | None, n: int = 8) -> np.ndarray:
    """(n, 3) float64 sample points. With mesh vertices: n vertices spread by farthest-point sampling
    (starting from the vertex farthest from the centroid), so the points lie on the mesh and the render's
    crosses can be checked against it (a cube gives its corners). Without: the corners of the unit cube
    [-0.5, 0.5]^3, then its centre and face centres, then seeded random points inside it."""
    n = int(n)
    if n < 1:
        raise ValueError("Ask for at least one sample point.")
    if verts is not None:
        v = np.asarray(verts, dtype=np.float64).reshape(-1, 3)
        v = v[np.isfinite(v).all(axis=1)]
        if len(v) > 0:
            chosen = [int(np.argmax(((v - v.mean(axis=0)) ** 2).sum(axis=1)))]
            d = ((v - v[chosen[0]]) ** 2).sum(axis=1)  # (V,) squared distance to the chosen set
            while len(chosen) < min(n, len(v)):
                nxt = int(np.argmax(d))
                if d[nxt] <= 0:  # only duplicates left
                    break
                chosen.append(nxt)
                d = np.minimum(d, ((v - v[nxt]) ** 2).sum(axis=1))
            return v[chosen].copy()
    corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    extra = np.concatenate([np.zeros((1, 3)), 0.5 * np.concatenate([np.eye(3), -np.eye(3)])])
    pts = np.concatenate([corners, extra])  # (15, 3)
    if n > len(pts):
        gen = np.random.default_rng(0)
        pts = np.concatenate([pts, gen.uniform(-0.5, 0.5, size=(n - len(pts), 3))])
    return pts[:n]


# ---------------------------------------------------------------------------------------------
# Frustum geometry and the Plotly scene


def _unproject_ndc(spec: CameraSpec, ndc_xy: np.ndarray, depth: float) -> np.ndarray:
    """Points in the VIEW frame (K, 3) whose NDC xy is `ndc_xy` (K, 2), at view depth `depth`."""
    fx, fy, px, py = ndc_intrinsics(spec)
    u = (ndc_xy[:, 0] - px) / fx
    v = (ndc_xy[:, 1] - py) / fy
    if spec.kind in ("fov-perspective", "perspective"):
        u, v = u * depth, v * depth
    return np.stack([u, v, np.full_like(u, depth)], axis=1)


def _image_corners_ndc(spec: CameraSpec) -> np.ndarray:
    """NDC xy of the image corners (4, 2): top-left, top-right, bottom-right, bottom-left in the image."""
    h, w = spec.image_size
    s = min(h, w)
    ax, ay = w / s, h / s
    # NDC +X is left and +Y up, so the image's top-left corner is (+ax, +ay).
    return np.array([[ax, ay], [-ax, ay], [-ax, -ay], [ax, -ay]], dtype=np.float64)


def _view_to_world(spec: CameraSpec, pts_view: np.ndarray) -> np.ndarray:
    R, T = view_rt(spec)
    return (pts_view - T) @ R.T  # inverse of X_view = X_world @ R + T


def frustum_corners(spec: CameraSpec, depth: float) -> np.ndarray:
    """World points (4, 3) that project onto the image corners top-left, top-right, bottom-right,
    bottom-left (screen (0, 0), (W, 0), (W, H), (0, H)) at view depth `depth`."""
    return _view_to_world(spec, _unproject_ndc(spec, _image_corners_ndc(spec), float(depth)))


def _lines(segments: list[tuple[np.ndarray, np.ndarray]]) -> tuple[list, list, list]:
    xs: list = []
    ys: list = []
    zs: list = []
    for a, b in segments:
        xs += [a[0], b[0], None]
        ys += [a[1], b[1], None]
        zs += [a[2], b[2], None]
    return xs, ys, zs


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
    depths = (all_pts @ R + T)[:, 2]
    depths = depths[np.isfinite(depths) & (depths > 0)]
    display = float(depths.max() * 1.1) if len(depths) else 1.0
    perspective = spec.kind in ("fov-perspective", "perspective")
    near = spec.znear if spec.kind.startswith("fov-") else None
    far = min(spec.zfar, display) if spec.kind.startswith("fov-") else display
    if near is not None and near >= far:
        far = near * 1.5 if near > 0 else near + 1.0

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

    extent = float(np.abs(np.concatenate([all_pts, centre[None], far_world])).max()) or 1.0
    axis_len = 0.5 * extent
    fig = go.Figure()
    for k, (name, colour) in enumerate((("X", "red"), ("Y", "green"), ("Z", "blue"))):
        tip = np.zeros(3)
        tip[k] = axis_len
        fig.add_trace(
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
    xs, ys, zs = _lines(segments)
    fig.add_trace(go.Scatter3d(x=xs, y=ys, z=zs, mode="lines", line={"color": "black", "width": 3}, name="frustum"))
    cam_len = 0.35 * min(far, extent) if far > 0 else 0.35 * extent
    for k, (label, colour) in enumerate((("+X left", "red"), ("+Y up", "green"), ("+Z forward", "blue"))):
        tip = centre + cam_len * R[:, k]  # view axis k in world = column k of R
        fig.add_trace(
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
        proj = project(spec, pts)
        in_view = _in_view(spec, proj["view"], proj["screen"])
        fig.add_trace(
            go.Scatter3d(
                x=pts[:, 0],
                y=pts[:, 1],
                z=pts[:, 2],
                mode="markers+text",
                marker={"size": 5, "color": ["green" if f else "red" for f in in_view]},
                text=[f"p{i}" for i in range(len(pts))],
                name="sample points",
            )
        )
    if verts is not None and mesh_faces is not None and len(verts):
        faces = np.asarray(mesh_faces, dtype=np.int64).reshape(-1, 3)
        title_note = ""
        mesh_v = verts
        if len(faces) > max_faces > 0:
            faces = faces[np.linspace(0, len(faces) - 1, max_faces).astype(np.int64)]
            used, faces = np.unique(faces, return_inverse=True)  # send only the vertices still in use
            mesh_v, faces = verts[used], faces.reshape(-1, 3)
            title_note = f" (showing {max_faces} faces)"
        fig.add_trace(
            go.Mesh3d(
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
        )
    fig.update_layout(
        title=f"{spec.kind} camera, image {spec.image_size[1]}x{spec.image_size[0]} (W x H)",
        scene={"aspectmode": "data", "xaxis_title": "X", "yaxis_title": "Y", "zaxis_title": "Z"},
        # PyTorch3D's world is +Y up: start the Plotly view that way.
        scene_camera={"up": {"x": 0, "y": 1, "z": 0}, "eye": {"x": 1.2, "y": 0.9, "z": 1.6}},
        margin={"l": 0, "r": 0, "t": 40, "b": 0},
        legend={"itemsizing": "constant"},
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Render with the projected points drawn over it


def _as_mesh(mesh: Meshes | tuple[np.ndarray, np.ndarray], device: torch.device | str) -> Meshes:
    """First mesh of a Meshes, or a (verts (V, 3), faces (F, 3)) pair, as a 1-mesh Meshes with a texture."""
    if isinstance(mesh, Meshes):
        m = mesh[0].to(device) if len(mesh) > 1 else mesh.to(device)
        if m.textures is None:
            m.textures = TexturesVertex(torch.tensor(MESH_COLOR, device=device).expand(1, m.num_verts_per_mesh()[0], 3))
        return m
    verts, faces = mesh
    v = torch.as_tensor(np.asarray(verts, dtype=np.float32), device=device).reshape(-1, 3)  # (V, 3)
    f = torch.as_tensor(np.asarray(faces, dtype=np.int64), device=device).reshape(-1, 3)  # (F, 3)
    if len(f) and (f.min() < 0 or f.max() >= len(v)):
        raise ValueError("Face indices point outside the vertex list.")
    colours = torch.tensor(MESH_COLOR, device=device).expand(1, len(v), 3)  # (1, V, 3)
    return Meshes(verts=[v], faces=[f], textures=TexturesVertex(colours))


def draw_points(
    image: np.ndarray,
    screen_xy: np.ndarray,
    show: np.ndarray | None = None,
    hidden: np.ndarray | None = None,
    labels: bool = True,
) -> np.ndarray:
    """Draw markers at PyTorch3D screen positions (P, 2) on a uint8 (H, W, 3) image; returns a copy.
    Red "+" for a point, orange "x" where `hidden` (behind the mesh surface); label = row index.
    A screen point (x, y) lies in pixel (row floor(y), column floor(x)): the marker is centred on exactly
    that pixel (PIL draws integer coordinates on pixel centres). Points with `show` False, or non-finite,
    are skipped."""
    img = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(img)
    h, w = image.shape[:2]
    r = max(3, min(h, w) // 48)
    for i, (x, y) in enumerate(np.asarray(screen_xy, dtype=np.float64).reshape(-1, 2)):
        if (show is not None and not show[i]) or not (math.isfinite(x) and math.isfinite(y)):
            continue
        cx, cy = math.floor(x), math.floor(y)
        occluded = hidden is not None and bool(hidden[i])
        colour = (255, 140, 0) if occluded else (220, 20, 60)
        if occluded:
            strokes = [((cx - r, cy - r), (cx + r, cy + r)), ((cx - r, cy + r), (cx + r, cy - r))]
        else:
            strokes = [((cx - r, cy), (cx + r, cy)), ((cx, cy - r), (cx, cy + r))]
        for fill, width in (((255, 255, 255), 3), (colour, 1)):
            for a, b in strokes:
                draw.line([a, b], fill=fill, width=width)
        if labels:
            draw.text((cx + r + 1, cy - r - 9), str(i), fill=colour)
    return np.asarray(img)


# PyTorch3D rasterises naively on CPU (no binning there): about 16 ns per pixel x face on this class of
# machine, so a 256 x 256 image of a 20k-face mesh takes ~20 s. Above this many pixel-face pairs on CPU,
# render_mesh uses rasterize_screen below (same Fragments, same HardPhongShader).
FAST_RASTER_ABOVE = 2e7
_PAIR_CHUNK = 4_000_000  # candidate (face, pixel) pairs per chunk in rasterize_screen


def rasterize_screen(
    verts_screen: np.ndarray, faces: np.ndarray, image_size: tuple[int, int], perspective: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised z-buffer rasteriser, a CPU stand-in for PyTorch3D's MeshRasterizer with
    faces_per_pixel=1, blur_radius=0 (tested against it).

    verts_screen (V, 3): PyTorch3D screen x, y (pixels, transform_points_screen) and VIEW depth z.
    faces (F, 3) int. Pixel (i, j) samples the point (j + 0.5, i + 0.5); each face only visits the
    pixels of its bounding box. Perspective: 1/z is affine in screen space, so depth is 1 / sum(l_k / z_k)
    and barycentrics are perspective-corrected; faces with a vertex at z <= 0 are dropped (PyTorch3D clips
    them). Returns pix_to_face int64 (H, W) (-1 = empty), zbuf float32 (H, W) (-1 = empty) and
    bary float32 (H, W, 3) (-1 = empty)."""
    h, w = image_size
    v = np.asarray(verts_screen, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    tri = v[f]  # (F, 3, 3)
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])  # (F,) 2x signed
    keep = np.isfinite(tri).all(axis=(1, 2)) & (np.abs(area) > 1e-12)
    if perspective:
        keep &= (tri[:, :, 2] > 1e-8).all(axis=1)
    # pixel j is visited when its centre j + 0.5 lies in [min x, max x]
    x0 = np.ceil(tri[:, :, 0].min(axis=1) - 0.5).clip(0, w)
    x1 = np.floor(tri[:, :, 0].max(axis=1) - 0.5).clip(-1, w - 1)
    y0 = np.ceil(tri[:, :, 1].min(axis=1) - 0.5).clip(0, h)
    y1 = np.floor(tri[:, :, 1].max(axis=1) - 0.5).clip(-1, h - 1)
    nx = np.where(keep, x1 - x0 + 1, 0).clip(0).astype(np.int64)
    ny = np.where(keep, y1 - y0 + 1, 0).clip(0).astype(np.int64)
    count = nx * ny  # (F,) candidate pixels per face

    best_z = np.full(h * w, np.inf)
    pix_to_face = np.full(h * w, -1, dtype=np.int64)
    bary = np.full((h * w, 3), -1.0)
    face_ids = np.flatnonzero(count)
    bounds = np.searchsorted(np.cumsum(count[face_ids]), np.arange(_PAIR_CHUNK, int(count.sum()), _PAIR_CHUNK))
    for chunk in np.split(face_ids, bounds):
        if len(chunk) == 0:
            continue
        n = count[chunk]
        fid = np.repeat(chunk, n)  # (P,) face of each candidate pair
        k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)  # index inside the face's box
        px = x0[fid] + k % nx[fid] + 0.5
        py = y0[fid] + k // nx[fid] + 0.5
        ta, tb, tc, ar = a[fid], b[fid], c[fid], area[fid]
        l0 = ((tb[:, 0] - px) * (tc[:, 1] - py) - (tb[:, 1] - py) * (tc[:, 0] - px)) / ar
        l1 = ((tc[:, 0] - px) * (ta[:, 1] - py) - (tc[:, 1] - py) * (ta[:, 0] - px)) / ar
        l2 = 1.0 - l0 - l1
        inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
        lam = np.stack([l0, l1, l2], axis=1)[inside]  # (Q, 3) screen-space barycentrics
        zs = np.stack([ta[:, 2], tb[:, 2], tc[:, 2]], axis=1)[inside]  # (Q, 3)
        fid, px, py = fid[inside], px[inside], py[inside]
        if perspective:
            inv = lam / zs
            z = 1.0 / inv.sum(axis=1)
            lam = inv * z[:, None]  # perspective-correct barycentrics
        else:
            z = (lam * zs).sum(axis=1)
        ok = z >= 0
        pix = (py[ok] - 0.5).astype(np.int64) * w + (px[ok] - 0.5).astype(np.int64)
        z, fid, lam = z[ok], fid[ok], lam[ok]
        order = np.lexsort((z, pix))  # nearest first within each pixel
        first = order[np.r_[True, pix[order][1:] != pix[order][:-1]]] if len(order) else order
        win = first[z[first] < best_z[pix[first]]]
        best_z[pix[win]] = z[win]
        pix_to_face[pix[win]] = fid[win]
        bary[pix[win]] = lam[win]
    zbuf = np.where(np.isfinite(best_z), best_z, -1.0)
    return pix_to_face.reshape(h, w), zbuf.reshape(h, w).astype(np.float32), bary.reshape(h, w, 3).astype(np.float32)


def render_mesh(
    spec: CameraSpec,
    mesh: Meshes | tuple[np.ndarray, np.ndarray],
    device: torch.device | str = "cpu",
    rasterizer: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hard-Phong render from the spec's camera with a point light at the camera centre.
    `rasterizer`: "pytorch3d" (MeshRasterizer), "fast" (rasterize_screen, numpy) or "auto": PyTorch3D on
    GPU or for small jobs, the fast one on CPU above FAST_RASTER_ABOVE pixel-face pairs. Shading is
    PyTorch3D's HardPhongShader either way.
    Returns (image float32 (H, W, 3) in [0, 1], pix_to_face int64 (H, W) with -1 = background,
    zbuf float32 (H, W): view-space depth of the visible surface, -1 = background)."""
    if rasterizer not in ("auto", "pytorch3d", "fast"):
        raise ValueError(f"Unknown rasterizer {rasterizer!r}.")
    m = _as_mesh(mesh, device)
    cam = build_camera(spec, device)
    h, w = spec.image_size
    if rasterizer == "auto":
        work = h * w * int(m.num_faces_per_mesh()[0])
        on_cpu = torch.device(device).type == "cpu"
        rasterizer = "fast" if on_cpu and work > FAST_RASTER_ABOVE else "pytorch3d"
    light_at = torch.tensor(camera_center(spec), dtype=torch.float32, device=device)[None]  # (1, 3)
    lights = PointLights(
        device=device,
        location=light_at,
        ambient_color=((0.35,) * 3,),
        diffuse_color=((0.65,) * 3,),
        specular_color=((0.15,) * 3,),
    )
    blend = BlendParams(background_color=BACKGROUND)
    shader = HardPhongShader(device=device, cameras=cam, lights=lights, blend_params=blend)
    with torch.no_grad():
        if rasterizer == "pytorch3d":
            raster = RasterizationSettings(image_size=spec.image_size, blur_radius=0.0, faces_per_pixel=1)
            fragments = MeshRasterizer(cameras=cam, raster_settings=raster)(m)
        else:
            verts = m.verts_packed()[None]  # (1, V, 3)
            screen = cam.transform_points_screen(verts, image_size=(spec.image_size,))[0]  # (V, 3)
            depth = cam.get_world_to_view_transform().transform_points(verts)[0, :, 2]  # (V,)
            verts_screen = torch.cat([screen[:, :2], depth[:, None]], dim=1).double().cpu().numpy()
            p2f, zbuf, bary = rasterize_screen(
                verts_screen, m.faces_packed().cpu().numpy(), spec.image_size, cam.is_perspective()
            )
            fragments = Fragments(
                pix_to_face=torch.as_tensor(p2f, device=device)[None, ..., None],  # (1, H, W, 1)
                zbuf=torch.as_tensor(zbuf, device=device)[None, ..., None],  # (1, H, W, 1)
                bary_coords=torch.as_tensor(bary, device=device)[None, :, :, None, :],  # (1, H, W, 1, 3)
                dists=torch.zeros((1, h, w, 1), device=device),  # (1, H, W, 1)
            )
        images = shader(fragments, m)  # (1, H, W, 4)
    image = images[0, ..., :3].clamp(0, 1).cpu().numpy().astype(np.float32)
    return image, fragments.pix_to_face[0, ..., 0].cpu().numpy(), fragments.zbuf[0, ..., 0].cpu().numpy()


def render_with_points(
    spec: CameraSpec,
    mesh: Meshes | tuple[np.ndarray, np.ndarray],
    points_world: np.ndarray,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """uint8 (H, W, 3): the mesh (first mesh of a Meshes, or (verts, faces) arrays; untextured meshes get
    a flat colour) rendered with a hard Phong shader from this camera on a white background, with the
    sample points (numbered as in point_table) drawn at their transform_points_screen positions: red "+"
    where the point is on the visible surface or in front of it, orange "x" where the z-buffer shows it
    lies behind the surface (depth > zbuf by more than 2 % + 1e-3). Points not in view are skipped.
    The markers landing on the mesh's features is the visual proof that the table is right.
    Rasteriser: render_mesh's "auto" (PyTorch3D's, or the numpy one for big meshes on CPU)."""
    image, _, zbuf = render_mesh(spec, mesh, device)
    rgb = (image * 255.0 + 0.5).astype(np.uint8)
    pts = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    if len(pts) == 0:
        return rgb
    proj = project(spec, pts, device)
    show = _in_view(spec, proj["view"], proj["screen"])
    h, w = spec.image_size
    hidden = np.zeros(len(pts), dtype=bool)
    for i in np.flatnonzero(show):
        col = min(int(math.floor(proj["screen"][i, 0])), w - 1)
        row = min(int(math.floor(proj["screen"][i, 1])), h - 1)
        surface = float(zbuf[row, col])
        depth = float(proj["view"][i, 2])
        hidden[i] = surface >= 0 and depth > surface * 1.02 + 1e-3
    return draw_points(rgb, proj["screen"][:, :2], show, hidden)


# ---------------------------------------------------------------------------------------------
# OpenCV


def to_opencv(spec_or_camera: CameraSpec | CamerasBase, image_size: tuple[int, int] | None = None) -> dict:
    """OpenCV pinhole camera {"R": (3, 3), "t": (3,), "K": (3, 3)} as float64 arrays, such that
    (u, v, 1) ~ K @ (R @ X_world + t) equals PyTorch3D's transform_points_screen.
    Through pytorch3d.utils.opencv_from_cameras_projection; FoV-perspective cameras are first turned
    into the equivalent PerspectiveCameras (focal = 1 / tan(fov / 2) in NDC; znear/zfar are lost, OpenCV
    has none), screen-unit cameras into NDC ones. `image_size` (H, W) defaults to the spec's.
    Orthographic cameras raise ValueError: OpenCV's pinhole model has no orthographic camera."""
    if isinstance(spec_or_camera, CameraSpec):
        spec = spec_or_camera
        if image_size is not None and tuple(int(v) for v in image_size) != spec.image_size:
            spec = replace(spec, image_size=tuple(image_size))
    else:
        spec = _spec_from_camera(spec_or_camera, image_size)
    if spec.kind not in ("fov-perspective", "perspective"):
        raise ValueError("OpenCV's pinhole model has no orthographic camera; pick a perspective camera to convert.")
    R, T = view_rt(spec)
    fx, fy, px, py = ndc_intrinsics(spec)
    cams = PerspectiveCameras(
        focal_length=((fx, fy),),
        principal_point=((px, py),),
        R=torch.tensor(R, dtype=torch.float32)[None],
        T=torch.tensor(T, dtype=torch.float32)[None],
        image_size=(spec.image_size,),
    )
    R_cv, t_cv, K = opencv_from_cameras_projection(cams, torch.tensor([spec.image_size]))
    return {"R": R_cv[0].double().numpy(), "t": t_cv[0].double().numpy(), "K": K[0].double().numpy()}


def from_opencv(R: np.ndarray, t: np.ndarray, K: np.ndarray, image_size: tuple[int, int]) -> CameraSpec:
    """CameraSpec (kind "perspective", NDC units) from an OpenCV camera, through
    pytorch3d.utils.cameras_from_opencv_projection. R (3, 3) world->camera, t (3,), K (3, 3) in pixels,
    image_size (H, W). Skew (K[0, 1] != 0) is refused: PyTorch3D's cameras have none."""
    R_a = np.asarray(_nested_floats(R, (3, 3), "OpenCV R"))
    t_a = np.asarray(_nested_floats(np.asarray(t, dtype=np.float64).reshape(-1), (3,), "OpenCV t"))
    K_a = np.asarray(_nested_floats(K, (3, 3), "OpenCV K"))
    if abs(K_a[0, 1]) > 1e-9 or np.abs(K_a[2] - [0, 0, 1]).max() > 1e-9 or abs(K_a[1, 0]) > 1e-9:
        raise ValueError("K must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew).")
    h, w = (int(v) for v in image_size)
    cams = cameras_from_opencv_projection(
        torch.tensor(R_a, dtype=torch.float32)[None],
        torch.tensor(t_a, dtype=torch.float32)[None],
        torch.tensor(K_a, dtype=torch.float32)[None],
        torch.tensor([[h, w]]),
    )
    focal = cams.focal_length[0].double().tolist()
    principal = cams.principal_point[0].double().tolist()
    # R_p3d = R_cv^T with x, y columns flipped; T_p3d = t_cv with x, y flipped (same as PyTorch3D's util,
    # recomputed in float64 so a round trip does not lose digits to float32).
    R_p3d = R_a.T @ _FLIP_CV
    T_p3d = _FLIP_CV @ t_a
    return CameraSpec(
        kind="perspective",
        R=R_p3d,
        T=T_p3d,
        fx=focal[0],
        fy=focal[1],
        px=principal[0],
        py=principal[1],
        in_ndc=True,
        image_size=(h, w),
    )


def _spec_from_camera(camera: CamerasBase, image_size: tuple[int, int] | None) -> CameraSpec:
    """CameraSpec for the first camera of a PyTorch3D camera batch (FoV aspect_ratio must be 1)."""
    size = image_size if image_size is not None else camera.get_image_size()
    if size is None:
        raise ValueError("The camera has no image size; pass image_size=(H, W).")
    size_t = torch.as_tensor(size).reshape(-1, 2)[0]
    hw = (int(size_t[0]), int(size_t[1]))
    R = camera.R[0].double().cpu().numpy()
    T = camera.T[0].double().cpu().numpy()
    if isinstance(camera, FoVPerspectiveCameras):
        if abs(float(camera.aspect_ratio[0]) - 1.0) > 1e-6:
            raise ValueError("Only FoV cameras with aspect_ratio 1 (square pixels) can be converted.")
        fov = float(camera.fov[0])
        fov = fov if camera.degrees else math.degrees(fov)
        return CameraSpec(
            kind="fov-perspective",
            R=R,
            T=T,
            fov=fov,
            znear=float(camera.znear[0]),
            zfar=float(camera.zfar[0]),
            image_size=hw,
        )
    if isinstance(camera, (PerspectiveCameras, OrthographicCameras)):
        fx, fy = camera.focal_length[0].tolist()
        px, py = camera.principal_point[0].tolist()
        kind = "perspective" if isinstance(camera, PerspectiveCameras) else "orthographic"
        return CameraSpec(kind=kind, R=R, T=T, fx=fx, fy=fy, px=px, py=py, in_ndc=camera.in_ndc(), image_size=hw)
    raise ValueError(f"Cannot convert a {type(camera).__name__}; use a CameraSpec.")


# ---------------------------------------------------------------------------------------------
# OpenGL / glTF


def to_opengl(spec: CameraSpec) -> dict:
    """OpenGL/glTF camera, float64 / plain floats:
    "type" ("perspective" | "orthographic"), "cam_to_world" (4, 4) pose (camera looks down -Z, +Y up),
    "world_to_cam" (4, 4), "yfov" (radians, vertical, whole image; None when orthographic), "aspect"
    (= (W / H) * (fy / fx), i.e. W / H for square pixels), "xmag"/"ymag" (orthographic half-extents in
    world units, else None), "znear", "zfar", "projection" (4, 4 OpenGL clip matrix, exact: an
    off-centre principal point goes into its third (perspective) or fourth (orthographic) column),
    "lossless" (False when the principal point is off-centre: glTF's yfov/aspect or xmag/ymag describe
    symmetric frusta only, so from_opengl cannot recover it) and "note".
    From PyTorch3D: cam_to_world rotation = R @ diag(-1, 1, -1), camera centre = -R T."""
    R, T = view_rt(spec)
    h, w = spec.image_size
    s = min(h, w) / 2.0
    fx, fy, px, py = ndc_intrinsics(spec)
    cam_to_world = np.eye(4)
    cam_to_world[:3, :3] = R @ _FLIP_GL
    cam_to_world[:3, 3] = -R @ T
    znear, zfar = spec.znear, spec.zfar
    lossless = abs(px) < 1e-9 and abs(py) < 1e-9
    note = (
        "exact" if lossless else "off-centre principal point: kept in the projection matrix, lost in glTF yfov/aspect"
    )
    proj = np.zeros((4, 4))
    if spec.kind in ("fov-perspective", "perspective"):
        # pixel focal lengths fx * s; tan(yfov / 2) = (H / 2) / fy_pix
        tan_half = (h / 2.0) / (fy * s)
        yfov = 2.0 * math.atan(tan_half)
        aspect = (w / h) * (fy / fx)
        xmag = ymag = None
        if spec.kind == "perspective":
            note += "; znear/zfar are not used by PyTorch3D's PerspectiveCameras, shown as set"
        proj[0, 0] = 1.0 / (aspect * tan_half)
        proj[1, 1] = 1.0 / tan_half
        proj[0, 2] = px * s / (w / 2.0)  # off-centre principal point (glFrustum-style asymmetry)
        proj[1, 2] = -py * s / (h / 2.0)
        proj[2, 2] = (zfar + znear) / (znear - zfar)
        proj[2, 3] = 2.0 * zfar * znear / (znear - zfar)
        proj[3, 2] = -1.0
        kind = "perspective"
    else:
        yfov = None
        aspect = (w / h) * (fy / fx)
        xmag, ymag = (w / 2.0) / (fx * s), (h / 2.0) / (fy * s)
        proj[0, 0] = 1.0 / xmag
        proj[1, 1] = 1.0 / ymag
        proj[0, 3] = -px * s / (w / 2.0)
        proj[1, 3] = py * s / (h / 2.0)
        proj[2, 2] = 2.0 / (znear - zfar)
        proj[2, 3] = (zfar + znear) / (znear - zfar)
        proj[3, 3] = 1.0
        kind = "orthographic"
    return {
        "type": kind,
        "cam_to_world": cam_to_world,
        "world_to_cam": np.linalg.inv(cam_to_world),
        "yfov": yfov,
        "aspect": aspect,
        "xmag": xmag,
        "ymag": ymag,
        "znear": znear,
        "zfar": zfar,
        "projection": proj,
        "lossless": lossless,
        "note": note,
    }


def opengl_screen(gl: dict, points_world: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Pixels (P, 2) of world points under an OpenGL camera dict (from to_opengl): clip = P @ V @ X,
    NDC = clip / w, u = (x_ndc + 1) / 2 * W, v = (1 - y_ndc) / 2 * H (top-left origin)."""
    h, w = image_size
    pts = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    homo = np.concatenate([pts, np.ones((len(pts), 1))], axis=1)  # (P, 4)
    clip = homo @ (gl["projection"] @ gl["world_to_cam"]).T  # (P, 4)
    with np.errstate(divide="ignore", invalid="ignore"):
        ndc = clip[:, :2] / clip[:, 3:4]
    return np.stack([(ndc[:, 0] + 1.0) / 2.0 * w, (1.0 - ndc[:, 1]) / 2.0 * h], axis=1)


def from_opengl(
    cam_to_world: np.ndarray,
    yfov: float | None,
    aspect: float,
    znear: float,
    zfar: float,
    image_size: tuple[int, int],
    ymag: float | None = None,
) -> CameraSpec:
    """CameraSpec from an OpenGL/glTF camera: pose `cam_to_world` (4, 4, rotation part orthonormal),
    vertical FoV `yfov` in radians (or, for an orthographic camera, yfov None and half-height `ymag`),
    `aspect` = width / height of the view volume, image_size (H, W).
    When aspect equals W / H (square pixels) the result is "fov-perspective" ("fov-orthographic"), with
    the FoV across the shorter image side; otherwise "perspective" ("orthographic") with fx != fy."""
    M = np.asarray(_nested_floats(cam_to_world, (4, 4), "cam_to_world"))
    if np.abs(M[3] - [0, 0, 0, 1]).max() > 1e-9:
        raise ValueError("cam_to_world must be a rigid pose (last row 0, 0, 0, 1).")
    h, w = (int(v) for v in image_size)
    s = min(h, w) / 2.0
    R = M[:3, :3] @ _FLIP_GL
    if np.abs(R @ R.T - np.eye(3)).max() > _R_TOL or abs(np.linalg.det(R) - 1.0) > _R_TOL:
        raise ValueError("cam_to_world's rotation must be orthonormal with determinant +1 (no scale).")
    T = -R.T @ M[:3, 3]
    if not (aspect > 0 and math.isfinite(aspect)):
        raise ValueError("aspect must be a positive number.")
    square = abs(aspect - w / h) <= 1e-6 * (w / h)
    common = {"R": R, "T": T, "znear": znear, "zfar": zfar, "image_size": (h, w)}
    if yfov is None:
        if ymag is None or not ymag > 0:
            raise ValueError("An orthographic OpenGL camera needs ymag > 0 (and yfov None).")
        fy = (h / 2.0) / (ymag * s)  # NDC focal: the image's half-height h / (2 s) spans ymag world units
        fx = fy * (w / h) / aspect
        if square:
            return CameraSpec(kind="fov-orthographic", scale=fy, **common)
        return CameraSpec(kind="orthographic", fx=fx, fy=fy, **common)
    if not 0 < yfov < math.pi:
        raise ValueError("yfov must be between 0 and pi radians.")
    tan_half = math.tan(yfov / 2.0)
    fy = (h / 2.0) / (tan_half * s)
    fx = fy * (w / h) / aspect
    if square:
        fov = math.degrees(2.0 * math.atan(1.0 / fy))  # FoV across the shorter side
        return CameraSpec(kind="fov-perspective", fov=fov, **common)
    return CameraSpec(kind="perspective", fx=fx, fy=fy, **common)


# ---------------------------------------------------------------------------------------------
# Round trip


def round_trip_points(spec: CameraSpec, n_per_depth: int = 5) -> np.ndarray:
    """World points (3 * n_per_depth, 3) in front of the camera and inside its view: NDC xy on a small
    pattern at three view depths between the near plane and the scene, mapped back to world."""
    pattern = np.array([[0.0, 0.0], [0.5, 0.4], [-0.6, 0.3], [0.3, -0.7], [-0.4, -0.5]])[:n_per_depth]
    R, T = view_rt(spec)
    ref = float(np.linalg.norm(-R @ T)) or 2.0
    lo = spec.znear * 1.5 if spec.kind.startswith("fov-") else 0.5 * ref
    out = []
    for depth in np.linspace(max(lo, 0.25 * ref, 1e-3), max(1.5 * ref, lo * 2.0), 3):
        out.append(_view_to_world(spec, _unproject_ndc(spec, pattern, float(depth))))
    return np.concatenate(out)


def _pose_errors(a: CameraSpec, b: CameraSpec) -> dict[str, float]:
    Ra, Ta = view_rt(a)
    Rb, Tb = view_rt(b)
    return {"R_max_abs_err": float(np.abs(Ra - Rb).max()), "T_max_abs_err": float(np.abs(Ta - Tb).max())}


def _screen_err(a: np.ndarray, b: np.ndarray) -> float:
    d = np.abs(a - b)
    d = d[np.isfinite(d)]
    return float(d.max()) if len(d) else float("nan")


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def round_trip_report(spec: CameraSpec, points_world: np.ndarray | None = None, tol_px: float = 1e-3) -> dict:
    """JSON-able round-trip check. PyTorch3D -> OpenCV -> PyTorch3D and PyTorch3D -> OpenGL -> PyTorch3D:
    max abs error of R, T and of the screen projections (pixels) of a few points in view
    (round_trip_points unless given); also the OpenCV projection K (R X + t) and the OpenGL projection
    computed by hand against PyTorch3D's transform_points_screen ("direct_screen_err_px").
    "ok" is True when every screen error is within `tol_px` (float32 cameras: ~1e-4 px is normal).
    A conversion that does not apply (orthographic -> OpenCV) reports {"supported": False, "reason"}."""
    pts = round_trip_points(spec) if points_world is None else np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    ref = project(spec, pts)["screen"][:, :2]  # (P, 2)
    report: dict[str, Any] = {"kind": spec.kind, "image_size": list(spec.image_size), "points": pts, "tol_px": tol_px}

    try:
        cv = to_opencv(spec)
    except ValueError as exc:
        report["opencv"] = {"supported": False, "reason": str(exc)}
    else:
        back = from_opencv(cv["R"], cv["t"], cv["K"], spec.image_size)
        x_cam = pts @ cv["R"].T + cv["t"]  # (P, 3)
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = (x_cam @ cv["K"].T)[:, :2] / x_cam[:, 2:3]
        entry = {
            "supported": True,
            **cv,
            **_pose_errors(spec, back),
            "screen_err_px": _screen_err(ref, project(back, pts)["screen"][:, :2]),
            "direct_screen_err_px": _screen_err(ref, uv),
            "back": _spec_dict(back),
        }
        entry["ok"] = max(entry["screen_err_px"], entry["direct_screen_err_px"]) <= tol_px
        report["opencv"] = entry

    gl = to_opengl(spec)
    back = from_opengl(
        gl["cam_to_world"], gl["yfov"], gl["aspect"], gl["znear"], gl["zfar"], spec.image_size, ymag=gl["ymag"]
    )
    entry = {
        "supported": True,
        **gl,
        "yfov_deg": None if gl["yfov"] is None else math.degrees(gl["yfov"]),
        **_pose_errors(spec, back),
        "screen_err_px": _screen_err(ref, project(back, pts)["screen"][:, :2]),
        "direct_screen_err_px": _screen_err(ref, opengl_screen(gl, pts, spec.image_size)),
        "back": _spec_dict(back),
    }
    entry["ok"] = max(entry["screen_err_px"], entry["direct_screen_err_px"]) <= tol_px
    report["opengl"] = entry
    return _jsonable(report)


def _spec_dict(spec: CameraSpec) -> dict:
    return {f.name: getattr(spec, f.name) for f in fields(spec)}
