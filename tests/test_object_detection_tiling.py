"""Tiles at the frame's own resolution: they cover the frame with enough overlap, training crops keep the
ball, and a frame's tiles merge into one set of boxes in frame pixels (no ball twice, no ball cut in half)."""

from __future__ import annotations

import mxnet as mx
import numpy as np
import pytest

from mlexp.tasks.object_detection import evaluation, tiling
from mlexp.tasks.object_detection.augment import Augment
from object_detection_tiny import NO_JITTER


@pytest.mark.parametrize(
    ("length", "tile", "overlap"), [(1280, 512, 64), (720, 512, 64), (1280, 256, 40), (700, 96, 30)]
)
def test_tiles_cover_the_side_and_overlap_by_at_least_the_overlap(length, tile, overlap):
    starts = tiling.origins(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == length
    gaps = np.diff(starts)
    assert (tile - gaps >= overlap).all()  # neighbours share at least `overlap` pixels
    # and no more tiles than needed: one tile fewer would leave less than `overlap` shared
    assert len(starts) == 1 or (len(starts) - 1) * (tile - overlap) < length - overlap


def test_a_frame_no_larger_than_the_tile_is_one_window_padded_to_the_tile():
    assert tiling.origins(300, 512, 64) == [0]
    placed = tiling.windows(300, 200, 256, 512, 64)
    assert len(placed) == 1 and placed[0].inner == (None, None, None, None) and placed[0].scale_x == 2.0
    image = mx.nd.ones((200, 300, 3), dtype="uint8") * 7
    tile = tiling.cut(image, 0, 0, 512)
    assert tile.shape == (512, 512, 3)
    assert tile[:200, :300].asnumpy().min() == 7 and tile[200:].asnumpy().max() == 0


def test_windows_of_a_broadcast_frame_know_their_inner_edges():
    placed = tiling.windows(1280, 720, 256, 512, 64)
    assert [(w.x0, w.y0) for w in placed] == [(0, 0), (384, 0), (768, 0), (0, 208), (384, 208), (768, 208)]
    top_left, top_middle, bottom_right = placed[0], placed[1], placed[5]
    assert top_left.inner == (None, None, 512.0, 512.0)
    assert top_middle.inner == (384.0, None, 896.0, 512.0)
    assert bottom_right.inner == (768.0, 208.0, None, None)
    assert top_left.scale_x == top_left.scale_y == 2.0  # a 512-px tile into a 256-px input
    # without tiles: the whole frame, squeezed per axis
    (whole,) = tiling.windows(1280, 720, 256, None, 64)
    assert (whole.scale_x, whole.scale_y) == (5.0, 720 / 256)


def test_the_whole_frame_at_the_tiles_scale_is_one_window_where_it_fits():
    # 128-px tiles into a 256-px input: the 1280 × 720 frame at twice its size, one input of 2560 × 1440
    (whole,) = tiling.windows(1280, 720, 256, 128, 40, whole_frame_side=4096)
    assert (whole.input_width, whole.input_height, whole.scale_x, whole.scale_y) == (2560, 1440, 0.5, 0.5)
    assert whole.inner == (None, None, None, None)
    assert len(tiling.windows(1280, 720, 256, 128, 40, whole_frame_side=2048)) == 120  # too large: tiles
    assert len(tiling.windows(1280, 720, 256, 128, 40)) == 120
    image = mx.nd.array(np.random.RandomState(0).randint(0, 255, (72, 128, 3)), dtype="uint8")
    (scaled,), (window,) = tiling.window_inputs(image, 64, 32, 8, whole_frame_side=4096)
    assert scaled.shape == (144, 256, 3)
    placed, whole_box = tiling.place(np.array([[20.0, 40.0, 60.0, 80.0]]), window)
    assert placed.tolist() == [[10.0, 20.0, 30.0, 40.0]] and whole_box.tolist() == [True]
    # a frame smaller than the input at that scale is padded right and below, as a tile would be
    (padded,), (small,) = tiling.window_inputs(image[:20, :30], 64, 32, 8, whole_frame_side=4096)
    assert padded.shape == (64, 64, 3) and (small.input_width, small.input_height) == (64, 64)
    assert padded[40:].asnumpy().max() == 0 and padded[:, 60:].asnumpy().max() == 0


def test_training_tiles_around_a_ball_keep_it_whole_and_in_tile_pixels():
    np.random.seed(0)
    image = mx.nd.array(np.random.randint(0, 255, (720, 1280, 3)), dtype="uint8")
    ball = np.array([[1000.0, 600.0, 1030.0, 620.0, 0.0]])
    for _ in range(50):
        crop, boxes = tiling.random_tile(image, ball, 256, ball_share=1.0)
        assert crop.shape == (256, 256, 3)
        assert len(boxes) == 1
        left, top, right, bottom = boxes[0, :4]
        assert right - left == 30 and bottom - top == 20  # whole, not clipped
        assert left >= 0 and top >= 0 and right <= 256 and bottom <= 256
        # the crop's pixels are the frame's, at the offset the box moved by
        x0, y0 = int(1000 - left), int(600 - top)
        assert (crop.asnumpy() == image.asnumpy()[y0 : y0 + 256, x0 : x0 + 256]).all()


def test_training_tiles_anywhere_drop_balls_whose_centre_they_cut_out_and_clip_the_rest():
    np.random.seed(1)
    image = mx.nd.zeros((300, 300, 3), dtype="uint8")
    ball = np.array([[250.0, 140.0, 290.0, 160.0, 0.0]])  # centre x 270: inside a 256-px tile starting at x >= 14
    widths = []
    for _ in range(200):
        _, boxes = tiling.random_tile(image, ball, 256, ball_share=0.0)
        widths.extend(boxes[:, 2] - boxes[:, 0])
        assert all(box[0] >= 0 and box[2] <= 256 for box in boxes)
    widths = np.array(widths)
    assert 100 < len(widths) < 200  # ~31 of the 45 starts keep it
    assert (widths < 40).any() and (widths == 40).any()  # clipped by the tile's right edge, or whole


def test_augment_with_tiles_feeds_native_resolution_crops_at_the_network_input():
    np.random.seed(2)
    image = mx.nd.zeros((720, 1280, 3), dtype="uint8")
    ball = np.array([[640.0, 360.0, 660.0, 376.0, 0.0]], dtype=np.float32)
    augment = Augment(NO_JITTER, 128, tile=256)
    sizes = []
    for _ in range(20):
        img, boxes = augment(image, ball)
        assert img.shape == (128, 128, 3)
        sizes.extend(boxes[boxes[:, 4] >= 0, 2] - boxes[boxes[:, 4] >= 0, 0])
    # the 20-px ball at half scale (tile 256 → input 128), not squeezed by 1280/128 = 10 to 2 px
    assert sizes and np.allclose(sizes, 10.0)


def test_a_frames_tiles_merge_into_one_box_per_ball_in_frame_pixels():
    placed = tiling.windows(1280, 720, 256, 512, 64)
    left, middle = placed[0], placed[1]  # overlap: x 384-512
    empty = [np.zeros(0), np.zeros(0), np.zeros((0, 4))]
    outputs = [list(empty) for _ in placed]
    # a ball at x 440-470 (inside the overlap) seen whole by both tiles, at 2x scale into the 256-px input;
    # the middle tile also sees something at the frame's top edge
    outputs[0] = [np.array([0.0]), np.array([0.9]), np.array([[220.0, 50.0, 235.0, 60.0]])]
    outputs[1] = [np.array([0.0, 0.0]), np.array([0.8, 0.7]), np.array([[28.0, 50.0, 43.0, 60.0], [100, -1, 110, 5]])]
    # a ball cut by the left tile's inner right edge (x 500-512 of 500-530): dropped there, whole in the middle tile
    outputs[0][0] = np.append(outputs[0][0], 0.0)
    outputs[0][1] = np.append(outputs[0][1], 0.95)
    outputs[0][2] = np.vstack([outputs[0][2], [[250.0, 150.0, 256.0, 160.0]]])
    outputs[1][0] = np.append(outputs[1][0], 0.0)
    outputs[1][1] = np.append(outputs[1][1], 0.6)
    outputs[1][2] = np.vstack([outputs[1][2], [[58.0, 150.0, 73.0, 160.0]]])
    boxes, ids, scores = evaluation.frame_detections(outputs, placed, 1280, 720)
    # best first; the duplicate (0.8) merged; a box at the frame's own top edge kept, clipped to the frame
    assert boxes.tolist() == [[440.0, 100.0, 470.0, 120.0], [584.0, 0.0, 604.0, 10.0], [500.0, 300.0, 530.0, 320.0]]
    assert scores.tolist() == [0.9, 0.7, 0.6] and ids.tolist() == [0, 0, 0]
    assert left.inner[2] == 512.0 and middle.inner[0] == 384.0


class CountingNetwork:
    """A real detector that remembers the shape of every batch it was given."""

    def __init__(self, net):
        self.net, self.batches = net, []

    def __call__(self, x):
        self.batches.append(tuple(x.shape))
        return self.net(x)


def test_tiled_detection_runs_every_tile_of_every_frame_and_answers_in_frame_pixels(tmp_path):
    from mlexp.tasks.object_detection import networks
    from object_detection_tiny import HEIGHT, WIDTH, detector, write_frames

    mx.random.seed(0)
    write_frames(tmp_path / "val.rec", 3, seed=2)
    net, _ = networks.build(detector("ssd", input_size=64, tile_size=64, tile_overlap=24), lambda _: None)
    counting = CountingNetwork(net)
    found = evaluation.detect(counting, tmp_path / "val.rec", NO_JITTER, 64, tile=64, overlap=24, batch_size=8)
    per_frame = len(tiling.windows(WIDTH, HEIGHT, 64, 64, 24))
    assert per_frame == 5 * 3  # 192 x 112 in 64-px tiles sharing at least 24 px
    assert sum(shape[0] for shape in counting.batches) == 3 * per_frame
    assert all(shape[1:] == (3, 64, 64) for shape in counting.batches)
    every = np.concatenate(found.boxes)
    assert len(every) and every[:, 2].max() > 64 and every[:, 3].max() > 64  # beyond the first tile
    assert every[:, 0].min() >= 0 and every[:, 2].max() <= WIDTH and every[:, 3].max() <= HEIGHT


def test_a_tiled_trial_trains_on_tiles_and_keeps_the_tiling_with_its_model(tmp_path):
    import json
    import shutil

    from conftest import REPO, run_cli, trials_of
    from mlexp.data import football_frames
    from run_folders import run_folder

    project = tmp_path / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    manifest = football_frames.generate(project / "labels", 16, 3, width=160, height=90, frames_per_play=2)
    common = ("task=object_detection", f"dataset.path={manifest}", f"dataset.image_root={project / 'labels'}")
    tiny = ("model.epochs=1", "model.batch_size=4", "model.speed_frames=1", "compute.num_threads=1")
    tiles = ("model.input_size=64", "model.tile_size=64", "model.tile_overlap=24")
    done = run_cli(project, *common, *tiny, *tiles)
    [view] = trials_of(project, "object_detection")
    assert view.status == "FINISHED"
    saved = json.loads((run_folder(done) / "models/model.json").read_text())
    assert (saved["tile_size"], saved["tile_overlap"], saved["input_size"]) == (64, 24, 64)
    assert view.params["model.tile_size"] == "64"
    assert "test mAP@0.5" in done.stdout

    # refused before a trial opens (tests/test_task_constraints.py has the line): the first trial stays the only one
    bad = run_cli(project, *common, *tiny, "model.tile_size=64", "model.tile_overlap=64", check=False)
    assert bad.returncode == 2
    assert "model.tile_overlap must be below model.tile_size" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert sorted(t.status for t in trials_of(project, "object_detection")) == ["FINISHED"]


def _perfect_outputs(ball: np.ndarray, placed: list, rng: np.random.Generator) -> list:
    """What a perfect network answers per tile: the ball's part inside the tile (cut at its edges, as the tile
    shows it) in network-input pixels, at a random score; nothing where the tile misses the ball."""
    outputs = []
    for window in placed:
        tile = window.scale_x * 256
        part = np.clip(ball, [window.x0, window.y0] * 2, [window.x0 + tile, window.y0 + tile] * 2)
        if part[2] - part[0] <= 0 or part[3] - part[1] <= 0:
            outputs.append([np.array([-1.0]), np.array([-1.0]), np.array([[-1.0] * 4])])
            continue
        box = (part - [window.x0, window.y0] * 2) / window.scale_x
        outputs.append([np.array([0.0]), np.array([rng.uniform(0.5, 1.0)]), box[None]])
    return outputs


@pytest.mark.parametrize("pad", [0, 3])
def test_every_ball_comes_back_once_even_one_cut_by_every_tile(pad):
    """Balls of 8-120 px at every other x of a 1280-wide frame whose 368-px tiles share exactly 64 px: a ball
    within EDGE_PX of an inner edge in every tile that holds it, or wider than the overlap, is still found once.
    The frame is one row of tiles high, as the cuts tested are the columns': a 720-px frame's two lower rows only
    added tiles that hold no ball, at three times the CPU."""
    rng = np.random.default_rng(0)
    width, height = 1280, 368
    placed = tiling.windows(width, height, 256, 368, 64)
    assert [w.x0 for w in placed] == [0, 304, 608, 912] and {w.y0 for w in placed} == {0}
    for size in (8, 20, 40, 56, 60, 62, 64, 70, 90, 120):
        for x in range(0, width - size + 1, 2):
            # the box a network draws: the ball and `pad` px of its outline
            ball = np.array([x - pad, 40.0 - pad, x + size + pad, 40.0 + 0.7 * size + pad])
            truth = np.clip(ball, 0, [width, height, width, height])
            boxes, ids, _ = evaluation.frame_detections(_perfect_outputs(ball, placed, rng), placed, width, height)
            assert len(boxes) == 1, (size, x, boxes)
            assert ids.tolist() == [0.0]
            assert evaluation.iou(boxes[0], truth)[0, 0] >= 0.5, (size, x, boxes)


def test_a_cut_box_is_dropped_only_where_a_kept_box_covers_most_of_it():
    boxes = np.array([[0, 0, 10, 10], [8, 0, 12, 10], [30, 0, 50, 10], [6, 0, 10, 10], [0, 0, 10, 10]], dtype=float)
    ids = np.array([0.0, 0.0, 0.0, 0.0, 1.0])
    scores = np.array([0.5, 0.9, 0.8, 0.3, 0.7])
    whole = np.array([True, False, False, False, False])
    # the 0.9 cut box lies half inside the whole one (not most): kept; the 0.8 one elsewhere: kept; the 0.3 one
    # wholly inside: dropped; the other class's box is never covered by this class's boxes; best score first
    assert evaluation.merge(boxes, ids, scores, whole).tolist() == [1, 2, 4, 0]
    # two parts of one ball, both cut: the larger is kept whatever the scores, the smaller lies inside it
    parts = np.array([[100, 0, 140, 10], [120, 0, 140, 10]], dtype=float)
    assert evaluation.merge(parts, np.zeros(2), np.array([0.4, 0.9]), np.array([False, False])).tolist() == [0]


def _write_dark_frames(rec, width: int, height: int, balls: list[tuple[int, int, int, int]]) -> None:
    """Black frames with one white square ball each, in records.py's label layout."""
    import io

    from PIL import Image, ImageDraw

    writer = mx.recordio.MXIndexedRecordIO(str(rec.with_suffix(".idx")), str(rec), "w")
    for index, box in enumerate(balls):
        image = Image.new("RGB", (width, height))
        ImageDraw.Draw(image).rectangle([box[0], box[1], box[2] - 1, box[3] - 1], fill=(255, 255, 255))
        encoded = io.BytesIO()
        image.save(encoded, format="JPEG", quality=95)
        label = np.array([2, 5, 0, box[0] / width, box[1] / height, box[2] / width, box[3] / height], np.float32)
        writer.write_idx(index, mx.recordio.pack(mx.recordio.IRHeader(0, label, index, 0), encoded.getvalue()))
    writer.close()


class BrightestRegion:
    """A deterministic detector for the tests: per input, one box around its bright pixels (score 0.9), or none."""

    def __init__(self):
        self.batches: list[int] = []

    def __call__(self, x):
        self.batches.append(int(x.shape[0]))
        bright = x.asnumpy().sum(axis=1) > 3.0  # ImageNet-normalised white is ~2 per channel, black ~-2
        ids, scores, boxes = -np.ones((len(bright), 1, 1)), -np.ones((len(bright), 1, 1)), -np.ones((len(bright), 1, 4))
        for i, mask in enumerate(bright):
            rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            if len(rows):
                ids[i], scores[i] = 0.0, 0.9
                boxes[i] = [columns[0], rows[0], columns[-1] + 1, rows[-1] + 1]
        return mx.nd.array(ids), mx.nd.array(scores), mx.nd.array(boxes)


def test_each_frame_gets_its_own_tiles_boxes_when_a_batch_spans_frames(tmp_path):
    # 136 x 64 in 64-px tiles sharing 24 px: 3 tiles per frame, so batches of 4 mix frames and split one
    balls = [(5, 20, 15, 30), (58, 20, 68, 30), (115, 30, 125, 40)]  # left tile; cut by tile 1, whole in 2; right
    _write_dark_frames(tmp_path / "val.rec", 136, 64, balls)
    net = BrightestRegion()
    found = evaluation.detect(net, tmp_path / "val.rec", NO_JITTER, 64, tile=64, overlap=24, batch_size=4)
    assert len(tiling.windows(136, 64, 64, 64, 24)) == 3
    assert net.batches == [4, 2, 3]  # frames 1+2 in one flush (4 + 2), frame 3 alone
    for boxes, ids, ball in zip(found.boxes, found.ids, balls, strict=True):
        assert ids.tolist() == [0.0]
        np.testing.assert_allclose(boxes[0], ball, atol=1.5)


def test_served_tiled_model_feeds_every_tile_in_small_batches_and_refuses_too_many_tiles(tmp_path):
    import cv2

    from mlexp.serving.http import ServiceError
    from mlexp.tasks.object_detection import endpoint, networks
    from mlexp.tasks.object_detection.config import DetectionAugmentation
    from object_detection_tiny import detector

    mx.random.seed(0)
    model = detector("ssd", input_size=64, tile_size=64, tile_overlap=24)
    net, _ = networks.build(model, lambda _: None)
    net(mx.nd.zeros((1, 3, 64, 64)))
    networks.save(net, model, tmp_path / "tiled")
    served = endpoint.FootballDetector(tmp_path / "tiled", DetectionAugmentation(), 0.0)
    counting = CountingNetwork(served.net)
    served.net = counting
    pixels = np.random.default_rng(0).integers(0, 255, (112, 320, 3), dtype=np.uint8)
    answer = served.detect(cv2.imencode(".jpg", pixels)[1].tobytes())
    tiles = len(tiling.windows(320, 112, 64, 64, 24))
    assert tiles == 8 * 3 > endpoint.TILES_PER_FORWARD
    assert [shape[0] for shape in counting.batches] == [endpoint.TILES_PER_FORWARD, tiles - endpoint.TILES_PER_FORWARD]
    boxes = np.array(answer["boxes"])
    assert len(boxes) and boxes[:, 2].max() > 64  # boxes from tiles beyond the first, in image pixels

    # 64-px tiles sharing 24 px: a 2000 x 2000 image would be 50 x 50 tiles; refused from its header
    huge = cv2.imencode(".png", np.zeros((2000, 2000, 3), np.uint8))[1].tobytes()
    with pytest.raises(ServiceError) as refused:
        served.detect(huge, limits=endpoint.ServiceSettings(max_pixels=10**8))
    assert refused.value.status == 413
    assert "2500 tiles" in str(refused.value) and "2000" in str(refused.value) and "MAX_TILES" in str(refused.value)
    assert len(counting.batches) == 2  # nothing more ran


def test_box_sizes_in_tile_pixels_follow_each_frames_own_size(tmp_path):
    import json

    from mlexp.tasks.object_detection import records

    rec = tmp_path / "train.rec"
    _write_dark_frames(rec, 160, 90, [(16, 18, 32, 27)])  # the labels; the sizes below come from the sidecar
    writer = mx.recordio.MXIndexedRecordIO(str(rec.with_suffix(".idx")), str(rec), "w")
    for index, (width, height, box) in enumerate([(160, 90, (16, 18, 32, 27)), (320, 180, (40, 20, 60, 30))]):
        label = np.array([2, 5, 0, box[0] / width, box[1] / height, box[2] / width, box[3] / height], np.float32)
        writer.write_idx(index, mx.recordio.pack(mx.recordio.IRHeader(0, label, index, 0), b"unused"))
    writer.close()
    records.frames_json(rec).write_text(json.dumps([{"size": [160, 90]}, {"size": [320, 180]}]))
    # a 32-px tile at its own resolution into a 64-px input: every ball twice its frame pixels
    np.testing.assert_allclose(records.box_sizes(rec, 64, tile_size=32), [[32, 18], [40, 20]], rtol=1e-5)
    records.frames_json(rec).write_text(json.dumps([{"size": [160, 90]}]))
    with pytest.raises(ValueError):
        records.box_sizes(rec, 64, tile_size=32)  # a sidecar out of step with the records


class CountingForward(CountingNetwork):
    def hybridize(self, *args, **kwargs):
        self.net.hybridize(*args, **kwargs)


def test_fps_times_every_window_of_a_frame_in_batches():
    from mlexp.tasks.object_detection import networks
    from mlexp.tasks.object_detection.speed import frames_per_second
    from object_detection_tiny import detector

    net, _ = networks.build(detector("ssd", input_size=64, tile_size=64, tile_overlap=24), lambda _: None)
    counting = CountingForward(net)
    placed = tiling.windows(192, 64, 64, 64, 24)
    assert len(placed) == 5
    assert frames_per_second(counting, placed, frames=2, hybridize=False, batch_size=2) > 0
    assert [shape[0] for shape in counting.batches] == [2, 2, 1] * 3  # warm-up + 2 frames, all 5 windows each


def test_tile_settings_outside_their_range_fail_naming_the_key():
    from omegaconf import OmegaConf

    from mlexp.errors import ConfigError
    from mlexp.tasks.object_detection import networks, stages
    from object_detection_tiny import detector

    with pytest.raises(ConfigError, match=r"model.tile_size=8 must be null \(the whole frame\) or at least 16"):
        networks.check(detector("ssd", tile_size=8, tile_overlap=4))
    with pytest.raises(ConfigError, match=r"preprocessing.tile_around_ball=1.5 must be from 0 to 1"):
        stages._augmentation(OmegaConf.create({"preprocessing": {"tile_around_ball": 1.5}}))
    assert stages._augmentation(OmegaConf.create({"preprocessing": {"tile_around_ball": 1.0}})).tile_around_ball == 1
