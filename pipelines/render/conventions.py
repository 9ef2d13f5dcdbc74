"""Coordinate conventions: PyTorch3D's cameras to and from OpenCV's pinhole model and OpenGL/glTF cameras."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
from pytorch3d.renderer import FoVPerspectiveCameras, OrthographicCameras, PerspectiveCameras
from pytorch3d.renderer.cameras import CamerasBase
from pytorch3d.utils import cameras_from_opencv_projection, opencv_from_cameras_projection

from pipelines.render.camera_spec import ROTATION_TOL, CameraSpec, ndc_intrinsics, nested_floats, view_rt

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

_FLIP_CV = np.diag([-1.0, -1.0, 1.0])  # PyTorch3D view frame <-> OpenCV camera frame
_FLIP_GL = np.diag([-1.0, 1.0, -1.0])  # PyTorch3D view frame <-> OpenGL camera frame


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
    R_a = np.asarray(nested_floats(R, (3, 3), "OpenCV R"))
    t_a = np.asarray(nested_floats(np.asarray(t, dtype=np.float64).reshape(-1), (3,), "OpenCV t"))
    K_a = np.asarray(nested_floats(K, (3, 3), "OpenCV K"))
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
    M = np.asarray(nested_floats(cam_to_world, (4, 4), "cam_to_world"))
    if np.abs(M[3] - [0, 0, 0, 1]).max() > 1e-9:
        raise ValueError("cam_to_world must be a rigid pose (last row 0, 0, 0, 1).")
    h, w = (int(v) for v in image_size)
    s = min(h, w) / 2.0
    R = M[:3, :3] @ _FLIP_GL
    if np.abs(R @ R.T - np.eye(3)).max() > ROTATION_TOL or abs(np.linalg.det(R) - 1.0) > ROTATION_TOL:
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
