"""Detections on held-out frames in original image pixels, and the project's one mAP convention.

AP is VOC's all-point AP: the area under the precision-recall curve made monotone (each precision
replaced by the best precision at any higher recall), the post's "area under the PR curve".
Detections are matched greedily by descending score, each to the unmatched ground-truth box of its
class with the highest IoU at or above the threshold; each ground-truth box is matched once, so a
duplicate is a false positive, and so is any detection on a frame without a ball. Boxes are
continuous corners: width = xmax - xmin, no "+1 pixel". `map_50` is AP at IoU 0.5 averaged over the
classes present in the ground truth; `map_50_95` averages the same AP over IoU 0.50:0.05:0.95.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
from gluoncv.model_zoo.rcnn import RCNN
from tqdm import tqdm

from mlexp.tasks.object_detection import anchors, networks, tiling
from mlexp.tasks.object_detection.augment import normalize
from mlexp.tasks.object_detection.config import DetectionAugmentation
from mlexp.tasks.object_detection.records import unpack_label

# COCO's IoU thresholds 0.50:0.05:0.95
COCO_IOUS = tuple(float(t) for t in np.round(np.arange(0.5, 0.96, 0.05), 2))
# the sensitivity row of frames without a ball (records.py also writes it into those frames' attributes)
NO_BALL = ("ball", "none")
# detections of one class overlapping more than this once a frame's tiles are merged are one ball
MERGE_IOU = 0.45
# a box cut by a tile's inner edge is the same ball as a kept box covering more than this share of it
CUT_COVERED = 0.5
# most detections a frame keeps (GluonCV's detectors keep 100 per image)
TOP_K = 100


@dataclass
class Detections:
    """Per frame, in original image pixels: predicted boxes (K, 4), class ids (K,), scores (K,);
    ground truth (N, 4) and ids (N,) — N = 0 on a frame without a ball."""

    boxes: list[np.ndarray]
    ids: list[np.ndarray]
    scores: list[np.ndarray]
    gt_boxes: list[np.ndarray]
    gt_ids: list[np.ndarray]

    def subset(self, frames: list[int]) -> Detections:
        return Detections(*([part[i] for i in frames] for part in vars(self).values()))

    def __len__(self) -> int:
        return len(self.gt_boxes)


# ---- running the network -------------------------------------------------------------------------------------------


def one_image_per_forward(net: Any) -> bool:
    """GluonCV's R-CNN detectors infer one image per forward (a batch breaks their proposal concat)."""
    return isinstance(net, RCNN)


def whole_frame_side(net: Any) -> int | None:
    """For a tiled model, the longest input side up to which the network takes the whole frame at the tiles' scale
    (R-CNN detectors: their anchors' extent); None: the network sees tiles."""
    return anchors.RCNN_MAX_INPUT_SIDE if one_image_per_forward(net) else None


# Gluon's warning naming the two parameters of GluonCV's Faster-RCNN that only its training targets use (in
# either order: Gluon lists them from a set)
TRAINING_ONLY_PARAMETERS_UNUSED = (
    r"Parameter normalizedperclassboxcenterencoder\d+_(means|stds), normalizedperclassboxcenterencoder\d+_(means|stds)"
    r" is not used"
)


def _forward(net: Any, x: mx.nd.NDArray) -> list[list[np.ndarray]]:
    """Per image of the batch: its (ids, scores, boxes)."""
    with warnings.catch_warnings():
        # Faster-RCNN's first hybridized inference: its training-only box target encoder's means and stds are,
        # rightly, "not used by any computation"; only that warning, so an unused parameter of ours still shows
        warnings.filterwarnings("ignore", message=TRAINING_ONLY_PARAMETERS_UNUSED)
        ids, scores, boxes = (a.asnumpy() for a in net(x))
    return [[ids[i], scores[i], boxes[i]] for i in range(x.shape[0])]


def run(net: Any, x: mx.nd.NDArray, one_at_a_time: bool) -> tuple[list[list[np.ndarray]], bool]:
    """Per image (ids, scores, boxes), and whether the network turned out to take one image per forward."""
    if not one_at_a_time and x.shape[0] > 1:
        try:
            return _forward(net, x), False
        except mx.base.MXNetError:
            one_at_a_time = True  # a forward that takes one image only (like Faster-RCNN's): go image by image
    return [_forward(net, x[i : i + 1])[0] for i in range(x.shape[0])], one_at_a_time


def run_batches(
    net: Any, inputs: list[mx.nd.NDArray], batch_size: int, one_at_a_time: bool
) -> tuple[list[list[np.ndarray]], bool]:
    """Per input (ids, scores, boxes), `batch_size` inputs per forward (a frame's thousands of tiles never stacked
    at once), and whether the network turned out to take one image per forward. A network that takes one image per
    forward gets each input unstacked: whole frames of different sizes cannot share a batch."""
    if one_at_a_time:
        return [_forward(net, x.expand_dims(0))[0] for x in inputs], True
    outputs: list[list[np.ndarray]] = []
    step = max(1, batch_size)
    for start in range(0, len(inputs), step):
        chunk, one_at_a_time = run(net, mx.nd.stack(*inputs[start : start + step]), one_at_a_time)
        outputs.extend(chunk)
    return outputs, one_at_a_time


def frame_detections(
    outputs: list[list[np.ndarray]], placed: list[tiling.Window], width: int, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame's detections in its pixels from its windows' outputs: padding rows and NaN/Inf boxes dropped,
    tiles' boxes merged (boxes cut by a tile's inner edge only where nothing else covers them), clipped to the
    image, degenerate ones dropped."""
    all_boxes, all_ids, all_scores, all_whole = [], [], [], []
    for (ids, scores, boxes), window in zip(outputs, placed, strict=True):
        ids, scores = ids.reshape(-1).astype(np.float64), scores.reshape(-1).astype(np.float64)
        boxes, whole = tiling.place(boxes, window)
        with np.errstate(invalid="ignore"):
            valid = (ids >= 0) & np.isfinite(ids) & np.isfinite(scores) & np.isfinite(boxes).all(axis=1)
        all_boxes.append(boxes[valid])
        all_ids.append(ids[valid])
        all_scores.append(scores[valid])
        all_whole.append(whole[valid])
    boxes, ids, scores = np.concatenate(all_boxes), np.concatenate(all_ids), np.concatenate(all_scores)
    if len(placed) > 1:
        kept = merge(boxes, ids, scores, np.concatenate(all_whole))
        boxes, ids, scores = boxes[kept], ids[kept], scores[kept]
    boxes, keep = networks.clip_boxes(boxes, width, height)
    return boxes[keep], ids[keep], scores[keep]


def merge(boxes: np.ndarray, ids: np.ndarray, scores: np.ndarray, whole: np.ndarray | None = None) -> np.ndarray:
    """Indices kept, best score first, at most TOP_K (as GluonCV keeps): boxes no tile edge cut by per-class greedy
    NMS at MERGE_IOU; then each cut box, largest first (the most of a ball a tile saw), unless a kept box of its
    class covers more than CUT_COVERED of it — the part of a ball another tile saw whole, or a larger part of it."""
    whole = np.ones(len(boxes), dtype=bool) if whole is None else whole
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept: list[int] = []
    # whole boxes first, best score first; then cut ones, largest first
    for index in np.lexsort((-scores, np.where(whole, -scores, -areas), ~whole)):
        if len(kept) == TOP_K:
            break
        same = [k for k in kept if ids[k] == ids[index]]
        if same and whole[index] and iou(boxes[index], boxes[same]).max() > MERGE_IOU:
            continue
        if same and not whole[index] and covered(boxes[index], boxes[same]).max() > CUT_COVERED:
            continue
        kept.append(int(index))
    found = np.asarray(kept, dtype=int)
    return found[np.argsort(-scores[found], kind="stable")]


def covered(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Share of `box`'s area inside each of `others` (0.0 for a box without area)."""
    inter_w = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    inter_h = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    return inter_w * inter_h / area if area > 0 else np.zeros(len(others))


def network_inputs(
    image: mx.nd.NDArray,
    augmentation: DetectionAugmentation,
    size: int,
    tile: int | None,
    overlap: int,
    whole_frame_side: int | None = None,
) -> tuple[list[mx.nd.NDArray], list[tiling.Window]]:
    """A frame's normalised network inputs (the whole frame resized, its tiles, or with `whole_frame_side` the whole
    frame at the tiles' scale) and where each comes from."""
    inputs, placed = tiling.window_inputs(image, size, tile, overlap, whole_frame_side)
    return [normalize(x, augmentation) for x in inputs], placed


def _read_frame(reader: mx.recordio.MXIndexedRecordIO, key: int) -> tuple[mx.nd.NDArray, np.ndarray, np.ndarray]:
    """A record's original image (HWC) and its ground-truth boxes (N, 4) in its pixels, with their class ids (N,)."""
    header, encoded = mx.recordio.unpack(reader.read_idx(key))
    image = mx.image.imdecode(encoded)  # records hold the frame's original bytes: its size is the original size
    height, width = int(image.shape[0]), int(image.shape[1])
    label = unpack_label(np.asarray(header.label, dtype=np.float64))
    label = label[label[:, 0] >= 0]  # a frame without a ball holds one placeholder row of class -1
    return image, (label[:, 1:5] * np.array([width, height, width, height])).reshape(-1, 4), label[:, 0].copy()


def detect(
    net: Any,
    rec: Path,
    augmentation: DetectionAugmentation,
    size: int,
    tile: int | None = None,
    overlap: int = 0,
    batch_size: int = 8,
) -> Detections:
    """Run the network over every frame of a RecordIO file; boxes and ground truth in original image pixels.

    Frames are resized to the network input, or with `tile` cut into overlapping tiles whose boxes are
    merged; an R-CNN network takes the whole frame at the tiles' scale instead. Inputs go through the
    network `batch_size` at a time; R-CNN networks (and any network whose forward refuses a batch) one at a
    time. Predicted boxes are clipped to the image; degenerate and non-finite ones are dropped.
    """
    reader = mx.recordio.MXIndexedRecordIO(str(rec.with_suffix(".idx")), str(rec), "r")
    found = Detections([], [], [], [], [])
    one_at_a_time = one_image_per_forward(net)
    whole_side = whole_frame_side(net)
    pending: list[tuple[list[mx.nd.NDArray], list[tiling.Window], int, int]] = []

    def flush() -> None:
        nonlocal one_at_a_time
        inputs = [x for frame_inputs, *_ in pending for x in frame_inputs]
        outputs, one_at_a_time = run_batches(net, inputs, batch_size, one_at_a_time)
        for frame_inputs, placed, width, height in pending:
            boxes, ids, scores = frame_detections(outputs[: len(frame_inputs)], placed, width, height)
            del outputs[: len(frame_inputs)]
            found.boxes.append(boxes)
            found.ids.append(ids)
            found.scores.append(scores)
        pending.clear()

    try:
        with tqdm(total=len(reader.keys), desc=f"detect {rec.name}", unit="frame", leave=False, disable=None) as bar:
            for key in sorted(reader.keys):
                image, gt_boxes, gt_ids = _read_frame(reader, key)
                found.gt_boxes.append(gt_boxes)
                found.gt_ids.append(gt_ids)
                inputs, placed = network_inputs(image, augmentation, size, tile, overlap, whole_side)
                pending.append((inputs, placed, int(image.shape[1]), int(image.shape[0])))
                if sum(len(frame_inputs) for frame_inputs, *_ in pending) >= batch_size:
                    flush()
                bar.update(1)
            flush()
    finally:
        reader.close()
    return found


# ---- the metric ----------------------------------------------------------------------------------------------------


def iou(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Pairwise IoU (len(boxes), len(others)) of corner boxes, width = xmax - xmin (no +1)."""
    a, b = boxes.reshape(-1, 4)[:, None, :], others.reshape(-1, 4)[None, :, :]
    inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _matched(found: Detections, class_id: float, threshold: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Scores and hit flags of every detection of a class (highest score first), and its ground-truth count."""
    scores: list[np.ndarray] = []
    hits: list[np.ndarray] = []
    n_gt = 0
    for boxes, ids, frame_scores, gt_boxes, gt_ids in zip(*vars(found).values()):
        mine, truth = ids == class_id, gt_boxes[gt_ids == class_id]
        n_gt += len(truth)
        order = np.argsort(-frame_scores[mine], kind="stable")
        frame_boxes, frame_scores = boxes[mine][order], frame_scores[mine][order]
        overlaps = iou(frame_boxes, truth)
        taken, frame_hits = np.zeros(len(truth), dtype=bool), np.zeros(len(frame_boxes), dtype=bool)
        # only a detection overlapping some ball enough can be a hit: visit those, highest score first
        for k in np.flatnonzero((overlaps >= threshold).any(axis=1)):
            candidates = np.where(taken, -1.0, overlaps[k])
            best = int(np.argmax(candidates))
            if candidates[best] >= threshold:
                taken[best] = frame_hits[k] = True
        hits.append(frame_hits)
        scores.append(frame_scores)
    all_scores = np.concatenate(scores).astype(np.float64) if scores else np.zeros(0)
    all_hits = np.concatenate(hits).astype(bool) if hits else np.zeros(0, dtype=bool)
    order = np.argsort(-all_scores, kind="stable")
    return all_scores[order], all_hits[order], n_gt


def _recall_precision(hits: np.ndarray, n_gt: int) -> tuple[np.ndarray, np.ndarray]:
    true_positives = np.cumsum(hits)
    precision = true_positives / np.arange(1, len(hits) + 1)
    recall = true_positives / n_gt if n_gt else np.zeros(len(hits))
    return recall.astype(np.float64), precision.astype(np.float64)


def _average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC all-point AP: area under the precision envelope (best precision at this recall or higher)."""
    recall = np.concatenate([[0.0], recall, [1.0]])
    envelope = np.concatenate([[0.0], precision, [0.0]])
    envelope = np.maximum.accumulate(envelope[::-1])[::-1]
    steps = np.where(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * envelope[steps + 1]))


def _classes_present(found: Detections) -> list[float]:
    return sorted({float(c) for ids in found.gt_ids for c in ids})


def average_precision(found: Detections, threshold: float) -> float:
    """AP at one IoU threshold, averaged over the classes present in the ground truth (0.0 when none is)."""
    per_class = []
    for class_id in _classes_present(found):
        _, hits, n_gt = _matched(found, class_id, threshold)
        per_class.append(_average_precision(*_recall_precision(hits, n_gt)))
    return float(np.mean(per_class)) if per_class else 0.0


def voc_ap_50(found: Detections) -> float:
    """mAP@0.5: VOC all-point AP at IoU 0.5 averaged over classes (the task's `map_50`)."""
    return average_precision(found, 0.5)


def coco_map(found: Detections) -> float:
    """mAP@[.5:.95]: the same AP averaged over IoU 0.50, 0.55, ..., 0.95 (the task's `map_50_95`)."""
    return float(np.mean([average_precision(found, t) for t in COCO_IOUS]))


def pr_curve(found: Detections, iou_threshold: float = 0.5, class_id: float = 0) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision after each detection of a class, highest score first (what voc_ap_50 integrates)."""
    _, hits, n_gt = _matched(found, class_id, iou_threshold)
    return _recall_precision(hits, n_gt)


def false_positive_rate_no_ball(found: Detections, score_threshold: float) -> float:
    """Share of frames without a ball that have a detection scoring >= score_threshold (0.0 if there are none)."""
    empty = [i for i, gt in enumerate(found.gt_boxes) if len(gt) == 0]
    if not empty:
        return 0.0
    return sum(bool(np.any(found.scores[i] >= score_threshold)) for i in empty) / len(empty)


# ---- the post's sensitivity analysis -------------------------------------------------------------------------------


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


def sensitivity(
    found: Detections, attributes: list[dict[str, str]], score_threshold: float = 0.3
) -> list[dict[str, Any]]:
    """mAP@0.5 of the frames sharing each value of each characteristic, then a row for frames without a ball.

    The "ball: none" row (present when such frames exist) has map_50 0.0 — AP is undefined without a ball — and
    `false_positive_rate`: the share of those frames with a detection scoring >= score_threshold.
    """
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, frame in enumerate(attributes):
        for name, value in frame.items():
            if (name, value) != NO_BALL:  # that row is computed from the ground truth below
                groups[(name, value)].append(index)
    rows: list[dict[str, Any]] = [
        {"attribute": name, "value": value, "frames": len(frames), "map_50": voc_ap_50(found.subset(frames))}
        for (name, value), frames in sorted(groups.items())
    ]
    empty = [i for i, gt in enumerate(found.gt_boxes) if len(gt) == 0]
    if empty:
        rate = false_positive_rate_no_ball(found.subset(empty), score_threshold)
        rows.append(
            {
                "attribute": NO_BALL[0],
                "value": NO_BALL[1],
                "frames": len(empty),
                "map_50": 0.0,
                "false_positive_rate": rate,
            }
        )
    return rows
