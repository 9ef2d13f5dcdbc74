"""The pose scene: a mesh with a light and materials, rendered from look-at cameras by the soft rasteriser as a
soft silhouette or a soft Phong image, and the `Target` the camera should see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from pipelines.pose.camera_math import make_cameras
from pipelines.pose.raster import BLUR_FACTOR, rasterize

# RGB renders and targets sit on black by default: on white a cream-and-black cow hardly differs from the background,
# and the RGB loss alone lost the pose from a 30° start (18-34° left after 120 steps, four seeds). The book's
# experiment uses white (`Scene(background=...)`).
RGB_BACKGROUND = (0.0, 0.0, 0.0)


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

    def __init__(
        self,
        mesh: Any,
        device: torch.device,
        light_location: tuple[float, float, float] = (2.0, 2.0, 2.0),
        background: tuple[float, float, float] = RGB_BACKGROUND,
    ) -> None:
        from pytorch3d.renderer import Materials, PointLights

        self.mesh = mesh
        self.device = device
        self.background = tuple(float(c) for c in background)
        self.lights = PointLights(device=device, location=(tuple(float(c) for c in light_location),))
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
        """Soft Phong render: RGB (S, S, 3) on the scene's background and its soft silhouette (S, S)."""
        from pytorch3d.renderer import BlendParams, SoftPhongShader
        from pytorch3d.renderer.blending import sigmoid_alpha_blend

        frags, cameras = self.fragments(camera_position, s)
        blend = BlendParams(sigma=s.sigma, gamma=s.gamma, background_color=self.background)
        shader = SoftPhongShader(
            device=self.device, cameras=cameras, lights=self.lights, materials=self.materials, blend_params=blend
        )
        rgb = shader(frags, self.mesh, cameras=cameras)[0, ..., :3]
        colors = torch.ones((*frags.pix_to_face.shape, 3), device=self.device)
        return rgb, sigmoid_alpha_blend(colors, frags, blend)[0, ..., 3]

    def hard_phong(self, camera_position: torch.Tensor, size: int) -> torch.Tensor:
        """Hard Phong render (S, S, 3) on the scene's background: one face per pixel, no blur (the book's target)."""
        from pytorch3d.renderer import BlendParams, HardPhongShader

        s = SoftSettings(size, 1e-8, 1e-4, 1, "pytorch3d" if self.device.type == "cuda" else "torch")
        frags, cameras = self.fragments(camera_position, s)
        blend = BlendParams(background_color=self.background)
        shader = HardPhongShader(
            device=self.device, cameras=cameras, lights=self.lights, materials=self.materials, blend_params=blend
        )
        return shader(frags, self.mesh, cameras=cameras)[0, ..., :3]


@dataclass
class Target:
    """What the camera should see, per image size: mask (S, S) and RGB (S, S, 3) on `RGB_BACKGROUND`, float in [0, 1]."""

    masks: dict[int, torch.Tensor]
    rgbs: dict[int, torch.Tensor]
