"""SMPLify: the fit works on a seeded synthetic case, its parts do what they claim, bad keypoints get clear messages."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle

import numpy as np
import pytest
import torch

from pipelines.core.events import Done, Preview, Progress
from pipelines.smpl import body_model, keypoints, priors, smplify, smplify_fit, smplify_metrics, smplify_synthetic
from pipelines.smpl.layout import JOINT_NAMES
from pipelines.smpl.lbs import axis_angle_to_matrix
from pipelines.smpl.model_files import find_models

J = {n: i for i, n in enumerate(JOINT_NAMES)}


def body25(n: int = 25, conf: float = 0.9) -> list[float]:
    """A plausible BODY_25 person (x, y, c flattened), standing in a 400 x 600 image."""
    pts = {
        1: (200, 150), 2: (170, 155), 3: (150, 230), 4: (145, 300), 5: (230, 155), 6: (250, 230), 7: (255, 300),
        8: (200, 300), 9: (180, 300), 10: (178, 410), 11: (176, 520), 12: (220, 300), 13: (222, 410), 14: (224, 520),
    }  # fmt: skip
    out = []
    for k in range(n):
        x, y = pts.get(k, (0.0, 0.0))
        out += [x, y, conf if k in pts else 0.0]
    return out


def write_json(tmp_path, doc, name="kp.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def test_synthetic_fit_lowers_2d_and_3d_error(tmp_path):
    """Seeded: a random walking body at 256 px, 2 px noise, 2 joints missing. Bounds have slack for other seeds."""
    cfg = dataclasses.replace(
        smplify.Config.quick(), seed=2, image_size=256, camera_iters=8, stage_iters=6, out_dir=tmp_path, device="cpu"
    )
    events = list(smplify.run(cfg))
    done = events[-1]
    assert isinstance(done, Done)
    m = done.metrics
    assert m["err_2d_px"] < 4.0, m  # keypoint noise is 2 px per axis
    assert m["err_2d_px"] < 0.3 * m["init_err_2d_px"]
    assert m["pa_mpjpe_mm"] < 0.5 * m["init_pa_mpjpe_mm"], m
    assert m["mpjpe_mm"] < 0.5 * m["init_mpjpe_mm"], m
    curve = [e.losses["err_2d_px"] for e in events if isinstance(e, Progress) and "err_2d_px" in e.losses]
    assert len(curve) == cfg.camera_iters + 4 * cfg.stage_iters and curve[-1] < curve[0]
    assert sum(isinstance(e, Preview) and e.image is not None for e in events) >= 6  # initial, 5 stages, final
    params = json.loads(done.files["params"].read_text())
    assert len(params["body_pose"]) == 69 and len(params["betas"]) == 10


def test_upload_round_trip_with_smpl24_json(tmp_path):
    """The synthetic case's keypoints.json and image.png go back in as an upload and fit."""
    base = dataclasses.replace(
        smplify.Config.tiny(),
        seed=5,
        image_size=128,
        camera_iters=3,
        stage_iters=2,
        out_dir=tmp_path / "syn",
        device="cpu",
    )
    done = list(smplify.run(base))[-1]
    up = dataclasses.replace(
        base,
        source="upload",
        keypoints=str(done.files["keypoints"]),
        image=str(done.files["image"]),
        out_dir=tmp_path / "up",
    )
    events = list(smplify.run(up))
    fit = events[-1]
    assert isinstance(fit, Done) and "pa_mpjpe_mm" not in fit.metrics  # no truth for uploads
    assert fit.info["keypoints"]["layout"] == "SMPL-24" and math.isfinite(fit.metrics["err_2d_px"])
    assert fit.metrics["err_2d_px"] < fit.metrics["init_err_2d_px"]


def test_body25_maps_to_smpl_joints(tmp_path):
    kp = keypoints.load_upload(write_json(tmp_path, {"people": [{"pose_keypoints_2d": body25()}]}), "")
    assert kp.layout == "OpenPose BODY_25"
    assert kp.conf[J["left_shoulder"]] > 0 and tuple(kp.xy[J["left_shoulder"]]) == (230, 155)
    assert kp.conf[J["pelvis"]] > 0 and kp.conf[J["head"]] == 0  # the nose is not a joint
    assert kp.width > 255 and kp.height > 520  # a canvas around the keypoints when there is no image


def test_the_person_with_most_confidence_is_fitted():
    weak = body25(conf=0.2)
    strong = body25(conf=0.9)
    kp, layout, person = keypoints.parse_keypoints_json(
        json.dumps({"people": [{"pose_keypoints_2d": weak}, {"pose_keypoints_2d": strong}]})
    )
    assert person == 1 and layout == "OpenPose BODY_25" and kp[1, 2] == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{not json", "not valid JSON"),
        ({"people": []}, "has no people"),
        ({"people": [{"pose_keypoints_2d": [1.0] * 20 * 3}]}, "has 20 joints; expected 25"),
        ({"people": [{"pose_keypoints_2d": [1.0] * 74}]}, "not a multiple of 3"),
        ('{"people": [{"pose_keypoints_2d": [' + ", ".join(["NaN"] + ["1"] * 74) + "]}]}", "NaN"),
        ({"people": [{"pose_keypoints_2d": [5.0, 5.0, 0.0] * 25}]}, "every keypoint has confidence 0"),
        ({"people": [{"pose_keypoints_2d": [5.0, 5.0, -1.0] * 25}]}, "negative confidences"),
        ({"people": [{"pose_keypoints_2d": ["a", "b", "c"] * 25}]}, "numbers only"),
    ],
)
def test_bad_keypoint_json_gets_a_clear_message(tmp_path, doc, message):
    with pytest.raises(ValueError, match=message):
        keypoints.load_upload(write_json(tmp_path, doc), "")


def test_keypoints_need_a_torso_and_must_fit_the_image(tmp_path):
    no_hips = body25()
    for k in (8, 9, 12):
        no_hips[3 * k + 2] = 0.0
    with pytest.raises(ValueError, match="shoulder and the hip"):
        keypoints.load_upload(write_json(tmp_path, {"people": [{"pose_keypoints_2d": no_hips}]}), "")
    from PIL import Image

    img = tmp_path / "small.png"
    Image.new("RGB", (40, 40)).save(img)
    with pytest.raises(ValueError, match="far outside the image"):
        keypoints.load_upload(write_json(tmp_path, {"people": [{"pose_keypoints_2d": body25()}]}), str(img))
    with pytest.raises(ValueError, match="Upload a keypoint JSON"):
        list(smplify.run(dataclasses.replace(smplify.Config.tiny(), source="upload", out_dir=tmp_path, device="cpu")))


def test_camera_depth_from_similar_triangles():
    model = body_model.load()
    cfg = dataclasses.replace(smplify.Config.tiny(), noise_px=0.0, missing_joints=0, seed=3)
    syn = smplify_synthetic.make_synthetic(model, cfg, 10)
    jm = smplify_fit.JointModel.of(model, 10)
    betas = torch.tensor(syn.betas, dtype=torch.float32)[None]
    pose = torch.tensor(syn.pose, dtype=torch.float32)[None]
    center = torch.tensor([cfg.image_size / 2] * 2)
    t = smplify_fit.init_translation(
        jm, betas, pose, torch.tensor(syn.keypoints.xy, dtype=torch.float32), torch.ones(24), cfg.focal_length, center
    )
    # With the true body, the depth is right up to the torso's foreshortening (the body leans a few degrees).
    assert abs(t[0, 2].item() - syn.transl[2]) < 0.05 * syn.transl[2]


def test_robust_term_prior_and_procrustes():
    r = torch.tensor([0.5, 1000.0])
    rho = smplify_fit.geman_mcclure(r, 100.0)
    assert rho[0] == pytest.approx(0.25, rel=1e-4) and rho[1] == pytest.approx(1e4, rel=0.02)
    prior = priors.fallback_prior()
    mean = prior.mean_pose[None]
    assert prior(mean).item() == pytest.approx(0.0, abs=1e-6)
    assert (prior(mean + 0.1) > 0).all()
    bent = torch.zeros(1, 24, 3)
    bent[0, J["left_knee"], 0] = -1.0  # a knee bent backwards costs more than one bent forwards
    fwd = torch.zeros(1, 24, 3)
    fwd[0, J["left_knee"], 0] = 1.0
    assert priors.bend_penalty(bent) > priors.bend_penalty(torch.zeros(1, 24, 3)) > priors.bend_penalty(fwd)
    gen = np.random.default_rng(0)
    pts = gen.normal(size=(24, 3))
    from scipy.spatial.transform import Rotation

    moved = 1.7 * pts @ Rotation.random(random_state=1).as_matrix().T + np.array([1.0, 2.0, 3.0])
    assert np.abs(smplify_metrics.procrustes_align(pts, moved) - moved).max() < 1e-9
    assert smplify_metrics.joint_errors_mm(pts, pts + 0.01)["mpjpe_mm"] == pytest.approx(0.0, abs=1e-9)


def test_gmm_prior_from_npz_and_pkl_rules(tmp_path):
    rng = np.random.default_rng(0)
    means = rng.normal(scale=0.2, size=(3, 69))
    covars = np.stack([np.eye(69) * s for s in (0.05, 0.1, 0.2)])
    np.savez(tmp_path / "gmm_08.npz", means=means, covars=covars, weights=np.array([0.5, 0.3, 0.2]))
    prior = priors.load_prior("", tmp_path)
    assert prior.name.startswith("GMM (3 components)")
    energy = prior(torch.tensor(means, dtype=torch.float32))
    assert energy.shape == (3,) and torch.isfinite(energy).all()
    assert priors.load_prior("", None).name.startswith("fallback")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "gmm.pkl").write_bytes(pickle.dumps({"means": means, "covars": covars, "weights": np.ones(3)}))
    with pytest.raises(ValueError, match="only from --models-dir"):
        priors.load_prior(str(outside / "gmm.pkl"), tmp_path)
    np.savez(tmp_path / "bad.npz", means=means[:, :60], covars=covars, weights=np.ones(3))
    with pytest.raises(ValueError, match="expected means"):
        priors.load_prior(str(tmp_path / "bad.npz"), None)


def test_interpenetration_is_zero_apart_and_positive_when_a_forearm_enters_the_torso():
    joints = torch.zeros(24, 3)
    spots = {"pelvis": (0, 0, 0), "neck": (0, 0.5, 0), "left_elbow": (0.5, 0.3, 0), "left_wrist": (0.7, 0.3, 0)}
    spots |= {"right_elbow": (-0.5, 0.3, 0), "right_wrist": (-0.7, 0.3, 0)}
    spots |= {"left_hip": (0.1, 0, 0), "left_knee": (0.12, -0.4, 0), "left_ankle": (0.12, -0.8, 0)}
    spots |= {"right_hip": (-0.1, 0, 0), "right_knee": (-0.12, -0.4, 0), "right_ankle": (-0.12, -0.8, 0)}
    for name, xyz in spots.items():
        joints[smplify_fit.J[name]] = torch.tensor(xyz)
    assert float(smplify_fit.interpenetration(joints)) == 0.0
    joints[smplify_fit.J["left_wrist"]] = torch.tensor([0.0, 0.3, 0.0])  # the forearm reaches into the torso
    assert float(smplify_fit.interpenetration(joints)) > 0.0


def test_the_flip_is_a_half_turn_about_the_body_vertical():
    orient = torch.tensor([[3.1, 0.1, 0.0]])
    twice = smplify_fit.flipped(smplify_fit.flipped(orient))
    assert torch.allclose(axis_angle_to_matrix(twice), axis_angle_to_matrix(orient), atol=1e-5)
    once = axis_angle_to_matrix(smplify_fit.flipped(orient))[0]
    assert torch.allclose(
        axis_angle_to_matrix(orient)[0].T @ once, torch.diag(torch.tensor([-1.0, 1.0, -1.0])), atol=1e-5
    )


def test_the_books_model_file_name_is_looked_for(tmp_path):
    (tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl").write_bytes(b"x")
    assert [p.name for p in find_models(tmp_path)] == ["basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"]


def test_close_shoulders_run_the_fit_facing_both_ways(tmp_path):
    cfg = dataclasses.replace(smplify.Config.tiny(), out_dir=tmp_path, device="cpu", flip_threshold_px=10_000.0)
    events = list(smplify.run(cfg))
    assert any("(turned)" in getattr(e, "caption", "") for e in events)
    assert events[-1].metrics["err_2d_px"] < 60


def test_lsp14_est_joints_from_an_npz_reach_the_smpl_joints(tmp_path):
    lsp = np.zeros((3, 14, 2))
    lsp[0, :, 0] = np.arange(14) * 10.0 + 100  # x of the first picture
    lsp[1, :, 0] = 200.0
    lsp[2, :, 0] = 1.0
    np.savez(tmp_path / "est_joints.npz", est_joints=lsp)
    kp = keypoints.load_upload(str(tmp_path / "est_joints.npz"), "")
    assert kp.layout == "LSP-14" and int((kp.conf > 0).sum()) == 14
    assert kp.xy[smplify_fit.J["left_wrist"], 0] == 210.0 and kp.xy[smplify_fit.J["right_ankle"], 0] == 100.0
    np.savez(tmp_path / "bad.npz", est_joints=np.zeros((5, 5)))
    with pytest.raises(ValueError, match="LSP"):
        keypoints.load_upload(str(tmp_path / "bad.npz"), "")
