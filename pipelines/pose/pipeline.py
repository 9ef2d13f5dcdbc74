"""Camera pose by differentiable rendering: move a camera from a start pose until its soft silhouette (and/or soft
Phong render) of a mesh matches a target, with a vectorised soft rasteriser that keeps CPU steps short."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.core.device import resolve_device
from pipelines.core.events import Done, Event, Preview, Progress, to_uint8
from pipelines.render import rendering
from pipelines.render.rendering import edge_function, raster_bytes, segment_dist2

# sigmoid(-d / sigma) falls to 1e-4 at d = BLUR_FACTOR * sigma: the book's blur radius is BLUR_FACTOR * sigma.
BLUR_FACTOR = rendering.SOFT_BLUR_FACTOR
# The torch rasteriser holds dense (S, S, K) fragments: sizes and K whose estimate (rendering.raster_bytes, 48 bytes a
# face slot) passes this are refused, as the Shading lab refuses over its default 2,048 MiB budget.
RASTER_BUDGET_BYTES = 2 * 2**30
# Uploaded target photos above this many pixels are refused before they are decoded.
MAX_TARGET_PIXELS = 40_000_000
LOSSES = ("silhouette", "rgb", "both")
RASTERIZERS = ("auto", "torch", "pytorch3d")
VIDEO_FORMATS = ("gif", "mp4")
_EPS = 1e-8
_UP = (0.0, 1.0, 0.0)
# RGB renders and targets sit on black: on white the toy cow (white with black patches) hardly differs from the
# background, and the RGB loss alone lost the pose from a 30° start (18-34° left after 120 steps, four seeds).
RGB_BACKGROUND = (0.0, 0.0, 0.0)


# ----------------------------------------------------------------------------------------------------------------
# Soft rasteriser: PyTorch3D's semantics, computed as batched tensor ops
# ----------------------------------------------------------------------------------------------------------------
# PyTorch3D's CPU rasteriser tests every face at every pixel and its backward pass walks pixels one at a time, which
# is what makes a 256 px, 100-faces-per-pixel step take seconds on a CPU. Here the faces near each pixel are found by
# enumerating every face's (blur-expanded) pixel box, the K nearest in depth are kept, and `zbuf`, `bary_coords` and
# `dists` are recomputed for those (pixel, face) pairs with differentiable tensor ops, so autograd gives the backward
# pass. The outputs are a PyTorch3D `Fragments`, so PyTorch3D's shaders and blending run on them unchanged.


def _pair_geometry(
    face_verts: torch.Tensor, px: torch.Tensor, py: torch.Tensor, perspective_correct: bool, clip_bary: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """For M (face, pixel) pairs: barycentrics (M, 3), depth (M,), signed squared distance (M,), degenerate (M,).

    `face_verts` (M, 3, 3) holds NDC x, y and view-space z. As in PyTorch3D: barycentrics are perspective-corrected
    and then clipped to the triangle when asked, depth interpolates z with the final barycentrics, and the distance to
    the triangle's edges is negative inside the triangle.
    """
    v0, v1, v2 = face_verts[:, 0, :2], face_verts[:, 1, :2], face_verts[:, 2, :2]  # (M, 2)
    z0, z1, z2 = face_verts[:, 0, 2], face_verts[:, 1, 2], face_verts[:, 2, 2]
    area = edge_function(v2[:, 0], v2[:, 1], v0, v1) + _EPS
    w0, w1, w2 = (
        edge_function(px, py, v1, v2) / area,
        edge_function(px, py, v2, v0) / area,
        edge_function(px, py, v0, v1) / area,
    )
    inside = (w0 > 0) & (w1 > 0) & (w2 > 0)
    if perspective_correct:
        t0, t1, t2 = w0 * z1 * z2, z0 * w1 * z2, z0 * z1 * w2
        denom = (t0 + t1 + t2).clamp(min=_EPS)
        w0, w1, w2 = t0 / denom, t1 / denom, t2 / denom
    if clip_bary:
        w0, w1, w2 = w0.clamp(min=0.0), w1.clamp(min=0.0), w2.clamp(min=0.0)
        total = (w0 + w1 + w2).clamp(min=1e-5)
        w0, w1, w2 = w0 / total, w1 / total, w2 / total
    z = w0 * z0 + w1 * z1 + w2 * z2
    dist2 = torch.minimum(
        torch.minimum(segment_dist2(px, py, v0, v1), segment_dist2(px, py, v0, v2)), segment_dist2(px, py, v1, v2)
    )
    return torch.stack([w0, w1, w2], -1), z, torch.where(inside, -dist2, dist2), area.abs() <= _EPS


def _pixel_ndc(index: torch.Tensor, size: int, dtype: torch.dtype) -> torch.Tensor:
    """NDC of pixel centres: PyTorch3D puts +X left and +Y up, so column 0 is x = +1 - 1/S and row 0 is y = +1 - 1/S."""
    return 1.0 - (2.0 * index.to(dtype) + 1.0) / size


def _nearest_faces(
    face_verts: torch.Tensor,
    face_to_mesh: torch.Tensor,
    num_meshes: int,
    size: int,
    blur_radius: float,
    faces_per_pixel: int,
    perspective_correct: bool,
    clip_bary: bool,
    order: str = "depth",
) -> torch.Tensor:
    """`pix_to_face` (N, S, S, K): per pixel, K of the faces that cover it or lie within the blur radius.

    order `depth` keeps the K nearest in depth (PyTorch3D's rule, which shading needs); `distance` keeps the K
    nearest to the pixel in the image plane, covering faces first (all a silhouette depends on, so a small K
    loses nothing). Faces are enumerated over their blur-expanded pixel boxes, a chunk of (face, pixel) pairs at a
    time: on a CPU chunks stay under PyTorch's parallel grain so that busy cores do not stall each step.
    """
    device = face_verts.device
    chunk = 30_000 if device.type == "cpu" else 4_000_000
    reach = math.sqrt(max(blur_radius, 0.0))
    lo = face_verts[..., :2].amin(1) - reach  # (F, 2)
    hi = face_verts[..., :2].amax(1) + reach

    def first_last(lo_ndc: torch.Tensor, hi_ndc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # pixel i has ndc 1 - (2i + 1) / S, which decreases with i
        first = torch.ceil(((1.0 - hi_ndc) * size - 1.0) / 2.0).clamp(0, size).long()
        last = torch.floor(((1.0 - lo_ndc) * size - 1.0) / 2.0).clamp(-1, size - 1).long()
        return first, last

    col0, col1 = first_last(lo[:, 0], hi[:, 0])
    row0, row1 = first_last(lo[:, 1], hi[:, 1])
    width = (col1 - col0 + 1).clamp(min=0)
    height = (row1 - row0 + 1).clamp(min=0)
    in_front = face_verts[..., 2].amax(1) >= 0
    count = torch.where(in_front, width * height, torch.zeros_like(width))  # (F,)
    faces = torch.nonzero(count > 0).squeeze(1)
    counts = count[faces]
    ends = torch.cumsum(counts, 0)
    keys, ranks, face_ids = [], [], []
    start = 0
    while start < faces.numel():
        base = int(ends[start - 1]) if start > 0 else 0
        stop = max(int(torch.searchsorted(ends, torch.tensor(base + chunk, device=device), right=True)), start + 1)
        fs, cs = faces[start:stop], counts[start:stop]
        fid = torch.repeat_interleave(fs, cs)  # (M,)
        local = torch.arange(int(cs.sum()), device=device) - torch.repeat_interleave(torch.cumsum(cs, 0) - cs, cs)
        col = col0[fid] + local % width[fid]
        row = row0[fid] + local // width[fid]
        _, z, dist2, degenerate = _pair_geometry(
            face_verts[fid],
            _pixel_ndc(col, size, face_verts.dtype),
            _pixel_ndc(row, size, face_verts.dtype),
            perspective_correct,
            clip_bary,
        )
        keep = (dist2 < blur_radius) & (z >= 0) & ~degenerate
        keys.append((face_to_mesh[fid[keep]] * size + row[keep]) * size + col[keep])
        ranks.append(z[keep] if order == "depth" else dist2[keep])
        face_ids.append(fid[keep])
        start = stop
    pix_to_face = torch.full((num_meshes * size * size * faces_per_pixel,), -1, dtype=torch.int64, device=device)
    if not keys or sum(k.numel() for k in keys) == 0:
        return pix_to_face.view(num_meshes, size, size, faces_per_pixel)
    key, rank_by, fid = torch.cat(keys), torch.cat(ranks), torch.cat(face_ids)
    perm = torch.argsort(rank_by)
    perm = perm[torch.argsort(key[perm], stable=True)]  # by pixel, then by depth (or distance)
    key, fid = key[perm], fid[perm]
    index = torch.arange(key.numel(), device=device)
    group_start = torch.ones_like(key, dtype=torch.bool)
    group_start[1:] = key[1:] != key[:-1]
    rank = index - torch.cummax(torch.where(group_start, index, torch.zeros_like(index)), 0).values
    nearest = rank < faces_per_pixel
    pix_to_face[key[nearest] * faces_per_pixel + rank[nearest]] = fid[nearest]
    return pix_to_face.view(num_meshes, size, size, faces_per_pixel)


def project(meshes: Any, cameras: Any) -> torch.Tensor:
    """Vertices as the rasteriser sees them: NDC x, y and view-space z, (N, V, 3)."""
    verts_view = cameras.get_world_to_view_transform().transform_points(meshes.verts_padded())
    to_ndc = cameras.get_projection_transform().compose(cameras.get_ndc_camera_transform())
    verts_ndc = to_ndc.transform_points(verts_view)
    return torch.cat([verts_ndc[..., :2], verts_view[..., 2:3]], -1)


def rasterize(
    meshes: Any,
    cameras: Any,
    image_size: int,
    blur_radius: float,
    faces_per_pixel: int,
    backend: str = "torch",
    order: str = "depth",
) -> Any:
    """PyTorch3D `Fragments` for a square image: `pix_to_face` (N, S, S, K), `zbuf`, `bary_coords` (..., 3), `dists`.

    backend `torch`: the batched rasteriser of this module (forward and backward are tensor ops, fast on CPUs);
    `pytorch3d`: PyTorch3D's `MeshRasterizer` (its CUDA kernels are the faster choice on a GPU) through
    `rendering.TiledMeshRasterizer`, which on the CPU recomputes the fragments in torch: PyTorch3D's own CPU backward
    for clipped, perspective-correct barycentrics and depth disagrees with finite differences, which would give the
    RGB loss a wrong gradient. Inside faces and the silhouette's distances agree between the backends, and both
    gradients match finite differences (tests/test_pose.py). `order` (torch backend): which K faces a pixel keeps,
    see `_nearest_faces`.
    """
    from pytorch3d.renderer import RasterizationSettings
    from pytorch3d.renderer.mesh.rasterizer import Fragments

    from pipelines.render.rendering import TiledMeshRasterizer

    perspective_correct = bool(cameras.is_perspective())
    clip_bary = blur_radius > 0
    if backend == "pytorch3d":
        settings = RasterizationSettings(
            image_size=image_size,
            blur_radius=blur_radius,
            faces_per_pixel=faces_per_pixel,
            perspective_correct=perspective_correct,
        )
        return TiledMeshRasterizer(cameras=cameras, raster_settings=settings)(meshes)
    if backend != "torch":
        raise ValueError(f"Unknown rasterizer {backend!r}: choose torch or pytorch3d.")
    verts = project(meshes, cameras)  # (N, V, 3)
    verts_packed = verts.reshape(-1, 3)[meshes.verts_padded_to_packed_idx()] if len(meshes) > 1 else verts[0]
    face_verts = verts_packed[meshes.faces_packed()]  # (F, 3, 3)
    n, size, k = len(meshes), int(image_size), int(faces_per_pixel)
    with torch.no_grad():
        pix_to_face = _nearest_faces(
            face_verts.detach(),
            meshes.faces_packed_to_mesh_idx(),
            n,
            size,
            blur_radius,
            k,
            perspective_correct,
            clip_bary,
            order,
        )
    hit = pix_to_face >= 0
    b, y, x, slot = hit.nonzero(as_tuple=True)
    bary, z, dist2, _ = _pair_geometry(
        face_verts[pix_to_face[hit]],
        _pixel_ndc(x, size, face_verts.dtype),
        _pixel_ndc(y, size, face_verts.dtype),
        perspective_correct,
        clip_bary,
    )

    def dense(values: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.full(shape, -1.0, dtype=values.dtype, device=values.device).index_put((b, y, x, slot), values)

    return Fragments(
        pix_to_face=pix_to_face,
        zbuf=dense(z, (n, size, size, k)),
        bary_coords=dense(bary, (n, size, size, k, 3)),
        dists=dense(dist2, (n, size, size, k)),
    )


# ----------------------------------------------------------------------------------------------------------------
# Cameras
# ----------------------------------------------------------------------------------------------------------------


def look_at(camera_position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World-to-view (R (N, 3, 3), T (N, 3)) of cameras at `camera_position` (N, 3) looking at the origin, +Y up."""
    from pytorch3d.renderer import look_at_rotation

    up = torch.tensor([_UP], dtype=camera_position.dtype, device=camera_position.device)
    R = look_at_rotation(camera_position, up=up, device=camera_position.device)  # (N, 3, 3)
    T = -torch.bmm(R.transpose(1, 2), camera_position[:, :, None])[:, :, 0]  # (N, 3)
    return R, T


def make_cameras(camera_position: torch.Tensor) -> Any:
    from pytorch3d.renderer import FoVPerspectiveCameras

    R, T = look_at(camera_position)
    return FoVPerspectiveCameras(R=R, T=T, device=camera_position.device)


def spherical_to_position(dist: float, elev: float, azim: float) -> torch.Tensor:
    """Camera centre (3,) at distance `dist`, elevation and azimuth in degrees (PyTorch3D's convention)."""
    e, a = math.radians(elev), math.radians(azim)
    return torch.tensor([dist * math.cos(e) * math.sin(a), dist * math.sin(e), dist * math.cos(e) * math.cos(a)])


def position_to_spherical(position: torch.Tensor) -> tuple[float, float, float]:
    """(distance, elevation°, azimuth°) of a camera centre (3,)."""
    x, y, z = (float(v) for v in position.reshape(3))
    dist = math.sqrt(x * x + y * y + z * z)
    return dist, math.degrees(math.asin(max(-1.0, min(1.0, y / max(dist, 1e-12))))), math.degrees(math.atan2(x, z))


def rotation_error_deg(R_a: torch.Tensor, R_b: torch.Tensor) -> torch.Tensor:
    """Geodesic angle in degrees between rotations (N, 3, 3): arccos((trace(R_aᵀ R_b) − 1) / 2)."""
    cos = ((R_a.transpose(-1, -2) @ R_b).diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0
    return torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))


def turn(position: torch.Tensor, angle_deg: float, generator: torch.Generator) -> torch.Tensor:
    """`position` (3,) rotated about the origin by `angle_deg` around a random axis perpendicular to it."""
    from pytorch3d.transforms import axis_angle_to_matrix

    pos = position.reshape(3).double()
    axis = torch.randn(3, generator=generator, dtype=torch.float64)
    axis = axis - (axis @ pos) * pos / (pos @ pos)
    axis = axis / axis.norm().clamp(min=1e-12)
    return (axis_angle_to_matrix(axis * math.radians(angle_deg)) @ pos).to(position.dtype)


# ----------------------------------------------------------------------------------------------------------------
# The scene: a mesh normalised to the unit sphere, with lights and soft settings
# ----------------------------------------------------------------------------------------------------------------

# A toy cow made of ellipsoids: (centre, radii, extra subdivision, colour; None = white with black patches).
_TOY_PARTS: tuple[
    tuple[tuple[float, float, float], tuple[float, float, float], int, tuple[float, float, float] | None], ...
] = (
    ((0.0, 0.0, 0.0), (0.9, 0.45, 0.42), 2, None),  # body
    ((0.98, 0.32, 0.0), (0.3, 0.26, 0.24), 1, (0.55, 0.35, 0.2)),  # head
    ((1.22, 0.2, 0.0), (0.14, 0.12, 0.15), 0, (0.95, 0.6, 0.6)),  # snout
    ((0.55, -0.55, 0.24), (0.1, 0.32, 0.1), 0, (0.2, 0.2, 0.2)),  # legs
    ((0.55, -0.55, -0.24), (0.1, 0.32, 0.1), 0, (0.2, 0.2, 0.2)),
    ((-0.6, -0.55, 0.24), (0.1, 0.32, 0.1), 0, (0.2, 0.2, 0.2)),
    ((-0.6, -0.55, -0.24), (0.1, 0.32, 0.1), 0, (0.2, 0.2, 0.2)),
    ((-0.98, 0.12, 0.0), (0.24, 0.05, 0.05), 0, (0.3, 0.25, 0.2)),  # tail
    ((0.92, 0.56, 0.17), (0.05, 0.13, 0.05), 0, (0.5, 0.3, 0.2)),  # ears
    ((0.92, 0.56, -0.17), (0.05, 0.13, 0.05), 0, (0.5, 0.3, 0.2)),
)


def toy_cow(detail: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A procedural cow-like mesh: verts (V, 3), faces (F, 3), vertex colours (V, 3), on the CPU.

    detail 1 has 2,240 faces, 2 has 8,960 (PyTorch3D's cow has 5,856). Facing +X, legs down (−Y).
    """
    from pytorch3d.utils import ico_sphere

    spots = torch.randn(7, 3, generator=torch.Generator().manual_seed(7))
    spots = spots / spots.norm(dim=1, keepdim=True)
    verts, faces, colors, offset = [], [], [], 0
    for centre, radii, level, color in _TOY_PARTS:
        sphere = ico_sphere(level + detail)
        unit = sphere.verts_packed()  # (v, 3)
        if color is None:
            patch = ((unit @ spots.T).amax(1) > 0.85).float()[:, None]
            rgb = patch * torch.tensor([0.08, 0.08, 0.08]) + (1 - patch) * torch.tensor([0.95, 0.93, 0.88])
        else:
            rgb = torch.tensor(color).expand(len(unit), 3)
        verts.append(unit * torch.tensor(radii) + torch.tensor(centre))
        faces.append(sphere.faces_packed() + offset)
        colors.append(rgb)
        offset += len(unit)
    return torch.cat(verts), torch.cat(faces), torch.cat(colors)


def load_mesh(
    files: tuple[str, ...], out_dir: Path, detail: int, device: torch.device, max_upload_mb: float = 200.0
) -> tuple[Any, list[str]]:
    """The mesh to pose, normalised to the unit sphere, with the loader's warnings: an upload (staged under
    `out_dir`/upload and read by `rendering.load_mesh_file_with_notes`, within `max_upload_mb`) or the toy cow."""
    from pytorch3d.renderer import TexturesVertex
    from pytorch3d.structures import Meshes

    if not files:
        verts, faces, colors = toy_cow(detail)
        mesh = Meshes([rendering.normalize_verts(verts)], [faces], textures=TexturesVertex([colors]))
        return mesh.to(device), []
    from pipelines.files import mesh_io

    limits = mesh_io.Limits(max_upload_mb=max_upload_mb)
    main = mesh_io.stage_upload(files, out_dir / "upload", limits)
    mesh, notes = rendering.load_mesh_file_with_notes(main, limits=limits, device=device)
    if float(mesh.verts_packed().abs().amax()) == 0.0:
        raise ValueError("The mesh has no extent: all its vertices lie at one point.")
    return mesh, notes


@dataclass(frozen=True)
class SoftSettings:
    """Soft rasterisation settings at one image size."""

    image_size: int
    sigma: float
    gamma: float
    faces_per_pixel: int
    backend: str

    @property
    def blur_radius(self) -> float:
        return BLUR_FACTOR * self.sigma


class Scene:
    """A mesh with a light and materials, rendered from look-at cameras with soft silhouette or soft Phong."""

    def __init__(self, mesh: Any, device: torch.device) -> None:
        from pytorch3d.renderer import Materials, PointLights

        self.mesh = mesh
        self.device = device
        self.lights = PointLights(device=device, location=((2.0, 2.0, 2.0),))
        self.materials = Materials(device=device, shininess=32.0)

    def fragments(self, camera_position: torch.Tensor, s: SoftSettings, order: str = "depth") -> tuple[Any, Any]:
        cameras = make_cameras(camera_position)
        frags = rasterize(self.mesh, cameras, s.image_size, s.blur_radius, s.faces_per_pixel, s.backend, order)
        return frags, cameras

    def silhouette(self, camera_position: torch.Tensor, s: SoftSettings) -> torch.Tensor:
        """Soft silhouette (S, S) in [0, 1]: 1 − ∏ₖ (1 − sigmoid(−dₖ / σ)) over the faces kept at each pixel.

        The torch rasteriser keeps the faces nearest each pixel (order `distance`) for this, so a small K suffices.
        """
        from pytorch3d.renderer import BlendParams
        from pytorch3d.renderer.blending import sigmoid_alpha_blend

        frags, _ = self.fragments(camera_position, s, order="distance")
        colors = torch.ones((*frags.pix_to_face.shape, 3), device=self.device)
        return sigmoid_alpha_blend(colors, frags, BlendParams(sigma=s.sigma, gamma=s.gamma))[0, ..., 3]

    def phong(self, camera_position: torch.Tensor, s: SoftSettings) -> tuple[torch.Tensor, torch.Tensor]:
        """Soft Phong render: RGB (S, S, 3) on `RGB_BACKGROUND` and its soft silhouette (S, S)."""
        from pytorch3d.renderer import BlendParams, SoftPhongShader
        from pytorch3d.renderer.blending import sigmoid_alpha_blend

        frags, cameras = self.fragments(camera_position, s)
        blend = BlendParams(sigma=s.sigma, gamma=s.gamma, background_color=RGB_BACKGROUND)
        shader = SoftPhongShader(
            device=self.device, cameras=cameras, lights=self.lights, materials=self.materials, blend_params=blend
        )
        rgb = shader(frags, self.mesh, cameras=cameras)[0, ..., :3]
        colors = torch.ones((*frags.pix_to_face.shape, 3), device=self.device)
        return rgb, sigmoid_alpha_blend(colors, frags, blend)[0, ..., 3]


# ----------------------------------------------------------------------------------------------------------------
# Targets
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Target:
    """What the camera should see, per image size: mask (S, S) and RGB (S, S, 3) on `RGB_BACKGROUND`, float in [0, 1]."""

    masks: dict[int, torch.Tensor]
    rgbs: dict[int, torch.Tensor]


def render_target(scene: Scene, camera_position: torch.Tensor, opts: FitOptions) -> Target:
    """The target seen from the hidden pose, by the same soft renderer that is optimised (so the loss is zero at the
    truth), at every size: soft silhouette, and soft Phong RGB when the loss uses colour."""
    masks, rgbs = {}, {}
    with torch.no_grad():
        for s in opts.settings():
            if opts.needs_rgb:
                rgbs[s.image_size], _ = scene.phong(camera_position, s)
            masks[s.image_size] = scene.silhouette(camera_position, s)
    return Target(masks, rgbs)


def read_image_and_mask(image_path: str, mask_path: str) -> tuple[np.ndarray, np.ndarray]:
    """An uploaded target: RGB (H, W, 3) and mask (H, W) as float in [0, 1], checked for size and content.

    The mask is the alpha channel when the mask file has a non-trivial one, else its grey level; > 0.5 is object.
    """
    from PIL import Image, UnidentifiedImageError

    def open_image(path: str, what: str) -> Image.Image:
        if not path or not Path(path).is_file():
            raise ValueError(f"The target {what} file was not found: upload an image for the {what}.")
        too_big = f"above the {MAX_TARGET_PIXELS / 1e6:g}-megapixel limit"
        try:
            img = Image.open(path)  # reads the header only: the size is checked before any pixel is decoded
            if img.width * img.height > MAX_TARGET_PIXELS:
                img.close()
                raise ValueError(f"The target {what} is {img.width}×{img.height} pixels, {too_big}.")
            img.load()
        except Image.DecompressionBombError as err:  # PIL's own bomb check, at open: not an OSError
            raise ValueError(f"The target {what} ({Path(path).name}) has too many pixels, {too_big}.") from err
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"The target {what} ({Path(path).name}) is not an image that can be read.") from err
        return img

    image = open_image(image_path, "image")
    mask = open_image(mask_path, "mask")
    if image.size != mask.size:
        raise ValueError(
            f"The target image is {image.width}×{image.height} pixels but the mask is {mask.width}×{mask.height}: "
            "they must be the same size."
        )
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    alpha = np.asarray(mask.convert("RGBA"), dtype=np.float32)[..., 3] / 255.0 if "A" in mask.getbands() else None
    if alpha is None or alpha.min() > 0.99:
        alpha = np.asarray(mask.convert("L"), dtype=np.float32) / 255.0
    binary = (alpha > 0.5).astype(np.float32)
    if binary.sum() == 0:
        raise ValueError("The mask is empty: no pixel marks the object (object pixels must be white or opaque).")
    return rgb, binary


def _square(arr: np.ndarray, fill: float) -> np.ndarray:
    """Pad (H, W, ...) to a square around its centre (the camera is square)."""
    h, w = arr.shape[:2]
    n = max(h, w)
    out = np.full((n, n, *arr.shape[2:]), fill, dtype=arr.dtype)
    top, left = (n - h) // 2, (n - w) // 2
    out[top : top + h, left : left + w] = arr
    return out


def image_target(rgb: np.ndarray, mask: np.ndarray, sizes: list[int], device: torch.device) -> Target:
    """An uploaded image and mask as a Target: padded to square, resized per size, background set to `RGB_BACKGROUND`."""
    from PIL import Image

    rgb_sq, mask_sq = _square(rgb, 1.0), _square(mask, 0.0)
    masks, rgbs = {}, {}
    for size in sizes:
        m = np.asarray(Image.fromarray((mask_sq * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)) / 255.0
        c = np.asarray(Image.fromarray((rgb_sq * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)) / 255.0
        hard = (m > 0.5).astype(np.float32)
        if hard.sum() == 0:
            raise ValueError(
                f"The mask's object vanishes at {size} px: use a larger mask region or larger image sizes."
            )
        masks[size] = torch.from_numpy(hard).to(device)
        background = np.asarray(RGB_BACKGROUND, dtype=np.float32)
        rgbs[size] = torch.from_numpy((c * hard[..., None] + (1 - hard[..., None]) * background).astype(np.float32)).to(
            device
        )
    return Target(masks, rgbs)


# ----------------------------------------------------------------------------------------------------------------
# The optimisation, shared with tracking
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitOptions:
    """How one camera is optimised (copied from a pipeline Config)."""

    image_sizes: tuple[int, ...]
    faces_per_pixel: int
    sigma: float
    gamma: float
    loss: str
    w_silhouette: float
    w_rgb: float
    lr: float
    steps: int
    patience: int
    min_improvement: float
    stop_iou: float
    backend: str

    def settings(self) -> list[SoftSettings]:
        return [SoftSettings(s, self.sigma, self.gamma, self.faces_per_pixel, self.backend) for s in self.image_sizes]

    @property
    def needs_rgb(self) -> bool:
        return self.loss in ("rgb", "both")


@dataclass
class FitStep:
    """One optimisation step: losses as floats, the camera after the step, and the render that was scored."""

    step: int
    stage: int
    size: int
    losses: dict[str, float]
    position: torch.Tensor  # (3,) camera centre after the step, detached
    alpha: torch.Tensor  # (S, S) soft silhouette before the step, detached
    rgb: torch.Tensor | None  # (S, S, 3) soft Phong render before the step, detached
    stopped: str = ""  # why the run ends after this step ("" while it goes on)


def stage_budgets(steps: int, n: int) -> list[int]:
    """Steps per coarse-to-fine stage: equal shares, the remainder to the last."""
    base = steps // n
    return [base] * (n - 1) + [steps - base * (n - 1)]


def fit_camera(scene: Scene, target: Target, start: torch.Tensor, opts: FitOptions) -> Iterator[FitStep]:
    """Adam on the camera centre (look-at origin, +Y up) from `start` (3,), coarse to fine over `opts.image_sizes`.

    A stage ends when its step budget is spent or, with `patience` > 0, when its loss has not improved by a
    fraction `min_improvement` of the best for `patience` steps; with `stop_iou` > 0 the run ends once the
    silhouette IoU at the finest size reaches it. Yields one FitStep per step (outside no_grad).
    """
    position = start.reshape(1, 3).to(scene.device).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([position], lr=opts.lr)
    settings = opts.settings()
    budgets = stage_budgets(opts.steps, len(settings))
    step = 0
    for stage, (s, budget) in enumerate(zip(settings, budgets, strict=True)):
        mask = target.masks[s.image_size]
        best, since_best = math.inf, 0
        last_stage = stage == len(settings) - 1
        for i in range(budget):
            losses: dict[str, torch.Tensor] = {}
            rgb = None
            if opts.needs_rgb:
                rgb, alpha = scene.phong(position, s)
                losses["rgb"] = ((rgb - target.rgbs[s.image_size]) ** 2).mean()
            else:
                alpha = scene.silhouette(position, s)
            if opts.loss in ("silhouette", "both"):
                losses["silhouette"] = ((alpha - mask) ** 2).mean()
            total = opts.w_silhouette * losses.get("silhouette", 0.0) + opts.w_rgb * losses.get("rgb", 0.0)
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            step += 1
            with torch.no_grad():
                hard = alpha > 0.5
                union = (hard | (mask > 0.5)).sum().clamp(min=1)
                iou = float((hard & (mask > 0.5)).sum() / union)
            value = float(total.detach())
            report = {k: float(v.detach()) for k, v in losses.items()} | {"total": value, "iou": iou}
            if not math.isfinite(value):
                raise ValueError("The loss became NaN or infinite: lower the learning rate or change the start pose.")
            if value < best * (1.0 - opts.min_improvement):
                best, since_best = value, 0
            else:
                since_best += 1
            stopped = ""
            if last_stage and opts.stop_iou > 0 and iou >= opts.stop_iou:
                stopped = f"IoU {iou:.3f} reached {opts.stop_iou:g}"
            elif last_stage and opts.patience > 0 and since_best >= opts.patience:
                stopped = f"no improvement for {opts.patience} steps"
            elif last_stage and i == budget - 1:
                stopped = "step budget spent"
            yield FitStep(
                step,
                stage,
                s.image_size,
                report,
                position.detach()[0].clone(),
                alpha.detach(),
                None if rgb is None else rgb.detach(),
                stopped,
            )
            if stopped:
                return
            if opts.patience > 0 and since_best >= opts.patience:
                break  # plateau: on to the next (finer) stage


# ----------------------------------------------------------------------------------------------------------------
# Pictures and videos
# ----------------------------------------------------------------------------------------------------------------


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((size, size), Image.NEAREST))


def overlay(mask: torch.Tensor, alpha: torch.Tensor) -> np.ndarray:
    """Target mask in red, current silhouette in cyan; where they agree the pixel turns white. uint8 (S, S, 3)."""
    m, a = mask.detach().float().cpu(), alpha.detach().float().cpu()
    rgb = torch.stack([m, a, a], -1) * 0.9 + 0.05
    return to_uint8(rgb)


def panel(target: Target, size: int, alpha: torch.Tensor, rgb: torch.Tensor | None, tile: int = 160) -> np.ndarray:
    """[target | current render | overlay], each `tile` px: the live preview and a video frame. uint8 (tile, 3·tile, 3)."""
    mask = target.masks[size]
    if rgb is not None and size in target.rgbs:
        left, middle = to_uint8(target.rgbs[size]), to_uint8(rgb)
    else:
        left, middle = to_uint8(mask), to_uint8(alpha)
    tiles = [_resize(t, tile) for t in (left, middle, overlay(mask, alpha))]
    return np.concatenate(tiles, axis=1)


def write_videos(
    frames: list[np.ndarray], out_dir: Path, stem: str, formats: tuple[str, ...], fps: int = 12
) -> dict[str, Path]:
    """The frames as `stem`.gif and/or `stem`.mp4 under `out_dir` (rendering.save_gif / save_mp4): {format: path}."""
    writers = {"gif": rendering.save_gif, "mp4": rendering.save_mp4}
    chosen = [fmt for fmt in VIDEO_FORMATS if fmt in formats] if frames else []
    return {fmt: writers[fmt](frames, out_dir / f"{stem}.{fmt}", fps) for fmt in chosen}


# ----------------------------------------------------------------------------------------------------------------
# The pipeline
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoseOptimSettings:
    """The camera-fitting settings shared by pose and pose-track; each Config adds its own step budget."""

    loss: str = "silhouette"
    """silhouette (soft silhouette shader), rgb (soft Phong), or both."""
    w_silhouette: float = 1.0
    """Weight of the silhouette loss: mean squared difference between the soft silhouette and the target mask."""
    w_rgb: float = 1.0
    """Weight of the RGB loss: mean squared difference between the soft Phong render and the target image."""
    image_sizes: tuple[int, ...] = (256,)
    """Render sizes in px, used in turn (coarse to fine) in each fit (each frame, when tracking); each stage gets an
    equal share of the steps."""
    faces_per_pixel: int = 100
    """Faces blended per pixel by the soft rasteriser."""
    sigma: float = 1e-4
    """Soft edge width in squared NDC units (blur radius = log(1/1e-4 − 1)·sigma, where the edge fades to 1e-4)."""
    gamma: float = 1e-4
    """Depth sharpness of the soft Phong blend (smaller: the nearest face dominates)."""
    lr: float = 0.05
    """Adam learning rate on the camera centre (tracking starts a fresh optimiser each frame)."""
    patience: int = 0
    """Stopping rule: end a stage (at the last size: the fit, or the frame when tracking) after this many steps
    without improvement; 0 = off."""
    min_improvement: float = 0.01
    """What counts as an improvement for patience: the loss falls by this fraction of its best value."""
    stop_iou: float = 0.0
    """Stopping rule: end the fit (the frame, when tracking) once the silhouette IoU at the last size reaches this;
    0 = off."""
    rasterizer: str = "auto"
    """torch (the batched soft rasteriser of pipelines/pose.py), pytorch3d (MeshRasterizer; on the CPU with its
    fragments recomputed in torch for correct gradients), or auto (pytorch3d on CUDA, torch elsewhere)."""
    videos: tuple[str, ...] = ("gif", "mp4")
    """Videos to write (of the optimisation, or of the tracked sequence): gif, mp4."""


@dataclass(frozen=True)
class Config(PoseOptimSettings):
    mesh_files: tuple[str, ...] = ()
    """The mesh to pose: an upload (OBJ with MTL and texture, PLY, GLB, ...). Empty: the procedural toy cow."""
    mesh_detail: int = 2
    """Subdivision of the toy cow: 1 has 2,240 faces, 2 has 8,960."""
    max_upload_mb: float = 200.0
    """Largest mesh upload accepted."""
    target_image: str = ""
    """An uploaded target photo (PNG/JPG); needs target_mask. Empty: the mesh rendered at the hidden pose."""
    target_mask: str = ""
    """The object mask of target_image, the same size (white or opaque = object)."""
    true_pose: tuple[float, float, float] = (2.7, 15.0, 50.0)
    """The hidden pose of a rendered target: (distance, elevation°, azimuth°) of the camera, looking at the object."""
    start_pose: tuple[float, ...] = ()
    """The start camera (distance, elevation°, azimuth°). Empty: the hidden pose turned by start_offset_deg (with an
    uploaded image: (2.7, 0, 0))."""
    start_offset_deg: float = 30.0
    """How far the start camera is turned from the hidden pose (about a random axis, seeded), when start_pose is empty."""
    steps: int = 200
    """Most optimisation steps in all."""
    video_frames: int = 60
    """Most frames in the videos (steps are sampled evenly)."""
    device: str = "auto"
    """auto, cpu or cuda[:N]."""
    seed: int = 0
    """Seed of the random axis the start camera is turned about."""
    out_dir: Path | None = None
    """Where videos, the final overlay and pose.json go (the app and CLI set one per run)."""

    @classmethod
    def quick(cls) -> Config:
        # Coarse to fine with the torch rasteriser, whose silhouettes need few faces per pixel (see _nearest_faces).
        return cls(
            mesh_detail=1,
            image_sizes=(64, 128),
            faces_per_pixel=16,
            steps=120,
            patience=12,
            min_improvement=0.02,
            rasterizer="torch",
        )

    @classmethod
    def tiny(cls) -> Config:
        return cls(
            mesh_detail=1,
            image_sizes=(48,),
            faces_per_pixel=16,
            steps=6,
            videos=("gif",),
            video_frames=6,
            rasterizer="torch",
        )


def validate_optim(cfg: PoseOptimSettings, steps: int) -> None:
    """Raise ValueError with one sentence for fitting settings that cannot work (pose and pose-track)."""
    if cfg.loss not in LOSSES:
        raise ValueError(f"Unknown loss {cfg.loss!r}: choose silhouette, rgb or both.")
    if cfg.rasterizer not in RASTERIZERS:
        raise ValueError(f"Unknown rasterizer {cfg.rasterizer!r}: choose auto, torch or pytorch3d.")
    if not cfg.image_sizes or any(not 16 <= s <= 1024 for s in cfg.image_sizes):
        raise ValueError("Image sizes must be between 16 and 1024 px (at least one).")
    if steps < 1 or cfg.faces_per_pixel < 1:
        raise ValueError("Steps and faces per pixel must be at least 1.")
    for size in cfg.image_sizes:
        need = raster_bytes(1, size, size, cfg.faces_per_pixel)
        if need > RASTER_BUDGET_BYTES:
            raise ValueError(
                f"Rendering at {size} px with {cfg.faces_per_pixel} faces per pixel would need about "
                f"{need / 2**20:,.0f} MiB for the rasteriser, over the {RASTER_BUDGET_BYTES / 2**20:,.0f} MiB budget: "
                "lower the image size or the faces per pixel."
            )
    if not (cfg.lr > 0 and cfg.sigma > 0 and cfg.gamma > 0):
        raise ValueError("The learning rate, sigma and gamma must be positive.")
    if cfg.w_silhouette < 0 or cfg.w_rgb < 0:
        raise ValueError("Loss weights must not be negative.")
    if (cfg.loss != "rgb" and cfg.w_silhouette == 0 and (cfg.loss == "silhouette" or cfg.w_rgb == 0)) or (
        cfg.loss == "rgb" and cfg.w_rgb == 0
    ):
        raise ValueError("The chosen loss has weight 0, so nothing would move: give it a positive weight.")
    unknown = sorted(set(cfg.videos) - set(VIDEO_FORMATS))
    if unknown:
        raise ValueError(f"Unknown video format {unknown[0]!r}: choose gif or mp4.")


def validate(cfg: Config) -> None:
    """Raise ValueError with one sentence for settings that cannot work."""
    validate_optim(cfg, cfg.steps)
    if len(cfg.true_pose) != 3 or cfg.true_pose[0] <= 0:
        raise ValueError("The hidden pose must be (distance > 0, elevation°, azimuth°).")
    if cfg.start_pose and (len(cfg.start_pose) != 3 or cfg.start_pose[0] <= 0):
        raise ValueError("The start pose must be (distance > 0, elevation°, azimuth°), or empty.")
    if bool(cfg.target_image) != bool(cfg.target_mask):
        raise ValueError("An uploaded target needs both an image and its mask.")


def backend_for(name: str, device: torch.device) -> str:
    return ("pytorch3d" if device.type == "cuda" else "torch") if name == "auto" else name


def fit_options(cfg: PoseOptimSettings, device: torch.device, steps: int) -> FitOptions:
    """FitOptions from the shared fitting settings and a step budget (a pose run's, or one tracked frame's)."""
    return FitOptions(
        image_sizes=tuple(int(s) for s in cfg.image_sizes),
        faces_per_pixel=cfg.faces_per_pixel,
        sigma=cfg.sigma,
        gamma=cfg.gamma,
        loss=cfg.loss,
        w_silhouette=cfg.w_silhouette,
        w_rgb=cfg.w_rgb,
        lr=cfg.lr,
        steps=steps,
        patience=cfg.patience,
        min_improvement=cfg.min_improvement,
        stop_iou=cfg.stop_iou,
        backend=backend_for(cfg.rasterizer, device),
    )


def pose_dict(position: torch.Tensor) -> dict[str, Any]:
    """A camera centre as JSON: position, (distance, elevation°, azimuth°), and the world-to-view R and T."""
    pos = position.detach().reshape(1, 3).float().cpu()
    R, T = look_at(pos)
    dist, elev, azim = position_to_spherical(pos)
    return {
        "position": [round(float(v), 6) for v in pos[0]],
        "distance": round(dist, 6),
        "elevation_deg": round(elev, 4),
        "azimuth_deg": round(azim, 4),
        "R": [[round(float(v), 6) for v in row] for row in R[0]],
        "T": [round(float(v), 6) for v in T[0]],
    }


def pose_errors(estimate: torch.Tensor, truth: torch.Tensor) -> tuple[float, float]:
    """(rotation error in degrees, camera-centre distance) between two look-at cameras."""
    est, tru = estimate.detach().reshape(1, 3).float().cpu(), truth.detach().reshape(1, 3).float().cpu()
    return float(rotation_error_deg(look_at(est)[0], look_at(tru)[0])[0]), float((est - tru).norm())


def run(cfg: Config) -> Iterator[Event]:
    """Build the scene and target, optimise the camera, stream losses and overlays, write videos and pose.json."""
    validate(cfg)
    if cfg.out_dir is None:
        raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    yield Progress(0, cfg.steps, {}, "preparing the scene")
    device = resolve_device(cfg.device)
    t_start = time.perf_counter()
    mesh, warnings = load_mesh(cfg.mesh_files, out_dir, cfg.mesh_detail, device, cfg.max_upload_mb)
    scene = Scene(mesh, device)
    opts = fit_options(cfg, device, cfg.steps)
    generator = torch.Generator().manual_seed(cfg.seed)
    truth: torch.Tensor | None = None
    if cfg.target_image:
        rgb, mask = read_image_and_mask(cfg.target_image, cfg.target_mask)
        target = image_target(rgb, mask, list(opts.image_sizes), device)
        start = spherical_to_position(*(cfg.start_pose or (2.7, 0.0, 0.0)))
    else:
        truth = spherical_to_position(*cfg.true_pose)
        target = render_target(scene, truth.to(device)[None], opts)
        start = (
            spherical_to_position(*cfg.start_pose) if cfg.start_pose else turn(truth, cfg.start_offset_deg, generator)
        )
    yield Progress(
        0, cfg.steps, {}, f"scene ready: {mesh.faces_packed().shape[0]} faces, rendering at {opts.image_sizes} px"
    )

    frames: list[np.ndarray] = []
    frame_every = max(1, cfg.steps // max(1, cfg.video_frames))
    history: list[dict[str, float]] = []
    last_preview = -math.inf
    fit: FitStep | None = None
    for fit in fit_camera(scene, target, start.to(device), opts):
        losses = dict(fit.losses)
        if truth is not None:
            losses["error_deg"], losses["error_dist"] = pose_errors(fit.position, truth)
        history.append({"step": fit.step, "size": fit.size, **losses})
        picture = None
        if fit.step % frame_every == 0 or fit.stopped or fit.step == 1:
            picture = panel(target, fit.size, fit.alpha, fit.rgb)
            frames.append(picture)
        message = f"{fit.size} px · IoU {losses['iou']:.3f}" + (
            f" · error {losses['error_deg']:.1f}°" if truth is not None else ""
        )
        yield Progress(fit.step, cfg.steps, losses, message)
        now = time.perf_counter()
        if now - last_preview >= 0.5 or fit.stopped:
            last_preview = now
            yield Preview(
                fit.step,
                image=picture if picture is not None else panel(target, fit.size, fit.alpha, fit.rgb),
                caption=message,
            )
    assert fit is not None
    elapsed = time.perf_counter() - t_start

    files = write_videos(frames, out_dir, "pose_optimisation", cfg.videos)
    final_png = out_dir / "final_overlay.png"
    from PIL import Image

    Image.fromarray(frames[-1]).save(final_png)
    files["overlay"] = final_png
    info: dict[str, Any] = {
        "estimated_pose": pose_dict(fit.position),
        "start_pose": pose_dict(start),
        "true_pose": None if truth is None else pose_dict(truth),
        "stopped": fit.stopped,
        "warnings": warnings,
        "history": history,
    }
    pose_json = out_dir / "pose.json"
    pose_json.write_text(json.dumps({k: v for k, v in info.items() if k != "history"}, indent=2))
    files["pose"] = pose_json
    metrics = {
        "steps": float(fit.step),
        "time_s": elapsed,
        "final_loss": fit.losses["total"],
        "final_iou": fit.losses["iou"],
    }
    if truth is not None:
        start_err, start_dist = pose_errors(start, truth)
        err, dist = pose_errors(fit.position, truth)
        metrics.update(start_error_deg=start_err, start_error_dist=start_dist, error_deg=err, error_dist=dist)
    yield Done(metrics=metrics, files=files, info=info)
