"""The tiled CPU rasteriser gives PyTorch3D's fragments and gradients, faster."""

from __future__ import annotations

import pytest
import torch
from pytorch3d.renderer import MeshRasterizer
from pytorch3d.structures import join_meshes_as_batch

from pipelines.render.procedural import procedural_mesh
from pipelines.render.tiled_raster import TiledMeshRasterizer, tile_size
from pipelines.shading.meshes import load_mesh
from pipelines.shading.scene import build_scene
from pipelines.shading.settings import RenderSettings

CASES = {
    "hard": ("ico-sphere", RenderSettings(image_size=96)),
    "soft-book": ("torus", RenderSettings.book_soft(image_size=64, faces_per_pixel=12)),
    "odd-size-ortho-cull": ("ico-sphere", RenderSettings(image_size=80, camera="orthographic", cull_backfaces=True)),
    "near-plane": ("torus", RenderSettings(image_size=64, dist=0.9, fov=100)),
}


def both(meshes, settings):
    scene = build_scene(settings, n=len(meshes))
    ref = MeshRasterizer(scene.cameras, scene.raster)(meshes)
    new = TiledMeshRasterizer(scene.cameras, scene.raster)(meshes)
    return ref, new


@pytest.mark.parametrize("case", list(CASES))
def test_tiled_fragments_match_the_library(case):
    name, settings = CASES[case]
    assert tile_size(settings.image_size) > 0  # the tiled path really runs
    ref, new = both(load_mesh(name), settings)
    assert new.pix_to_face.shape == ref.pix_to_face.shape
    same = ref.pix_to_face == new.pix_to_face
    assert same.float().mean() > 0.9995  # ties between equally near faces may order differently
    hit = same & (ref.pix_to_face >= 0)
    # float32 rounding: each tile's coordinates are scaled by image/tile, so barycentrics agree to ~1e-5..1e-4
    assert torch.allclose(ref.bary_coords[hit], new.bary_coords[hit], atol=3e-4)
    assert torch.allclose(ref.zbuf[hit], new.zbuf[hit], atol=1e-3)
    assert torch.allclose(ref.dists[hit], new.dists[hit], atol=1e-6)


def test_tiled_batch_of_different_meshes():
    meshes = join_meshes_as_batch([procedural_mesh(n) for n in ("torus", "ico-sphere")])
    ref, new = both(meshes, RenderSettings.book_soft(image_size=64, faces_per_pixel=6))
    assert (ref.pix_to_face == new.pix_to_face).float().mean() > 0.9995


def test_tiled_gradients_match_the_library():
    mesh = procedural_mesh("ico-sphere", level=2)
    settings = RenderSettings.book_soft(image_size=64, faces_per_pixel=6, shader="soft-silhouette")
    scene = build_scene(settings)
    grads = []
    for cls in (MeshRasterizer, TiledMeshRasterizer):
        shift = torch.tensor([0.05, -0.02, 0.0], requires_grad=True)
        moved = mesh.offset_verts(shift.expand(mesh.verts_packed().shape[0], 3))
        frags = cls(scene.cameras, scene.raster)(moved)
        alpha = scene.shader(frags, moved)[..., 3]
        (alpha * torch.linspace(0, 1, 64)).sum().backward()
        grads.append(shift.grad)
    assert grads[0].abs().max() > 0
    assert torch.allclose(grads[0], grads[1], rtol=1e-3, atol=1e-5)


def test_empty_view_gives_empty_fragments():
    settings = RenderSettings(image_size=64, azim=180.0, elev=0.0, dist=2.7)
    mesh = procedural_mesh("ico-sphere").offset_verts(torch.tensor([50.0, 0.0, 0.0]))
    _, new = both(mesh, settings)
    assert (new.pix_to_face == -1).all()
