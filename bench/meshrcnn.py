"""Mesh R-CNN benchmark: inference ms per image (the shipped studio model at 64 px, and the official ResNet-50 /
48^3 layout at 137 px with random weights), training steps/s (voxel warm-up and full steps of the quick preset),
detection mode's ms per 128 px scene (the detector alone, and detector + crops + meshes for every object) and the
detector's training steps/s, on the CPU and, when CUDA is present, the GPU; then the quick preset from scratch and
its held-out F1@0.3 after its time budget.

`python -m bench meshrcnn` (set OMP_NUM_THREADS / the load in mind: the figures are wall time on this machine)."""

from __future__ import annotations

import dataclasses
import os
import time

import torch

from pipelines.core.events import Done
from pipelines.meshrcnn import checkpoint, data, detect_train, detector, predict, scene_mode, scenes, train
from pipelines.meshrcnn.losses import mesh_losses, total_loss, voxel_loss
from pipelines.meshrcnn.model import ModelSpec, VoxMesh

REPEATS = 5


def _devices() -> list[torch.device]:
    return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def inference_ms(model: VoxMesh, size: int, device: torch.device) -> float:
    """Median wall ms of image -> voxels -> cubify -> refined mesh for one image (after one warm-up)."""
    model = model.to(device).eval()
    sample = data.make_sample(data.HELD_OUT_OFFSET)
    image, _ = data.render([sample], size, device)
    times = []
    with torch.no_grad():
        for _ in range(REPEATS + 1):
            _sync(device)
            t0 = time.perf_counter()
            model(image)
            _sync(device)
            times.append((time.perf_counter() - t0) * 1000)
    return sorted(times[1:])[len(times[1:]) // 2]


def steps_per_s(cfg: train.Config, device: torch.device, voxel_only: bool, n: int = 6) -> float:
    """Training steps per second of `cfg`'s network and batch on shapes rendered once (after one warm-up step)."""
    split = _finish(data.build_split(0, cfg.batch_size, image_size=cfg.image_size, voxel_size=cfg.voxel_size,
                                     n_points=cfg.gt_points, zrange=data.STUDIO_ZRANGE, device=device))  # fmt: skip
    model = VoxMesh(cfg.spec())
    if not voxel_only and predict.SHIPPED.is_file():
        # An untrained voxel head cubifies the whole grid (3.5k vertices per mesh); start full steps from the shipped
        # weights (the quick preset's network) so the meshes have the size they have in training after the warm-up.
        shipped, _ = checkpoint.load_model(predict.SHIPPED)
        if shipped.spec == model.spec:
            model.load_state_dict(shipped.state_dict())
    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    images = split.images.to(device).float() / 255
    times = []
    for _ in range(n + 1):
        _sync(device)
        t0 = time.perf_counter()
        scores, _, stages = model(images, voxel_only=voxel_only)
        parts = {"voxel": voxel_loss(scores, split.voxels.to(device))}
        if not voxel_only:
            parts.update(mesh_losses(stages, split.points.to(device), split.normals.to(device), cfg.pred_points, False))
        optimizer.zero_grad()
        total_loss(parts, cfg.weights()).backward()
        optimizer.step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 1.0 / (sum(times[1:]) / n)


def _finish(gen):
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def _median_ms(fn, device: torch.device) -> float:
    times = []
    for _ in range(REPEATS + 1):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1000)
    return sorted(times[1:])[len(times[1:]) // 2]


def detection_ms(device: torch.device) -> tuple[float, float, int, str]:
    """Median ms per 128 px held-out scene: the detector alone, and the whole detection mode (detector, crops, the
    studio model on every object, meshes placed back); the scene's object count; which detector."""
    if scene_mode.SHIPPED_DETECTOR.is_file():
        det, _, _ = detector.load(scene_mode.SHIPPED_DETECTOR)
        which = "shipped detector"
    else:
        det, which = detector.build(detect_train.Config().spec()).eval(), "untrained detector, true boxes for meshes"
    det = det.to(device)
    scene = scenes.make_scene(scenes.HELD_OUT_SCENES)
    images, instances = scenes.render_scenes([scene], scenes.IMAGE_SIZE, device)
    truth = scenes.targets(scene, instances[0].cpu())
    model, info = checkpoint.load_model(predict.SHIPPED)
    model, size = model.to(device), int(info["config"]["image_size"])

    def whole() -> None:
        found = detector.detect(det, images)[0].above(detector.SCORE_THRESH).distinct()
        boxes, masks = (found.boxes, found.masks) if len(found) else (truth.boxes, truth.masks)
        windows = scene_mode.crop_windows(boxes)
        crops = scene_mode.crop_objects(images[0], windows, masks, size)
        with torch.no_grad():
            _, cubified, stages = model(crops)
        scene_mode.place(stages[-1], windows.to(device), scenes.IMAGE_SIZE)

    alone = _median_ms(lambda: detector.detect(det, images), device)
    return alone, _median_ms(whole, device), len(truth.boxes), which


def detector_steps_per_s(device: torch.device, n: int = 4) -> float:
    """The detector's training steps per second (batch 4 of 128 px scenes, the shipped command's settings)."""
    cfg = dataclasses.replace(detect_train.Config(), batch_size=4)
    split = _finish(scenes.build_scenes(0, 8, image_size=cfg.image_size, device=device))
    model = detector.build(cfg.spec()).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    times = []
    for step in range(n + 1):
        _sync(device)
        t0 = time.perf_counter()
        detect_train.train_step(cfg, model, optimizer, split, step, device)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 1.0 / (sum(times[1:]) / n)


def detection_rows() -> None:
    print("\n| detection mode (128 px scene) | CPU | GPU |\n|---|---|---|")
    results = [detection_ms(d) for d in _devices()]
    pad = ["not lent"] * (2 - len(results))
    print(
        f"| detector alone, ms per image ({results[0][3]}) | "
        + " | ".join([f"{r[0]:.0f}" for r in results] + pad)
        + " |"
    )
    print(f"| detector + voxels and meshes for {results[0][2]} objects, ms per image | "
          + " | ".join([f"{r[1]:.0f}" for r in results] + pad) + " |")  # fmt: skip
    cells = [f"{detector_steps_per_s(d):.2f}" for d in _devices()]
    print("| detector training, steps/s (batch 4) | " + " | ".join(cells + pad) + " |")


def quick_run() -> dict[str, float]:
    """The quick preset from scratch on the CPU: its held-out F1@0.3 (full and cubify alone), voxel IoU, minutes."""
    t0 = time.monotonic()
    done = [e for e in train.run(dataclasses.replace(train.Config.quick(), device="cpu")) if isinstance(e, Done)][0]
    return {**done.metrics, "wall_min": (time.monotonic() - t0) / 60}


def main() -> None:
    print(f"Mesh R-CNN benchmark · CPU cores {os.cpu_count()}, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    models = []
    if predict.SHIPPED.is_file():
        shipped, info = checkpoint.load_model(predict.SHIPPED)
        models.append((f"studio model ({info['config']['image_size']} px, {shipped.spec.voxel_size}³)", shipped,
                       int(info["config"]["image_size"])))  # fmt: skip
    official = VoxMesh(ModelSpec.official())
    with torch.no_grad():  # random weights voxelise noise (44k vertices); an empty prediction cubifies the central
        official.voxel_head.predictor.bias.fill_(-10.0)  # V/2 block instead, an object-sized mesh (about 3.5k verts)
    models.append(("official layout (ResNet-50, 137 px, 48³; random weights, central-block mesh)", official, 137))
    print("\n| inference, ms per image | CPU | GPU |\n|---|---|---|")
    for label, model, size in models:
        cells = [f"{inference_ms(model, size, d):.0f}" for d in _devices()]
        print(f"| {label} | " + " | ".join(cells + ["not lent"] * (2 - len(cells))) + " |")
    cfg = train.Config.quick()
    print("\n| training, steps/s (quick preset, batch 8) | CPU | GPU |\n|---|---|---|")
    for label, voxel_only in (
        ("voxel warm-up step", True),
        ("full step (voxels + 3 refinement stages; from the shipped weights)", False),
    ):
        cells = [f"{steps_per_s(cfg, d, voxel_only):.2f}" for d in _devices()]
        print(f"| {label} | " + " | ".join(cells + ["not lent"] * (2 - len(cells))) + " |")
    detection_rows()
    m = quick_run()
    print(f"\nquick preset from scratch (CPU): {m['steps']:.0f} steps, {m['wall_min']:.1f} min wall; held-out "
          f"F1@0.3 {m['f1@0.3']:.1f}% (cubify alone {m['cubify_f1@0.3']:.1f}%), F1@0.5 {m['f1@0.5']:.1f}%, "
          f"voxel IoU {m['voxel_iou']:.3f}")  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.1f}")
