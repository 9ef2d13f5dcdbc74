"""The body model: LBS against a slow reference, the kinematic tree, gradients, and the one loader (npz, pkl)."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest
import torch

from pipelines.smpl import body_model
from pipelines.smpl.layout import JOINT_NAMES, SMPL_PARENTS, BodyModelError
from pipelines.smpl.lbs import axis_angle_to_matrix, lbs
from pipelines.smpl.model_files import PROCEDURAL_PATH

J = {n: i for i, n in enumerate(JOINT_NAMES)}


def random_layout(num_verts: int = 40, num_betas: int = 4, seed: int = 0, dtype=np.float64) -> dict[str, np.ndarray]:
    """A small random model in the official SMPL file layout (posedirs non-zero, root parent 2**32 - 1)."""
    rng = np.random.default_rng(seed)
    weights = rng.random((num_verts, 24)) ** 4
    weights /= weights.sum(1, keepdims=True)
    regressor = rng.random((24, num_verts))
    regressor /= regressor.sum(1, keepdims=True)
    return {
        "v_template": rng.normal(size=(num_verts, 3)).astype(dtype),
        "shapedirs": (0.1 * rng.normal(size=(num_verts, 3, num_betas))).astype(dtype),
        "posedirs": (0.05 * rng.normal(size=(num_verts, 3, 207))).astype(dtype),
        "J_regressor": regressor.astype(dtype),
        "weights": weights.astype(dtype),
        "kintree_table": np.array([[4294967295, *SMPL_PARENTS[1:]], list(range(24))], dtype=np.uint32),
        "f": rng.integers(0, num_verts, size=(30, 3)).astype(np.uint32),
    }


def reference_lbs(a: dict[str, np.ndarray], betas: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slow SMPL, vertex by vertex with 4x4 matrices (scipy's rotations), as the paper writes it."""
    from scipy.spatial.transform import Rotation

    v_shaped = a["v_template"] + a["shapedirs"] @ betas
    joints = a["J_regressor"] @ v_shaped
    rots = Rotation.from_rotvec(pose).as_matrix()
    feature = np.concatenate([(rots[j] - np.eye(3)).reshape(-1) for j in range(1, 24)])
    v_posed = v_shaped + a["posedirs"] @ feature
    world = []
    for j in range(24):
        local = np.eye(4)
        local[:3, :3] = rots[j]
        p = SMPL_PARENTS[j]
        local[:3, 3] = joints[j] - (joints[p] if p >= 0 else 0.0)
        world.append(local if p < 0 else world[p] @ local)
    posed_joints = np.array([g[:3, 3] for g in world])
    verts = np.zeros_like(v_posed)
    for i in range(len(v_posed)):
        blended = np.zeros((4, 4))
        for j in range(24):
            rest = np.eye(4)
            rest[:3, 3] = -joints[j]
            blended += a["weights"][i, j] * world[j] @ rest
        verts[i] = (blended @ np.append(v_posed[i], 1.0))[:3]
    return verts, posed_joints


def tensors(a: dict[str, np.ndarray], device, dtype=torch.float64) -> dict:
    def t(x):
        return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype, device=device)

    return dict(
        v_template=t(a["v_template"]),
        shapedirs=t(a["shapedirs"]),
        posedirs=t(a["posedirs"]),
        j_regressor=t(a["J_regressor"]),
        parents=SMPL_PARENTS,
        weights=t(a["weights"]),
    )


@pytest.fixture(scope="module")
def procedural() -> body_model.BodyModel:
    return body_model.load_body_model(PROCEDURAL_PATH)


def test_axis_angle_matches_pytorch3d_and_is_smooth_at_zero():
    from pytorch3d.transforms import axis_angle_to_matrix as p3d

    gen = torch.Generator().manual_seed(0)
    r = torch.randn(50, 3, generator=gen, dtype=torch.float64) * 2
    r[:5] *= 1e-6  # the Taylor branch
    r[5] = 0.0
    assert torch.allclose(axis_angle_to_matrix(r), p3d(r), atol=1e-10)
    small = (1e-5 * torch.randn(4, 3, generator=gen, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (small,))


def test_lbs_matches_the_slow_reference(device):
    a = random_layout()
    gen = torch.Generator().manual_seed(1)
    betas = torch.randn(2, 4, generator=gen, dtype=torch.float64)
    pose = 0.6 * torch.randn(2, 24, 3, generator=gen, dtype=torch.float64)
    verts, joints = lbs(betas.to(device), pose.to(device), **tensors(a, device))
    for n in range(2):
        ref_v, ref_j = reference_lbs(a, betas[n].numpy(), pose[n].numpy())
        np.testing.assert_allclose(verts[n].cpu().numpy(), ref_v, atol=1e-9)
        np.testing.assert_allclose(joints[n].cpu().numpy(), ref_j, atol=1e-9)


def test_zero_pose_returns_the_shaped_template(procedural, device):
    model = procedural.to(device)
    betas = torch.linspace(-2, 2, model.num_betas, device=device)[None]
    verts, joints = model.forward(betas, torch.zeros(1, 24, 3, device=device))
    shaped = model.v_template + torch.einsum("vcb,b->vc", model.shapedirs, betas[0])
    assert torch.allclose(verts[0], shaped, atol=1e-5)
    assert torch.allclose(joints[0], model.j_regressor @ shaped, atol=1e-5)


def descendants(j: int) -> set[int]:
    out = {j}
    for k in range(24):
        if SMPL_PARENTS[k] in out:
            out.add(k)
    return out


@pytest.mark.parametrize("joint", ["left_elbow", "right_hip", "spine3", "neck", "left_knee", "pelvis"])
def test_one_joint_moves_only_what_it_and_its_children_carry(procedural, joint):
    j = J[joint]
    pose = torch.zeros(1, 24, 3)
    pose[0, j] = torch.tensor([0.3, -0.5, 0.4])
    rest_v, rest_j = procedural.forward(None, torch.zeros(1, 24, 3))
    verts, joints = procedural.forward(None, pose)
    subtree = sorted(descendants(j))
    carried = procedural.weights[:, subtree].sum(1)  # (V,)
    moved = (verts[0] - rest_v[0]).norm(dim=1)
    if (carried == 0).any():
        assert moved[carried == 0].max() < 1e-6, "a vertex with no weight on the joint or its children moved"
    assert (moved[carried > 0.5] > 1e-3).all()
    jmoved = (joints[0] - rest_j[0]).norm(dim=1)
    outside = [k for k in range(24) if k not in subtree or k == j]
    assert jmoved[outside].max() < 1e-6, "the joint itself and joints outside its subtree stay put"
    if len(subtree) > 1:
        assert jmoved[[k for k in subtree if k != j]].min() > 1e-3


def test_joints_follow_the_kinematic_tree(procedural):
    gen = torch.Generator().manual_seed(3)
    pose = 0.5 * torch.randn(4, 24, 3, generator=gen)
    betas = torch.randn(4, procedural.num_betas, generator=gen)
    _, joints = procedural.forward(betas, pose)
    _, rest = procedural.forward(betas, torch.zeros(4, 24, 3))
    rot = axis_angle_to_matrix(pose)
    world = [rot[:, 0]]
    for k in range(1, 24):
        p = SMPL_PARENTS[k]
        world.append(world[p] @ rot[:, k])
        bone = joints[:, k] - joints[:, p]
        expected = (world[p] @ (rest[:, k] - rest[:, p])[..., None])[..., 0]
        assert torch.allclose(bone, expected, atol=1e-5), JOINT_NAMES[k]


def test_gradients_flow_gradcheck():
    """`lbs` is generic in the tree: a 4-joint chain with a branch keeps the numerical Jacobian small."""
    gen = torch.Generator().manual_seed(5)

    def r(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    weights = r(6, 4).abs() ** 2
    t = dict(
        v_template=r(6, 3),
        shapedirs=0.1 * r(6, 3, 2),
        posedirs=0.05 * r(6, 3, 27),
        j_regressor=torch.softmax(r(4, 6), 1),
        parents=(-1, 0, 1, 1),
        weights=weights / weights.sum(1, keepdim=True),
    )
    betas = r(1, 2).requires_grad_(True)
    pose = (0.5 * r(1, 4, 3)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda b, p: lbs(b, p, **t), (betas, pose), atol=1e-6)


def test_official_layout_npz_and_procedural_body_load_through_one_loader(tmp_path, procedural):
    a = random_layout()
    path = tmp_path / "SMPL_NEUTRAL.npz"
    np.savez(path, **a)
    official = body_model.load_body_model(path)
    assert type(official) is type(procedural)
    for model, nv in ((official, 40), (procedural, procedural.num_verts)):
        assert model.v_template.shape == (nv, 3) and model.weights.shape == (nv, 24)
        assert model.posedirs.shape == (nv, 3, 207) and model.j_regressor.shape == (24, nv)
        assert model.parents == SMPL_PARENTS
    # The same loader, reached by name: '' picks the official file in the models dir, 'procedural' the asset.
    assert body_model.load("", tmp_path).name == "SMPL_NEUTRAL.npz"
    assert body_model.load("procedural", tmp_path).name == "procedural_body.npz"
    assert body_model.load("", None).name == "procedural_body.npz"
    v, _ = official.forward(torch.zeros(1, 4), torch.zeros(1, 24, 3))
    assert torch.allclose(v[0], official.v_template, atol=1e-6)


def test_restricted_pickle_reads_chumpy_and_sparse_from_the_models_dir(tmp_path):
    import scipy.sparse

    a = random_layout()
    fake = types.ModuleType("chumpy.ch")

    class Ch:  # what a pickled chumpy array looks like: its value in `x`
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    fake.Ch = Ch
    sys.modules["chumpy"] = types.ModuleType("chumpy")
    sys.modules["chumpy.ch"] = fake
    try:
        shapedirs = Ch()
        shapedirs.x = a["shapedirs"]
        data = {
            **a,
            "shapedirs": shapedirs,
            "J_regressor": scipy.sparse.csc_matrix(a["J_regressor"]),
            "bs_type": "lrotmin",
        }
        path = tmp_path / "SMPL_NEUTRAL.pkl"
        path.write_bytes(pickle.dumps(data, protocol=2))
    finally:
        del sys.modules["chumpy.ch"], sys.modules["chumpy"]
    model = body_model.load_body_model(path, trusted_dir=tmp_path)
    np.testing.assert_allclose(model.shapedirs.numpy(), a["shapedirs"], atol=1e-6)
    np.testing.assert_allclose(model.j_regressor.numpy(), a["J_regressor"], atol=1e-6)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_pkl_is_refused_outside_the_models_dir_and_hostile_pickles_never_run(tmp_path):
    path = tmp_path / "upload" / "model.pkl"
    path.parent.mkdir()
    path.write_bytes(pickle.dumps(random_layout()))
    with pytest.raises(BodyModelError, match="only from the operator's --models-dir"):
        body_model.load_body_model(path)
    with pytest.raises(BodyModelError, match="only from the operator's --models-dir"):
        body_model.load_body_model(path, trusted_dir=tmp_path)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"v_template": _Evil()}))
    with pytest.raises(BodyModelError, match="could not be read"):
        body_model.load_body_model(evil, trusted_dir=tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("weights"), "missing weights"),
        (lambda a: a.update(posedirs=a["posedirs"][..., :200]), r"posedirs must have shape \(40, 3, 207\)"),
        (lambda a: a.update(J_regressor=a["J_regressor"][:, :39]), r"J_regressor must have shape \(24, 40\)"),
        (lambda a: a.update(v_template=a["v_template"][:, :2]), r"v_template must have shape \(V, 3\)"),
        (lambda a: a.update(kintree_table=a["kintree_table"][:, :16]), "24-joint tree"),
        (lambda a: a.update(f=a["f"] + 100), "face indices"),
        (lambda a: a.update(weights=a["weights"] * 2), "sum to 1"),
        (lambda a: a["v_template"].__setitem__((0, 0), np.nan), "finite"),
    ],
)
def test_bad_npz_gets_a_clear_message(tmp_path, change, message):
    a = random_layout()
    change(a)
    path = tmp_path / "bad.npz"
    np.savez(path, **a)
    with pytest.raises(BodyModelError, match=message):
        body_model.load_body_model(path)


def test_npz_needing_pickle_or_not_a_zip_is_refused(tmp_path):
    a = random_layout()
    a["v_template"] = np.array([object()] * 3, dtype=object)
    path = tmp_path / "objects.npz"
    np.savez(path, **a)
    with pytest.raises(BodyModelError, match="pickle"):
        body_model.load_body_model(path)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(BodyModelError, match="not a readable .npz"):
        body_model.load_body_model(junk)
