"""Box average precision at one IoU threshold (AP50), as COCO computes it: per category, every detection over all
images in score order, each matched greedily to the unmatched ground-truth box of its image it overlaps most (IoU
at least the threshold), precision made monotone from the right, read at 101 recall points and averaged; the mean
over the categories that have ground truth. `class_agnostic` pools every category into one.

(torchmetrics' MeanAveragePrecision needs pycocotools or faster-coco-eval, which are not installed here.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.ops import box_iou

RECALL_POINTS = torch.linspace(0.0, 1.0, 101)


@dataclass
class ImageBoxes:
    """One image's boxes (K, 4) (x0, y0, x1, y1), labels (K,) and, for detections, scores (K,)."""

    boxes: torch.Tensor
    labels: torch.Tensor
    scores: torch.Tensor | None = None


def precision_at_recalls(matched: torch.Tensor, n_truth: int) -> float:
    """AP of detections already sorted by score, `matched` (D,) bool, against `n_truth` boxes (101-point COCO)."""
    if n_truth == 0:
        return float("nan")
    if len(matched) == 0:
        return 0.0
    tp = torch.cumsum(matched.double(), 0)
    fp = torch.cumsum((~matched).double(), 0)
    recall = tp / n_truth
    precision = tp / (tp + fp)
    # the precision envelope: at each rank, the best precision at this recall or beyond
    envelope = torch.flip(torch.cummax(torch.flip(precision, [0]), 0).values, [0])
    idx = torch.searchsorted(recall, RECALL_POINTS.double(), right=False)
    read = torch.where(idx < len(envelope), envelope[idx.clamp(max=len(envelope) - 1)], torch.zeros(()).double())
    return float(read.mean())


def _category_ap(preds: list[ImageBoxes], truths: list[ImageBoxes], label: int | None, iou_threshold: float) -> float:
    entries: list[tuple[float, int, torch.Tensor]] = []  # (score, image, box)
    gt_boxes: list[torch.Tensor] = []
    for i, (p, t) in enumerate(zip(preds, truths)):
        keep_t = torch.ones(len(t.labels), dtype=torch.bool) if label is None else t.labels == label
        gt_boxes.append(t.boxes[keep_t].float())
        keep_p = torch.ones(len(p.labels), dtype=torch.bool) if label is None else p.labels == label
        assert p.scores is not None, "detections need scores"
        entries += [(float(s), i, b) for s, b in zip(p.scores[keep_p], p.boxes[keep_p].float())]
    n_truth = sum(len(b) for b in gt_boxes)
    entries.sort(key=lambda e: -e[0])  # stable: ties keep image order
    taken = [torch.zeros(len(b), dtype=torch.bool) for b in gt_boxes]
    matched = torch.zeros(len(entries), dtype=torch.bool)
    for d, (_, i, box) in enumerate(entries):
        if len(gt_boxes[i]) == 0:
            continue
        iou = box_iou(box[None], gt_boxes[i])[0].masked_fill(taken[i], -1.0)
        best = int(iou.argmax())
        if float(iou[best]) >= iou_threshold:
            taken[i][best] = True
            matched[d] = True
    return precision_at_recalls(matched, n_truth)


def average_precision(
    preds: list[ImageBoxes], truths: list[ImageBoxes], iou_threshold: float = 0.5, class_agnostic: bool = False
) -> float:
    """Mean AP over the categories present in `truths` (NaN when there is no ground-truth box at all)."""
    if len(preds) != len(truths):
        raise ValueError(f"{len(preds)} detection lists for {len(truths)} images.")
    if class_agnostic:
        return _category_ap(preds, truths, None, iou_threshold)
    labels = sorted({int(x) for t in truths for x in t.labels})
    if not labels:
        return float("nan")
    return sum(_category_ap(preds, truths, c, iou_threshold) for c in labels) / len(labels)
