"""A detector's anchors, laid on the training boxes at the network's input size.

SSD's and YOLOv3's are fitted in place after the network is built; Faster-RCNN's are constructor options. They are
derived from a trial's own boxes, so copied or resumed weights never bring another trial's anchors.
"""

from __future__ import annotations

import math
from typing import Any

import mxnet as mx
import numpy as np

from mlexp.tasks.object_detection.config import Detector


def box_sides(train_box_sizes: np.ndarray | None) -> np.ndarray:
    """Each training box's side sqrt(width × height), boxes without area left out."""
    if train_box_sizes is None:
        return np.zeros(0)
    sizes = np.asarray(train_box_sizes, dtype=np.float64).reshape(-1, 2)
    sizes = sizes[np.isfinite(sizes).all(axis=1) & (sizes > 0).all(axis=1)]
    return np.sqrt(sizes[:, 0] * sizes[:, 1])


def fit_anchors(net: Any, size: int, scale: float) -> None:
    """Lay each SSD layer's anchors on its feature map's real stride at this input size, sizes × scale.

    The presets fix anchor steps for their native size (and ssd_300_mobilenet0.25's first steps
    are half its real strides), so at other sizes anchor centres would miss parts of the frame.
    """
    maps = net.features(mx.nd.zeros((1, 3, size, size)))
    for generator, feature_map in zip(net.anchor_generators, maps):
        alloc = generator.anchors.shape[2:4]
        stride = size / feature_map.shape[2]
        sizes = tuple(s * scale for s in generator._sizes)
        anchors = generator._generate_anchors(sizes, generator._ratios, stride, alloc, (0.5, 0.5))
        generator.anchors.set_data(mx.nd.array(anchors))


def fit_finest_anchors(net: Any, size: int, train_box_sizes: np.ndarray) -> None:
    """The finest SSD layer's anchors: the balls' median shape at sub-cell centres (a 2 × 2 grid in each cell).

    Its feature map has a 16-px stride at 512 px, coarser than a 5-15 px ball: with one anchor centre per cell
    and square or 2:1 shapes, the best anchor of most balls overlaps them at IoU ~0.3, so each ball trains one
    badly placed positive. The cell's anchor slots (a fixed count) are spent on one shape at half the stride.
    Balls larger than the stride keep the preset's shapes (the scale spread serves them better).
    """
    sizes = np.asarray(train_box_sizes, dtype=np.float64).reshape(-1, 2)
    sizes = sizes[np.isfinite(sizes).all(axis=1) & (sizes > 0).all(axis=1)]
    generator = net.anchor_generators[0]
    feature_map = net.features(mx.nd.zeros((1, 3, size, size)))[0]
    stride = size / feature_map.shape[2]
    if len(sizes) == 0 or np.median(np.sqrt(sizes[:, 0] * sizes[:, 1])) >= stride:
        return
    _, _, rows, cols, depth = generator.anchors.shape
    slots = depth // 4
    # a little larger than the median ball, so a ball a quarter-stride off the centre still overlaps at IoU ~0.5
    width, height = np.median(sizes, axis=0) * 1.2
    offsets = [(0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75)]
    offsets = (offsets * slots)[:slots]
    anchors = np.zeros((rows, cols, slots, 4))
    for slot, (dy, dx) in enumerate(offsets):
        anchors[:, :, slot, 0] = (np.arange(cols)[None, :] + dx) * stride
        anchors[:, :, slot, 1] = (np.arange(rows)[:, None] + dy) * stride
        anchors[:, :, slot, 2], anchors[:, :, slot, 3] = width, height
    generator.anchors.set_data(mx.nd.array(anchors.reshape(1, 1, rows, cols, depth)))


def anchor_scale(model: Detector, train_box_sizes: np.ndarray | None = None, net: Any = None) -> float:
    """SSD anchor sizes' factor: model.anchor_scale; else the smallest anchor on the small balls (10th
    percentile of the training boxes' sides) but not below its layer's stride; without boxes,
    input_size / the preset's size.

    An anchor much smaller than the spacing of its centres overlaps no ball well: a 7-px anchor every 16 px
    leaves the matched one up to 8 px off a 10-px ball, a box target of ~11 (box_loss 18 at 512 px).
    """
    if model.anchor_scale is not None:
        return float(model.anchor_scale)
    sides = box_sides(train_box_sizes)
    if len(sides) and net is not None:
        first_map = net.features(mx.nd.zeros((1, 3, model.input_size, model.input_size)))[0]
        stride = model.input_size / first_map.shape[2]
        smallest = float(net.anchor_generators[0]._sizes[0])
        return max(float(np.quantile(sides, 0.1)), stride) / smallest
    preset = model.network.split("_")[1]
    return model.input_size / int(preset) if preset.isdigit() else 1.0


def yolo_anchors(train_box_sizes: np.ndarray, count: int = 9) -> np.ndarray:
    """`count` (width, height) anchors at evenly spaced quantiles of the boxes' areas, smallest first.

    Quantiles rather than k-means: a few dozen balls of one shape give k-means empty clusters.
    """
    sizes = np.asarray(train_box_sizes, dtype=np.float64).reshape(-1, 2)
    sizes = sizes[np.isfinite(sizes).all(axis=1) & (sizes > 0).all(axis=1)]
    order = np.argsort(sizes[:, 0] * sizes[:, 1])
    picks = np.quantile(np.arange(len(order)), np.linspace(0.05, 0.95, count)).round().astype(int)
    return np.maximum(sizes[order[picks]], 1.0)


def fit_yolo_anchors(net: Any, train_box_sizes: np.ndarray) -> None:
    """Each YOLOv3 output's three anchors from the training boxes: the smallest on the finest stride."""
    outputs = sorted(net.yolo_outputs, key=lambda output: output._stride)
    per_output = outputs[0].anchors.shape[2]
    anchors = yolo_anchors(train_box_sizes, per_output * len(outputs))
    for index, output in enumerate(outputs):
        chosen = anchors[index * per_output : (index + 1) * per_output]
        output.anchors.set_data(mx.nd.array(chosen.reshape(1, 1, per_output, 2)))


# GluonCV's Faster-RCNN: anchors of scale × 16 px on a stride-16 feature map, proposals counted as in its defaults
RCNN_BASE_SIZE, RCNN_STRIDE = 16, 16
RCNN_PROPOSALS = {"rpn_train_pre_nms": 12000, "rpn_train_post_nms": 2000, "rpn_test_pre_nms": 6000,
                  "rpn_test_post_nms": 300}  # fmt: skip
# feature-map cells the anchors are generated for (GluonCV: 128): inputs up to 4096 px a side, so that a tiled
# model's whole 1280×720 frame at twice its size (2560×1440) goes through at once; 9.4 MB of anchors
RCNN_ANCHOR_CELLS = 256
RCNN_MAX_INPUT_SIDE = RCNN_ANCHOR_CELLS * RCNN_STRIDE
RPN_ANCHORS = "rpn.anchor_generator.anchors"


def rcnn_options(size: int, train_box_sizes: np.ndarray | None, rois: int = 32, tiled: bool = False) -> dict[str, Any]:
    """Faster-RCNN anchors, minimum proposal size and proposal counts for this input size and these boxes.

    GluonCV's defaults (anchors 128–512 px, proposals under 16 px dropped) suit 600-px COCO frames:
    a 10-px ball then matches no anchor. Proposal counts cannot exceed the anchors a small input has.
    In training, the R-CNN head runs ResNet's last stage on each of `rois` regions pooled to 7 × 7 (GluonCV:
    300 at 14 × 14, 20 s a frame on two cores), and so it does at inference on the frame resized to `size`.
    A `tiled` model is trained on tiles but infers on the whole frame at once (tiling.whole_frame): there it
    keeps GluonCV's test counts, 6000 boxes into the proposals' NMS and 300 out, a whole 600-px image's worth
    (0.4 s more than 100 on a 2560×1440 input). Only the count out must not exceed the anchors an input has:
    an input is padded to at least size × size, so a frame too large for one input still gets that many per tile.
    """
    anchors_per_cell = 9
    cells = math.ceil(size / RCNN_STRIDE) ** 2
    counts = {key: min(value, cells * anchors_per_cell) for key, value in RCNN_PROPOSALS.items()}
    if tiled:
        counts["rpn_test_pre_nms"] = RCNN_PROPOSALS["rpn_test_pre_nms"]
    test_rois = RCNN_PROPOSALS["rpn_test_post_nms"] if tiled else rois
    counts["rpn_test_post_nms"] = min(test_rois, cells * anchors_per_cell)
    options: dict[str, Any] = {
        **counts,
        "num_sample": min(rois, counts["rpn_train_post_nms"]),
        "roi_size": (7, 7),
        "alloc_size": (RCNN_ANCHOR_CELLS, RCNN_ANCHOR_CELLS),
    }
    sizes = np.asarray(train_box_sizes if train_box_sizes is not None else np.zeros((0, 2)), dtype=np.float64)
    sizes = sizes.reshape(-1, 2)
    sizes = sizes[np.isfinite(sizes).all(axis=1) & (sizes > 0).all(axis=1)]
    if len(sizes) == 0:
        return options
    sides = np.sqrt(sizes[:, 0] * sizes[:, 1])
    # three anchor sizes spanning the boxes (a little beyond both ends), three aspect ratios (height / width)
    low, middle, high = np.quantile(sides, [0.05, 0.5, 0.95])
    scales = np.array([low / 1.25, middle, high * 1.25]) / RCNN_BASE_SIZE
    aspect = np.quantile(sizes[:, 1] / sizes[:, 0], [0.1, 0.5, 0.9])
    ratios = np.clip(aspect * np.array([0.8, 1.0, 1.25]), 0.2, 5.0)
    options.update(
        scales=tuple(round(float(s), 4) for s in scales),
        ratios=tuple(round(float(r), 4) for r in ratios),
        # proposals below half the smallest ball are noise; GluonCV's 16 px would drop every ball
        rpn_min_size=max(1, int(np.quantile(sides, 0.02) / 2)),
    )
    return options


def is_anchors(name: str) -> bool:
    """Whether a parameter holds anchors (SSD's, YOLOv3's or the RPN's): derived from a trial's boxes and input
    size, so copied or resumed weights leave them as the trial made them."""
    return "anchor" in name


def fit_to_boxes(net: Any, model: Detector, family: str, train_box_sizes: np.ndarray | None) -> None:
    """SSD's and YOLOv3's anchors on the training boxes (SSD's on its input size too, when there are none)."""
    if family == "ssd":
        fit_anchors(net, model.input_size, anchor_scale(model, train_box_sizes, net))
        if train_box_sizes is not None and len(box_sides(train_box_sizes)):
            fit_finest_anchors(net, model.input_size, train_box_sizes)
    elif family == "yolo3" and len(box_sides(train_box_sizes)):
        assert train_box_sizes is not None
        fit_yolo_anchors(net, train_box_sizes)
