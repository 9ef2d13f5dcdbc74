"""Multi-view rendering: cameras around the object, hard-rasterised views and silhouettes, and the grid of rays
through every pixel of a camera."""

from __future__ import annotations

import torch
from pytorch3d.renderer import (
    BlendParams,
    DirectionalLights,
    FoVPerspectiveCameras,
    HardPhongShader,
    Materials,
    NDCMultinomialRaysampler,
    PointLights,
    RayBundle,
    look_at_view_transform,
)
from pytorch3d.structures import Meshes

from pipelines.render.factories import make_raster_settings
from pipelines.render.tiled_raster import TiledMeshRasterizer
from pipelines.train.generators import finish
from pipelines.train.multiview_data import FOV_DEG

# --- rendering the views ---------------------------------------------------------------------------------


def view_cameras(
    azimuth: torch.Tensor, elevation: float, distance: float, device: torch.device, fov: float = FOV_DEG
) -> FoVPerspectiveCameras:
    """FoV-perspective cameras looking at the origin from `distance`, `elevation` and each azimuth (degrees)."""
    n = len(azimuth)
    R, T = look_at_view_transform(
        dist=torch.full((n,), float(distance)), elev=torch.full((n,), float(elevation)), azim=azimuth.cpu()
    )
    return FoVPerspectiveCameras(R=R.to(device), T=T.to(device), fov=fov, device=device)


def render_views(mesh: Meshes, cameras: FoVPerspectiveCameras, image_size: int, chunk: int = 8, lighting: str = "book"):
    """Hard-rasterised RGB (N, H, W, 3) and silhouettes (N, H, W) of `mesh` from each camera (see the steps)."""
    return finish(render_views_steps(mesh, cameras, image_size, chunk, lighting))


def view_lights(lighting: str, device: torch.device) -> tuple[PointLights | DirectionalLights, Materials]:
    """The data set's light and material: `book` is generate_cow_renders' point light at (0, 0, -3) with PyTorch3D's
    default light and material colours; `diffuse` a world-space directional light without specular, so a surface
    point's colour does not depend on the viewer (what a view-independent voxel grid can fit exactly)."""
    if lighting == "book":
        return PointLights(location=((0.0, 0.0, -3.0),), device=device), Materials(device=device)
    lights = DirectionalLights(
        direction=((0.35, 0.8, 0.5),),
        ambient_color=((0.55, 0.55, 0.55),),
        diffuse_color=((0.5, 0.5, 0.5),),
        specular_color=((0.0, 0.0, 0.0),),
        device=device,
    )
    return lights, Materials(specular_color=((0.0, 0.0, 0.0),), device=device)


def render_views_steps(
    mesh: Meshes, cameras: FoVPerspectiveCameras, image_size: int, chunk: int = 4, lighting: str = "book"
):
    """A generator that renders `chunk` views at a time, yielding a message after each chunk, and returns
    hard-rasterised RGB (N, H, W, 3) and silhouettes (N, H, W) of `mesh` from each camera, lit by `view_lights`.

    The book renders with SoftPhongShader at one face per pixel and blur 0, which is the hard Phong render.
    """

    device = mesh.device
    lights, materials = view_lights(lighting, device)
    blend = BlendParams(background_color=(0.0, 0.0, 0.0))
    # Built once; the cameras go with each chunk. bin_size None: tiles on the CPU, coarse-to-fine bins on a GPU.
    rasterizer = TiledMeshRasterizer(raster_settings=make_raster_settings(image_size, device=device)[0])
    shader = HardPhongShader(device=device, lights=lights, materials=materials, blend_params=blend)
    images, masks = [], []
    for start in range(0, len(cameras), chunk):
        cams = cameras[list(range(start, min(start + chunk, len(cameras))))]
        meshes = mesh.extend(len(cams))
        with torch.no_grad():
            fragments = rasterizer(meshes, cameras=cams)
            rgba = shader(fragments, meshes, cameras=cams)  # (B, H, W, 4)
        images.append(rgba[..., :3].clamp(0, 1))
        masks.append((fragments.pix_to_face[..., 0] >= 0).float())  # (B, H, W)
        yield f"rendered {start + len(cams)}/{len(cameras)} views"
    return torch.cat(images), torch.cat(masks)


# --- rays --------------------------------------------------------------------------------------------------


def ray_grid(
    cameras: FoVPerspectiveCameras, image_size: int, n_pts_per_ray: int, min_depth: float, max_depth: float
) -> RayBundle:
    """One ray through every pixel centre of each camera, from the book's `NDCMultinomialRaysampler`.

    origins, directions (B, H, W, 3) (directions reach depth 1 in view space, not unit length), lengths
    (B, H, W, P) depths from `min_depth` to `max_depth`, xys (B, H, W, 2) NDC. Row i, column j is the
    pixel (i, j) of a PyTorch3D render from the same camera.
    """
    sampler = NDCMultinomialRaysampler(
        image_width=image_size,
        image_height=image_size,
        n_pts_per_ray=n_pts_per_ray,
        min_depth=min_depth,
        max_depth=max_depth,
    )
    return sampler(cameras)
