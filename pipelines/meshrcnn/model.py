"""Mesh R-CNN's ShapeNet-mode network (VoxMesh): a ResNet backbone, the voxel head, cubify, and refinement stages of
vert_align + graph convolutions + tanh offsets, with the official model's module names, so `voxmesh_R50.pth`
loads strictly into `VoxMesh(ModelSpec.official())`.

Shapes: images (N, 3, H, W) ImageNet-normalised; voxel scores (N, V, V, V) logits indexed [z, y, x] (the head's V
output channels are the depth bins); meshes in the camera frame (`frame`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from pytorch3d.ops import GraphConv, cubify, vert_align
from pytorch3d.structures import Meshes
from pytorch3d.utils import ico_sphere
from torch import nn
from torch.nn import functional as F
from torchvision.models import resnet50
from torchvision.models.resnet import BasicBlock

from pipelines.meshrcnn import frame

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKBONES = ("resnet50", "small")


@dataclass(frozen=True)
class ModelSpec:
    """Everything that fixes the network's shapes (stored in checkpoints as plain values)."""

    backbone: str = "small"
    """resnet50 (the official backbone, torchvision, no weights) or small (BasicBlock stages with `widths`)."""
    widths: tuple[int, ...] = (32, 64, 128, 256)
    """Channels of the small backbone's four stages."""
    voxel_size: int = 24
    """Voxels per side V (the official model: 48)."""
    voxel_conv_dim: int = 256
    voxel_num_conv: int = 4
    mesh_stages: int = 3
    mesh_hidden: int = 128
    mesh_gconvs: int = 3
    cubify_thresh: float = 0.2
    cubify_align: str = "center"
    """cubify's vertex alignment: center (voxel i centred at -1 + 2i/(V-1), as the studio's voxels are made) or
    topleft (what the official code's PyTorch3D did)."""
    zrange: tuple[float, float] = (0.76, 0.905)
    """NDC-z range the voxel grid spans (`frame`)."""

    @classmethod
    def official(cls) -> ModelSpec:
        """The layout of the official `voxmesh_R50.pth` (configs/shapenet/voxmesh_R50.yaml)."""
        return cls(backbone="resnet50", voxel_size=48, cubify_align="topleft", zrange=frame.SHAPENET_ZRANGE)

    def to_plain(self) -> dict:
        d = asdict(self)
        d["widths"], d["zrange"] = list(self.widths), list(self.zrange)
        return d

    @classmethod
    def from_plain(cls, d: dict) -> ModelSpec:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["widths"] = tuple(int(w) for w in known.get("widths", cls.widths))
        known["zrange"] = tuple(float(z) for z in known.get("zrange", cls.zrange))
        return cls(**known)

    def feat_dims(self) -> tuple[int, ...]:
        return (256, 512, 1024, 2048) if self.backbone == "resnet50" else tuple(self.widths)


class Backbone(nn.Module):
    """stem + stage1..4, returning the four stages' maps (the official `ResNetBackbone` layout)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        if spec.backbone == "resnet50":
            net = resnet50(weights=None)
            self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
            self.stage1, self.stage2, self.stage3, self.stage4 = net.layer1, net.layer2, net.layer3, net.layer4
            return
        if spec.backbone != "small" or len(spec.widths) != 4:
            raise ValueError(
                f"Unknown backbone {spec.backbone!r} (choose {', '.join(BACKBONES)}; small needs 4 widths)."
            )
        w = spec.widths
        # Small images (32-64 px): a stride-2 3x3 stem and no max-pool, so the last map is still 4x4 at 64 px.
        self.stem = nn.Sequential(nn.Conv2d(3, w[0], 3, 2, 1, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU(inplace=True))
        stages = [_stage(w[0], w[0], 1), _stage(w[0], w[1], 2), _stage(w[1], w[2], 2), _stage(w[2], w[3], 2)]
        self.stage1, self.stage2, self.stage3, self.stage4 = stages

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        c1 = self.stage1(self.stem(images))
        c2 = self.stage2(c1)
        c3 = self.stage3(c2)
        return [c1, c2, c3, self.stage4(c3)]


def _stage(cin: int, cout: int, stride: int) -> nn.Sequential:
    down = None
    if stride != 1 or cin != cout:
        down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    return nn.Sequential(BasicBlock(cin, cout, stride, down))


class VoxelHead(nn.Module):
    """Resize the last map to V/2, `num_conv` 3x3 convs + ReLU, a 2x deconv + ReLU, a 1x1 conv to V depth bins."""

    def __init__(self, spec: ModelSpec, in_channels: int) -> None:
        super().__init__()
        if spec.voxel_size % 2:
            raise ValueError(f"The voxel size must be even, got {spec.voxel_size}.")
        self.voxel_size = spec.voxel_size
        self.n_conv = spec.voxel_num_conv
        prev = in_channels
        for k in range(spec.voxel_num_conv):
            conv = nn.Conv2d(prev, spec.voxel_conv_dim, 3, 1, 1)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
            self.add_module(f"voxel_fcn{k + 1}", conv)
            prev = spec.voxel_conv_dim
        self.deconv = nn.ConvTranspose2d(prev, spec.voxel_conv_dim, 2, 2, 0)
        nn.init.kaiming_normal_(self.deconv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.deconv.bias)
        self.predictor = nn.Conv2d(spec.voxel_conv_dim, spec.voxel_size, 1)
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.zeros_(self.predictor.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=self.voxel_size // 2, mode="bilinear", align_corners=False)
        for k in range(self.n_conv):
            x = F.relu(getattr(self, f"voxel_fcn{k + 1}")(x))
        return self.predictor(F.relu(self.deconv(x)))  # (N, V, V, V)


class RefineStage(nn.Module):
    """One refinement: image features at each vertex (vert_align), a bottleneck, graph convolutions that see the
    vertex positions, and a tanh offset per vertex."""

    def __init__(self, img_dim: int, vert_dim: int, hidden: int, depth: int) -> None:
        super().__init__()
        self.bottleneck = nn.Linear(img_dim, hidden)
        self.vert_offset = nn.Linear(hidden + 3, 3)
        self.gconvs = nn.ModuleList(
            GraphConv(hidden + 3 + (vert_dim if i == 0 else 0), hidden, init="normal", directed=False)
            for i in range(depth)
        )
        nn.init.normal_(self.bottleneck.weight, std=0.01)
        nn.init.zeros_(self.bottleneck.bias)
        nn.init.zeros_(self.vert_offset.weight)
        nn.init.zeros_(self.vert_offset.bias)

    def forward(
        self, feats: list[torch.Tensor], meshes: Meshes, vert_feats: torch.Tensor | None
    ) -> tuple[Meshes, torch.Tensor]:
        pos_packed = meshes.verts_packed()  # (VV, 3)
        grid = frame.align_points(meshes.verts_padded())  # (N, V, 3)
        sampled = vert_align(feats, grid, return_packed=False)  # (N, V, C)
        idx = meshes.verts_padded_to_packed_idx()
        img = sampled.reshape(-1, sampled.shape[-1])[idx]  # (VV, C)
        x = torch.cat([F.relu(self.bottleneck(img)), pos_packed, *([vert_feats] if vert_feats is not None else [])], 1)
        edges = meshes.edges_packed()
        for gconv in self.gconvs:
            hidden = F.relu(gconv(x, edges))
            x = torch.cat([hidden, pos_packed], 1)
        return meshes.offset_verts(torch.tanh(self.vert_offset(x))), hidden


class MeshHead(nn.Module):
    def __init__(self, spec: ModelSpec, img_dim: int) -> None:
        super().__init__()
        h = spec.mesh_hidden
        self.stages = nn.ModuleList(
            RefineStage(img_dim, 0 if i == 0 else h, h, spec.mesh_gconvs) for i in range(spec.mesh_stages)
        )

    def forward(self, feats: list[torch.Tensor], meshes: Meshes) -> list[Meshes]:
        out, vert_feats = [], None
        for stage in self.stages:
            meshes, vert_feats = stage(feats, meshes, vert_feats)
            out.append(meshes)
        return out


class VoxMesh(nn.Module):
    """Image -> voxel scores -> cubified mesh -> refined meshes (one per stage)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.register_buffer("K", frame.intrinsic_matrix())
        self.backbone = Backbone(spec)
        dims = spec.feat_dims()
        self.voxel_head = VoxelHead(spec, dims[-1])
        self.mesh_head = MeshHead(spec, sum(dims))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images (N, H, W, 3) float in [0, 1] -> the backbone's four maps."""
        x = images.permute(0, 3, 1, 2)
        return self.backbone((x - self.mean) / self.std)

    def cubify(self, voxel_scores: torch.Tensor) -> Meshes:
        """Voxel logits (N, V, V, V) -> cubified meshes in the camera frame. An empty prediction becomes the central
        V/2 block (as the official model does), so every mesh has faces."""
        probs = voxel_scores.detach().sigmoid()
        empty = (probs > self.spec.cubify_thresh).flatten(1).sum(1) == 0
        if bool(empty.any()):
            v = self.spec.voxel_size
            lo, hi = v // 4, v // 4 + v // 2
            probs = probs.clone()
            probs[empty, lo:hi, lo:hi, lo:hi] = 1.0
        meshes = cubify(probs, self.spec.cubify_thresh, align=self.spec.cubify_align)
        verts = frame.voxel_to_camera(meshes.verts_packed(), self.spec.zrange)
        return meshes.offset_verts(verts - meshes.verts_packed())

    def sphere(self, n: int, radius: float, distance: float, level: int = 3) -> Meshes:
        """An ico-sphere of `radius` at (0, 0, -distance), n times: the no-voxel start of the ablation ladder."""
        mesh = ico_sphere(level, self.K.device)
        verts = mesh.verts_packed() * radius + torch.tensor([0.0, 0.0, -distance], device=self.K.device)
        return Meshes([verts] * n, [mesh.faces_packed()] * n)

    def forward(self, images: torch.Tensor, voxel_only: bool = False) -> tuple[torch.Tensor, Meshes, list[Meshes]]:
        """(voxel logits (N, V, V, V), cubified meshes, refined meshes per stage); `voxel_only` skips the mesh head
        (the official warm-up) and returns no refined meshes."""
        feats = self.features(images)
        voxel_scores = self.voxel_head(feats[-1])
        cubified = self.cubify(voxel_scores)
        if voxel_only:
            return voxel_scores, cubified, []
        return voxel_scores, cubified, self.mesh_head(feats, cubified)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
