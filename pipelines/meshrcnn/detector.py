"""Mesh R-CNN's detection mode, first half: torchvision's Mask R-CNN (`weights=None`, trained from scratch) on a small
ResNet + FPN sized for the studio's 128 px scenes, its checkpoint (read with `weights_only=True`), and inference
that turns one image into boxes, categories, scores and masks.

Sizes: the scenes' objects span about 17-47 px at 128 px, so the FPN reads strides 4, 8, 16 (+ a max-pool level at
32) with one anchor size per level (16, 32, 64, 128 px; ratios 0.5, 1, 2), and `min_size = max_size = image_size`
keeps torchvision from resizing. The box head is two 256-wide layers and the mask head four 3x3 convs of
`mask_channels`, so the whole detector is about 2 M parameters (torchvision's default heads alone hold 14 M).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.resnet import BasicBlock
from torchvision.ops import MultiScaleRoIAlign, nms
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from pipelines.meshrcnn import checkpoint
from pipelines.meshrcnn.objects import CATEGORIES

FORMAT = "3d-studio-meshrcnn-detector"
VERSION = 1
SCORE_THRESH = 0.5
"""Detections below this score are not shown (the AP evaluation keeps them all)."""


@dataclass(frozen=True)
class DetectorSpec:
    """Everything that fixes the detector's shapes (stored in its checkpoint as plain values)."""

    image_size: int = 128
    """Input side in pixels (torchvision's min_size and max_size)."""
    widths: tuple[int, ...] = (32, 48, 96, 160)
    """Channels of the stem and the three stages (strides 2, 4, 8, 16)."""
    fpn_channels: int = 64
    box_hidden: int = 256
    mask_channels: int = 64
    anchor_sizes: tuple[int, ...] = (16, 32, 64, 128)
    """One anchor size per FPN level (strides 4, 8, 16, 32)."""
    num_classes: int = len(CATEGORIES) + 1
    """The categories and the background."""

    def to_plain(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"], d["anchor_sizes"] = list(self.widths), list(self.anchor_sizes)
        return d

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> DetectorSpec:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("widths", "anchor_sizes"):
            known[key] = tuple(int(w) for w in known.get(key, getattr(cls, key)))
        return cls(**known)


class SmallBody(nn.Module):
    """stem (stride 2) and three BasicBlock stages (strides 4, 8, 16): the children IntermediateLayerGetter walks."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"The detector's backbone needs 4 widths, got {len(widths)}.")
        w = widths
        self.stem = nn.Sequential(nn.Conv2d(3, w[0], 3, 2, 1, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU(inplace=True))
        self.layer1 = _stage(w[0], w[1])
        self.layer2 = _stage(w[1], w[2])
        self.layer3 = _stage(w[2], w[3])


def _stage(cin: int, cout: int) -> nn.Sequential:
    down = nn.Sequential(nn.Conv2d(cin, cout, 1, 2, bias=False), nn.BatchNorm2d(cout))
    return nn.Sequential(BasicBlock(cin, cout, 2, down), BasicBlock(cout, cout))


def build(spec: DetectorSpec) -> MaskRCNN:
    """torchvision's MaskRCNN with no pretrained weights, the small backbone + FPN and heads sized for `spec`."""
    w, c = spec.widths, spec.fpn_channels
    backbone = BackboneWithFPN(
        SmallBody(w), {"layer1": "0", "layer2": "1", "layer3": "2"}, list(w[1:]), c, extra_blocks=LastLevelMaxPool()
    )
    anchors = AnchorGenerator(tuple((s,) for s in spec.anchor_sizes), ((0.5, 1.0, 2.0),) * len(spec.anchor_sizes))
    levels = ["0", "1", "2"]
    return MaskRCNN(
        backbone,
        num_classes=None,  # the box and mask predictors below carry spec.num_classes
        min_size=spec.image_size,
        max_size=spec.image_size,
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=600,
        rpn_post_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_test=100,
        rpn_batch_size_per_image=128,
        box_roi_pool=MultiScaleRoIAlign(levels, 7, 2),
        box_head=TwoMLPHead(c * 7 * 7, spec.box_hidden),
        box_predictor=FastRCNNPredictor(spec.box_hidden, spec.num_classes),
        box_batch_size_per_image=128,
        box_detections_per_img=20,
        mask_roi_pool=MultiScaleRoIAlign(levels, 14, 2),
        mask_head=MaskRCNNHeads(c, [spec.mask_channels] * 4, 1),
        mask_predictor=MaskRCNNPredictor(spec.mask_channels, spec.mask_channels, spec.num_classes),
    )


def save(path: Path, model: MaskRCNN, spec: DetectorSpec, extra: dict[str, Any]) -> Path:
    """Write the detector's weights and spec with `extra` plain values (config, step, metrics)."""
    payload = {"format": FORMAT, "version": VERSION, "spec": spec.to_plain(), "model": model.state_dict()}
    return checkpoint.write(path, {**payload, **extra})


def load(path: Path) -> tuple[MaskRCNN, DetectorSpec, dict[str, Any]]:
    """A detector checkpoint as an eval-mode model on the CPU, its spec and its other plain values."""
    data = checkpoint.read(Path(path))
    if data.get("format") != FORMAT:
        raise checkpoint.CheckpointError(f"{Path(path).name} is not a studio Mesh R-CNN detector checkpoint.")
    if int(data.get("version", 0)) > VERSION:
        raise checkpoint.CheckpointError(
            f"{Path(path).name} was written by a newer studio (version {data['version']})."
        )
    try:
        spec = DetectorSpec.from_plain(dict(data["spec"]))
    except (KeyError, TypeError, ValueError) as err:
        raise checkpoint.CheckpointError(f"{Path(path).name} has an unreadable detector description: {err}") from err
    model = build(spec)
    checkpoint.load_strict(model, dict(data["model"]), Path(path).name)
    return model.eval(), spec, {k: v for k, v in data.items() if k not in ("model", "optimizer")}


@dataclass
class Detections:
    """One image's detections, best first: boxes (K, 4) float pixels (x0, y0, x1, y1), labels (K,) int64 (category
    index + 1), scores (K,), masks (K, S, S) bool."""

    boxes: torch.Tensor
    labels: torch.Tensor
    scores: torch.Tensor
    masks: torch.Tensor

    def __len__(self) -> int:
        return len(self.scores)

    def above(self, score: float) -> Detections:
        keep = self.scores >= score
        return self.take(keep)

    def distinct(self, iou: float = 0.5) -> Detections:
        """One detection per object: torchvision suppresses overlaps within a category only, so the same object
        can come back under two categories; keep the best-scoring of boxes that overlap by more than `iou`."""
        return self.take(nms(self.boxes, self.scores, iou))

    def take(self, keep: torch.Tensor) -> Detections:
        return Detections(self.boxes[keep], self.labels[keep], self.scores[keep], self.masks[keep])


def detect(model: MaskRCNN, images: torch.Tensor) -> list[Detections]:
    """images (N, S, S, 3) float in [0, 1] -> every detection torchvision keeps (score > 0.05), on the CPU."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            outputs = model(list(images.permute(0, 3, 1, 2)))
    finally:
        model.train(was)
    return [
        Detections(o["boxes"].cpu(), o["labels"].cpu(), o["scores"].cpu(), (o["masks"][:, 0] > 0.5).cpu())
        for o in outputs
    ]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
