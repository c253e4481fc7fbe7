"""The project's mAP on hand-computed boxes (VOC all-point AP@0.5, COCO mean over 0.50:0.95, no +1 pixel,
false positives on frames without a ball) and `detect` mapping network output back to original image pixels."""

from __future__ import annotations

import io
from typing import Any

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from mlexp.errors import ConfigError
from mlexp.tasks.object_detection import anchors, evaluation, networks
from mlexp.tasks.object_detection.config import DetectionAugmentation, Detector

GT = np.array([[10.0, 10.0, 30.0, 30.0]])


def _frames(*predictions: tuple[list[float], float]) -> evaluation.Detections:
    """One ground-truth ball per frame at GT; per frame one predicted box with its score."""
    n = len(predictions)
    return evaluation.Detections(
        boxes=[np.array([box], dtype=float) for box, _ in predictions],
        ids=[np.zeros(1) for _ in range(n)],
        scores=[np.array([score]) for _, score in predictions],
        gt_boxes=[GT.copy() for _ in range(n)],
        gt_ids=[np.zeros(1) for _ in range(n)],
    )


def _frame(gt: list[list[float]], predictions: list[tuple[list[float], float]]) -> evaluation.Detections:
    """One frame: its ground-truth boxes (maybe none) and predicted (box, score) pairs, all of class 0."""
    return evaluation.Detections(
        boxes=[np.array([box for box, _ in predictions], dtype=float).reshape(-1, 4)],
        ids=[np.zeros(len(predictions))],
        scores=[np.array([score for _, score in predictions], dtype=float)],
        gt_boxes=[np.array(gt, dtype=float).reshape(-1, 4)],
        gt_ids=[np.zeros(len(gt))],
    )


def _join(*parts: evaluation.Detections) -> evaluation.Detections:
    return evaluation.Detections(*(sum((getattr(p, name) for p in parts), []) for name in vars(parts[0])))


def _hand_case() -> evaluation.Detections:
    """Five frames, three balls, five detections; the expected figures are worked out in the tests."""
    return _join(
        # frame 0: a hit (0.9) and a duplicate of it (0.6, IoU 361/439 with the ball already taken)
        _frame([[10, 10, 30, 30]], [([10, 10, 30, 30], 0.9), ([11, 11, 31, 31], 0.6)]),
        # frame 1: a hit with a low score (0.5)
        _frame([[50, 50, 70, 70]], [([50, 50, 70, 70], 0.5)]),
        # frame 2: a ball nobody found
        _frame([[100, 100, 120, 120]], []),
        # frame 3: no ball, a false positive (0.7)
        _frame([], [([5, 5, 25, 25], 0.7)]),
        # frame 4: no ball, nothing detected
        _frame([], []),
    )


def test_all_point_ap_at_05_counts_duplicates_misses_and_detections_on_frames_without_a_ball():
    found = _hand_case()
    # by score: 0.9 hit, 0.7 false positive (no-ball frame), 0.6 duplicate, 0.5 hit; 3 balls
    # recall    1/3, 1/3, 1/3, 2/3        precision 1, 1/2, 1/3, 1/2
    # monotone envelope: 1 up to recall 1/3, 1/2 up to 2/3, 0 beyond (the missed ball)
    # AP = 1/3 * 1 + 1/3 * 1/2 = 1/2
    assert evaluation.voc_ap_50(found) == pytest.approx(0.5)
    recall, precision = evaluation.pr_curve(found)
    np.testing.assert_allclose(recall, [1 / 3, 1 / 3, 1 / 3, 2 / 3])
    np.testing.assert_allclose(precision, [1, 1 / 2, 1 / 3, 1 / 2])
    # without the no-ball frames: 0.9 hit, 0.6 duplicate, 0.5 hit → precision 1, 1/2, 2/3
    # AP = 1/3 * 1 + 1/3 * 2/3 = 5/9: the false positive on the empty frame cost 1/18
    assert evaluation.voc_ap_50(found.subset([0, 1, 2])) == pytest.approx(5 / 9)
    # one of the two no-ball frames has a detection scoring >= 0.5; none scores >= 0.75
    assert evaluation.false_positive_rate_no_ball(found, 0.5) == pytest.approx(0.5)
    assert evaluation.false_positive_rate_no_ball(found, 0.75) == 0.0
    assert evaluation.false_positive_rate_no_ball(found.subset([0, 1]), 0.5) == 0.0  # no such frame: 0, not NaN


def test_a_detection_whose_best_ball_is_taken_matches_the_next_unmatched_ball():
    # balls A = [0, 0, 20, 20] and B = [4, 0, 24, 20]; the 0.9 box sits on A (IoU 1);
    # the 0.8 box [1, 0, 21, 20] overlaps A by 380/420 = 0.90 (taken) and B by 340/460 = 0.74 → it takes B: AP 1
    # (VOC's devkit would call it a duplicate of A: AP 1/2)
    found = _frame([[0, 0, 20, 20], [4, 0, 24, 20]], [([0, 0, 20, 20], 0.9), ([1, 0, 21, 20], 0.8)])
    assert evaluation.voc_ap_50(found) == pytest.approx(1.0)
    # at IoU 0.75 B is out of reach of the second box: recall 1/2 at precision 1 → AP 1/2
    assert evaluation.average_precision(found, 0.75) == pytest.approx(0.5)


def test_all_point_ap_is_the_area_under_the_curve_not_voc07_eleven_points():
    # hit (recall 1/2, precision 1), then a box beside the ball (recall 1/2, precision 1/2): AP = 1/2 * 1
    # (VOC07's 11-point interpolation would give 6/11)
    found = _frames(([10, 10, 30, 30], 0.9), ([40, 40, 60, 60], 0.8))
    assert evaluation.voc_ap_50(found) == pytest.approx(0.5)
    assert evaluation.voc_ap_50(_frames(([10, 10, 30, 30], 0.9), ([11, 10, 31, 30], 0.5))) == pytest.approx(1.0)
    assert evaluation.voc_ap_50(_frames(([50, 50, 70, 70], 0.9))) == 0.0
    assert not hasattr(evaluation, "VOC07MApMetric")


def test_widths_have_no_plus_one_pixel():
    # 10×10 against 10×10 shifted 5 px: overlap 5×10 = 50, union 100 + 100 - 50 = 150 (GluonCV's +1: 66/176)
    assert evaluation.iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]]))[0, 0] == pytest.approx(50 / 150)
    # a 2×2 ball and a box shifted 1 px: IoU 2/6 = 1/3 — a miss; with +1 it would be 6/12 = 0.5, a hit
    assert evaluation.voc_ap_50(_frame([[10, 10, 12, 12]], [([11, 10, 13, 12], 0.9)])) == 0.0


def test_coco_map_averages_the_same_ap_over_ten_iou_thresholds():
    # 20×20 ball, box shifted 4 px: IoU 16*20 / (800 - 320) = 2/3 → a hit at 0.50, 0.55, 0.60, 0.65 only
    assert evaluation.coco_map(_frame([[0, 0, 20, 20]], [([4, 0, 24, 20], 0.9)])) == pytest.approx(0.4)
    # two balls: one found exactly (0.8), one by a box shifted 2 px (0.9, IoU 360/440 = 0.818)
    # at 0.50 ... 0.80 both hit: AP 1 (7 thresholds); at 0.85, 0.90, 0.95 the top box misses:
    # recall 0, 1/2 at precision 0, 1/2 → AP 1/4; mean = (7 * 1 + 3 * 1/4) / 10 = 0.775
    found = _join(
        _frame([[0, 0, 20, 20]], [([2, 0, 22, 20], 0.9)]),
        _frame([[0, 0, 20, 20]], [([0, 0, 20, 20], 0.8)]),
    )
    assert evaluation.coco_map(found) == pytest.approx(0.775)
    assert evaluation.voc_ap_50(found) == pytest.approx(1.0)
    assert evaluation.average_precision(found, 0.85) == pytest.approx(0.25)


def test_sensitivity_scores_each_group_and_adds_the_false_positive_rate_of_frames_without_a_ball():
    found = _join(
        _frames(([10, 10, 30, 30], 0.9), ([50, 50, 70, 70], 0.9), ([10, 10, 30, 30], 0.8)),
        _frame([], [([0, 0, 8, 8], 0.4)]),
        _frame([], []),
    )
    frames = [{"attributes": {"occlusion": v}} for v in ("low", "high", "low")]
    frames += [{"attributes": {"ball": "none", "camera": "far"}}, {"attributes": {"ball": "none"}}]
    attributes = evaluation.frame_attributes(frames, found, small_box_px=16)
    assert attributes[0] == {"occlusion": "low", "size": "large", "aspect_ratio": "wide"}
    assert attributes[4] == {"ball": "none"}  # no size or aspect ratio without a box
    rows = evaluation.sensitivity(found, attributes, score_threshold=0.3)
    by_key = {(r["attribute"], r["value"]): r for r in rows}
    assert (by_key[("occlusion", "low")]["frames"], by_key[("occlusion", "low")]["map_50"]) == (2, pytest.approx(1.0))
    assert by_key[("occlusion", "high")]["map_50"] == 0.0
    assert by_key[("size", "large")]["map_50"] == pytest.approx(evaluation.voc_ap_50(found.subset([0, 1, 2])))
    # the far-camera group is one no-ball frame with a false positive: AP 0 (no ball), never NaN
    assert by_key[("camera", "far")]["map_50"] == 0.0
    assert [r for r in rows if r["attribute"] == "ball"] == [
        {"attribute": "ball", "value": "none", "frames": 2, "map_50": 0.0, "false_positive_rate": 0.5}
    ]
    assert evaluation.sensitivity(found, attributes, score_threshold=0.5)[-1]["false_positive_rate"] == 0.0
    assert all(np.isfinite(r["map_50"]) for r in rows)


# ---- detect: network output → original image pixels ---------------------------------------------------------------


def _write_rec(path, frames: list[tuple[int, int, list[list[float]]]]) -> None:
    """RecordIO as records.py writes it: original PNG bytes; label [2, 5, (class, corners / size)...];
    a frame without a ball holds one placeholder row of -1 (OD-B's convention)."""
    writer = mx.recordio.MXIndexedRecordIO(str(path.with_suffix(".idx")), str(path), "w")
    for key, (width, height, balls) in enumerate(frames):
        buffer = io.BytesIO()
        Image.new("RGB", (width, height), (40, 120, 40)).save(buffer, format="PNG")
        rows = [[0, x0 / width, y0 / height, x1 / width, y1 / height] for x0, y0, x1, y1 in balls] or [[-1] * 5]
        label = np.array([2, 5, *np.ravel(rows)], dtype=np.float32)
        writer.write_idx(key, mx.recordio.pack(mx.recordio.IRHeader(0, label, key, 0), buffer.getvalue()))
    writer.close()


NAN, INF = float("nan"), float("inf")
# what the fake network returns for every image, in network-input pixels (input 50 × 50)
NET_ROWS = [
    (0, 0.9, [10, 10, 15, 20]),  # inside
    (0, 0.8, [-5, -5, 10, 60]),  # crosses the top-left and bottom edges: clipped
    (0, 0.7, [60, 0, 70, 10]),  # wholly right of the image: nothing left after clipping, dropped
    (0, NAN, [1, 1, 5, 5]),  # NaN score: dropped
    (0, 0.6, [1, INF, 5, 5]),  # infinite corner: dropped
    (-1, -1, [-1, -1, -1, -1]),  # the network's padding row: dropped
    (0, 0.5, [-1e19, -1e19, 1e19, 1e19]),  # a barely trained network's huge box: clipped to the whole frame
]


def _fixed_outputs(images: int) -> tuple[mx.nd.NDArray, mx.nd.NDArray, mx.nd.NDArray]:
    """(ids, scores, boxes) with NET_ROWS for each of `images` images, as a GluonCV detector returns them."""
    ids = np.array([[[r[0]] for r in NET_ROWS]] * images, dtype=np.float32)
    scores = np.array([[[r[1]] for r in NET_ROWS]] * images, dtype=np.float32)
    boxes = np.array([[r[2] for r in NET_ROWS]] * images, dtype=np.float32)
    return mx.nd.array(ids), mx.nd.array(scores), mx.nd.array(boxes)


class OneImageNet:
    """Stands in for a Faster-RCNN-like detector: fixed outputs, and a forward that refuses a batch of several."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def __call__(self, x: mx.nd.NDArray) -> tuple[mx.nd.NDArray, mx.nd.NDArray, mx.nd.NDArray]:
        self.batches.append(x.shape[0])
        assert x.shape[1:] == (3, 50, 50)
        if x.shape[0] > 1:
            raise mx.base.MXNetError("concat: Incompatible input shape: expected [300,-1], got [600,4]")
        return _fixed_outputs(1)


class BatchNet(OneImageNet):
    """The same outputs from a network that takes batches (SSD, YOLOv3)."""

    def __call__(self, x: mx.nd.NDArray) -> tuple[mx.nd.NDArray, mx.nd.NDArray, mx.nd.NDArray]:
        self.batches.append(x.shape[0])
        return _fixed_outputs(x.shape[0])


def test_detect_maps_boxes_and_ground_truth_to_original_pixels_one_image_per_forward(tmp_path):
    rec = tmp_path / "val.rec"
    # a 200×100 frame (scale 4 × 2 from the 50 px input), a 200×100 frame without a ball, a 100×50 frame (2 × 1)
    _write_rec(rec, [(200, 100, [[40, 20, 60, 40]]), (200, 100, []), (100, 50, [[20, 10, 30, 20]])])
    net = OneImageNet()
    found = evaluation.detect(net, rec, DetectionAugmentation(), size=50, batch_size=8)
    assert net.batches[0] == 3 and net.batches[1:] == [1, 1, 1]  # the batch was refused, then one image at a time
    assert len(found) == 3
    np.testing.assert_allclose(found.gt_boxes[0], [[40, 20, 60, 40]], atol=1e-4)
    assert found.gt_boxes[1].shape == (0, 4) and found.gt_ids[1].shape == (0,)  # the no-ball frame stays, empty
    np.testing.assert_allclose(found.gt_boxes[2], [[20, 10, 30, 20]], atol=1e-4)
    np.testing.assert_allclose(
        found.boxes[0], [[40, 20, 60, 40], [0, 0, 40, 100], [0, 0, 200, 100]]
    )  # [-20, -10, 40, 120] clipped; [240, 0, 280, 20] and the NaN/Inf/padding rows dropped
    np.testing.assert_allclose(found.scores[0], [0.9, 0.8, 0.5], rtol=1e-6)
    np.testing.assert_allclose(found.boxes[2], [[20, 10, 30, 20], [0, 0, 20, 50], [0, 0, 100, 50]])
    for part in (found.boxes, found.scores, found.ids):
        assert all(np.isfinite(a).all() for a in part)
    # the 0.9 box lands exactly on each ball in original pixels; on the no-ball frame it is a false positive.
    # Equal scores keep frame order: 0.9 hit, 0.9 false positive, 0.9 hit, then six misses →
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 → AP = 1/2 * 1 + 1/2 * 2/3 = 5/6
    assert evaluation.voc_ap_50(found) == pytest.approx(5 / 6)
    assert evaluation.false_positive_rate_no_ball(found, 0.3) == 1.0


def test_detect_keeps_batches_for_networks_that_take_them(tmp_path):
    rec = tmp_path / "val.rec"
    _write_rec(rec, [(200, 100, [[40, 20, 60, 40]]), (100, 50, []), (200, 100, [[40, 20, 60, 40]])])
    net = BatchNet()
    found = evaluation.detect(net, rec, DetectionAugmentation(), size=50, batch_size=2)
    assert net.batches == [2, 1]  # frames 0-1, then frame 2
    assert [len(g) for g in found.gt_boxes] == [1, 0, 1]
    np.testing.assert_allclose(found.boxes[1][0], [20, 10, 30, 20])  # frame 1 is 100×50: scaled 2 × 1
    np.testing.assert_allclose(found.boxes[2][0], [40, 20, 60, 40])


def _tiny_faster_rcnn() -> Any:
    """GluonCV's FasterRCNN class on a four-conv backbone (stride 16) with 16 proposals: ~0.5 s on CPU."""
    from gluoncv.model_zoo.rcnn.faster_rcnn import FasterRCNN
    from mxnet.gluon import nn

    features, top = nn.HybridSequential(), nn.HybridSequential()
    for _ in range(4):
        features.add(nn.Conv2D(8, 3, strides=2, padding=1, activation="relu"))
    top.add(nn.Conv2D(8, 3, padding=1, activation="relu"))
    net = FasterRCNN(
        features,
        top,
        classes=["ball"],
        short=128,
        max_size=128,
        rpn_channel=8,
        rpn_test_pre_nms=64,
        rpn_test_post_nms=16,
        post_nms=16,
        roi_size=(7, 7),
        strides=16,
        alloc_size=(32, 32),
    )
    net.initialize()
    return net


def test_a_real_faster_rcnn_is_fed_one_image_at_a_time(tmp_path):
    rec = tmp_path / "val.rec"
    _write_rec(rec, [(320, 180, [[300, 170, 320, 180]]), (320, 180, []), (160, 90, [[10, 10, 20, 16]])])
    net = _tiny_faster_rcnn()
    with pytest.raises(mx.base.MXNetError, match="concat"):  # what a batch did to it before #11
        [a.asnumpy() for a in net(mx.nd.zeros((2, 3, 128, 128)))]
    assert evaluation.one_image_per_forward(net)
    found = evaluation.detect(net, rec, DetectionAugmentation(), size=128, batch_size=8)
    assert len(found) == 3 and found.gt_boxes[1].shape == (0, 4)
    np.testing.assert_allclose(found.gt_boxes[0], [[300, 170, 320, 180]], atol=1e-3)
    np.testing.assert_allclose(found.gt_boxes[2], [[10, 10, 20, 16]], atol=1e-3)
    for boxes, (width, height) in zip(found.boxes, [(320, 180), (320, 180), (160, 90)]):
        assert np.isfinite(boxes).all()
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
        assert ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).all()
    assert 0.0 <= evaluation.voc_ap_50(found) <= 1.0


# ---- network names (kept here from before #11) ---------------------------------------------------------------------


def test_an_unknown_network_name_is_refused_with_the_zoo_choices():
    with pytest.raises(
        ConfigError, match=r"model.network='ssd_foo'.*ssd_512_mobilenet1.0_custom.*yolo3_darknet53_custom"
    ):
        networks.check(Detector(network="ssd_foo"))
    assert networks.check(Detector(network="faster_rcnn_resnet50_v1b_custom")) == "faster_rcnn"


def test_base_weights_are_used_only_when_present_and_intact(tmp_path):
    assert networks.base_weights("ssd_512_mobilenet1.0_custom", str(tmp_path)) is None
    from gluoncv.model_zoo.model_store import short_hash

    (tmp_path / f"mobilenet1.0-{short_hash('mobilenet1.0')}.params").write_bytes(b"not the zoo's weights")
    assert (
        networks.base_weights("ssd_512_mobilenet1.0_custom", str(tmp_path)) is None
    )  # SHA-1 mismatch: never downloaded
    assert anchors.anchor_scale(Detector(network="ssd_512_mobilenet1.0_custom", input_size=256)) == 0.5


def test_the_config_classes_defaults_are_the_default_runs():
    # code that builds a Detector or DetectionAugmentation itself gets what `mlexp task=object_detection` composes
    from dataclasses import asdict

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from conftest import REPO
    from mlexp.config import make_composable
    from mlexp.tasks.object_detection.config import DetectionAugmentation

    make_composable()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["task=object_detection"])
    composed = OmegaConf.to_container(cfg, resolve=True)
    model = {k: getattr(v, "value", v) for k, v in asdict(Detector()).items()}
    assert {k: composed["model"][k] for k in model} == model  # type: ignore[index]
    assert {k: composed["preprocessing"][k] for k in asdict(DetectionAugmentation())} == asdict(  # type: ignore[index]
        DetectionAugmentation()
    )
