"""The Shading lab's render settings: `RenderSettings` (validated, read from JSON-like dicts) and the memory guard."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

from pipelines.render.colors import Color, parse_color
from pipelines.render.factories import BYTES_PER_FACE_SLOT, CAMERAS, LIGHTS, SHADERS, SOFT_BLUR_FACTOR, raster_bytes

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
            blur_radius=SOFT_BLUR_FACTOR * 1e-4,
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
        return parse_color(value, name.replace("_", " "))
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
