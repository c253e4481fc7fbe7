"""Shared by the object_detection tests: tiny football frames in RecordIO, tiny detectors, tiny CLI overrides."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
from PIL import Image, ImageDraw

from mlexp.tasks.object_detection.config import DetectionAugmentation, Detector

# records.py's placeholder row of a frame without a ball: class -1, outside the image
NO_OBJECT = [-1.0, -1.0, -1.0, -0.5, -0.5]
# frames wider than high, as broadcast footage: network input is square, so boxes must be mapped back per axis
WIDTH, HEIGHT = 192, 112
# no random crop (these frames are small already) and 3 in 4 training tiles around a ball: what the tests were sized for
NO_JITTER = DetectionAugmentation(color_jitter=False, flip_prob=0.5, crop_prob=0.0, tile_around_ball=0.75)


# command-line overrides for a trial of any family in seconds: 8 generated frames of 96 × 64 cut into 48-px tiles
TINY_TILED_TRIAL = (
    "dataset.n_frames=8",
    "dataset.frames_per_play=2",
    "dataset.frame_width=96",
    "dataset.frame_height=64",
    "dataset.ball_length=[0.15,0.2]",
    "model.input_size=64",
    "model.tile_size=48",
    "model.tile_overlap=16",
    "model.batch_size=2",
    "model.rcnn_rois=8",
    "model.speed_frames=1",
)
# the same with one frame in val and one in test (6 plays of 1 frame: 4 train, 1 val, 1 test): a tiled Faster-RCNN
# infers on a whole frame through ResNet's last stage on up to 144 proposals, over a second of CPU a frame
TINY_TILED_TRIAL_ONE_FRAME_HELD_OUT = tuple(
    {"dataset.n_frames=8": "dataset.n_frames=6", "dataset.frames_per_play=2": "dataset.frames_per_play=1"}.get(a, a)
    for a in TINY_TILED_TRIAL
)


def write_frames(rec: Path, count: int, seed: int, ball: tuple[int, int] = (12, 20), empty: int = 0) -> np.ndarray:
    """`count` grass frames with white yard lines, one brown ball in each but the last `empty`, as a RecordIO
    file; the balls' boxes in frame pixels."""
    rng = np.random.default_rng(seed)
    writer = mx.recordio.MXIndexedRecordIO(str(rec.with_suffix(".idx")), str(rec), "w")
    boxes = []
    for index in range(count):
        grass = rng.integers(60, 110, size=(HEIGHT, WIDTH, 3)) * np.array([0.4, 1.0, 0.35])
        image = Image.fromarray(grass.astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for x in rng.integers(0, WIDTH, size=3):
            draw.line([(int(x), 0), (int(x) + 10, HEIGHT)], fill=(230, 230, 230), width=2)
        label = np.array([2, 5, *NO_OBJECT], np.float32)  # records.py's row of a frame without a ball
        if index < count - empty:
            width = int(rng.integers(*ball))
            height = int(width * rng.uniform(0.6, 0.8))
            left, top = int(rng.integers(2, WIDTH - width - 2)), int(rng.integers(2, HEIGHT - height - 2))
            draw.ellipse([left, top, left + width, top + height], fill=(125, 70, 35), outline=(90, 45, 20))
            box = [left, top, left + width, top + height]
            normalised = [box[0] / WIDTH, box[1] / HEIGHT, box[2] / WIDTH, box[3] / HEIGHT]
            label = np.array([2, 5, 0, *normalised], np.float32)
            boxes.append(box)
        encoded = io.BytesIO()
        image.save(encoded, format="JPEG", quality=92)
        writer.write_idx(index, mx.recordio.pack(mx.recordio.IRHeader(0, label, index, 0), encoded.getvalue()))
    writer.close()
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)


def box_sizes_at(boxes: np.ndarray, size: int) -> np.ndarray:
    """(width, height) of frame-pixel boxes in size × size network-input pixels."""
    return np.stack([(boxes[:, 2] - boxes[:, 0]) * size / WIDTH, (boxes[:, 3] - boxes[:, 1]) * size / HEIGHT], 1)


def detector(option: str, **values: Any) -> Detector:
    """The model config of conf/model/<option>.yaml's family at a tiny size, from scratch, no hybridization."""
    networks = {
        "ssd": "ssd_300_mobilenet0.25_custom",
        "yolo3": "yolo3_mobilenet0.25_custom",
        "faster_rcnn": "faster_rcnn_resnet50_v1b_custom",
    }
    defaults: dict[str, Any] = {
        "network": networks[option],
        "input_size": 128,
        "pretrained_base": None,
        "batch_size": 4,
        "epochs": 1,
        "warmup_epochs": 0,
        "hybridize": False,
        "optimizer": "adam",
        "lr": 0.001,
        # the whole frame resized, validated every epoch, GluonCV's mining: what these tiny tests were sized for
        "tile_size": None,
        "min_hard_negatives": 0,
        "val_interval": 1,
        "lr_decay_epochs": [12, 14],
    }
    return Detector(**{**defaults, **values})


def serve_only_overrides(folder: Path) -> list[str]:
    """The overrides (task= aside) of a run that only serves a model, in experiment `served`: an untrained 64-px
    detector saved in `folder`, served by `stage=deploy deploy=local` for 0.1 s."""
    import warnings

    from mlexp.tasks.object_detection import networks

    model = Detector(input_size=64, pretrained_base=None, tile_size=None)
    with warnings.catch_warnings():  # MXNet's "cannot decide type" of the unbound input, saving
        warnings.simplefilter("ignore")
        net, _ = networks.build(model, lambda message: None)
        net(mx.nd.zeros((1, 3, 64, 64)))  # shapes are inferred at the first forward
        networks.save(net, model, folder)
    serve = ["stage=deploy", "deploy=local", "deploy.source=trial", "deploy.port=0", "deploy.max_seconds=0.1"]
    return [*serve, f"paths.models={folder}", "tracking.experiment_name=served"]
