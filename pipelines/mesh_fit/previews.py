"""Mesh fitting's preview pictures: the mesh rendered and the target points splatted from one fixed camera."""

from __future__ import annotations

import numpy as np
import torch

from pipelines.core.events import to_uint8
from pipelines.render.factories import (
    make_cameras,
    make_lights,
    make_materials,
    make_raster_settings,
    make_renderer,
    make_shader,
)

_VIEW = (2.5, 15.0, 35.0)  # preview camera: distance, elevation°, azimuth°


def render_mesh(verts: torch.Tensor, faces: torch.Tensor, size: int = 224) -> np.ndarray:
    """A hard Phong render of a grey mesh in the unit-sphere frame from the preview camera; uint8 (S, S, 3)."""
    from pytorch3d.renderer import BlendParams, TexturesVertex
    from pytorch3d.structures import Meshes

    with torch.no_grad():
        device = verts.device
        rgb = torch.tensor([0.62, 0.7, 0.85], device=device).expand_as(verts)  # (V, 3) light steel blue
        mesh = Meshes([verts.detach()], [faces], textures=TexturesVertex([rgb]))
        cameras = make_cameras("perspective", *_VIEW, device=device)
        light_at = cameras.get_camera_center()[0] * 1.5 + torch.tensor([0.0, 2.0, 0.0], device=device)
        lights = make_lights("point", light_at, ambient=(0.35,) * 3, diffuse=(0.7,) * 3, device=device)
        materials = make_materials(specular=(0.2,) * 3, shininess=64.0, device=device)
        blend = BlendParams(background_color=(1.0, 1.0, 1.0))
        shader = make_shader(
            "hard-phong", cameras=cameras, lights=lights, materials=materials, blend_params=blend, device=device
        )
        raster = make_raster_settings(size, device=device)[0]
        renderer = make_renderer(cameras, raster, shader)
        image = renderer(mesh)[0, ..., :3]
    return to_uint8(image)


def render_points(points: torch.Tensor, size: int = 224, max_points: int = 8000) -> np.ndarray:
    """Target points splatted from the preview camera, shaded by depth (near = dark); uint8 (S, S, 3)."""

    with torch.no_grad():
        pts = points.detach().float().cpu()[:max_points]
        cameras = make_cameras("perspective", *_VIEW)
        screen = cameras.transform_points_screen(pts[None], image_size=((size, size),))[0]  # (P, 3): x, y px, depth
    image = np.full((size, size, 3), 255, dtype=np.uint8)
    x, y, z = screen[:, 0].numpy(), screen[:, 1].numpy(), screen[:, 2].numpy()
    order = np.argsort(-z)  # far first, near drawn last
    zn = (z - z.min()) / max(float(z.max() - z.min()), 1e-9)
    for dx in (0, 1):
        for dy in (0, 1):
            xi, yi = np.round(x[order]).astype(int) + dx, np.round(y[order]).astype(int) + dy
            ok = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size)
            shade = (40 + 150 * zn[order][ok])[:, None]
            image[yi[ok], xi[ok]] = np.concatenate([shade * 0.6, shade * 0.8, np.full_like(shade, 220)], 1).astype(
                np.uint8
            )
    return image


def label(image: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.fromarray(image)
    ImageDraw.Draw(img).text((6, 4), text, fill=(30, 30, 30))
    return np.asarray(img)
