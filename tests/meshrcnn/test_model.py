"""The VoxMesh network: graph convolution against a dense reference, shapes, the official checkpoint's key layout
(strict load), and checkpoints that must be refused."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from pytorch3d.ops import GraphConv
from pytorch3d.utils import ico_sphere
from torchvision.models import resnet50

from pipelines.meshrcnn import checkpoint
from pipelines.meshrcnn.model import ModelSpec, VoxMesh

SMALL = ModelSpec(widths=(8, 16, 16, 32), voxel_size=12, voxel_conv_dim=16, mesh_hidden=16)


def test_graph_conv_matches_a_dense_reference():
    mesh = ico_sphere(1)
    torch.manual_seed(0)
    conv = GraphConv(5, 4, directed=False).double()
    x = torch.randn(mesh.num_verts_per_mesh().item(), 5, dtype=torch.float64)
    edges = mesh.edges_packed()
    adjacency = torch.zeros(len(x), len(x), dtype=torch.float64)
    adjacency[edges[:, 0], edges[:, 1]] = 1
    adjacency[edges[:, 1], edges[:, 0]] = 1
    dense = conv.w0(x) + adjacency @ conv.w1(x)
    assert torch.allclose(conv(x, edges), dense, atol=1e-10)


def test_forward_shapes(device):
    model = VoxMesh(SMALL).to(device)
    images = torch.rand(2, 32, 32, 3, generator=torch.Generator().manual_seed(0)).to(device)
    scores, cubified, stages = model(images)
    assert scores.shape == (2, 12, 12, 12)
    assert len(stages) == 3 and len(cubified) == 2
    assert stages[-1].verts_packed().shape == cubified.verts_packed().shape
    assert bool(torch.isfinite(stages[-1].verts_packed()).all())
    assert float(cubified.verts_packed()[:, 2].max()) < 0  # in front of the camera


def _official_state_dict() -> dict[str, torch.Tensor]:
    """The key layout and shapes of the official voxmesh_R50.pth, written from the official module structure
    (ResNetBackbone over torchvision's ResNet-50; VoxelHead voxel_fcn1-4/deconv/predictor; three
    MeshRefinementStages of bottleneck, three GraphConvs (w0, w1) and vert_offset) rather than from our model."""
    state: dict[str, torch.Tensor] = {"K": torch.zeros(4, 4)}
    rename = {
        "conv1": "stem.0",
        "bn1": "stem.1",
        "layer1": "stage1",
        "layer2": "stage2",
        "layer3": "stage3",
        "layer4": "stage4",
    }
    for key, value in resnet50(weights=None).state_dict().items():
        head, _, rest = key.partition(".")
        if head == "fc":
            continue
        state[f"backbone.{rename[head]}.{rest}"] = torch.zeros_like(value)
    dims = [2048, 256, 256, 256, 256]
    for k in range(4):
        state[f"voxel_head.voxel_fcn{k + 1}.weight"] = torch.zeros(256, dims[k], 3, 3)
        state[f"voxel_head.voxel_fcn{k + 1}.bias"] = torch.zeros(256)
    state["voxel_head.deconv.weight"] = torch.zeros(256, 256, 2, 2)
    state["voxel_head.deconv.bias"] = torch.zeros(256)
    state["voxel_head.predictor.weight"] = torch.zeros(48, 256, 1, 1)
    state["voxel_head.predictor.bias"] = torch.zeros(48)
    for s in range(3):
        prefix = f"mesh_head.stages.{s}"
        state[f"{prefix}.bottleneck.weight"] = torch.zeros(128, 256 + 512 + 1024 + 2048)
        state[f"{prefix}.bottleneck.bias"] = torch.zeros(128)
        state[f"{prefix}.vert_offset.weight"] = torch.zeros(3, 131)
        state[f"{prefix}.vert_offset.bias"] = torch.zeros(3)
        for g in range(3):
            width = 128 + 3 + (128 if (g == 0 and s > 0) else 0)
            for w in ("w0", "w1"):
                state[f"{prefix}.gconvs.{g}.{w}.weight"] = torch.zeros(128, width)
                state[f"{prefix}.gconvs.{g}.{w}.bias"] = torch.zeros(128)
    return state


@pytest.mark.slow
def test_official_layout_loads_strictly(tmp_path: Path):
    state = {f"module.{k}": v for k, v in _official_state_dict().items()}  # saved from DDP, as the official was
    path = tmp_path / "voxmesh_R50.pth"
    torch.save({"best_states": {"model": state}, "metrics": {"val_f1_0.3": [0.8]}, "t": 10}, path)
    model, info = checkpoint.load_model(path)
    assert info["kind"] == "official" and model.spec == ModelSpec.official()
    assert checkpoint.find_official(tmp_path) == path
    # one wrong shape is said in a sentence
    state["module.voxel_head.predictor.weight"] = torch.zeros(32, 256, 1, 1)
    torch.save({"best_states": {"model": state}}, path)
    with pytest.raises(checkpoint.CheckpointError, match="voxel_head.predictor.weight"):
        checkpoint.load_model(path)


class _Evil:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (self.target, "pwned"))


def test_code_carrying_and_corrupt_checkpoints_are_refused(tmp_path: Path):
    target = tmp_path / "touched.txt"
    evil = tmp_path / "evil.pt"
    torch.save({"model": _Evil(target)}, evil)
    with pytest.raises(checkpoint.CheckpointError, match="refused"):
        checkpoint.load_model(evil)
    assert not target.exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"model": _Evil(target)}))
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.load_model(raw)
    assert not target.exists()
    truncated = tmp_path / "cut.pt"
    torch.save({"model": VoxMesh(SMALL).state_dict()}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:500])
    with pytest.raises(checkpoint.CheckpointError, match="truncated or corrupt"):
        checkpoint.load_model(truncated)
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(checkpoint.CheckpointError, match="missing key"):
        checkpoint.load_model(other)


def test_studio_checkpoint_round_trip(tmp_path: Path):
    model = VoxMesh(SMALL)
    path = checkpoint.save(tmp_path / "m.pt", model, {"config": {"image_size": 32}, "metrics": {"f1@0.3": 1.0}})
    loaded, info = checkpoint.load_model(path)
    assert info["kind"] == "studio" and loaded.spec == SMALL
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
