"""Each detector family trains, validates and detects at a small input size, with anchors from the boxes."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
import pytest

from mlexp.tasks.object_detection import evaluation, networks, tiling, training
from mlexp.tasks.object_detection.anchors import RCNN_BASE_SIZE
from mlexp.tasks.object_detection.families import FAMILY_TRAINING
from object_detection_tiny import HEIGHT, NO_JITTER, WIDTH, box_sizes_at, detector, write_frames

# network input side per family; Faster-RCNN at 64 px has 4 × 4 cells × 9 anchors = 144, fewer than GluonCV's
# 2000 proposals ("slice end 2000 > 576 anchors" at 128 px)
SIZES = {"ssd": 96, "yolo3": 96, "faster_rcnn": 64}
# Faster-RCNN trains with its conf's SGD and momentum: Adam's two moments per ResNet-50 weight make each checkpoint's
# trainer.states 260 MB, seconds of CPU to pickle and write (momentum's one copy: 130 MB in a tenth of the time)
RCNN_OPTIMIZER = {"optimizer": "sgd", "momentum": 0.9}


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("frames")
    boxes = write_frames(folder / "train.rec", 4, seed=1, empty=1)  # one frame without a ball
    write_frames(folder / "val.rec", 2, seed=2)
    return folder / "train.rec", folder / "val.rec", boxes


@pytest.fixture(scope="module")
def one_val_frame(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """val.rec's first frame alone: a tiled Faster-RCNN's validation runs ResNet's last stage on up to 144
    proposals of each whole frame, over a second of CPU a frame, and one frame shows what the tests check."""
    rec = tmp_path_factory.mktemp("one-frame") / "val.rec"
    write_frames(rec, 1, seed=2)
    return rec


@pytest.mark.parametrize("option", ["ssd", "yolo3", "faster_rcnn"])
def test_each_family_trains_and_detects_in_frame_pixels(option, frames, tmp_path):
    train_rec, val_rec, boxes = frames
    mx.random.seed(0)
    np.random.seed(0)
    size = SIZES[option]
    optimizer = RCNN_OPTIMIZER if option == "faster_rcnn" else {}
    model = detector(option, input_size=size, batch_size=2, rcnn_rois=8, **optimizer)
    net, _ = networks.build(model, lambda _: None, train_box_sizes=box_sizes_at(boxes, size))
    family = FAMILY_TRAINING[networks.check(model)](net, model, NO_JITTER)

    def validate(network):
        return evaluation.voc_ap_50(evaluation.detect(network, val_rec, NO_JITTER, size))

    history = training.fit(net, family, model, train_rec, tmp_path, validate, lambda _: None)

    losses = history.epochs[0].losses
    assert set(losses) == set(family.loss_names)
    # every term finite and learning something: with GluonCV's 128-512 px anchors no RPN anchor matches a ball
    assert all(math.isfinite(v) and v > 0 for v in losses.values()), losses
    assert history.epochs[0].val_map_50 is not None
    saved, architecture = networks.load(tmp_path)  # rebuilt with the trained anchors and proposal counts
    found = evaluation.detect(saved, val_rec, NO_JITTER, size)
    every = np.concatenate(found.boxes)
    assert len(every) > 0
    # boxes in the 192 × 112 frame's pixels, not the input's: some reach beyond x = size, none outside
    assert every[:, 0].min() >= 0 and every[:, 2].max() <= WIDTH and every[:, 3].max() <= HEIGHT
    assert every[:, 2].max() > size
    assert (every[:, 2] > every[:, 0]).all() and (every[:, 3] > every[:, 1]).all()
    if option == "faster_rcnn":
        assert architecture["options"]["rpn_train_post_nms"] <= (size // 16) ** 2 * 9


def test_a_tiled_faster_rcnn_detects_on_the_whole_frame_once_at_the_tiles_scale(frames, tmp_path):
    import cv2

    from mlexp.tasks.object_detection import endpoint
    from mlexp.tasks.object_detection.config import DetectionAugmentation

    train_rec, val_rec, boxes = frames
    mx.random.seed(0)
    model = detector("faster_rcnn", input_size=64, tile_size=32, tile_overlap=8, rcnn_rois=8)
    net, _ = networks.build(model, lambda _: None, train_box_sizes=box_sizes_at(boxes, 64) * 2)
    seen: list[tuple[int, ...]] = []
    raw: list[np.ndarray] = []
    net.register_forward_pre_hook(lambda _, inputs: seen.append(tuple(inputs[0].shape)))
    net.register_forward_hook(lambda _, inputs, outputs: raw.append(outputs[2][0].asnumpy()))
    mixed = write_mixed_sizes(val_rec, tmp_path / "mixed.rec")
    found = evaluation.detect(net, mixed, NO_JITTER, 64, tile=32, overlap=8)
    # each frame at twice its own size, one forward each (the 192 × 112 frame's 32-px tiles would be 40 forwards)
    assert seen == [(1, 3, 2 * HEIGHT, 2 * WIDTH), (1, 3, 2 * 90, 2 * 160)]
    assert len(tiling.windows(WIDTH, HEIGHT, 64, 32, 8)) == 40
    for frame_boxes, forward_boxes, (width, height) in zip(found.boxes, raw, [(WIDTH, HEIGHT), (160, 90)], strict=True):
        # the network's own boxes halved into frame pixels (then clipped), reaching beyond one tile
        halved, keep = networks.clip_boxes(forward_boxes[(forward_boxes >= 0).all(axis=1)] / 2, width, height)
        assert len(frame_boxes) and frame_boxes[:, 2].max() > 64
        np.testing.assert_allclose(np.sort(frame_boxes, axis=0), np.sort(halved[keep], axis=0), rtol=1e-3)

    # served: the same single whole-frame input, boxes in the posted image's pixels
    networks.save(net, model, tmp_path)
    served = endpoint.FootballDetector(tmp_path, DetectionAugmentation(), 0.0)
    served_inputs: list[tuple[int, ...]] = []
    served.net.register_forward_pre_hook(lambda _, inputs: served_inputs.append(tuple(inputs[0].shape)))
    pixels = np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    answer = served.detect(cv2.imencode(".jpg", pixels)[1].tobytes())
    assert served_inputs == [(1, 3, 2 * HEIGHT, 2 * WIDTH)]
    answered = np.array(answer["boxes"])
    assert len(answered) and answered[:, 2].max() > 64  # beyond the first tile: in the image's pixels

    # a 2000 x 1600 image would be a 4000 x 3200 input (12.8 million pixels): refused from its header
    huge = cv2.imencode(".png", np.zeros((1600, 2000, 3), np.uint8))[1].tobytes()
    with pytest.raises(endpoint.ServiceError) as refused:
        served.detect(huge, limits=endpoint.ServiceSettings(max_pixels=10**8))
    assert refused.value.status == 413 and "4000x3200 input" in str(refused.value)
    assert f"at most about {endpoint.MAX_WHOLE_FRAME_PIXELS // 4} pixels" in str(refused.value)
    assert len(served_inputs) == 1  # nothing more ran
    # a 2100 x 32 strip: its 4200-px input would exceed the anchors' 4096 px, so it goes in tiles, as in evaluate
    # (not refused for its pixels); a strip of more than MAX_TILES tiles is refused for those
    side = evaluation.whole_frame_side(served.net)
    endpoint.check_input_size(2100, 32, 64, 32, 8, side)
    assert len(tiling.windows(2100, 32, 64, 32, 8, whole_frame_side=side)) == len(tiling.origins(2100, 32, 8)) > 1
    with pytest.raises(endpoint.ServiceError, match=r"2500 tiles of 32 px .*endpoint.MAX_TILES"):
        endpoint.check_input_size(60_000, 32, 64, 32, 8, side)


def write_mixed_sizes(rec: Path, mixed: Path) -> Path:
    """`rec`'s first frame, then the same frame shrunk to 160 × 90: one file with two frame sizes."""
    reader = mx.recordio.MXIndexedRecordIO(str(rec.with_suffix(".idx")), str(rec), "r")
    header, encoded = mx.recordio.unpack(reader.read_idx(sorted(reader.keys)[0]))
    reader.close()
    small = mx.image.imresize(mx.image.imdecode(encoded), 160, 90).asnumpy()
    writer = mx.recordio.MXIndexedRecordIO(str(mixed.with_suffix(".idx")), str(mixed), "w")
    writer.write_idx(0, mx.recordio.pack(header, encoded))
    writer.write_idx(1, mx.recordio.pack_img(header, small[:, :, ::-1], quality=92))
    writer.close()
    return mixed


def test_a_faster_rcnn_checkpoint_with_fewer_anchor_cells_loads_with_anchors_for_whole_frames(tmp_path):
    # a checkpoint saved before RCNN_ANCHOR_CELLS: GluonCV's 128 × 128 cells (inputs up to 2048 px)
    model = detector("faster_rcnn", input_size=64, rcnn_rois=8)
    net, _ = networks.build(model, lambda _: None, train_box_sizes=np.array([[12.0, 10.0], [20.0, 16.0]]))
    net.mlexp_architecture = {k: v for k, v in net.mlexp_architecture.items() if k != "alloc_size"}
    old = networks.model_zoo.get_model(model.network, classes=list(model.classes), pretrained_base=False,
                                       **net.mlexp_architecture)  # fmt: skip
    old.initialize()
    old(mx.nd.zeros((1, 3, 64, 64)))
    old.mlexp_architecture = net.mlexp_architecture
    networks.save(old, model, tmp_path)
    assert mx.nd.load(str(tmp_path / "model.params"))[networks.RPN_ANCHORS].shape[2:4] == (128, 128)

    loaded, _ = networks.load(tmp_path)
    anchors = loaded.rpn.anchor_generator.anchors.data().asnumpy()
    assert anchors.shape[2:4] == (networks.RCNN_ANCHOR_CELLS,) * 2
    np.testing.assert_allclose(anchors[:, :, :4, :4], old.rpn.anchor_generator.anchors.data().asnumpy()[:, :, :4, :4])
    x = mx.nd.random.uniform(shape=(1, 3, 64, 64))
    for mine, theirs in zip(loaded(x), old(x), strict=True):  # the same weights: the same detections
        np.testing.assert_allclose(mine.asnumpy(), theirs.asnumpy(), rtol=1e-5, atol=1e-5)


def fit_on_tiles(
    option: str, model: Any, frames: tuple[Path, Path, np.ndarray], val_rec: Path, folder: Path
) -> tuple[Any, training.History, list[tuple[int, ...]]]:
    """`model` (32-px tiles at a 64-px input) trained with every training tile around a ball and validated on
    `val_rec`'s tiles (or Faster-RCNN's whole frames); the network, its history and the shape of every input it
    was given."""
    train_rec, _, boxes = frames
    sizes = (boxes[:, 2:] - boxes[:, :2]) * 2  # in input pixels: tiles of 32 frame px at the 64-px input
    net, _ = networks.build(model, lambda _: None, train_box_sizes=sizes)
    family = FAMILY_TRAINING[option](net, model, replace(NO_JITTER, tile_around_ball=1.0))
    inputs: list[tuple[int, ...]] = []
    net.register_forward_pre_hook(lambda _, x: inputs.append(tuple(x[0].shape)))

    def validate(network: Any) -> float:
        return evaluation.voc_ap_50(evaluation.detect(network, val_rec, NO_JITTER, 64, tile=32, overlap=8))

    return net, training.fit(net, family, model, train_rec, folder, validate, lambda _: None), inputs


def test_a_tiled_faster_rcnn_trains_on_tiles_and_resumes_from_a_checkpoint_with_fewer_anchor_cells(
    frames, one_val_frame, tmp_path
):
    mx.random.seed(0)
    np.random.seed(0)
    model = detector("faster_rcnn", input_size=64, tile_size=32, tile_overlap=8, rcnn_rois=8, batch_size=2,
                     **RCNN_OPTIMIZER)  # fmt: skip

    def trained(epochs: int, resume: str | None = None) -> tuple[Any, training.History]:
        model.epochs, model.resume = epochs, resume
        net, history, inputs = fit_on_tiles("faster_rcnn", model, frames, one_val_frame, tmp_path)
        assert (2, 3, 64, 64) in inputs  # trained on batches of 32-px tiles at the 64-px input
        assert (1, 3, 2 * HEIGHT, 2 * WIDTH) in inputs  # validated on whole frames at the tiles' scale
        return net, history

    _, first = trained(1)
    assert all(math.isfinite(v) and v > 0 for v in first.epochs[0].losses.values()), first.epochs[0].losses
    # as a checkpoint written before RCNN_ANCHOR_CELLS would hold them: GluonCV's 128 × 128 cells of anchors
    checkpoint = tmp_path / training.CHECKPOINT / "model.params"
    weights = mx.nd.load(str(checkpoint))
    weights[networks.RPN_ANCHORS] = weights[networks.RPN_ANCHORS][:, :, :128, :128]
    mx.nd.save(str(checkpoint), weights)

    net, resumed = trained(2, resume=str(checkpoint.parent))
    assert [e.epoch for e in resumed.epochs] == [1, 2] and resumed.epochs[0].losses == first.epochs[0].losses
    assert net.rpn.anchor_generator.anchors.shape[2:4] == (networks.RCNN_ANCHOR_CELLS,) * 2


def test_a_tiled_yolo3_trains_on_tiles_with_anchors_at_the_tiles_scale(frames, tmp_path):
    # YOLOv3's conf trains on tiles: 32-px tiles at the 64-px input, every training tile around a ball
    mx.random.seed(0)
    np.random.seed(0)
    model = detector("yolo3", input_size=64, tile_size=32, tile_overlap=8, batch_size=2)
    net, history, inputs = fit_on_tiles("yolo3", model, frames, frames[1], tmp_path)
    assert all(math.isfinite(v) and v > 0 for v in history.epochs[0].losses.values()), history.epochs[0].losses
    assert (2, 3, 64, 64) in inputs and all(shape[2:] == (64, 64) for shape in inputs)  # tiles, never whole frames
    anchors = np.concatenate([o.anchors.data().asnumpy().reshape(-1, 2) for o in net.yolo_outputs])
    # the nine anchors span the balls' sizes at the tiles' scale (24-40 px), not at a squeezed frame's
    sizes = (frames[2][:, 2:] - frames[2][:, :2]) * 2
    assert anchors.min() >= sizes.min() * 0.5 and anchors.max() <= sizes.max() * 1.5


def test_a_tiled_faster_rcnn_keeps_gluoncvs_proposal_counts_at_inference():
    sizes = np.array([[20.0, 16.0], [30.0, 24.0]])
    tiled = networks.rcnn_options(256, sizes, rois=32, tiled=True)
    # a whole 2560 x 1440 frame has 129,600 anchors: GluonCV's 6000 into the proposal NMS, 300 out
    assert (tiled["rpn_test_pre_nms"], tiled["rpn_test_post_nms"]) == (6000, 300)
    assert tiled["num_sample"] == 32  # training still samples rcnn_rois per tile
    untiled = networks.rcnn_options(64, sizes, rois=32)
    assert (untiled["rpn_test_pre_nms"], untiled["rpn_test_post_nms"]) == (144, 32)  # 4 x 4 cells x 9 anchors
    assert networks.rcnn_options(64, sizes, rois=32, tiled=True)["rpn_test_post_nms"] == 144  # at most the anchors


def test_anchors_follow_the_training_boxes():
    sizes = np.array([[6, 5], [8, 6], [10, 8], [12, 9], [14, 11]] * 4, dtype=float)
    sides = np.sqrt(sizes[:, 0] * sizes[:, 1])

    options = networks.rcnn_options(512, sizes)
    anchor_sides = np.array(options["scales"]) * RCNN_BASE_SIZE
    assert anchor_sides.min() <= sides.min() and anchor_sides.max() >= sides.max()  # GluonCV's: 128-512 px
    assert options["rpn_min_size"] <= sides.min() / 2  # GluonCV's 16 px drops every ball
    assert all(0.5 < r < 1.5 for r in options["ratios"][1:2])  # height / width of these boxes: ~0.77
    assert networks.rcnn_options(64, sizes)["rpn_train_post_nms"] == 4 * 4 * 9

    yolo = networks.build(detector("yolo3", input_size=128), lambda _: None, train_box_sizes=sizes)[0]
    finest = min(yolo.yolo_outputs, key=lambda output: output._stride)
    coarsest = max(yolo.yolo_outputs, key=lambda output: output._stride)
    assert finest.anchors.data().asnumpy().max() <= coarsest.anchors.data().asnumpy().min()
    assert coarsest.anchors.data().asnumpy().max() <= 14  # GluonCV's largest YOLOv3 anchor: 373 px

    # SSD: anchor sizes scaled so the smallest is the small balls' side (10th percentile), not below the stride
    for boxes, wanted in ((sizes, 16.0), (sizes * 4, np.quantile(sides * 4, 0.1))):
        ssd = networks.build(detector("ssd", input_size=128), lambda _: None, train_box_sizes=boxes)[0]
        first, second = (g.anchors.data().asnumpy().reshape(-1, 4) for g in ssd.anchor_generators[:2])
        preset = ssd.anchor_generators[1]._sizes[0] / ssd.anchor_generators[0]._sizes[0]
        assert second[0, 2] == pytest.approx(wanted * preset, rel=0.01)  # a cell's first anchor is the square one
        assert first[4, 0] - first[0, 0] == 16  # (centre x, centre y, width, height); 4 anchors a cell
        if boxes is sizes:  # balls smaller than the finest stride (16): their median shape on a 2 x 2 grid a cell
            assert sorted({float(x) for x in first[:4, 0]}) == [4.0, 12.0]
            assert first[0, 2:] == pytest.approx(np.median(boxes, axis=0) * 1.2)
        else:  # larger balls keep the preset's shapes, the square one first
            assert first[0, 2] == pytest.approx(wanted, rel=0.01)


def test_training_stops_when_its_time_budget_is_spent(frames, tmp_path):
    train_rec, val_rec, boxes = frames
    model = detector("ssd", input_size=64, batch_size=2, epochs=50, max_train_seconds=0.01)
    net, _ = networks.build(model, lambda _: None, train_box_sizes=box_sizes_at(boxes, 64))
    family = FAMILY_TRAINING["ssd"](net, model, NO_JITTER)
    history = training.fit(net, family, model, train_rec, tmp_path, lambda _: 0.25, lambda _: None)
    assert history.budget_spent and len(history.epochs) == 1
    assert history.epochs[0].val_map_50 == 0.25 and (tmp_path / "model.params").is_file()
    assert history.train_seconds >= 0.01


def test_clip_boxes_keeps_the_image_and_drops_what_is_not_a_box():
    raw = np.array(
        [
            [-5, 2, 5, 8],  # left of the image: left=-5, width=10 becomes left=0, width=5
            [np.nan, 0, 1, 1],
            [-162155.1, -316605802.5, 160289.1, 316608997.5],
            [10, 10, 10, 20],  # no width
            [np.inf, 0, 3, 3],
            [300, 10, 400, 20],  # right of a 256-px image: nothing left
        ]
    )
    clipped, keep = networks.clip_boxes(raw, 256, 128)
    assert keep.tolist() == [True, False, True, False, False, False]
    assert clipped[0].tolist() == [0, 2, 5, 8] and clipped[2].tolist() == [0, 0, 256, 128]
    assert np.isfinite(clipped).all()
