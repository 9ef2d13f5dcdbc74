"""SMPLify's pictures: the fitted mesh rendered over the photo through the keypoints' camera (OpenCV to PyTorch3D
with `cameras_from_opencv_projection`), keypoints and skeleton drawn on top, and the canvas under them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pytorch3d.renderer import BlendParams

from pipelines.render.factories import make_lights, make_materials, make_raster_settings, make_renderer, make_shader
from pipelines.render.mesh_convert import mesh_from_arrays
from pipelines.smpl.keypoints import Keypoints


def render_overlay(
    verts_cam: np.ndarray, faces: np.ndarray, background: np.ndarray, focal: float, center: np.ndarray, scale: float,
    color: tuple[float, float, float], alpha: float, device: torch.device,
) -> np.ndarray:  # fmt: skip
    """The mesh (camera frame, OpenCV) rendered over `background` (uint8 (h, w, 3), `scale` x the keypoint frame)."""
    from pytorch3d.utils import cameras_from_opencv_projection

    h, w = background.shape[:2]
    k = torch.tensor(
        [[focal * scale, 0, center[0] * scale], [0, focal * scale, center[1] * scale], [0, 0, 1]], dtype=torch.float32
    )
    cams = cameras_from_opencv_projection(
        torch.eye(3)[None], torch.zeros(1, 3), k[None], torch.tensor([[h, w]], dtype=torch.float32)
    ).to(device)
    mesh = mesh_from_arrays(
        verts_cam, faces, colors=np.tile(color, (len(verts_cam), 1)), normalize=False, device=device
    )
    raster, _ = make_raster_settings((h, w), device=device)
    lights = make_lights(
        "directional", (0.3, -0.6, -1.0), ambient=(0.45,) * 3, diffuse=(0.55,) * 3, specular=(0.1,) * 3, device=device
    )
    shader = make_shader(
        "hard-phong", cameras=cams, lights=lights, materials=make_materials(shininess=20.0, device=device),
        blend_params=BlendParams(background_color=(0.0, 0.0, 0.0)), device=device,
    )  # fmt: skip
    rgba = make_renderer(cams, raster, shader)(mesh)[0].detach().cpu().numpy()  # (h, w, 4)
    mask = (rgba[..., 3:] > 0) * alpha
    out = background.astype(np.float32) / 255.0 * (1 - mask) + np.clip(rgba[..., :3], 0, 1) * mask
    return (out * 255 + 0.5).astype(np.uint8)


def draw_keypoints(
    image: np.ndarray,
    scale: float,
    targets: np.ndarray,
    conf: np.ndarray,
    fitted: np.ndarray | None,
    parents: tuple[int, ...],
    caption: str,
) -> np.ndarray:
    """Targets as green rings, the fitted skeleton in red (bones and joints), scaled by `scale`; uint8 out."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(image)
    draw = ImageDraw.Draw(img)
    r = max(2, round(min(img.size) / 110))
    if fitted is not None:
        p = fitted * scale
        for j, par in enumerate(parents):
            if par >= 0:
                draw.line([tuple(p[par]), tuple(p[j])], fill=(214, 39, 40), width=max(1, r // 2 + 1))
        for x, y in p:
            draw.ellipse([x - r * 0.8, y - r * 0.8, x + r * 0.8, y + r * 0.8], fill=(214, 39, 40))
    for (x, y), c in zip(targets * scale, conf):
        if c > 0:
            draw.ellipse(
                [x - r * 1.4, y - r * 1.4, x + r * 1.4, y + r * 1.4], outline=(20, 160, 60), width=max(1, r // 2 + 1)
            )
    if caption:
        from PIL import ImageFont

        size = max(11, img.height // 36)
        draw.rectangle([0, 0, img.width, size + 6], fill=(255, 255, 255))
        draw.text((4, 2), caption, fill=(0, 0, 0), font=ImageFont.load_default(size=size))
    return np.asarray(img)


def display_background(kp: Keypoints, max_side: int = 640) -> tuple[np.ndarray, float]:
    """The picture under the overlays (the photo, or a light canvas), at most `max_side` pixels, and its scale."""
    scale = min(1.0, max_side / max(kp.width, kp.height))
    w, h = max(1, round(kp.width * scale)), max(1, round(kp.height * scale))
    if kp.image is None:
        return np.full((h, w, 3), 242, np.uint8), scale
    from PIL import Image

    return np.asarray(Image.fromarray(kp.image).resize((w, h), Image.BILINEAR)), scale


def project_np(joints_cam: np.ndarray, focal: float, center: np.ndarray) -> np.ndarray:
    """(P, 3) camera-frame points -> (P, 2) pixels (depth clamped at 1 mm), as numpy."""
    return focal * joints_cam[:, :2] / np.maximum(joints_cam[:, 2:], 1e-3) + center


def save_png(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(image).save(path)
