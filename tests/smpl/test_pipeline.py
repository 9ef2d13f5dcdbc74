"""The Shape-and-pose pipeline: pose presets and parsing, a run writes what it promises, and the modules the SMPL
tab imports from keep the names it takes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipelines.smpl import pipeline as smpl
from pipelines.smpl.poses import POSE_PRESETS, parse_betas, parse_pose, preset_pose


def test_pose_presets_and_parsing():
    for name in POSE_PRESETS:
        pose = preset_pose(name, seed=1)
        assert pose.shape == (24, 3) and np.isfinite(pose).all()
    assert not np.allclose(preset_pose("random", 1), preset_pose("random", 2))
    with pytest.raises(ValueError, match="72 values"):
        parse_pose([0.0] * 69)
    with pytest.raises(ValueError, match="NaN"):
        parse_pose([float("nan")] * 72)
    with pytest.raises(ValueError, match="10 shape coefficients"):
        parse_betas([0.0] * 11, 10)
    with pytest.raises(ValueError, match="Unknown pose preset"):
        preset_pose("moonwalk")


def test_smpl_run_exports_what_it_promises(tmp_path):
    cfg = dataclasses.replace(smpl.Config.tiny(), out_dir=tmp_path, device="cpu", exports=("glb", "obj"), betas=(1.0,))
    done = list(smpl.run(cfg))[-1]
    assert {"glb", "obj", "heat_glb", "render"} <= set(done.files)
    obj = done.files["obj"].read_text().splitlines()
    assert sum(line.startswith("v ") for line in obj) == done.metrics["vertices"]
    assert 1.5 < done.metrics["height_m"] < 2.1
    with pytest.raises(ValueError, match="Unknown joint"):
        list(smpl.run(dataclasses.replace(cfg, heat_joint="tail")))
