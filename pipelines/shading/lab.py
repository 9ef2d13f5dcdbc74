"""The Shading lab's maths: renders, G-buffers, the ambient/diffuse/specular split, A/B comparisons and turntables.

Everything takes a `Meshes` and a `RenderSettings` and returns float images in [0, 1], (N, H, W, 3) unless said.
The settings and the memory guard live in `settings`, the meshes in `meshes`, the PyTorch3D scene in `scene`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from pytorch3d.ops import interpolate_face_attributes
from pytorch3d.renderer import BlendParams
from pytorch3d.renderer.blending import sigmoid_alpha_blend, softmax_rgb_blend
from pytorch3d.renderer.mesh.rasterizer import Fragments
from pytorch3d.structures import Meshes

from pipelines.render.factories import is_soft, raster_bytes
from pipelines.render.images import colormap, id_colors
from pipelines.shading.scene import Scene, build_scene, prepare_mesh, rasterize
from pipelines.shading.settings import (
    RenderSettings,
)


@dataclass
class RenderResult:
    """A render: raw `rgba` (N, H, W, 4) as the shader made it (not clamped), its fragments and notes."""

    rgba: torch.Tensor
    fragments: Fragments
    settings: RenderSettings
    notes: list[str]
    seconds: float

    @property
    def image(self) -> torch.Tensor:
        """(N, H, W, 3) in [0, 1]; the silhouette shader's alpha as grey."""
        if self.settings.shader == "soft-silhouette":
            return self.rgba[..., 3:4].expand(*self.rgba.shape[:-1], 3).clamp(0, 1)
        return self.rgba[..., :3].clamp(0, 1)

    @property
    def alpha(self) -> torch.Tensor:
        return self.rgba[..., 3]

    def info(self) -> dict[str, Any]:
        n, h, w, k = self.fragments.pix_to_face.shape
        return {
            "shader": self.settings.shader,
            "image_size": [h, w],
            "faces_per_pixel": k,
            "render_seconds": round(self.seconds, 4),
            "memory_estimate_mib": round(raster_bytes(n, h, w, k) / 2**20, 2),
            "memory_budget_mib": self.settings.memory_budget_mb,
            "covered_pixels": int((self.fragments.pix_to_face[..., 0] >= 0).sum()),
            "notes": list(self.notes),
        }


def render(
    mesh: Meshes,
    settings: RenderSettings,
    *,
    device: torch.device | str = "cpu",
    light_xyz: torch.Tensor | None = None,
    azim: Sequence[float] | None = None,
    elev: Sequence[float] | None = None,
    tiled: bool = True,
) -> RenderResult:
    """Render every mesh of the batch with the settings (one camera each when `azim`/`elev` are given).

    `tiled=False` rasterises with PyTorch3D's own MeshRasterizer (the benchmark compares both)."""
    device = torch.device(device)
    start = time.perf_counter()
    mesh = mesh.to(device)
    scene = build_scene(settings, n=len(mesh), device=device, light_xyz=light_xyz, azim=azim, elev=elev)
    mesh = prepare_mesh(mesh, scene.settings, scene.notes)
    fragments = rasterize(mesh, scene, tiled=tiled)
    rgba = scene.shader(fragments, mesh)  # (N, H, W, 4)
    return RenderResult(rgba, fragments, scene.settings, scene.notes, time.perf_counter() - start)


# --- buffers and the shading terms ----------------------------------------------------------------------------


def _blend(colors: torch.Tensor, fragments: Fragments, scene: Scene, background: Sequence[float]) -> torch.Tensor:
    """Blend per-face-slot colours (N, H, W, K, 3) to (N, H, W, 3) as the scene's shader does.

    Both blends are linear in `colors` for a fixed background, so blending each lighting term with a black
    background and the background alone with zero colours splits the final image into exact summands.
    """
    if is_soft(scene.settings.shader):
        params = BlendParams(sigma=scene.blend.sigma, gamma=scene.blend.gamma, background_color=tuple(background))
        znear = getattr(scene.cameras, "znear", 1.0)
        zfar = getattr(scene.cameras, "zfar", 100.0)
        return softmax_rgb_blend(colors, fragments, params, znear=znear, zfar=zfar)[..., :3]
    covered = (fragments.pix_to_face[..., 0] >= 0)[..., None]  # (N, H, W, 1)
    bg = torch.as_tensor(background, dtype=colors.dtype, device=colors.device)
    return torch.where(covered, colors[..., 0, :], bg)


def _light_terms(
    points: torch.Tensor, normals: torch.Tensor, scene: Scene
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """k_a L_a, k_d L_d max(0, n.l) and k_s L_s max(0, r.v)^alpha at points (..., 3) with normals (..., 3)."""
    lights, materials = scene.lights, scene.materials
    ambient = materials.ambient_color * lights.ambient_color  # (1, 3)
    diffuse = materials.diffuse_color * lights.diffuse(normals=normals, points=points)
    specular = materials.specular_color * lights.specular(
        normals=normals, points=points, camera_position=scene.cameras.get_camera_center(), shininess=materials.shininess
    )
    ambient = ambient.reshape((1,) * (points.dim() - 1) + (3,)).expand_as(points)
    return ambient, diffuse, specular


def shading_terms(mesh: Meshes, settings: RenderSettings, *, device: torch.device | str = "cpu") -> dict[str, Any]:
    """The final image split into ambient, diffuse, specular and background images, (H, W, 3) each, unclamped.

    Computed independently of PyTorch3D's shaders (same model: Phong per pixel, Gouraud per vertex, flat per
    face), so `ambient + diffuse + specular + background` equals the shader's output; `final` is that output.
    Only for one mesh and a lit shader (not the silhouette).
    """
    device = torch.device(device)
    if settings.shader == "soft-silhouette":
        raise ValueError("The silhouette shader has no lighting terms: pick a Phong, Gouraud or flat shader.")
    if len(mesh) != 1:
        raise ValueError("shading_terms takes one mesh.")
    mesh = mesh.to(device)
    scene = build_scene(settings, device=device)
    mesh = prepare_mesh(mesh, scene.settings, scene.notes)
    fragments = rasterize(mesh, scene)
    verts, faces = mesh.verts_packed(), mesh.faces_packed()  # (V, 3), (F, 3)
    model = scene.settings.shader.split("-")[1]
    if model == "gouraud":
        colors = mesh.textures.verts_features_packed()  # (V, 3)
        a, d, s = _light_terms(verts, mesh.verts_normals_packed(), scene)  # (V, 3) each
        per_vertex = {"ambient": a * colors, "diffuse": d * colors, "specular": s}
        slots = {
            k: interpolate_face_attributes(fragments.pix_to_face, fragments.bary_coords, v[faces])
            for k, v in per_vertex.items()
        }
    else:
        texels = mesh.sample_textures(fragments)  # (N, H, W, K, 3)
        if model == "phong":
            points = interpolate_face_attributes(fragments.pix_to_face, fragments.bary_coords, verts[faces])
            normals = interpolate_face_attributes(
                fragments.pix_to_face, fragments.bary_coords, mesh.verts_normals_packed()[faces]
            )
        else:  # flat: the face's centre and normal for all its pixels
            idx = fragments.pix_to_face.clamp(min=0)
            points = verts[faces].mean(1)[idx]  # (N, H, W, K, 3)
            normals = mesh.faces_normals_packed()[idx]
            empty = (fragments.pix_to_face < 0)[..., None]
            points, normals = points.masked_fill(empty, 0.0), normals.masked_fill(empty, 0.0)
        a, d, s = _light_terms(points, normals, scene)
        slots = {"ambient": a * texels, "diffuse": d * texels, "specular": s}
    black = (0.0, 0.0, 0.0)
    terms = {k: _blend(v, fragments, scene, black)[0] for k, v in slots.items()}
    terms["background"] = _blend(torch.zeros_like(slots["ambient"]), fragments, scene, scene.settings.background)[0]
    terms["sum"] = terms["ambient"] + terms["diffuse"] + terms["specular"] + terms["background"]
    terms["final"] = scene.shader(fragments, mesh)[0, ..., :3]
    return {"terms": terms, "settings": scene.settings, "notes": scene.notes}


def buffers(mesh: Meshes, settings: RenderSettings, *, device: torch.device | str = "cpu") -> dict[str, Any]:
    """The rasteriser's buffers for one mesh as pictures (H, W, 3) plus the raw fragments and a summary.

    depth: viridis, near is bright; pix_to_face: a colour per face; barycentrics as RGB; world normals as
    (n + 1) / 2; silhouette alpha from the sigmoid blend with the current sigma, blur and K (grey).
    """
    device = torch.device(device)
    mesh = mesh.to(device)
    scene = build_scene(settings, device=device)
    mesh = prepare_mesh(mesh, scene.settings, scene.notes)
    frags = rasterize(mesh, scene)
    p2f = frags.pix_to_face[0, ..., 0]  # (H, W)
    covered = (p2f >= 0)[..., None]  # (H, W, 1)
    z = frags.zbuf[0, ..., 0]
    if bool(covered.any()):
        zmin, zmax = float(z[p2f >= 0].min()), float(z[p2f >= 0].max())
    else:
        zmin, zmax = 0.0, 1.0
    near = 1.0 - (z - zmin) / max(zmax - zmin, 1e-8)
    faces = mesh.faces_packed()
    normals = interpolate_face_attributes(frags.pix_to_face, frags.bary_coords, mesh.verts_normals_packed()[faces])[
        0, ..., 0, :
    ]
    normals = torch.nn.functional.normalize(normals, dim=-1)
    ones = torch.ones_like(frags.bary_coords)
    alpha = sigmoid_alpha_blend(ones, frags, scene.blend)[0, ..., 3]  # (H, W)
    zero = torch.zeros(3, device=device)
    images = {
        "depth": torch.where(covered, colormap(near), zero),
        "pix_to_face": id_colors(p2f),
        "barycentric": torch.where(covered, frags.bary_coords[0, ..., 0, :].clamp(0, 1), zero),
        "normals": torch.where(covered, (normals + 1) / 2, zero),
        "silhouette": alpha[..., None].expand(*alpha.shape, 3),
    }
    summary = {
        "covered_pixels": int(covered.sum()),
        "faces_seen": int(torch.unique(p2f[p2f >= 0]).numel()),
        "depth_range": [round(zmin, 4), round(zmax, 4)],
        "faces_per_pixel": scene.settings.faces_per_pixel,
        "pixels_with_k_faces": _k_histogram(frags.pix_to_face[0]),
        "notes": scene.notes,
    }
    return {"images": images, "fragments": frags, "summary": summary, "settings": scene.settings}


def _k_histogram(pix_to_face: torch.Tensor) -> dict[str, int]:
    counts = (pix_to_face >= 0).sum(-1).reshape(-1)
    k = pix_to_face.shape[-1]
    edges = sorted({0, 1, 2, min(5, k), min(10, k), min(25, k), k})
    return {f"{a}" if a == b else f"{a}-{b}": int(((counts >= a) & (counts <= b)).sum()) for a, b in _ranges(edges)}


def _ranges(edges: list[int]) -> list[tuple[int, int]]:
    out, prev = [], None
    for e in edges:
        out.append((e if prev is None else prev + 1, e))
        prev = e
    return out


def compare(
    mesh: Meshes, a: RenderSettings, b: RenderSettings, *, gain: float = 4.0, device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """A and B renders of the same mesh, |A - B| (times `gain`, clipped) and the difference's statistics."""
    if a.image_size != b.image_size:
        raise ValueError(f"A and B must use the same image size to be compared ({a.image_size} vs {b.image_size} px).")
    ra = render(mesh, a, device=device)
    rb = render(mesh, b, device=device)
    ia, ib = ra.image[0], rb.image[0]
    diff = (ia - ib).abs()
    mse = float((diff**2).mean())
    stats = {
        "mean_abs_diff": round(float(diff.mean()), 6),
        "max_abs_diff": round(float(diff.max()), 6),
        "psnr_db": None if mse == 0 else round(10 * math.log10(1.0 / mse), 3),
        "pixels_changed": int((diff.amax(-1) > 1.0 / 255).sum()),
        "changed_settings": {k: [v, b.to_dict()[k]] for k, v in a.to_dict().items() if v != b.to_dict()[k]},
        "notes": ra.notes + rb.notes,
    }
    return {"a": ia, "b": ib, "diff": (diff * gain).clamp(0, 1), "stats": stats}


def turntable(
    mesh: Meshes, settings: RenderSettings, frames: int, *, device: torch.device | str = "cpu", chunk: int = 4
) -> Iterator[torch.Tensor]:
    """Frames (H, W, 3) of a full turn in azimuth from the settings' view, rendered `chunk` at a time."""
    if frames < 1:
        raise ValueError("A turntable needs at least one frame.")
    mesh = mesh.to(torch.device(device))
    for start in range(0, frames, chunk):
        idx = range(start, min(frames, start + chunk))
        azim = [settings.azim + 360.0 * i / frames for i in idx]
        result = render(mesh.extend(len(azim)), settings, device=device, azim=azim, elev=[settings.elev] * len(azim))
        yield from result.image
