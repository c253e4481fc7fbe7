"""mAP on hand-built boxes: VOC07 11-point AP at IoU 0.5, the COCO-style average, PR curve, groups."""

from __future__ import annotations

import numpy as np
import pytest

from mlexp.errors import ConfigError
from mlexp.tasks.object_detection import evaluation, networks
from mlexp.tasks.object_detection.config import Detector

GT = np.array([[10.0, 10.0, 30.0, 30.0]])


def _frames(*predictions: tuple[list[float], float]) -> evaluation.Detections:
    """One ground-truth ball per frame at GT; per frame one predicted box with its score."""
    n = len(predictions)
    return evaluation.Detections(
        boxes=[np.array([box]) for box, _ in predictions],
        ids=[np.zeros(1) for _ in range(n)],
        scores=[np.array([score]) for _, score in predictions],
        gt_boxes=[GT.copy() for _ in range(n)],
        gt_ids=[np.zeros(1) for _ in range(n)],
    )


def test_perfect_boxes_score_one_and_a_miss_scores_zero():
    assert evaluation.voc_map(_frames(([10, 10, 30, 30], 0.9), ([11, 10, 31, 30], 0.5))) == pytest.approx(1.0)
    assert evaluation.voc_map(_frames(([50, 50, 70, 70], 0.9))) == pytest.approx(0.0)


def test_voc07_eleven_point_ap_of_a_hit_ranked_above_a_false_positive():
    # sorted by score: hit (recall 0.5, precision 1), then a box beside the ball (recall 0.5, precision 0.5);
    # 11-point interpolation: precision 1 at recall 0, 0.1, ..., 0.5 and 0 above → 6/11
    found = _frames(([10, 10, 30, 30], 0.9), ([40, 40, 60, 60], 0.8))
    assert evaluation.voc_map(found) == pytest.approx(6 / 11)
    recall, precision = evaluation.pr_curve(found)
    np.testing.assert_allclose(recall, [0.5, 0.5])
    np.testing.assert_allclose(precision, [1.0, 0.5])


def test_iou_threshold_decides_a_hit_and_the_coco_style_map_averages_ten_thresholds():
    # [10, 10, 30, 32] against [10, 10, 30, 30]: IoU = 400 / 440 = 0.909 → a hit at 0.50 ... 0.90, not at 0.95
    assert evaluation.coco_style_map(_frames(([10, 10, 30, 32], 0.9))) == pytest.approx(0.9)
    # [10, 10, 30, 46]: IoU = 400 / 720 = 0.556 → a hit at 0.50 and 0.55 only
    loose = _frames(([10, 10, 30, 46], 0.9))
    assert evaluation.voc_map(loose) == pytest.approx(1.0)
    assert evaluation.voc_map(loose, iou=0.6) == pytest.approx(0.0)
    assert evaluation.coco_style_map(loose) == pytest.approx(0.2)


def test_sensitivity_scores_each_group_of_frames_on_its_own():
    found = _frames(([10, 10, 30, 30], 0.9), ([50, 50, 70, 70], 0.9), ([10, 10, 30, 30], 0.8))
    frames = [{"attributes": {"occlusion": v}} for v in ("low", "high", "low")]
    attributes = evaluation.frame_attributes(frames, found, small_box_px=16)
    assert attributes[0] == {"occlusion": "low", "size": "large", "aspect_ratio": "wide"}
    rows = {(r["attribute"], r["value"]): (r["frames"], r["map_50"]) for r in evaluation.sensitivity(found, attributes)}
    assert rows[("occlusion", "low")] == (2, pytest.approx(1.0))
    assert rows[("occlusion", "high")] == (1, pytest.approx(0.0))
    assert rows[("size", "large")] == (3, pytest.approx(evaluation.voc_map(found)))


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
    assert networks.anchor_scale(Detector(network="ssd_512_mobilenet1.0_custom", input_size=256)) == 0.5
