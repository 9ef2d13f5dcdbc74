"""Detection mode: floor scenes (boxes match masks), box AP50 against hand-computed cases, a tiny Mask R-CNN step,
crops mapped back onto their pixels, and the predict pipeline on a held-out scene and on uploads."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch3d.structures import Meshes

from pipelines.core.events import Done
from pipelines.meshrcnn import detect_train, detector, frame, predict, scene_mode, scenes
from pipelines.meshrcnn.box_ap import ImageBoxes, average_precision
from pipelines.meshrcnn.checkpoint import CheckpointError
from pipelines.meshrcnn.objects import CATEGORIES


def _split(first: int, n: int, size: int) -> scenes.SceneSplit:
    gen = scenes.build_scenes(first, n, image_size=size)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def test_scene_boxes_match_their_masks():
    split = _split(scenes.HELD_OUT_SCENES, 4, 64)
    assert sum(len(s.objects) for s in split.scenes) >= 4
    for i, scene in enumerate(split.scenes):
        assert all(o.shape_id >= 10 * scenes.HELD_OUT_SCENES for o in scene.objects)  # never drawn in training
        t = split.targets(i)
        assert t.masks.shape[0] == len(t.boxes) == len(t.labels)
        assert (t.masks.sum(0) <= 1).all(), "instance masks overlap"
        for box, mask, label in zip(t.boxes, t.masks, t.labels):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            assert 1 <= int(label) <= len(CATEGORIES)


def test_ap50_against_hand_computed_cases():
    truth = [ImageBoxes(torch.tensor([[0, 0, 10, 10.0], [20, 20, 30, 30]]), torch.tensor([1, 1]))]
    # ranked: a hit, a miss, a hit -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1; the envelope reads 1 at the 51
    # recall points up to 0.5 and 2/3 at the 50 above
    preds = [
        ImageBoxes(
            torch.tensor([[0, 0, 10, 10.0], [50, 50, 60, 60], [21, 21, 30, 30]]),
            torch.tensor([1, 1, 1]),
            torch.tensor([0.9, 0.8, 0.7]),
        )
    ]
    assert average_precision(preds, truth) == pytest.approx((51 + 50 * 2 / 3) / 101)
    # IoU 0.36 is no match at 0.5; the right box with the wrong category counts only class-agnostic
    shifted = [ImageBoxes(torch.tensor([[4, 4, 14, 14.0]]), torch.tensor([1]), torch.tensor([0.9]))]
    assert average_precision(shifted, truth[:1]) == 0.0
    wrong = [ImageBoxes(truth[0].boxes.clone(), torch.tensor([2, 2]), torch.tensor([0.9, 0.8]))]
    assert average_precision(wrong, truth) == 0.0
    assert average_precision(wrong, truth, class_agnostic=True) == pytest.approx(1.0)
    # two categories, one found perfectly and one half found: the mean of 1 and 51/101
    truth2 = [ImageBoxes(torch.tensor([[0, 0, 10, 10.0], [20, 20, 30, 30], [40, 40, 50, 50]]), torch.tensor([1, 2, 2]))]
    found2 = [
        ImageBoxes(torch.tensor([[0, 0, 10, 10.0], [20, 20, 30, 30]]), torch.tensor([1, 2]), torch.tensor([0.5, 0.6]))
    ]
    assert average_precision(found2, truth2) == pytest.approx((1 + 51 / 101) / 2)
    assert math.isnan(
        average_precision(
            [ImageBoxes(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0))],
            [ImageBoxes(torch.zeros(0, 4), torch.zeros(0))],
        )
    )


def test_a_tiny_detector_trains_with_finite_losses_and_round_trips(tmp_path: Path):
    cfg = detect_train.Config.tiny()
    split = _split(0, 2, cfg.image_size)
    torch.manual_seed(0)
    model = detector.build(cfg.spec())
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    for step in range(2):
        losses = detect_train.train_step(cfg, model, optimizer, split, step, torch.device("cpu"))
        assert set(losses) >= {"classifier", "box_reg", "mask", "objectness", "rpn_box_reg"}
        assert all(math.isfinite(v) for v in losses.values())
    path = detector.save(tmp_path / "det.pt", model, cfg.spec(), {"step": 2})
    loaded, spec, info = detector.load(path)
    assert spec == cfg.spec() and info["step"] == 2
    images = split.images.float() / 255
    a, b = detector.detect(model, images), detector.detect(loaded, images)
    assert all(torch.equal(x.boxes, y.boxes) for x, y in zip(a, b))
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a studio Mesh R-CNN detector"):
        detector.load(tmp_path / "other.pt")


def test_placed_meshes_keep_their_pixels():
    verts = torch.tensor([[0.2, -0.1, -1.3], [-0.3, 0.25, -1.6], [0.0, 0.0, -1.4]])
    meshes = Meshes([verts], [torch.tensor([[0, 1, 2]])])
    window = torch.tensor([[30.0, 50.0, 70.0, 90.0]])  # a 40 px crop of a 128 px image
    placed = scene_mode.place(meshes, window, 128).verts_list()[0]
    crop_ndc, full_ndc = frame.project(verts), frame.project(placed)
    c, ax, ay = 40 / 128, 100 / 128 - 1, 1 - 140 / 128
    assert torch.allclose(full_ndc[:, 0], ax + c * crop_ndc[:, 0], atol=1e-5)
    assert torch.allclose(full_ndc[:, 1], ay + c * crop_ndc[:, 1], atol=1e-5)
    assert (placed[:, 2] < 0).all()
    # a crop of the whole picture with a full mask is the picture itself
    image = torch.rand(16, 16, 3)
    crop = scene_mode.crop_objects(
        image, torch.tensor([[0.0, 0.0, 16.0, 16.0]]), torch.ones(1, 16, 16, dtype=torch.bool), 16
    )
    assert torch.allclose(crop[0], image, atol=1e-5)


def test_detection_mode_on_a_held_out_scene_with_true_boxes(tmp_path: Path):
    cfg = dataclasses.replace(
        predict.Config.tiny(), mode="detection", sample=0, true_boxes=True, device="cpu", out_dir=tmp_path
    )
    done = [e for e in predict.run(cfg) if isinstance(e, Done)][0]
    n = int(done.metrics["objects"])
    assert n >= 2 and done.metrics["true_found"] == n and done.metrics["false_boxes"] == 0
    assert "true boxes" in done.info["detection"] and done.info["true_boxes"]
    for key in ("detection", "overlay", "objects", "refined_glb", "cubified_glb", "object1_obj"):
        assert done.files[key].stat().st_size > 0


def test_detection_mode_uploads(tmp_path: Path):
    floor = tmp_path / "floor.png"
    Image.fromarray(np.full((96, 96, 3), 140, np.uint8)).save(floor)
    base = dataclasses.replace(predict.Config.tiny(), mode="detection", image=floor, device="cpu", out_dir=tmp_path)
    with pytest.raises(ValueError, match="true boxes exist only for held-out scenes"):
        list(predict.run(dataclasses.replace(base, true_boxes=True)))
    # an untrained detector scores nothing near 0.5 on a plain floor: "no object", said plainly
    torch.manual_seed(0)
    spec = detect_train.Config.tiny().spec()
    path = detector.save(tmp_path / "det.pt", detector.build(spec), spec, {})
    done = [e for e in predict.run(dataclasses.replace(base, detector=path)) if isinstance(e, Done)][0]
    assert done.metrics["object_found"] == 0.0 and done.info["message"].startswith("No object found")


def test_detector_training_resumes_at_its_step(tmp_path: Path):
    cfg = dataclasses.replace(detect_train.Config.tiny(), device="cpu", out_dir=tmp_path / "a")
    first = [e for e in detect_train.run(cfg) if isinstance(e, Done)][0]
    again = dataclasses.replace(cfg, steps=5, resume=first.files["detector"], out_dir=tmp_path / "b")
    done = [e for e in detect_train.run(again) if isinstance(e, Done)][0]
    assert first.metrics["steps"] == 3 and done.metrics["steps"] == 5
    assert done.info["history"]["step"] == [3.0, 5.0]
