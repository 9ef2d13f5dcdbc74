"""Reusable mesh rendering with PyTorch3D: cameras from dist/elev/azim, lights, materials, shaders, meshes.

Conventions are PyTorch3D's (+X left, +Y up, +Z into the screen; row vectors). Images are float in [0, 1],
channels last. Every factory takes `device=` and builds its tensors there.
"""

from __future__ import annotations

import colorsys
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pytorch3d.renderer import (
    AmbientLights,
    BlendParams,
    DirectionalLights,
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    HardFlatShader,
    HardGouraudShader,
    HardPhongShader,
    Materials,
    MeshRasterizer,
    MeshRenderer,
    PointLights,
    RasterizationSettings,
    SoftGouraudShader,
    SoftPhongShader,
    SoftSilhouetteShader,
    TexturesUV,
    TexturesVertex,
    look_at_view_transform,
)
from pytorch3d.renderer.cameras import CamerasBase
from pytorch3d.renderer.mesh.rasterizer import Fragments
from pytorch3d.structures import Meshes

SHADERS = ("hard-phong", "soft-phong", "hard-gouraud", "soft-gouraud", "hard-flat", "soft-silhouette")
LIGHTS = ("point", "directional", "ambient")
CAMERAS = ("perspective", "orthographic")
PROCEDURAL = ("ico-sphere", "torus", "cube")

Color = tuple[float, float, float]
FloatOrSeq = float | Sequence[float] | torch.Tensor

# Where the book's soft silhouette settings come from: a face's probability falls to 1e-4 at the blur radius.
SOFT_BLUR_FACTOR = math.log(1.0 / 1e-4 - 1.0)

_PROCEDURAL_COLORS: dict[str, Color] = {
    "ico-sphere": (0.88, 0.56, 0.32),
    "torus": (0.36, 0.62, 0.88),
    "cube": (0.52, 0.80, 0.46),
}


def is_soft(shader: str) -> bool:
    """Soft shaders blend the K nearest faces per pixel; hard ones keep the nearest."""
    return shader.startswith("soft-")


def parse_color(value: Any, name: str = "colour") -> Color:
    """An RGB colour in [0, 1] from '#rrggbb', '#rgb', 'rgb(r, g, b)', 'rgba(r, g, b, a)' (0-255) or 3 floats."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text.startswith("#"):
            digits = text[1:]
            if len(digits) == 3:
                digits = "".join(c * 2 for c in digits)
            if len(digits) in (6, 8) and re.fullmatch(r"[0-9a-f]+", digits):
                return tuple(int(digits[i : i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]
        match = re.fullmatch(r"rgba?\(([^)]*)\)", text)
        if match:
            parts = [p.strip() for p in match.group(1).split(",")]
            try:
                rgb = [float(p) for p in parts[:3]]
            except ValueError:
                rgb = []
            if len(rgb) == 3 and all(0.0 <= c <= 255.0 for c in rgb):
                return tuple(c / 255.0 for c in rgb)  # type: ignore[return-value]
        raise ValueError(f"The {name} {value!r} is not a colour: use #rrggbb, rgb(r, g, b) or three numbers in [0, 1].")
    try:
        rgb = [float(c) for c in value]
    except (TypeError, ValueError):
        rgb = []
    if len(rgb) != 3 or not all(math.isfinite(c) and 0.0 <= c <= 1.0 for c in rgb):
        raise ValueError(f"The {name} must be three numbers in [0, 1] (or #rrggbb), got {value!r}.")
    return (rgb[0], rgb[1], rgb[2])


def color_hex(rgb: Sequence[float]) -> str:
    """'#rrggbb' for an RGB colour in [0, 1]."""
    return "#" + "".join(f"{round(min(1.0, max(0.0, float(c))) * 255):02x}" for c in rgb)


def _batch(value: FloatOrSeq, n: int, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float32).reshape(-1)
    return (t.expand(n) if t.numel() == 1 else t).to(device)


def make_cameras(
    kind: str,
    dist: FloatOrSeq,
    elev: FloatOrSeq,
    azim: FloatOrSeq,
    *,
    fov: float = 60.0,
    ortho_scale: float = 1.0,
    znear: float = 0.1,
    zfar: float = 100.0,
    batch: int = 1,
    device: torch.device | str = "cpu",
) -> CamerasBase:
    """A batch of FoV-perspective or FoV-orthographic cameras looking at the origin from (dist, elev, azim).

    Angles are degrees; elevation is above the XZ plane, azimuth turns about +Y from +Z. `dist`, `elev`,
    `azim` may each be one value or `batch` values. `ortho_scale` magnifies the orthographic view
    (1 shows the cube [-1, 1]^2 across the shorter image side).
    """
    if kind not in CAMERAS:
        raise ValueError(f"Unknown camera {kind!r}: choose one of {', '.join(CAMERAS)}.")
    device = torch.device(device)
    n = max(batch, *(torch.as_tensor(v).numel() for v in (dist, elev, azim)))
    R, T = look_at_view_transform(
        _batch(dist, n, device), _batch(elev, n, device), _batch(azim, n, device), device=device
    )
    if kind == "perspective":
        return FoVPerspectiveCameras(R=R, T=T, fov=fov, znear=znear, zfar=zfar, device=device)
    scale = torch.full((n, 3), float(ortho_scale), device=device)
    return FoVOrthographicCameras(R=R, T=T, scale_xyz=scale, znear=znear, zfar=zfar, device=device)


def make_lights(
    kind: str,
    xyz: Sequence[float] | torch.Tensor,
    *,
    ambient: Sequence[float] = (0.5, 0.5, 0.5),
    diffuse: Sequence[float] = (0.3, 0.3, 0.3),
    specular: Sequence[float] = (0.2, 0.2, 0.2),
    device: torch.device | str = "cpu",
) -> PointLights | DirectionalLights | AmbientLights:
    """One light: `point` at location `xyz`, `directional` along direction `xyz` (towards the light), or
    `ambient` (only its ambient colour counts). `xyz` may be a tensor that requires grad, shape (3,) or (N, 3)."""
    device = torch.device(device)

    def rgb(c: Sequence[float]) -> torch.Tensor:
        return torch.as_tensor(c, dtype=torch.float32, device=device).reshape(1, 3)

    if kind == "ambient":
        return AmbientLights(ambient_color=rgb(ambient), device=device)
    where = torch.as_tensor(xyz, dtype=torch.float32).to(device).reshape(-1, 3)
    if kind == "point":
        return PointLights(
            location=where,
            ambient_color=rgb(ambient),
            diffuse_color=rgb(diffuse),
            specular_color=rgb(specular),
            device=device,
        )
    if kind == "directional":
        if float(where.detach().norm()) < 1e-8:
            raise ValueError("A directional light needs a non-zero direction.")
        return DirectionalLights(
            direction=where,
            ambient_color=rgb(ambient),
            diffuse_color=rgb(diffuse),
            specular_color=rgb(specular),
            device=device,
        )
    raise ValueError(f"Unknown light {kind!r}: choose one of {', '.join(LIGHTS)}.")


def make_materials(
    *,
    ambient: Sequence[float] = (1.0, 1.0, 1.0),
    diffuse: Sequence[float] = (1.0, 1.0, 1.0),
    specular: Sequence[float] = (1.0, 1.0, 1.0),
    shininess: float = 64.0,
    device: torch.device | str = "cpu",
) -> Materials:
    """Phong material reflectances (k_a, k_d, k_s per channel) and the specular exponent."""
    return Materials(
        ambient_color=(tuple(ambient),),
        diffuse_color=(tuple(diffuse),),
        specular_color=(tuple(specular),),
        shininess=float(shininess),
        device=device,
    )


BYTES_PER_FACE_SLOT = 48
"""The guard's rule of thumb for one face slot of one pixel: N * H * W * K * 48 bytes. The fragments alone take 28
(int64 face index, depth, three barycentrics, distance); bench/render.py measures about 170-250 bytes per slot
for a whole soft Phong render on the CPU, so the budget is a budget for the estimate, not the process."""


def raster_bytes(n: int, height: int, width: int, faces_per_pixel: int) -> int:
    """The memory guards' estimate of the rasteriser's memory: N * H * W * K * 48 bytes."""
    return int(n) * int(height) * int(width) * int(faces_per_pixel) * BYTES_PER_FACE_SLOT


def make_raster_settings(
    image_size: int | tuple[int, int],
    *,
    blur_radius: float = 0.0,
    faces_per_pixel: int = 1,
    bin_size: int | None = None,
    cull_backfaces: bool = False,
    perspective_correct: bool | None = None,
    device: torch.device | str = "cpu",
) -> tuple[RasterizationSettings, list[str]]:
    """Rasterisation settings plus notes. `bin_size` None (or < 0) is PyTorch3D's heuristic, 0 naive;
    `perspective_correct` None follows the camera.

    Binned (coarse-to-fine) rasterisation has no CPU kernel, so on the CPU a positive bin size falls back
    to naive rasterisation and a note says so.
    """
    notes: list[str] = []
    if bin_size is not None and bin_size < 0:
        bin_size = None
    if bin_size and torch.device(device).type == "cpu":
        notes.append(f"Bin size {bin_size} ignored: binned rasterisation needs CUDA, so the CPU rasterises naively.")
        bin_size = 0
    if bin_size:
        side = max(image_size) if isinstance(image_size, tuple) else image_size
        bins = 1 + (side - 1) // bin_size
        if bins >= 22:
            raise ValueError(
                f"Bin size {bin_size} is too small for {side} px: PyTorch3D allows at most 21 bins per side."
            )
    settings = RasterizationSettings(
        image_size=image_size,
        blur_radius=float(blur_radius),
        faces_per_pixel=int(faces_per_pixel),
        bin_size=bin_size,
        cull_backfaces=bool(cull_backfaces),
        perspective_correct=perspective_correct,
    )
    return settings, notes


class TiledMeshRasterizer(MeshRasterizer):
    """A MeshRasterizer for the CPU: the image is cut into square tiles and each tile is rasterised with only the
    faces whose blur-expanded bounding box touches it (all tiles in one call to PyTorch3D's naive kernel), and
    when the vertices need gradients the fragments are recomputed from `pix_to_face` in plain torch.

    PyTorch3D's coarse-to-fine binning, which does the same as the tiles, has no CPU kernel: the naive one tests
    every face at every pixel. Its CPU backward is slow (about 16 us per face slot) and, with clipped
    perspective-correct barycentrics (blur > 0), disagrees with finite differences; the torch twin
    (`fragments_torch`) is differentiated by autograd instead. The fragments equal the library's up to float
    rounding. Other devices, non-square images, explicit bin sizes, frustum culling and faces that cross the
    near clipping plane use MeshRasterizer unchanged.
    """

    def forward(self, meshes_world: Meshes, **kwargs: Any) -> Fragments:
        from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes

        rs = kwargs.get("raster_settings", self.raster_settings)
        size = rs.image_size
        if isinstance(size, (tuple, list)):
            size = size[0] if size[0] == size[1] else 0
        if meshes_world.device.type != "cpu" or not size or rs.bin_size not in (None, 0) or rs.cull_to_frustum:
            return super().forward(meshes_world, **kwargs)
        cameras = kwargs.get("cameras", self.cameras)
        meshes_proj = self.transform(meshes_world, **kwargs)
        clip_bary = rs.clip_barycentric_coords if rs.clip_barycentric_coords is not None else rs.blur_radius > 0.0
        perspective = rs.perspective_correct if rs.perspective_correct is not None else cameras.is_perspective()
        z_clip = rs.z_clip_value
        if z_clip is None and perspective:
            znear = cameras.get_znear()
            znear = znear.min().item() if isinstance(znear, torch.Tensor) else znear
            z_clip = None if znear is None else znear / 2
        face_verts = meshes_proj.verts_packed()[meshes_proj.faces_packed()]  # (F, 3, 3): NDC x, y and view z
        needs_grad = torch.is_grad_enabled() and face_verts.requires_grad
        if needs_grad and z_clip is not None and bool((face_verts[..., 2].detach() < z_clip).any()):
            return super().forward(meshes_world, **kwargs)  # near-plane clipping: the library's own path
        options = dict(
            blur_radius=rs.blur_radius,
            faces_per_pixel=rs.faces_per_pixel,
            perspective_correct=perspective,
            clip_barycentric_coords=clip_bary,
            cull_backfaces=rs.cull_backfaces,
            z_clip_value=z_clip,
        )
        tile = tile_size(int(size)) if int(meshes_world.num_faces_per_mesh().max()) >= MIN_TILED_FACES else 0
        with torch.no_grad():
            if tile:
                frags = rasterize_tiled(meshes_proj, int(size), tile, **options)
            else:
                frags = Fragments(*rasterize_meshes(meshes_proj, image_size=int(size), bin_size=0, **options))
        if not needs_grad:
            return frags
        zbuf, bary, dists = fragments_torch(
            face_verts, frags.pix_to_face, perspective_correct=perspective, clip_barycentric_coords=clip_bary
        )
        return Fragments(frags.pix_to_face, zbuf, bary, dists)


_EPS = 1e-8  # PyTorch3D's kEpsilon in the barycentric helpers


def edge_function(px: torch.Tensor, py: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PyTorch3D's edge function of point p against the edge a -> b (twice the signed area)."""
    return (px - a[..., 0]) * (b[..., 1] - a[..., 1]) - (py - a[..., 1]) * (b[..., 0] - a[..., 0])


def segment_dist2(px: torch.Tensor, py: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distance from p to the segment a-b (2D)."""
    ab = b[..., :2] - a[..., :2]
    l2 = (ab * ab).sum(-1)
    ap_x, ap_y = px - a[..., 0], py - a[..., 1]
    t = ((ab[..., 0] * ap_x + ab[..., 1] * ap_y) / l2.clamp(min=_EPS)).clamp(0, 1)
    dx, dy = a[..., 0] + t * ab[..., 0] - px, a[..., 1] + t * ab[..., 1] - py
    return torch.where(l2 <= _EPS, (px - b[..., 0]) ** 2 + (py - b[..., 1]) ** 2, dx * dx + dy * dy)


def fragments_torch(
    face_verts: torch.Tensor,
    pix_to_face: torch.Tensor,
    *,
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """zbuf (N, H, W, K), bary_coords (N, H, W, K, 3) and signed squared dists (N, H, W, K) of given face slots,
    differentiable in `face_verts` (F, 3, 3; NDC x, y and view z), with PyTorch3D's definitions (square images).

    Empty slots (pix_to_face < 0) get -1, as in PyTorch3D.
    """
    n, h, w, _ = pix_to_face.shape
    hit = pix_to_face >= 0
    v = face_verts[pix_to_face.clamp(min=0)]  # (N, H, W, K, 3, 3)
    v0, v1, v2 = v[..., 0, :], v[..., 1, :], v[..., 2, :]
    dev, dt = face_verts.device, face_verts.dtype
    px = (1 - (2 * torch.arange(w, device=dev, dtype=dt) + 1) / w).reshape(1, 1, w, 1)
    py = (1 - (2 * torch.arange(h, device=dev, dtype=dt) + 1) / h).reshape(1, h, 1, 1)
    area = edge_function(v2[..., 0], v2[..., 1], v0, v1) + _EPS
    b0 = (
        torch.stack([edge_function(px, py, v1, v2), edge_function(px, py, v2, v0), edge_function(px, py, v0, v1)], -1)
        / area[..., None]
    )
    bary = b0
    z = torch.stack([v0[..., 2], v1[..., 2], v2[..., 2]], -1)  # (N, H, W, K, 3)
    if perspective_correct:
        top = torch.stack(
            [
                bary[..., 0] * z[..., 1] * z[..., 2],
                z[..., 0] * bary[..., 1] * z[..., 2],
                z[..., 0] * z[..., 1] * bary[..., 2],
            ],
            -1,
        )
        bary = top / top.sum(-1, keepdim=True).clamp(min=_EPS)
    if clip_barycentric_coords:
        bary = bary.clamp(min=0)
        bary = bary / bary.sum(-1, keepdim=True).clamp(min=_EPS)
    zbuf = (bary * z).sum(-1)
    dist = torch.minimum(
        torch.minimum(segment_dist2(px, py, v0, v1), segment_dist2(px, py, v1, v2)), segment_dist2(px, py, v2, v0)
    )
    inside = (b0 > 0).all(-1)
    dists = torch.where(inside, -dist, dist)
    minus = torch.full_like(zbuf, -1.0)
    return (
        torch.where(hit, zbuf, minus),
        torch.where(hit[..., None], bary, minus[..., None].expand_as(bary)),
        torch.where(hit, dists, minus),
    )


MIN_TILED_FACES = 64  # below this the naive kernel is already fast and tiling only adds overhead


def tile_size(image_size: int) -> int:
    """The tile side for the CPU tiled rasteriser (about 8 x 8 tiles), or 0 where tiling does not pay off."""
    if image_size < 48:
        return 0
    return max(16, 1 << math.ceil(math.log2(image_size / 8)))


def rasterize_tiled(
    meshes_ndc: Meshes,
    image_size: int,
    tile: int,
    *,
    blur_radius: float = 0.0,
    faces_per_pixel: int = 1,
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
    cull_backfaces: bool = False,
    z_clip_value: float | None = None,
) -> Fragments:
    """`rasterize_meshes` for a square image, tile by tile (see TiledMeshRasterizer). `meshes_ndc` holds NDC x, y
    and view depth z, as `MeshRasterizer.transform` returns. Each tile's faces are mapped by x' = a x + b so the
    tile fills NDC [-1, 1]; squared distances scale by a^2, barycentrics and depth do not change."""
    from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes

    S, T = image_size, tile
    nt = math.ceil(S / T)
    n_mesh, device = len(meshes_ndc), meshes_ndc.device
    verts_packed, faces_packed = meshes_ndc.verts_packed(), meshes_ndc.faces_packed()
    face_mesh = meshes_ndc.faces_packed_to_mesh_idx()  # (F,)
    fv = verts_packed.detach()[faces_packed]  # (F, 3, 3)
    margin = math.sqrt(max(blur_radius, 0.0)) + 2.0 / S + 1e-4
    lo, hi = fv[..., :2].amin(1) - margin, fv[..., :2].amax(1) + margin  # (F, 2)
    start = torch.arange(nt, device=device, dtype=fv.dtype) * T  # first pixel of each tile row/column
    centre_hi = 1 - (2 * start + 1) / S  # NDC of the first pixel centre (largest)
    centre_lo = 1 - (2 * (start + T - 1) + 1) / S
    cols = (hi[None, :, 0] >= centre_lo[:, None]) & (lo[None, :, 0] <= centre_hi[:, None])  # (nt, F)
    rows = (hi[None, :, 1] >= centre_lo[:, None]) & (lo[None, :, 1] <= centre_hi[:, None])  # (nt, F)
    overlap = (rows[:, None, :] & cols[None, :, :]).reshape(nt * nt, -1)  # (tiles, F), tile = row * nt + col
    # Faces that reach behind the clipping plane (or are not finite) are clipped by the kernel: keep them everywhere.
    risky = ~torch.isfinite(fv).all(-1).all(-1)
    if z_clip_value is not None:
        risky |= fv[..., 2].amin(1) < z_clip_value
    overlap |= risky[None]
    tile_idx, face_idx = overlap.nonzero(as_tuple=True)
    sub = face_mesh[face_idx] * nt * nt + tile_idx  # (P,) which (mesh, tile) sub-image each pair feeds
    order = torch.argsort(sub, stable=True)
    sub, face_idx = sub[order], face_idx[order]
    n_sub = n_mesh * nt * nt
    counts = torch.bincount(sub, minlength=n_sub)
    shape = (n_mesh, S, S, faces_per_pixel)
    if len(face_idx) == 0:
        empty = torch.full(shape, -1, dtype=torch.int64, device=device)
        zeros = torch.full(shape, -1.0, device=device)
        return Fragments(empty, zeros, torch.full((*shape, 3), -1.0, device=device), zeros.clone())
    first = torch.cumsum(counts, 0) - counts
    pos = torch.arange(len(sub), device=device) - first[sub]
    local_faces = faces_packed[face_idx] - meshes_ndc.mesh_to_verts_packed_first_idx()[face_mesh[face_idx]][:, None]
    faces_tiled = torch.full((n_sub, int(counts.max()), 3), -1, dtype=torch.int64, device=device)
    faces_tiled[sub, pos] = local_faces

    a = S / T
    offset = 1 - a + 2 * start / T  # (nt,)
    off_xy = torch.stack([offset[None, :].expand(nt, nt), offset[:, None].expand(nt, nt)], -1).reshape(1, nt * nt, 1, 2)
    verts = meshes_ndc.verts_padded()  # (N, V, 3)
    xy = verts[:, None, :, :2] * a + off_xy  # (N, tiles, V, 2)
    z = verts[:, None, :, 2:].expand(-1, nt * nt, -1, -1)
    verts_tiled = torch.cat([xy, z], -1).reshape(n_sub, verts.shape[1], 3)
    p2f, zbuf, bary, dists = rasterize_meshes(
        Meshes(verts=verts_tiled, faces=faces_tiled),
        image_size=T,
        blur_radius=blur_radius * a * a,
        faces_per_pixel=faces_per_pixel,
        bin_size=0,
        perspective_correct=perspective_correct,
        clip_barycentric_coords=clip_barycentric_coords,
        cull_backfaces=cull_backfaces,
        z_clip_value=z_clip_value,
    )

    def stitch(x: torch.Tensor) -> torch.Tensor:
        tail = x.shape[3:]
        x = x.reshape(n_mesh, nt, nt, T, T, *tail).transpose(2, 3).reshape(n_mesh, nt * T, nt * T, *tail)
        return x[:, :S, :S]

    hit = p2f >= 0
    p2f = torch.where(hit, face_idx[p2f.clamp(min=0)], p2f)
    dists = torch.where(hit, dists / (a * a), dists)
    return Fragments(stitch(p2f), stitch(zbuf), stitch(bary), stitch(dists))


def make_shader(
    name: str,
    *,
    cameras: CamerasBase,
    lights: Any,
    materials: Materials,
    blend_params: BlendParams,
    device: torch.device | str = "cpu",
) -> torch.nn.Module:
    """The PyTorch3D shader for one of `SHADERS`."""
    device = torch.device(device)
    if name == "soft-silhouette":
        return SoftSilhouetteShader(blend_params=blend_params)
    classes = {
        "hard-phong": HardPhongShader,
        "soft-phong": SoftPhongShader,
        "hard-gouraud": HardGouraudShader,
        "soft-gouraud": SoftGouraudShader,
        "hard-flat": HardFlatShader,
    }
    if name not in classes:
        raise ValueError(f"Unknown shader {name!r}: choose one of {', '.join(SHADERS)}.")
    return classes[name](device=device, cameras=cameras, lights=lights, materials=materials, blend_params=blend_params)


def make_renderer(cameras: CamerasBase, raster: RasterizationSettings, shader: torch.nn.Module) -> MeshRenderer:
    """A MeshRenderer with the tiled rasteriser (faster on the CPU, the library's everywhere else)."""
    return MeshRenderer(rasterizer=TiledMeshRasterizer(cameras=cameras, raster_settings=raster), shader=shader)


# --- meshes -------------------------------------------------------------------------------------------


def _cube() -> tuple[torch.Tensor, torch.Tensor]:
    corners = torch.tensor([[x, y, z] for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)]) * 0.6
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = torch.tensor([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))], dtype=torch.int64)
    return corners, orient_outward(corners, faces)


def orient_outward(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Flip faces whose normal points towards the centroid (for convex, star-shaped procedural meshes)."""
    tri = verts[faces]  # (F, 3, 3)
    normal = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=1)
    outward = ((tri.mean(1) - verts.mean(0)) * normal).sum(1) >= 0
    return torch.where(outward[:, None], faces, faces[:, [0, 2, 1]])


def torus_with_faces(num_faces: int, device: torch.device | str = "cpu") -> Meshes:
    """A torus with about `num_faces` triangles (2 * sides * rings), vertex-coloured; for benchmarks."""
    from pytorch3d.utils import torus

    sides = max(3, round(math.sqrt(num_faces / 4)))
    rings = max(3, round(num_faces / 2 / sides))
    mesh = torus(r=0.3, R=0.7, sides=sides, rings=rings, device=torch.device(device))
    return with_vertex_colors(mesh, _PROCEDURAL_COLORS["torus"])


def procedural_mesh(name: str, *, level: int = 3, device: torch.device | str = "cpu") -> Meshes:
    """One of `PROCEDURAL`, vertex-coloured, fitting in the unit sphere. `level` sets the ico-sphere's detail."""
    device = torch.device(device)
    if name == "ico-sphere":
        from pytorch3d.utils import ico_sphere

        mesh = ico_sphere(level, device)
    elif name == "torus":
        from pytorch3d.utils import torus

        mesh = torus(r=0.3, R=0.7, sides=24, rings=48, device=device)
    elif name == "cube":
        verts, faces = _cube()
        mesh = Meshes([verts.to(device)], [faces.to(device)])
    else:
        raise ValueError(f"Unknown procedural mesh {name!r}: choose one of {', '.join(PROCEDURAL)}.")
    return with_vertex_colors(mesh, _PROCEDURAL_COLORS[name])


def sample_surface(
    verts: torch.Tensor, faces: torch.Tensor, n: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` points (n, 3) uniformly on a mesh's surface and their face normals (n, 3); differentiable in `verts`.

    Faces are drawn by area and barycentric weights by the square-root trick, from `generator` on the CPU (so the
    samples do not depend on the device); the weights are then moved to `verts.device`.
    """
    face_verts = verts[faces]  # (F, 3, 3)
    cross = torch.cross(face_verts[:, 1] - face_verts[:, 0], face_verts[:, 2] - face_verts[:, 0], dim=1)
    areas = cross.norm(dim=1).detach()  # (F,) twice the areas
    if not bool(areas.sum() > 0):
        raise ValueError("The mesh has no surface area (all its faces are degenerate), so no points can be sampled.")
    idx = torch.multinomial(areas.cpu().double(), n, replacement=True, generator=generator).to(verts.device)
    u, v = torch.rand(2, n, 1, generator=generator, dtype=verts.dtype).to(verts.device)
    su = u.sqrt()
    w0, w1, w2 = 1 - su, su * (1 - v), su * v  # (n, 1) each
    fv = face_verts[idx]
    points = w0 * fv[:, 0] + w1 * fv[:, 1] + w2 * fv[:, 2]
    normals = torch.nn.functional.normalize(cross[idx], dim=1)
    return points, normals


def with_vertex_colors(mesh: Meshes, color: Sequence[float] | None = None) -> Meshes:
    """The mesh with a TexturesVertex: a uniform `color`, shaded gently by height so texture is visible."""
    base = torch.tensor(color if color is not None else (0.75, 0.75, 0.78), dtype=torch.float32, device=mesh.device)
    feats = []
    for verts in mesh.verts_list():
        if len(verts):
            lo, hi = verts[:, 1].min(), verts[:, 1].max()
            t = (verts[:, 1:2] - lo) / (hi - lo).clamp(min=1e-6)  # (V, 1) height in [0, 1]
        else:
            t = verts[:, 1:2]
        feats.append((base * (0.75 + 0.25 * t)).clamp(0, 1))  # (V, 3)
    return Meshes(mesh.verts_list(), mesh.faces_list(), textures=TexturesVertex(feats))


def normalize_verts(verts: torch.Tensor) -> torch.Tensor:
    """Centre the bounding box at the origin and scale to fit the unit sphere. (V, 3) -> (V, 3)."""
    if verts.numel() == 0:
        return verts
    center = (verts.min(0).values + verts.max(0).values) / 2
    radius = (verts - center).norm(dim=1).max().clamp(min=1e-8)
    return (verts - center) / radius


def mesh_from_arrays(
    verts: Any,
    faces: Any,
    *,
    colors: Any = None,
    verts_uvs: Any = None,
    faces_uvs: Any = None,
    texture: Any = None,
    normalize: bool = True,
    device: torch.device | str = "cpu",
) -> Meshes:
    """A one-mesh `Meshes` from arrays: verts (V, 3), faces (F, 3), optional colors (V, 3|4) in [0, 1] or
    0-255, or a UV texture: verts_uvs (T, 2), faces_uvs (F, 3) (default: faces) and an (H, W, 3) image or PIL image.
    """
    device = torch.device(device)
    v = torch.as_tensor(np.asarray(verts, dtype=np.float32), device=device).reshape(-1, 3)
    f = torch.as_tensor(np.asarray(faces, dtype=np.int64), device=device).reshape(-1, 3)
    if len(f) == 0:
        raise ValueError(
            "This file has no faces (it is a point cloud): rendering it needs a mesh, so upload one with faces."
        )
    if int(f.min()) < 0 or int(f.max()) >= len(v):
        raise ValueError("The mesh's faces index vertices that do not exist.")
    if not torch.isfinite(v).all():
        raise ValueError("The mesh has NaN or infinite vertex positions.")
    if normalize:
        v = normalize_verts(v)
    if texture is not None and verts_uvs is not None:
        img = np.asarray(texture.convert("RGB") if hasattr(texture, "convert") else texture)
        img = img.astype(np.float32) / (255.0 if img.dtype == np.uint8 else 1.0)
        maps = torch.as_tensor(img[..., :3], device=device)[None]  # (1, H, W, 3)
        uv = torch.as_tensor(np.asarray(verts_uvs, dtype=np.float32), device=device).reshape(1, -1, 2)
        fuv = f if faces_uvs is None else torch.as_tensor(np.asarray(faces_uvs, dtype=np.int64), device=device)
        return Meshes([v], [f], textures=TexturesUV(maps=maps, faces_uvs=fuv.reshape(1, -1, 3), verts_uvs=uv))
    if colors is not None:
        c = np.asarray(colors)
        c = c.astype(np.float32) / (255.0 if c.dtype == np.uint8 or c.max() > 1.0 else 1.0)
        feats = torch.as_tensor(c[:, :3], device=device).clamp(0, 1)
        if len(feats) == len(v):
            return Meshes([v], [f], textures=TexturesVertex([feats]))
    return with_vertex_colors(Meshes([v], [f]))


def load_mesh_file(path: str | Path, *, limits: Any = None, device: torch.device | str = "cpu") -> Meshes:
    """A staged 3D file as a normalised one-mesh `Meshes` (see `load_mesh_file_with_notes`)."""
    return load_mesh_file_with_notes(path, limits=limits, device=device)[0]


def load_mesh_file_with_notes(
    path: str | Path, *, limits: Any = None, device: torch.device | str = "cpu"
) -> tuple[Meshes, list[str]]:
    """A staged 3D file as a normalised one-mesh `Meshes` plus the loader's warnings, read through
    `mesh_io.load_asset` (size limits, safe references).

    UVs with a texture image become a TexturesUV (faces without UVs sample the first UV); vertex colours, or
    face colours averaged per vertex, a TexturesVertex; otherwise a neutral vertex colour.
    """
    from pipelines.files import mesh_io

    asset = mesh_io.load_asset(Path(path), limits if limits is not None else mesh_io.Limits())
    notes = [str(w) for w in asset.warnings]
    texture, uvs, face_uvs = asset.texture, asset.uvs, asset.face_uvs
    if texture is not None and uvs is not None and len(uvs):
        if face_uvs is None and len(uvs) != len(asset.verts):
            texture = None
        elif face_uvs is not None and (face_uvs < 0).any():
            face_uvs = np.where(face_uvs < 0, 0, face_uvs)
            notes.append("Some faces have no texture coordinates; they take the colour at the first UV.")
    else:
        texture = None
    colors, face_colors = asset.colors, asset.face_colors
    if (
        face_colors is None
        and asset.face_materials is not None
        and asset.materials
        and len(asset.face_materials) == len(asset.faces)
    ):
        kd = np.array(
            [m.get("Kd") or (0.75, 0.75, 0.78) for m in asset.materials] + [(0.75, 0.75, 0.78)], dtype=np.float32
        )
        face_colors = kd[
            np.where(asset.face_materials < 0, len(kd) - 1, asset.face_materials)
        ]  # (F, 3) diffuse colours
    if colors is None and face_colors is not None and len(face_colors) == len(asset.faces):
        acc = np.zeros((len(asset.verts), 3), np.float64)
        count = np.zeros(len(asset.verts), np.float64)
        for corner in range(3):
            np.add.at(acc, asset.faces[:, corner], face_colors[:, :3])
            np.add.at(count, asset.faces[:, corner], 1.0)
        colors = (acc / np.maximum(count, 1.0)[:, None]).astype(np.float32)
    mesh = mesh_from_arrays(
        asset.verts,
        asset.faces,
        colors=colors,
        verts_uvs=uvs if texture is not None else None,
        faces_uvs=face_uvs if texture is not None else None,
        texture=texture,
        device=device,
    )
    return mesh, notes


def texture_to_vertex_colors(mesh: Meshes) -> Meshes:
    """The mesh with its texture resampled per vertex (TexturesVertex), as Gouraud shading requires.

    A UV texture is sampled at each face corner's UV and averaged over the corners that share a vertex.
    """
    tex = mesh.textures
    if tex is None or isinstance(tex, TexturesVertex):
        return mesh if tex is not None else with_vertex_colors(mesh)
    if not isinstance(tex, TexturesUV):
        raise ValueError(f"Cannot convert {type(tex).__name__} textures to vertex colours.")
    feats = []
    for i, (verts, faces) in enumerate(zip(mesh.verts_list(), mesh.faces_list())):
        image = tex.maps_padded()[i]  # (H, W, 3)
        uv = tex.verts_uvs_list()[i][tex.faces_uvs_list()[i]]  # (F, 3, 2)
        grid = (uv.reshape(1, -1, 1, 2) * 2 - 1) * torch.tensor([1.0, -1.0], device=uv.device)  # v up -> rows down
        samples = torch.nn.functional.grid_sample(
            image.permute(2, 0, 1)[None], grid, mode="bilinear", padding_mode="border", align_corners=False
        )  # (1, 3, F*3, 1)
        corner_rgb = samples[0, :, :, 0].T  # (F*3, 3)
        acc = torch.zeros(len(verts), 3, device=verts.device).index_add_(0, faces.reshape(-1), corner_rgb)
        count = torch.zeros(len(verts), device=verts.device).index_add_(
            0, faces.reshape(-1), torch.ones(len(corner_rgb), device=verts.device)
        )
        feats.append(acc / count.clamp(min=1)[:, None])
    return Meshes(mesh.verts_list(), mesh.faces_list(), textures=TexturesVertex(feats))


def batch_report(meshes: Meshes) -> dict[str, Any]:
    """How a heterogeneous batch is held as a list, padded and packed tensors, with the index maps."""
    nv = meshes.num_verts_per_mesh().tolist()
    nf = meshes.num_faces_per_mesh().tolist()
    return {
        "meshes": len(meshes),
        "list": {"verts": [[n, 3] for n in nv], "faces": [[n, 3] for n in nf]},
        "padded": {
            "verts_padded": list(meshes.verts_padded().shape),
            "faces_padded": list(meshes.faces_padded().shape),
            "padding_rows_per_mesh": [max(nv) - n for n in nv],
        },
        "packed": {
            "verts_packed": list(meshes.verts_packed().shape),
            "faces_packed": list(meshes.faces_packed().shape),
            "mesh_to_verts_packed_first_idx": meshes.mesh_to_verts_packed_first_idx().tolist(),
            "mesh_to_faces_packed_first_idx": meshes.mesh_to_faces_packed_first_idx().tolist(),
            "verts_packed_to_mesh_idx (first, last)": [
                [int(i) for i in meshes.verts_packed_to_mesh_idx()[[0, -1]].tolist()]
            ],
        },
    }


# --- pictures of buffers --------------------------------------------------------------------------------

_VIRIDIS = torch.tensor(
    [[0.267, 0.005, 0.329], [0.283, 0.141, 0.458], [0.254, 0.265, 0.530], [0.207, 0.372, 0.553], [0.164, 0.471, 0.558],
     [0.128, 0.567, 0.551], [0.135, 0.659, 0.518], [0.267, 0.749, 0.441], [0.478, 0.821, 0.318], [0.741, 0.873, 0.150],
     [0.993, 0.906, 0.144]]
)  # fmt: skip


def colormap(values: torch.Tensor) -> torch.Tensor:
    """Viridis for values in [0, 1]: (...,) -> (..., 3)."""
    lut = _VIRIDIS.to(values.device)
    x = values.clamp(0, 1) * (len(lut) - 1)
    lo = x.floor().long().clamp(max=len(lut) - 2)
    frac = (x - lo)[..., None]
    return lut[lo] * (1 - frac) + lut[lo + 1] * frac


def id_colors(ids: torch.Tensor, background: Sequence[float] = (0.0, 0.0, 0.0)) -> torch.Tensor:
    """A distinct colour per integer id (golden-ratio hues), `background` where id < 0: (...,) -> (..., 3)."""
    uniq, inverse = np.unique(ids.reshape(-1).cpu().numpy(), return_inverse=True)  # colour each id once
    hues = np.mod(np.maximum(uniq, 0) * 0.6180339887, 1.0)
    palette = np.array([colorsys.hsv_to_rgb(h, 0.65, 0.95) for h in hues], dtype=np.float32).reshape(-1, 3)
    palette[uniq < 0] = np.asarray(background, dtype=np.float32)
    return torch.as_tensor(palette[inverse.reshape(-1)], device=ids.device).reshape(*ids.shape, 3)


def image_grid(images: Sequence[torch.Tensor], cols: int, pad: int = 2, fill: float = 1.0) -> torch.Tensor:
    """Tile equal-sized (H, W, 3) images in rows of `cols`, with `pad` pixels of `fill` between them."""
    if not images:
        raise ValueError("image_grid needs at least one image.")
    h, w, c = images[0].shape
    rows = math.ceil(len(images) / cols)
    out = torch.full(
        (rows * (h + pad) - pad, cols * (w + pad) - pad, c), fill, dtype=images[0].dtype, device=images[0].device
    )
    for i, img in enumerate(images):
        r, col = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, col * (w + pad) : col * (w + pad) + w] = img
    return out


# --- animations -------------------------------------------------------------------------------------------


def save_gif(frames: Sequence[np.ndarray], path: Path, fps: float) -> Path:
    """Write uint8 (H, W, 3) frames as a looping GIF."""
    from PIL import Image

    if not frames:
        raise ValueError("No frames to write.")
    images = [Image.fromarray(f) for f in frames]
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=max(20, round(1000 / fps)), loop=0, optimize=False
    )
    return Path(path)


def save_mp4(frames: Sequence[np.ndarray], path: Path, fps: float) -> Path:
    """Write uint8 (H, W, 3) frames as an H.264 MP4 (yuv420p, so browsers play it; odd sizes are padded)."""
    import imageio.v2 as imageio

    if not frames:
        raise ValueError("No frames to write.")
    writer = imageio.get_writer(
        path, fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=1, ffmpeg_log_level="error"
    )
    try:
        for frame in frames:
            h, w = frame.shape[:2]
            writer.append_data(np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge"))
    finally:
        writer.close()
    return Path(path)
