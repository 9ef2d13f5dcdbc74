"""Pose's batched soft rasteriser against PyTorch3D's: the same fragments, silhouettes and gradients."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipelines.pose.camera_math import make_cameras, spherical_to_position
from pipelines.pose.meshes import load_mesh
from pipelines.pose.raster import BLUR_FACTOR, rasterize


def ellipsoid(device: torch.device):
    from pytorch3d.structures import Meshes
    from pytorch3d.utils import ico_sphere

    sphere = ico_sphere(2)
    verts = sphere.verts_packed() * torch.tensor([0.9, 0.5, 0.7]) + torch.tensor([0.1, 0.0, 0.0])
    return Meshes([verts.to(device)], [sphere.faces_packed().to(device)])


def test_soft_fragments_and_silhouette_gradient_match_pytorch3d(device):
    from pytorch3d.renderer import BlendParams, MeshRasterizer, RasterizationSettings
    from pytorch3d.renderer.blending import sigmoid_alpha_blend

    mesh = ellipsoid(device)
    sigma, size, k = 1e-3, 32, 60  # K above the most faces any pixel can reach, so nothing is cut off
    out = {}
    for backend in ("library", "torch"):
        position = spherical_to_position(2.5, 20.0, 35.0)[None].to(device).requires_grad_(True)
        cameras = make_cameras(position)
        if backend == "library":  # PyTorch3D's own rasteriser, forward and backward (its dists' gradient is right)
            settings = RasterizationSettings(size, BLUR_FACTOR * sigma, k, perspective_correct=True)
            frags = MeshRasterizer(cameras=cameras, raster_settings=settings)(mesh)
        else:
            frags = rasterize(mesh, cameras, size, BLUR_FACTOR * sigma, k, backend)
        colors = torch.ones((*frags.pix_to_face.shape, 3), device=device)
        alpha = sigmoid_alpha_blend(colors, frags, BlendParams(sigma=sigma))[0, ..., 3]
        target = torch.zeros_like(alpha)
        target[8:24, 10:20] = 1.0
        ((alpha - target) ** 2).mean().backward()
        out[backend] = (frags, alpha.detach(), position.grad.clone())
    (ref, ref_alpha, ref_grad), (got, got_alpha, got_grad) = out["library"], out["torch"]
    assert int((ref.pix_to_face >= 0).sum(-1).max()) < k
    # same faces per pixel, in the same depth order (ties aside), with the same distances
    assert torch.equal(ref.pix_to_face.sort(-1).values, got.pix_to_face.sort(-1).values)
    assert torch.allclose(ref.dists.sort(-1).values, got.dists.sort(-1).values, atol=1e-6)
    assert torch.allclose(ref_alpha, got_alpha, atol=1e-5)
    assert torch.allclose(ref_grad, got_grad, rtol=1e-3, atol=1e-6), (ref_grad, got_grad)


def _phong_loss(position: torch.Tensor, backend: str, mesh, target: torch.Tensor) -> torch.Tensor:
    from pytorch3d.renderer import BlendParams, Materials, PointLights, SoftPhongShader

    sigma, gamma = 1e-3, 1.0  # a wide depth blend: no face entering the blur radius makes the loss jump
    cameras = make_cameras(position)
    frags = rasterize(mesh, cameras, 32, BLUR_FACTOR * sigma, 60, backend)
    shader = SoftPhongShader(
        device=position.device,
        cameras=cameras,
        lights=PointLights(device=position.device, location=((2.0, 2.0, 2.0),)),
        materials=Materials(device=position.device, shininess=32.0),
        blend_params=BlendParams(sigma=sigma, gamma=gamma, background_color=(1.0, 1.0, 1.0)),
    )
    return ((shader(frags, mesh, cameras=cameras)[0, ..., :3] - target) ** 2).mean()


@pytest.mark.parametrize("backend", ["torch", "pytorch3d"])
def test_pose_gradients_match_finite_differences(backend):
    """The RGB (soft Phong) loss depends on barycentrics and depth, whose backward in PyTorch3D's CPU rasteriser
    disagrees with finite differences; both backends here must agree with central differences on the CPU."""
    from pytorch3d.renderer import TexturesVertex

    g = torch.Generator().manual_seed(0)
    mesh = ellipsoid(torch.device("cpu"))
    mesh.textures = TexturesVertex([torch.rand(mesh.verts_packed().shape, generator=g)])
    target = torch.rand(32, 32, 3, generator=g)
    p0 = spherical_to_position(2.5, 20.0, 35.0)[None]
    position = p0.clone().requires_grad_(True)
    _phong_loss(position, backend, mesh, target).backward()
    h = 2e-3
    with torch.no_grad():
        fd = torch.stack(
            [
                (_phong_loss(p0 + h * e, backend, mesh, target) - _phong_loss(p0 - h * e, backend, mesh, target))
                / (2 * h)
                for e in torch.eye(3)[:, None]
            ]
        )
    assert torch.allclose(position.grad[0], fd, rtol=0.05, atol=1e-3 * float(fd.abs().max())), (position.grad, fd)


def test_hard_fragments_match_pytorch3d(device):
    mesh = ellipsoid(device)
    position = spherical_to_position(2.2, -10.0, 120.0)[None].to(device)
    ref = rasterize(mesh, make_cameras(position), 40, 0.0, 1, "pytorch3d")
    got = rasterize(mesh, make_cameras(position), 40, 0.0, 1, "torch")
    same = ref.pix_to_face == got.pix_to_face
    assert same.float().mean() > 0.998  # a pixel centre exactly on a shared edge may go either way
    hit = same & (ref.pix_to_face >= 0)
    assert torch.allclose(ref.zbuf[hit], got.zbuf[hit], atol=1e-5)
    assert torch.allclose(ref.bary_coords[hit], got.bary_coords[hit], atol=1e-4)


def test_distance_order_keeps_silhouettes_solid_with_few_faces():
    """With K below the faces in reach, depth order (PyTorch3D's) punches holes in the silhouette; keeping the faces
    nearest each pixel instead stays close to the silhouette with all faces."""
    from pytorch3d.renderer import BlendParams
    from pytorch3d.renderer.blending import sigmoid_alpha_blend

    mesh, _ = load_mesh((), Path("."), 1, torch.device("cpu"))
    cameras = make_cameras(spherical_to_position(2.7, 15.0, 50.0)[None])
    sigma = 1e-4

    def silhouette(k: int, order: str) -> torch.Tensor:
        frags = rasterize(mesh, cameras, 64, BLUR_FACTOR * sigma, k, "torch", order)
        colors = torch.ones((*frags.pix_to_face.shape, 3))
        return sigmoid_alpha_blend(colors, frags, BlendParams(sigma=sigma))[0, ..., 3]

    full = silhouette(300, "depth")
    assert (silhouette(16, "depth") - full).abs().max() > 0.5
    assert (silhouette(16, "distance") - full).abs().max() < 0.05
