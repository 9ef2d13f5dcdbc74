"""Tiny training: finite, falling losses; the checkpoint it writes resumes and loads for prediction."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.core.events import Done, Preview, Progress
from pipelines.meshrcnn import predict, train


def _events(cfg) -> list:
    return list(train.run(cfg))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[list, Path]:
    out = tmp_path_factory.mktemp("meshrcnn-tiny")
    cfg = dataclasses.replace(train.Config.tiny(), out_dir=out)
    return _events(cfg), out


def test_tiny_training_losses_finite_and_falling(trained):
    events, out = trained
    losses = [e.losses for e in events if isinstance(e, Progress) and "voxel" in e.losses]
    assert len(losses) == train.Config.tiny().steps
    assert all(math.isfinite(v) for step in losses for v in step.values())
    assert losses[-1]["voxel"] < losses[0]["voxel"]
    mesh_steps = [step for step in losses if "chamfer" in step]
    assert mesh_steps and mesh_steps[-1]["chamfer"] < mesh_steps[0]["chamfer"]
    done = events[-1]
    assert isinstance(done, Done)
    assert [row[0] for row in done.info["ladder"]] == [train.evaluate.RUNG_LABELS[r] for r in train.evaluate.RUNGS]
    assert {"f1@0.3", "cubify_f1@0.3", "voxel_iou", "sphere/f1@0.3"} <= set(done.metrics)
    assert all(p.is_file() for p in done.files.values())
    assert any(isinstance(e, Preview) and e.image is not None for e in events)


def test_resume_continues_from_the_checkpoint(trained):
    _, out = trained
    resumed = dataclasses.replace(
        train.Config.tiny(), steps=9, resume=out / train.CHECKPOINT_NAME, out_dir=out / "resumed", eval_every=100
    )
    steps = [e.step for e in _events(resumed) if isinstance(e, Progress) and "voxel" in e.losses]
    assert steps == [9]


def test_predict_on_held_out_sample_and_bad_pictures(trained, tmp_path: Path):
    _, out = trained
    base = dataclasses.replace(predict.Config.tiny(), weights="file", checkpoint=out / train.MODEL_NAME)
    done = list(predict.run(dataclasses.replace(base, sample=2, out_dir=tmp_path / "a")))[-1]
    assert done.metrics["object_found"] == 1.0 and "cubify_f1@0.3" in done.metrics
    assert {"refined_obj", "refined_ply", "refined_glb", "cubified_glb", "overlay", "detection"} <= set(done.files)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((40, 60, 3), 210, np.uint8)).save(blank)
    empty = list(predict.run(dataclasses.replace(base, image=blank, out_dir=tmp_path / "b")))[-1]
    assert empty.metrics["object_found"] == 0.0 and "No object" in empty.info["message"]
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(ValueError, match="not a picture"):
        list(predict.run(dataclasses.replace(base, image=text)))
    cut = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(cut)
    cut.write_bytes(cut.read_bytes()[:300])
    with pytest.raises(ValueError):
        list(predict.run(dataclasses.replace(base, image=cut)))
    with pytest.raises(ValueError, match="official checkpoint"):
        list(predict.run(dataclasses.replace(base, weights="official", models_dir=tmp_path)))
