"""The Shading lab's maths: render settings, renders, G-buffers, the ambient/diffuse/specular split, A/B and memory guard.

Everything takes a `Meshes` and a `RenderSettings` and returns float images in [0, 1], (N, H, W, 3) unless said.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pytorch3d.ops import interpolate_face_attributes
from pytorch3d.renderer import BlendParams, TexturesVertex
from pytorch3d.renderer.blending import sigmoid_alpha_blend, softmax_rgb_blend
from pytorch3d.renderer.cameras import CamerasBase
from pytorch3d.renderer.mesh.rasterizer import Fragments, MeshRasterizer, RasterizationSettings
from pytorch3d.structures import Meshes

from pipelines.core.paths import ASSETS_DIR
from pipelines.render import rendering
from pipelines.render.rendering import (
    BYTES_PER_FACE_SLOT,
    CAMERAS,
    LIGHTS,
    PROCEDURAL,
    SHADERS,
    Color,
    is_soft,
    raster_bytes,
)

MESH_EXTS = (".obj", ".ply", ".glb", ".gltf", ".stl", ".off")


MAX_IMAGE_SIZE = 2048
MAX_FACES_PER_PIXEL = 150
OVERFLOW_MODES = ("refuse", "lower")


class MemoryBudgetError(ValueError):
    """A render that would need more memory than the budget allows (a user error with a clear message)."""


@dataclass(frozen=True)
class RenderSettings:
    """Everything that decides a Shading-lab image except the mesh. Validated on construction."""

    shader: str = "hard-phong"
    """One of hard-phong, soft-phong, hard-gouraud, soft-gouraud, hard-flat, soft-silhouette."""
    light: str = "point"
    """point (at light_xyz), directional (towards light_xyz) or ambient (ambient colour only)."""
    light_xyz: tuple[float, float, float] = (1.5, 2.0, 2.5)
    """The point light's position, or the direction towards a directional light (world units)."""
    light_ambient: Color = (0.3, 0.3, 0.3)
    """The light's ambient colour L_a (RGB in [0, 1])."""
    light_diffuse: Color = (0.7, 0.7, 0.7)
    """The light's diffuse colour L_d."""
    light_specular: Color = (0.35, 0.35, 0.35)
    """The light's specular colour L_s."""
    material_ambient: Color = (1.0, 1.0, 1.0)
    """The material's ambient reflectance k_a."""
    material_diffuse: Color = (1.0, 1.0, 1.0)
    """The material's diffuse reflectance k_d."""
    material_specular: Color = (1.0, 1.0, 1.0)
    """The material's specular reflectance k_s."""
    shininess: float = 64.0
    """The Phong exponent: higher gives smaller, sharper highlights."""
    camera: str = "perspective"
    """perspective (FoV) or orthographic (FoV-orthographic)."""
    dist: float = 2.7
    """Camera distance from the origin."""
    elev: float = 20.0
    """Camera elevation in degrees."""
    azim: float = 30.0
    """Camera azimuth in degrees (0 looks from +Z)."""
    fov: float = 60.0
    """Field of view in degrees (perspective)."""
    ortho_scale: float = 0.9
    """Magnification of the orthographic camera."""
    image_size: int = 256
    """Image side in pixels (square)."""
    blur_radius: float = 0.0
    """How far (NDC, squared distance) a face reaches beyond its edges; 0 is a hard rasteriser."""
    faces_per_pixel: int = 1
    """K, the nearest faces kept per pixel (soft shaders blend them)."""
    bin_size: int = -1
    """Coarse-to-fine bin size: -1 automatic, 0 naive (the CPU is always naive)."""
    cull_backfaces: bool = False
    """Skip faces that face away from the camera."""
    perspective_correct: bool = True
    """Perspective-correct barycentrics (perspective camera only); off interpolates in screen space."""
    sigma: float = 1e-4
    """Soft blending: width of the edge sigmoid."""
    gamma: float = 1e-4
    """Soft blending: depth sharpness (smaller hides faces behind the front one)."""
    background: Color = (1.0, 1.0, 1.0)
    """Background colour."""
    memory_budget_mb: float = 2048.0
    """Largest estimated rasteriser memory (N*H*W*K*48 bytes) a render may use."""
    on_overflow: str = "refuse"
    """Over the budget: refuse (with a message) or lower (faces per pixel, then image size)."""

    def __post_init__(self) -> None:
        checks = (
            (self.shader in SHADERS, f"Unknown shader {self.shader!r}: choose one of {', '.join(SHADERS)}."),
            (self.light in LIGHTS, f"Unknown light {self.light!r}: choose one of {', '.join(LIGHTS)}."),
            (self.camera in CAMERAS, f"Unknown camera {self.camera!r}: choose one of {', '.join(CAMERAS)}."),
            (self.on_overflow in OVERFLOW_MODES, f"on_overflow must be one of {', '.join(OVERFLOW_MODES)}."),
            (16 <= self.image_size <= MAX_IMAGE_SIZE, f"Image size must be between 16 and {MAX_IMAGE_SIZE} pixels."),
            (
                1 <= self.faces_per_pixel <= MAX_FACES_PER_PIXEL,
                f"Faces per pixel must be between 1 and {MAX_FACES_PER_PIXEL}.",
            ),
            (0.0 <= self.blur_radius <= 2.0, "Blur radius must be between 0 and 2 (NDC)."),
            (self.bin_size >= -1, "Bin size must be -1 (automatic), 0 (naive) or a positive number of pixels."),
            (self.sigma > 0 and self.gamma > 0, "Sigma and gamma must be positive."),
            (0.0 <= self.shininess <= 10_000, "Shininess must be between 0 and 10000."),
            (0.01 <= self.dist <= 1000, "Camera distance must be between 0.01 and 1000."),
            (1.0 <= self.fov <= 179.0, "Field of view must be between 1 and 179 degrees."),
            (self.ortho_scale > 0, "The orthographic scale must be positive."),
            (self.memory_budget_mb > 0, "The memory budget must be positive."),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        numbers = (*self.light_xyz, self.shininess, self.dist, self.elev, self.azim, self.fov, self.blur_radius)
        if not all(math.isfinite(float(x)) for x in numbers):
            raise ValueError("Render settings contain NaN or infinite numbers.")
        if self.light == "directional" and sum(float(x) ** 2 for x in self.light_xyz) < 1e-12:
            raise ValueError("A directional light needs a non-zero direction.")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> RenderSettings:
        """Settings from a JSON-like dict (the API's and the UI's form): unknown keys are refused, colours may
        be '#rrggbb' or three numbers in [0, 1], numbers may be strings."""
        if values is None:
            return cls()
        if not isinstance(values, dict):
            raise ValueError("Render settings must be a JSON object of name: value.")
        hints = typing.get_type_hints(cls)
        clean: dict[str, Any] = {}
        for key, value in values.items():
            name = str(key).replace("-", "_")
            if name not in hints:
                raise ValueError(f"Unknown render setting {key!r}. Known: {', '.join(sorted(hints))}.")
            clean[name] = _coerce(name, value, hints[name])
        return cls(**clean)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict that `from_dict` reads back to equal settings."""
        return {
            f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in dataclasses.fields(self)
        }

    def replace(self, **changes: Any) -> RenderSettings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def book_soft(cls, **changes: Any) -> RenderSettings:
        """The book's soft-rasteriser settings: sigma 1e-4, blur radius log(1/1e-4 - 1)·sigma, 50 faces per pixel."""
        base = dict(
            shader="soft-phong",
            sigma=1e-4,
            gamma=1e-4,
            blur_radius=rendering.SOFT_BLUR_FACTOR * 1e-4,
            faces_per_pixel=50,
        )
        base.update(changes)
        return cls(**base)


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    if typing.get_origin(annotation) is tuple:
        if name in ("light_xyz",):
            try:
                xyz = tuple(float(v) for v in (value.replace(",", " ").split() if isinstance(value, str) else value))
            except (TypeError, ValueError):
                xyz = ()
            if len(xyz) != 3:
                raise ValueError(f"{name} must be three numbers x, y, z, got {value!r}.")
            return xyz
        return rendering.parse_color(value, name.replace("_", " "))
    try:
        if annotation is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if annotation is int:
            number = float(value)
            if not math.isfinite(number) or number != int(number):
                raise ValueError
            return int(number)
        if annotation is float:
            return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a {annotation.__name__}, got {value!r}.") from None
    return str(value)


# --- memory guard ---------------------------------------------------------------------------------------


def guard_memory(settings: RenderSettings, n: int = 1) -> tuple[RenderSettings, list[str]]:
    """Check a render of `n` images against the budget; refuse, or lower K and then the image size.

    Returns the settings to use and notes for the user. Raises MemoryBudgetError when refusing.
    """
    budget = settings.memory_budget_mb * 2**20
    size, k = settings.image_size, settings.faces_per_pixel
    need = raster_bytes(n, size, size, k)
    if need <= budget:
        return settings, []
    mib = need / 2**20
    formula = f"{n}×{size}×{size}×{k}×{BYTES_PER_FACE_SLOT} bytes ≈ {mib:,.0f} MiB"
    if settings.on_overflow == "refuse":
        raise MemoryBudgetError(
            f"This render would need about {mib:,.0f} MiB for the rasteriser ({formula}), over the "
            f"{settings.memory_budget_mb:,.0f} MiB budget. Lower the faces per pixel or the image size, "
            "or choose 'lower' to let the lab do it."
        )
    fit_k = int(budget // raster_bytes(n, size, size, 1))
    if fit_k >= 1:
        new = settings.replace(faces_per_pixel=min(k, fit_k))
        return new, [
            f"Lowered faces per pixel from {k} to {new.faces_per_pixel} to fit the {settings.memory_budget_mb:,.0f} MiB budget ({formula} was needed)."
        ]
    side = int(math.sqrt(budget / (n * BYTES_PER_FACE_SLOT))) // 8 * 8
    if side < 16:
        raise MemoryBudgetError(
            f"Even a 16-pixel image with one face per pixel exceeds the {settings.memory_budget_mb:g} MiB budget for {n} image(s)."
        )
    new = settings.replace(faces_per_pixel=1, image_size=side)
    return new, [
        f"Lowered faces per pixel from {k} to 1 and the image size from {size} to {side} px to fit the {settings.memory_budget_mb:,.0f} MiB budget ({formula} was needed)."
    ]


# --- meshes -----------------------------------------------------------------------------------------------


def mesh_choices() -> list[str]:
    """Procedural meshes, then the bundled assets (file names in assets/)."""
    files = []
    if ASSETS_DIR.is_dir():
        files = sorted(p.name for p in ASSETS_DIR.iterdir() if p.is_file() and p.suffix.lower() in MESH_EXTS)
    return list(PROCEDURAL) + files


@functools.lru_cache(maxsize=8)
def _file_mesh(path: str, mtime_ns: int, size: int) -> tuple[Meshes, tuple[str, ...]]:
    # Keyed by modification time and size, so a changed file is read again; kept on the CPU, never mutated.
    mesh, notes = rendering.load_mesh_file_with_notes(path, device="cpu")
    return mesh, tuple(notes)


def load_mesh_with_notes(source: str | Path, device: torch.device | str = "cpu") -> tuple[Meshes, list[str]]:
    """A procedural mesh by name, a bundled asset by file name, or a (staged) file path, as a one-mesh batch,
    with the loader's warnings."""
    text = str(source)
    if text in PROCEDURAL:
        return rendering.procedural_mesh(text, device=device), []
    path = Path(text)
    if not path.is_absolute() and not path.exists():
        candidate = ASSETS_DIR / path.name
        if path.name == text and candidate.is_file():
            path = candidate
    if not path.is_file():
        raise ValueError(f"No mesh called {text!r}: choose one of {', '.join(mesh_choices())}, or upload a file.")
    stat = path.stat()
    mesh, notes = _file_mesh(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    return mesh.to(torch.device(device)), list(notes)


def load_mesh(source: str | Path, device: torch.device | str = "cpu") -> Meshes:
    """`load_mesh_with_notes` without the notes."""
    return load_mesh_with_notes(source, device)[0]


# --- the scene ------------------------------------------------------------------------------------------------


@dataclass
class Scene:
    """The PyTorch3D objects one `RenderSettings` turns into (for a batch of `n` images)."""

    settings: RenderSettings
    cameras: CamerasBase
    lights: Any
    materials: Any
    raster: RasterizationSettings
    blend: BlendParams
    shader: torch.nn.Module
    notes: list[str] = field(default_factory=list)


def build_scene(
    settings: RenderSettings,
    *,
    n: int = 1,
    device: torch.device | str = "cpu",
    light_xyz: torch.Tensor | None = None,
    azim: Sequence[float] | None = None,
    elev: Sequence[float] | None = None,
    guard: bool = True,
) -> Scene:
    """Cameras, light, material, raster settings and shader for `n` images (memory-guarded).

    `light_xyz` (3,) may be a tensor that requires grad (for fitting); `azim`/`elev` give one view per image.
    """
    device = torch.device(device)
    notes: list[str] = []
    if guard:
        settings, notes = guard_memory(settings, n)
    s = settings
    cameras = rendering.make_cameras(
        s.camera,
        s.dist,
        s.elev if elev is None else list(elev),
        s.azim if azim is None else list(azim),
        fov=s.fov,
        ortho_scale=s.ortho_scale,
        batch=n,
        device=device,
    )
    lights = rendering.make_lights(
        s.light,
        s.light_xyz if light_xyz is None else light_xyz,
        ambient=s.light_ambient,
        diffuse=s.light_diffuse,
        specular=s.light_specular,
        device=device,
    )
    materials = rendering.make_materials(
        ambient=s.material_ambient,
        diffuse=s.material_diffuse,
        specular=s.material_specular,
        shininess=s.shininess,
        device=device,
    )
    raster, raster_notes = rendering.make_raster_settings(
        s.image_size,
        blur_radius=s.blur_radius,
        faces_per_pixel=s.faces_per_pixel,
        bin_size=None if s.bin_size < 0 else s.bin_size,
        cull_backfaces=s.cull_backfaces,
        perspective_correct=s.perspective_correct and s.camera == "perspective",
        device=device,
    )
    blend = BlendParams(sigma=s.sigma, gamma=s.gamma, background_color=tuple(s.background))
    shader = rendering.make_shader(
        s.shader, cameras=cameras, lights=lights, materials=materials, blend_params=blend, device=device
    )
    if is_soft(s.shader) and s.blur_radius == 0.0 and s.faces_per_pixel == 1:
        notes.append(
            "A soft shader with blur radius 0 and 1 face per pixel draws like a hard one: try the book's soft settings."
        )
    return Scene(s, cameras, lights, materials, raster, blend, shader, notes + raster_notes)


def prepare_mesh(mesh: Meshes, settings: RenderSettings, notes: list[str] | None = None) -> Meshes:
    """Gouraud shading needs per-vertex colours: a UV texture is resampled per vertex (with a note)."""
    if "gouraud" in settings.shader and not isinstance(mesh.textures, TexturesVertex):
        if notes is not None:
            notes.append("Gouraud shading lights vertices, so the UV texture was resampled to vertex colours.")
        return rendering.texture_to_vertex_colors(mesh)
    if mesh.textures is None:
        return rendering.with_vertex_colors(mesh)
    return mesh


def rasterize(mesh: Meshes, scene: Scene, *, tiled: bool = True) -> Fragments:
    """pix_to_face (N, H, W, K), zbuf, bary_coords (N, H, W, K, 3) and dists for the scene's camera.

    `tiled` uses the tiled CPU rasteriser (same fragments, much faster on the CPU); False the library's own."""
    cls = rendering.TiledMeshRasterizer if tiled else MeshRasterizer
    return cls(cameras=scene.cameras, raster_settings=scene.raster)(mesh)


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
        "depth": torch.where(covered, rendering.colormap(near), zero),
        "pix_to_face": rendering.id_colors(p2f),
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
