"""Mean average precision on held-out frames: VOC mAP@0.5, a COCO-style mAP@[.5:.95], the PR
curve, and mAP per frame characteristic (the post's sensitivity and error analysis)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
from gluoncv.data import RecordFileDetection
from gluoncv.data.batchify import Pad, Stack, Tuple
from gluoncv.utils.metrics.voc_detection import VOC07MApMetric, VOCMApMetric
from mxnet import gluon

from mlexp.tasks.object_detection.augment import ValTransform
from mlexp.tasks.object_detection.config import DetectionAugmentation

# COCO's IoU thresholds 0.50:0.05:0.95
COCO_IOUS = tuple(np.round(np.arange(0.5, 0.96, 0.05), 2))


@dataclass
class Detections:
    """Per frame: predicted boxes (K, 4), class ids (K,), scores (K,); ground truth (N, 4) and ids (N,)."""

    boxes: list[np.ndarray]
    ids: list[np.ndarray]
    scores: list[np.ndarray]
    gt_boxes: list[np.ndarray]
    gt_ids: list[np.ndarray]

    def subset(self, frames: list[int]) -> Detections:
        return Detections(*([part[i] for i in frames] for part in vars(self).values()))


def detect(net: Any, rec: Path, augmentation: DetectionAugmentation, size: int, batch_size: int = 8) -> Detections:
    """Run the network over every frame of a RecordIO file, in network-input pixels."""
    dataset = RecordFileDetection(str(rec)).transform(ValTransform(augmentation, size))
    loader = gluon.data.DataLoader(dataset, batch_size, shuffle=False, batchify_fn=Tuple(Stack(), Pad(pad_val=-1)))
    found = Detections([], [], [], [], [])
    for x, y in loader:
        ids, scores, boxes = (a.asnumpy() for a in net(x.as_in_context(mx.cpu())))
        labels = y.asnumpy()
        for i in range(x.shape[0]):
            found.boxes.append(boxes[i])
            found.ids.append(ids[i].reshape(-1))
            found.scores.append(scores[i].reshape(-1))
            real = labels[i][labels[i][:, 4] >= 0]
            found.gt_boxes.append(real[:, :4])
            found.gt_ids.append(real[:, 4])
    return found


def _metric(metric: Any, found: Detections) -> Any:
    for boxes, ids, scores, gt_boxes, gt_ids in zip(*vars(found).values()):
        metric.update(boxes[None], ids[None], scores[None], gt_boxes[None], gt_ids[None])
    return metric


def voc_map(found: Detections, iou: float = 0.5, classes: list[str] | None = None) -> float:
    """GluonCV's VOC07 mAP (11-point interpolated AP, averaged over classes)."""
    _, values = _metric(VOC07MApMetric(iou_thresh=iou, class_names=classes), found).get()
    return float(values[-1] if isinstance(values, list) else values)


def coco_style_map(found: Detections) -> float:
    """Area-under-PR AP averaged over IoU 0.50:0.05:0.95 (COCO's thresholds, VOC's AP)."""
    return float(np.mean([_metric(VOCMApMetric(iou_thresh=t), found).get()[1] for t in COCO_IOUS]))


def pr_curve(found: Detections, iou: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision at every score threshold (detections sorted by score) for class 0."""
    recall, precision = _metric(VOCMApMetric(iou_thresh=iou), found)._recall_prec()
    if recall[0] is None:
        return np.zeros(0), np.zeros(0)
    return np.asarray(recall[0]), np.nan_to_num(np.asarray(precision[0]))


def frame_attributes(frames: list[dict], found: Detections, small_box_px: int) -> list[dict[str, str]]:
    """Each frame's characteristics; box size and aspect ratio come from its boxes when the manifest lacks them."""
    out = []
    for frame, boxes in zip(frames, found.gt_boxes):
        attributes = dict(frame.get("attributes") or {})
        widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        if len(boxes):
            attributes.setdefault(
                "size", "small" if float(np.max(np.maximum(widths, heights))) < small_box_px else "large"
            )
            attributes.setdefault("aspect_ratio", "tall" if float(np.mean(heights - widths)) > 0 else "wide")
        out.append(attributes)
    return out


def sensitivity(found: Detections, attributes: list[dict[str, str]]) -> list[dict[str, Any]]:
    """mAP@0.5 of the frames sharing each value of each characteristic."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, frame in enumerate(attributes):
        for name, value in frame.items():
            groups[(name, value)].append(index)
    return [
        {"attribute": name, "value": value, "frames": len(frames), "map_50": voc_map(found.subset(frames))}
        for (name, value), frames in sorted(groups.items())
    ]
