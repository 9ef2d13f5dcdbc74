"""The camera inspector's render: a hard-Phong image from a CameraSpec's camera, with the projected sample points
drawn over it."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw
from pytorch3d.renderer import (
    HardPhongShader,
    MeshRasterizer,
    PointLights,
    RasterizationSettings,
    TexturesVertex,
)
from pytorch3d.renderer.blending import BlendParams
from pytorch3d.renderer.mesh.rasterizer import Fragments
from pytorch3d.structures import Meshes

from pipelines.render.camera_spec import CameraSpec, build_camera, camera_center
from pipelines.render.projection import in_view_mask, project
from pipelines.render.screen_raster import FAST_RASTER_ABOVE, rasterize_screen

BACKGROUND = (1.0, 1.0, 1.0)  # render background colour, float RGB
MESH_COLOR = (0.72, 0.76, 0.86)  # vertex colour for meshes without a texture


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
    show = in_view_mask(spec, proj["view"], proj["screen"])
    h, w = spec.image_size
    hidden = np.zeros(len(pts), dtype=bool)
    for i in np.flatnonzero(show):
        col = min(int(math.floor(proj["screen"][i, 0])), w - 1)
        row = min(int(math.floor(proj["screen"][i, 1])), h - 1)
        surface = float(zbuf[row, col])
        depth = float(proj["view"][i, 2])
        hidden[i] = surface >= 0 and depth > surface * 1.02 + 1e-3
    return draw_points(rgb, proj["screen"][:, :2], show, hidden)
