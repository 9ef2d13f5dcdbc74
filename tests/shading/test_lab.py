"""Shading lab: determinism, buffers, the lighting-term split against the shaders, silhouettes, memory guard, settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch3d.ops import interpolate_face_attributes

from pipelines.render.factories import raster_bytes
from pipelines.render.mesh_convert import mesh_from_arrays
from pipelines.render.procedural import PROCEDURAL
from pipelines.shading import lab as shading
from pipelines.shading.meshes import load_mesh
from pipelines.shading.scene import build_scene, rasterize
from pipelines.shading.settings import MemoryBudgetError, RenderSettings, guard_memory

SIZE = 48  # small images keep the CPU rasteriser quick
HARD = RenderSettings(image_size=SIZE)
SOFT = RenderSettings.book_soft(image_size=SIZE, faces_per_pixel=8)


@pytest.fixture
def sphere(device):
    return load_mesh("ico-sphere", device)


def test_render_is_deterministic(sphere, device):
    for settings in (HARD, SOFT):
        a = shading.render(sphere, settings, device=device).rgba
        b = shading.render(sphere, settings, device=device).rgba
        assert a.shape == (1, SIZE, SIZE, 4)
        assert torch.equal(a, b)


@pytest.mark.parametrize("settings", [HARD, SOFT], ids=["hard", "soft"])
def test_barycentrics_lie_in_the_unit_simplex(sphere, device, settings):
    frags = rasterize(sphere, build_scene(settings, device=device))
    covered = frags.pix_to_face >= 0  # (N, H, W, K)
    assert covered[..., 0].sum() > SIZE * SIZE // 5
    bary = frags.bary_coords[covered]  # (M, 3)
    assert bary.min() >= -1e-5 and bary.max() <= 1 + 1e-5
    assert torch.allclose(bary.sum(-1), torch.ones(len(bary), device=device), atol=1e-5)


def reference_phong_terms(mesh, settings, device):
    """The Phong terms for the nearest face, written out with plain tensor maths (point light, K = 1)."""
    scene = build_scene(settings, device=device)
    frags = rasterize(mesh, scene)
    faces = mesh.faces_packed()
    pts = interpolate_face_attributes(frags.pix_to_face, frags.bary_coords, mesh.verts_packed()[faces])[0, :, :, 0]
    nrm = interpolate_face_attributes(frags.pix_to_face, frags.bary_coords, mesh.verts_normals_packed()[faces])[
        0, :, :, 0
    ]
    tex = mesh.sample_textures(frags)[0, :, :, 0]
    n = F.normalize(nrm, dim=-1, eps=1e-6)
    light = torch.tensor(settings.light_xyz, device=device)
    to_light = F.normalize(light - pts, dim=-1, eps=1e-6)
    to_eye = F.normalize(scene.cameras.get_camera_center()[0] - pts, dim=-1, eps=1e-6)
    cos = (n * to_light).sum(-1, keepdim=True)
    mirror = 2 * cos * n - to_light
    spec = ((mirror * to_eye).sum(-1, keepdim=True).clamp(min=0) * (cos > 0)) ** settings.shininess

    def c(x):
        return torch.tensor(x, device=device)

    covered = (frags.pix_to_face[0, :, :, 0] >= 0)[..., None]
    return {
        "ambient": c(settings.material_ambient) * c(settings.light_ambient) * tex * covered,
        "diffuse": c(settings.material_diffuse) * c(settings.light_diffuse) * cos.clamp(min=0) * tex * covered,
        "specular": c(settings.material_specular) * c(settings.light_specular) * spec * covered,
    }, covered


def test_hard_phong_terms_reproduce_the_render(sphere, device):
    settings = HARD.replace(light_xyz=(1.0, 1.5, 2.5), material_diffuse=(0.9, 0.8, 0.7), shininess=20.0)
    out = shading.shading_terms(sphere, settings, device=device)
    terms = out["terms"]
    image = shading.render(sphere, settings, device=device).rgba[0, ..., :3]  # PyTorch3D's HardPhongShader
    ref, covered = reference_phong_terms(sphere, settings, device)
    for name in ("ambient", "diffuse", "specular"):
        assert torch.allclose(terms[name], ref[name], atol=1e-5), name
    assert terms["diffuse"].max() > 0.2 and terms["specular"].max() > 0.05  # every term is visible
    composed = ref["ambient"] + ref["diffuse"] + ref["specular"]
    background = torch.tensor(settings.background, device=device)
    assert torch.allclose(torch.where(covered, composed, background), image, atol=1e-5)
    assert torch.allclose(terms["sum"], image, atol=1e-5)


@pytest.mark.parametrize("shader", ["hard-gouraud", "hard-flat", "soft-phong", "soft-gouraud"])
def test_terms_sum_to_every_shader(sphere, device, shader):
    base = SOFT if shader.startswith("soft") else HARD
    out = shading.shading_terms(sphere, base.replace(shader=shader, light="directional"), device=device)
    terms = out["terms"]
    assert torch.allclose(terms["sum"], terms["final"], atol=1e-5)
    assert terms["diffuse"].max() > 0.1


def test_ambient_light_has_no_diffuse_or_specular(sphere, device):
    terms = shading.shading_terms(sphere, HARD.replace(light="ambient"), device=device)["terms"]
    assert terms["diffuse"].abs().max() == 0 and terms["specular"].abs().max() == 0
    assert torch.allclose(terms["sum"], terms["final"], atol=1e-6)


@pytest.mark.parametrize("settings", [HARD, SOFT], ids=["hard", "soft"])
def test_silhouette_alpha_matches_pix_to_face_coverage(sphere, device, settings):
    result = shading.render(sphere, settings.replace(shader="soft-silhouette"), device=device)
    covered = (result.fragments.pix_to_face >= 0).any(-1)[0]  # (H, W)
    alpha = result.alpha[0]
    assert torch.equal(alpha > 0, covered)
    if settings.blur_radius == 0:  # inside a face the signed distance is <= 0, so its probability is >= 1/2
        assert alpha[covered].min() >= 0.5
        assert torch.equal(alpha >= 0.5, covered)


def test_buffers_are_pictures_of_the_fragments(sphere, device):
    out = shading.buffers(sphere, SOFT.replace(shader="soft-phong"), device=device)
    frags = out["fragments"]
    covered = frags.pix_to_face[0, ..., 0] >= 0
    assert set(out["images"]) == {"depth", "pix_to_face", "barycentric", "normals", "silhouette"}
    for name, img in out["images"].items():
        assert img.shape == (SIZE, SIZE, 3), name
        assert img.min() >= 0 and img.max() <= 1, name
    assert out["summary"]["covered_pixels"] == int(covered.sum())
    bary = out["images"]["barycentric"]
    assert torch.allclose(bary[covered].sum(-1), torch.ones(int(covered.sum()), device=device), atol=1e-4)
    assert bary[~covered].abs().max() == 0
    lo, hi = out["summary"]["depth_range"]
    assert 0 < lo < hi < RenderSettings().dist + 1.5


def test_shaders_differ_and_render_every_mesh(device):
    for name in PROCEDURAL:
        mesh = load_mesh(name, device)
        images = {
            sh: shading.render(mesh, HARD.replace(shader=sh), device=device).image for sh in ("hard-phong", "hard-flat")
        }
        assert not torch.equal(images["hard-phong"], images["hard-flat"]), name


def test_gouraud_on_a_uv_textured_mesh(device):
    sphere = load_mesh("ico-sphere", "cpu")
    verts = sphere.verts_packed().numpy()
    uvs = (verts[:, :2] + 1) / 2  # a planar projection as texture coordinates
    checker = ((np.indices((16, 16)).sum(0) % 2) * 255).astype(np.uint8)
    texture = np.stack([checker, 255 - checker, np.full_like(checker, 128)], -1)
    mesh = mesh_from_arrays(verts, sphere.faces_packed().numpy(), verts_uvs=uvs, texture=texture, device=device)
    phong = shading.render(mesh, HARD, device=device)
    gouraud = shading.render(mesh, HARD.replace(shader="hard-gouraud"), device=device)
    assert any("vertex colours" in n for n in gouraud.notes)
    assert phong.image.std() > 0.05 and gouraud.image.std() > 0.02


def test_memory_guard_refuses_or_lowers(sphere, device):
    assert raster_bytes(2, 10, 20, 3) == 2 * 10 * 20 * 3 * 48
    big = RenderSettings(image_size=1024, faces_per_pixel=100, memory_budget_mb=256)  # needs ~4.7 GiB
    with pytest.raises(MemoryBudgetError, match="MiB"):
        guard_memory(big)
    with pytest.raises(MemoryBudgetError):
        shading.render(sphere, big, device=device)  # refused before anything is allocated
    lowered, notes = guard_memory(big.replace(on_overflow="lower"))
    assert lowered.faces_per_pixel == 5 and lowered.image_size == 1024 and "Lowered" in notes[0]
    assert raster_bytes(1, 1024, 1024, lowered.faces_per_pixel) <= 256 * 2**20
    tiny_budget, notes = guard_memory(big.replace(on_overflow="lower", memory_budget_mb=1))
    assert tiny_budget.faces_per_pixel == 1 and tiny_budget.image_size < 1024
    assert raster_bytes(1, tiny_budget.image_size, tiny_budget.image_size, 1) <= 2**20
    ok, notes = guard_memory(HARD)
    assert ok == HARD and notes == []


def test_settings_round_trip_and_validation():
    s = RenderSettings.book_soft(light="directional", background=(0.0, 0.1, 0.2), camera="orthographic")
    assert RenderSettings.from_dict(s.to_dict()) == s
    assert RenderSettings.from_dict({"background": "#ff0000", "image_size": "64"}).background == (1.0, 0.0, 0.0)
    assert RenderSettings.from_dict({"light-xyz": "1, 2, 3"}).light_xyz == (1.0, 2.0, 3.0)
    for bad, message in (
        ({"shaderr": "hard-phong"}, "Unknown render setting"),
        ({"shader": "toon"}, "Unknown shader"),
        ({"image_size": 5}, "Image size"),
        ({"image_size": 64.5}, "image_size must be"),
        ({"faces_per_pixel": 0}, "Faces per pixel"),
        ({"light": "directional", "light_xyz": [0, 0, 0]}, "non-zero direction"),
        ({"background": "#12"}, "not a colour"),
        ({"light_diffuse": [2, 0, 0]}, "three numbers in"),
        ({"dist": float("nan")}, "between"),
    ):
        with pytest.raises(ValueError, match=message):
            RenderSettings.from_dict(bad)


def test_orthographic_and_directional_render(sphere, device):
    s = HARD.replace(camera="orthographic", light="directional", light_xyz=(0.0, 1.0, 1.0))
    result = shading.render(sphere, s, device=device)
    assert (result.fragments.pix_to_face[..., 0] >= 0).float().mean() > 0.2


def test_compare_reports_differences(sphere, device):
    same = shading.compare(sphere, HARD, HARD, device=device)
    assert same["stats"]["max_abs_diff"] == 0 and same["stats"]["psnr_db"] is None
    diff = shading.compare(sphere, HARD, HARD.replace(shader="hard-flat"), gain=4, device=device)
    assert diff["stats"]["mean_abs_diff"] > 0 and diff["stats"]["changed_settings"] == {
        "shader": ["hard-phong", "hard-flat"]
    }
    assert diff["diff"].shape == (SIZE, SIZE, 3)
    with pytest.raises(ValueError, match="same image size"):
        shading.compare(sphere, HARD, HARD.replace(image_size=64), device=device)


def test_turntable_turns(sphere, device):
    frames = list(shading.turntable(sphere, HARD.replace(shader="hard-flat"), 4, device=device, chunk=3))
    assert len(frames) == 4 and all(f.shape == (SIZE, SIZE, 3) for f in frames)
    assert not torch.equal(frames[0], frames[1])


def test_bin_size_on_cpu_falls_back_with_a_note(sphere):
    result = shading.render(sphere, HARD.replace(bin_size=8), device="cpu")
    assert any("Bin size 8 ignored" in n for n in result.notes)
    assert torch.equal(result.rgba, shading.render(sphere, HARD.replace(bin_size=0), device="cpu").rgba)


def test_unknown_mesh_is_a_clear_error():
    with pytest.raises(ValueError, match="No mesh called"):
        load_mesh("teapot-that-is-not-there")


def test_turntable_refuses_frames_that_would_not_fit_in_memory(tmp_path):
    from pipelines.shading import turntable as shading_turntable

    cfg = shading_turntable.Config(frames=720, image_size=2048, out_dir=tmp_path)  # 720 x 2048^2 x 3 B = 8.4 GiB
    with pytest.raises(ValueError, match="GiB of pictures"):
        next(shading_turntable.run(cfg))
    assert not any(tmp_path.iterdir()), "refused before rendering or writing anything"
