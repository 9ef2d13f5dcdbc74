"""The Shape-and-pose pipeline: pose presets and parsing, a run writes what it promises, and the modules the SMPL
tab imports from keep the names it takes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipelines.smpl import pipeline as smpl


def test_pose_presets_and_parsing():
    for name in smpl.POSE_PRESETS:
        pose = smpl.preset_pose(name, seed=1)
        assert pose.shape == (24, 3) and np.isfinite(pose).all()
    assert not np.allclose(smpl.preset_pose("random", 1), smpl.preset_pose("random", 2))
    with pytest.raises(ValueError, match="72 values"):
        smpl.parse_pose([0.0] * 69)
    with pytest.raises(ValueError, match="NaN"):
        smpl.parse_pose([float("nan")] * 72)
    with pytest.raises(ValueError, match="10 shape coefficients"):
        smpl.parse_betas([0.0] * 11, 10)
    with pytest.raises(ValueError, match="Unknown pose preset"):
        smpl.preset_pose("moonwalk")


def test_smpl_run_exports_what_it_promises(tmp_path):
    cfg = dataclasses.replace(smpl.Config.tiny(), out_dir=tmp_path, device="cpu", exports=("glb", "obj"), betas=(1.0,))
    done = list(smpl.run(cfg))[-1]
    assert {"glb", "obj", "heat_glb", "render"} <= set(done.files)
    obj = done.files["obj"].read_text().splitlines()
    assert sum(line.startswith("v ") for line in obj) == done.metrics["vertices"]
    assert 1.5 < done.metrics["height_m"] < 2.1
    with pytest.raises(ValueError, match="Unknown joint"):
        list(smpl.run(dataclasses.replace(cfg, heat_joint="tail")))


def test_names_the_tab_imports_stay_importable():
    """`tabs/smpl.py` takes these from `body_model`, `pipeline` and `smplify`; they now live in smaller modules."""
    from pipelines.smpl import body_model, keypoints, layout, model_files, poses, procedural_body, smplify
    from pipelines.smpl.body_model import JOINT_NAMES, PROCEDURAL, SHAPE_NAMES

    assert body_model.find_models is model_files.find_models and body_model.model_in_use is model_files.model_in_use
    assert SHAPE_NAMES is procedural_body.SHAPE_NAMES and PROCEDURAL == model_files.PROCEDURAL
    assert JOINT_NAMES is layout.JOINT_NAMES
    assert smpl.preset_pose is poses.preset_pose and smpl.parse_pose is poses.parse_pose
    assert smpl.parse_betas is poses.parse_betas and smpl.POSE_PRESETS is poses.POSE_PRESETS
    assert callable(smpl.pose_view) and smpl.EXPORTS == ("glb", "obj")
    assert smplify.load_upload is keypoints.load_upload and smplify.SOURCES == ("synthetic", "upload")
    for module in (body_model, smpl, smplify):
        assert all(hasattr(module, name) for name in module.__all__), module.__name__
