"""Pose: the batched soft rasteriser against PyTorch3D's, pose recovery from a 30° start, tracking, bad input."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.core.events import Done
from pipelines.pose import pipeline as pose
from pipelines.pose import track as pose_track

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def _ellipsoid(device: torch.device):
    from pytorch3d.structures import Meshes
    from pytorch3d.utils import ico_sphere

    sphere = ico_sphere(2)
    verts = sphere.verts_packed() * torch.tensor([0.9, 0.5, 0.7]) + torch.tensor([0.1, 0.0, 0.0])
    return Meshes([verts.to(device)], [sphere.faces_packed().to(device)])


def _done(events) -> Done:
    events = list(events)
    assert isinstance(events[-1], Done)
    return events[-1]


# ---------------------------------------------------------------------------------------------------------------
# The rasteriser: the same fragments and gradients as PyTorch3D's MeshRasterizer
# ---------------------------------------------------------------------------------------------------------------


def test_soft_fragments_and_silhouette_gradient_match_pytorch3d(device):
    from pytorch3d.renderer import BlendParams, MeshRasterizer, RasterizationSettings
    from pytorch3d.renderer.blending import sigmoid_alpha_blend

    mesh = _ellipsoid(device)
    sigma, size, k = 1e-3, 32, 60  # K above the most faces any pixel can reach, so nothing is cut off
    out = {}
    for backend in ("library", "torch"):
        position = pose.spherical_to_position(2.5, 20.0, 35.0)[None].to(device).requires_grad_(True)
        cameras = pose.make_cameras(position)
        if backend == "library":  # PyTorch3D's own rasteriser, forward and backward (its dists' gradient is right)
            settings = RasterizationSettings(size, pose.BLUR_FACTOR * sigma, k, perspective_correct=True)
            frags = MeshRasterizer(cameras=cameras, raster_settings=settings)(mesh)
        else:
            frags = pose.rasterize(mesh, cameras, size, pose.BLUR_FACTOR * sigma, k, backend)
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
    cameras = pose.make_cameras(position)
    frags = pose.rasterize(mesh, cameras, 32, pose.BLUR_FACTOR * sigma, 60, backend)
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
    mesh = _ellipsoid(torch.device("cpu"))
    mesh.textures = TexturesVertex([torch.rand(mesh.verts_packed().shape, generator=g)])
    target = torch.rand(32, 32, 3, generator=g)
    p0 = pose.spherical_to_position(2.5, 20.0, 35.0)[None]
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
    mesh = _ellipsoid(device)
    position = pose.spherical_to_position(2.2, -10.0, 120.0)[None].to(device)
    ref = pose.rasterize(mesh, pose.make_cameras(position), 40, 0.0, 1, "pytorch3d")
    got = pose.rasterize(mesh, pose.make_cameras(position), 40, 0.0, 1, "torch")
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

    mesh, _ = pose.load_mesh((), Path("."), 1, torch.device("cpu"))
    cameras = pose.make_cameras(pose.spherical_to_position(2.7, 15.0, 50.0)[None])
    sigma = 1e-4

    def silhouette(k: int, order: str) -> torch.Tensor:
        frags = pose.rasterize(mesh, cameras, 64, pose.BLUR_FACTOR * sigma, k, "torch", order)
        colors = torch.ones((*frags.pix_to_face.shape, 3))
        return sigmoid_alpha_blend(colors, frags, BlendParams(sigma=sigma))[0, ..., 3]

    full = silhouette(300, "depth")
    assert (silhouette(16, "depth") - full).abs().max() > 0.5
    assert (silhouette(16, "distance") - full).abs().max() < 0.05


def test_camera_helpers_round_trip():
    position = pose.spherical_to_position(3.0, 25.0, -40.0)
    assert pose.position_to_spherical(position) == pytest.approx((3.0, 25.0, -40.0), abs=1e-4)
    turned = pose.turn(position, 30.0, torch.Generator().manual_seed(0))
    cos = float(torch.dot(position, turned) / (position.norm() * turned.norm()))
    assert math.degrees(math.acos(min(1.0, cos))) == pytest.approx(30.0, abs=1e-3)
    R, _ = pose.look_at(position[None])
    assert float(pose.rotation_error_deg(R, R)[0]) == pytest.approx(0.0, abs=1e-2)


# ---------------------------------------------------------------------------------------------------------------
# Behaviour
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_quick_preset_recovers_pose_from_30_degrees(tmp_path):
    cfg = dataclasses.replace(
        pose.Config.quick(), out_dir=tmp_path, device="cpu", start_offset_deg=30.0, videos=("gif",)
    )
    done = _done(pose.run(cfg))
    m = done.metrics
    assert m["start_error_deg"] == pytest.approx(30.0, abs=1.0)
    assert m["error_deg"] < 5.0, m
    assert m["error_dist"] < 0.25, m
    assert done.files["gif"].stat().st_size > 0 and done.files["pose"].exists()
    assert done.info["estimated_pose"]["R"] and done.info["true_pose"] is not None


def test_tracking_stays_within_bound_on_a_smooth_path(tmp_path):
    cfg = dataclasses.replace(pose_track.Config.tiny(), out_dir=tmp_path, device="cpu")
    done = _done(pose_track.run(cfg))
    m = done.metrics
    assert m["frames_within_bound"] == 1.0 and m["max_error_deg"] <= cfg.bound_deg, done.info["table"]
    assert len(done.info["table"]) == cfg.frames
    assert done.files["trajectory"].read_text().count("\n") == cfg.frames + 1
    assert done.info["figure"] is not None


def test_rgb_loss_alone_recovers_the_pose(tmp_path):
    """Soft Phong only (no silhouette term), from 20° at 48 px: the colour gradient must carry the camera home."""
    cfg = dataclasses.replace(
        pose.Config.quick(),
        out_dir=tmp_path,
        device="cpu",
        loss="rgb",
        image_sizes=(48,),
        steps=30,
        patience=0,
        start_offset_deg=20.0,
        videos=(),
    )
    m = _done(pose.run(cfg)).metrics
    assert m["error_deg"] < 0.3 * m["start_error_deg"], m


@pytest.mark.parametrize("loss", ["rgb", "both"])
def test_rgb_losses_run_on_a_textured_upload(tmp_path, loss):
    files = tuple(str(ASSETS / f"textured_cube.{ext}") for ext in ("obj", "mtl", "png"))
    cfg = dataclasses.replace(pose.Config.tiny(), out_dir=tmp_path, device="cpu", mesh_files=files, loss=loss, steps=3)
    done = _done(pose.run(cfg))
    assert math.isfinite(done.metrics["error_deg"]) and math.isfinite(done.metrics["final_loss"])


def _save_target(tmp_path: Path, size: tuple[int, int] = (72, 60)) -> tuple[str, str]:
    """A photo-like target: the toy cow rendered at (2.7, 15°, 50°), padded to a non-square image, with its mask."""
    from PIL import Image

    scene = pose.Scene(pose.load_mesh((), tmp_path, 1, torch.device("cpu"))[0], torch.device("cpu"))
    s = pose.SoftSettings(60, 1e-5, 1e-4, 4, "torch")
    with torch.no_grad():
        rgb, alpha = scene.phong(pose.spherical_to_position(2.7, 15.0, 50.0)[None], s)
    w, h = size
    image = np.ones((h, w, 3), dtype=np.uint8) * 255
    mask = np.zeros((h, w), dtype=np.uint8)
    left = (w - 60) // 2
    image[:, left : left + 60] = (rgb.numpy() * 255).astype(np.uint8)
    mask[:, left : left + 60] = ((alpha.numpy() > 0.5) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return str(tmp_path / "photo.png"), str(tmp_path / "mask.png")


def test_uploaded_image_and_mask_target(tmp_path):
    image, mask = _save_target(tmp_path)
    cfg = dataclasses.replace(
        pose.Config.tiny(),
        out_dir=tmp_path / "out",
        device="cpu",
        target_image=image,
        target_mask=mask,
        start_pose=(2.7, 10.0, 40.0),
        steps=8,
    )
    done = _done(pose.run(cfg))
    assert "error_deg" not in done.metrics and done.info["true_pose"] is None
    assert done.metrics["final_iou"] > 0.5


# ---------------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------------


def test_image_and_mask_of_different_sizes(tmp_path):
    from PIL import Image

    Image.new("RGB", (64, 48)).save(tmp_path / "a.png")
    Image.new("L", (32, 32), 255).save(tmp_path / "m.png")
    with pytest.raises(ValueError, match=r"64×48 pixels but the mask is 32×32"):
        pose.read_image_and_mask(str(tmp_path / "a.png"), str(tmp_path / "m.png"))
    cfg = dataclasses.replace(
        pose.Config.tiny(),
        out_dir=tmp_path / "o",
        target_image=str(tmp_path / "a.png"),
        target_mask=str(tmp_path / "m.png"),
    )
    with pytest.raises(ValueError, match="same size"):
        list(pose.run(cfg))


def test_empty_mask(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 40)).save(tmp_path / "a.png")
    Image.new("L", (40, 40), 0).save(tmp_path / "m.png")
    with pytest.raises(ValueError, match="The mask is empty"):
        pose.read_image_and_mask(str(tmp_path / "a.png"), str(tmp_path / "m.png"))


def test_mesh_without_faces_cannot_be_posed(tmp_path):
    (tmp_path / "points.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n")
    cfg = dataclasses.replace(pose.Config.tiny(), out_dir=tmp_path / "o", mesh_files=(str(tmp_path / "points.obj"),))
    with pytest.raises(ValueError, match="has no faces"):
        list(pose.run(cfg))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"loss": "depth"}, "Unknown loss"),
        ({"image_sizes": (8,)}, "between 16 and 1024"),
        ({"target_image": "x.png"}, "needs both an image and its mask"),
        ({"start_pose": (0.0, 1.0, 2.0)}, "start pose"),
        ({"loss": "rgb", "w_rgb": 0.0}, "weight 0"),
        ({"image_sizes": (64, 1024), "faces_per_pixel": 100}, r"1024 px with 100 faces per pixel .* MiB budget"),
    ],
)
def test_bad_settings_are_refused(tmp_path, change, message):
    cfg = dataclasses.replace(pose.Config.tiny(), out_dir=tmp_path, **change)
    with pytest.raises(ValueError, match=message):
        list(pose.run(cfg))


def test_memory_guard_passes_the_presets_and_refuses_oversized_tracking():
    for preset in ("tiny", "quick"):
        pose.validate(getattr(pose.Config, preset)())
        pose_track.validate(getattr(pose_track.Config, preset)())
    pose.validate(pose.Config())  # the full preset: 256 px, K = 100, about 300 MiB
    pose_track.validate(pose_track.Config())
    with pytest.raises(ValueError, match=r"512 px with 200 faces per pixel"):
        pose_track.validate(dataclasses.replace(pose_track.Config(), image_sizes=(512,), faces_per_pixel=200))


def test_oversized_target_images_are_refused_before_decoding(tmp_path, monkeypatch):
    from PIL import Image, PngImagePlugin

    Image.new("RGB", (64, 48)).save(tmp_path / "a.png")
    Image.new("L", (64, 48), 255).save(tmp_path / "m.png")

    def no_decoding(self):
        raise AssertionError("the image was decoded before its size was checked")

    with monkeypatch.context() as patch:
        patch.setattr(pose, "MAX_TARGET_PIXELS", 1000)
        patch.setattr(PngImagePlugin.PngImageFile, "load", no_decoding)
        with pytest.raises(ValueError, match=r"64×48 pixels, above the 0.001-megapixel limit"):
            pose.read_image_and_mask(str(tmp_path / "a.png"), str(tmp_path / "m.png"))
    with monkeypatch.context() as patch:  # PIL's own decompression-bomb error is not an OSError
        patch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
        with pytest.raises(ValueError, match=r"a\.png\) has too many pixels"):
            pose.read_image_and_mask(str(tmp_path / "a.png"), str(tmp_path / "m.png"))


def test_uploads_go_through_the_shared_loader(tmp_path):
    cpu = torch.device("cpu")
    files = tuple(str(ASSETS / f"two_materials.{ext}") for ext in ("obj", "mtl"))
    mesh, _ = pose.load_mesh(files, tmp_path / "a", 1, cpu)
    colors = mesh.textures.verts_features_packed()  # MTL Kd diffuse colours, averaged per vertex
    assert bool((colors[:, 0] > colors[:, 2] + 0.3).any()) and bool((colors[:, 2] > colors[:, 0] + 0.5).any())
    assert float(mesh.verts_packed().norm(dim=1).max()) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="MB"):
        pose.load_mesh(files, tmp_path / "b", 1, cpu, max_upload_mb=1e-5)
    (tmp_path / "dot.obj").write_text("v 1 1 1\nv 1 1 1\nv 1 1 1\nf 1 2 3\n")
    with pytest.raises(ValueError, match="no extent"):
        pose.load_mesh((str(tmp_path / "dot.obj"),), tmp_path / "c", 1, cpu)


# ---------------------------------------------------------------------------------------------------------------
# Through the app: the endpoints the tab wires
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(app_server):
    from gradio_client import Client

    url, _ = app_server
    return Client(url, verbose=False)


def _pose_inputs(source: str, image=None, mask=None) -> tuple:
    # mesh files, source, hidden distance/elevation/azimuth, image, mask, start offset, explicit start?, start
    # distance/elevation/azimuth, loss, preset, steps, lr, sizes, faces per pixel, patience, stop IoU
    return (
        None,
        source,
        2.7,
        15,
        50,
        image,
        mask,
        30,
        False,
        2.7,
        10,
        40,
        "silhouette",
        "tiny",
        6,
        0.05,
        "48",
        16,
        0,
        0,
    )


def test_pose_endpoints(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    from PIL import Image

    # outputs: status, preview, curves, metrics, files, video, pose JSON
    status, preview, curves, result, files, video, poses = client.predict(
        *_pose_inputs("hidden pose"), api_name="/pose"
    )
    assert 'data-state="done"' in status and result["start_error_deg"] == pytest.approx(30.0, abs=1.0)
    assert result["steps"] == 6 and poses["true_pose"] is not None and Path(preview).is_file()
    assert any(str(f).endswith(".gif") for f in files) and any(str(f).endswith("pose.json") for f in files)

    image, mask = _save_target(tmp_path)
    result = client.predict(*_pose_inputs("uploaded image", handle_file(image), handle_file(mask)), api_name="/pose")[3]
    assert "error_deg" not in result and result["final_iou"] > 0.3
    Image.new("L", (40, 40), 255).save(tmp_path / "small_mask.png")
    with pytest.raises(AppError, match="same size") as err:
        client.predict(
            *_pose_inputs("uploaded image", handle_file(image), handle_file(str(tmp_path / "small_mask.png"))),
            api_name="/pose",
        )
    assert "Traceback" not in str(err.value)
    Image.new("L", (72, 60), 0).save(tmp_path / "empty_mask.png")
    with pytest.raises(AppError, match="mask is empty"):
        client.predict(
            *_pose_inputs("uploaded image", handle_file(image), handle_file(str(tmp_path / "empty_mask.png"))),
            api_name="/pose",
        )

    # outputs: status, preview, curves, metrics, files, trajectory figure, per-frame table, video
    # inputs: mesh files, path, frames, motion per frame, bound, loss, preset, steps per frame, sizes
    out = client.predict(None, "orbit", 3, 3.0, 5.0, "silhouette", "tiny", 10, "48", api_name="/pose_track")
    assert len(out[6]["data"]) == 3 and out[3]["frames_within_bound"] == 1.0, out[6]
