"""Task `object_detection`: football detection with GluonCV ("Football tracking in the NFL with Amazon SageMaker")."""

import math

from mlexp.config.bounds import Bound, above, at_least, between
from mlexp.config.constraints import Constraint, leave_a_training_share
from mlexp.tasks import Plot, StageSpec, Task, register
from mlexp.tasks.object_detection import config  # noqa: F401  (registers the schemas)

# the model keys training reads: not score_threshold (evaluation's and the endpoint's), nor speed_frames (evaluation's)
TRAINING = tuple(
    f"model.{key}"
    for key in (
        "network", "classes", "input_size", "pretrained_base", "anchor_scale", "negative_mining_ratio",
        "min_hard_negatives", "batch_size", "epochs", "lr", "lr_mode", "lr_decay", "lr_decay_epochs",
        "warmup_epochs", "optimizer", "momentum", "wd", "val_interval", "hybridize", "resume", "data_workers",
        "rcnn_rois", "init_from", "init_layers", "max_train_seconds", "tile_size", "tile_overlap",
    )
)  # fmt: skip

# probabilities and shares of frames or tiles, between 0 and 1
PROBABILITIES = ("flip_prob", "expand_prob", "crop_prob", "tile_around_ball")
BOUNDS: dict[str, Bound] = {
    # the splits: each a share of the frames, and together below 1 (CONSTRAINTS)
    "dataset.val_fraction": between(0, 1, open_low=True, open_high=True),
    "dataset.test_fraction": between(0, 1, open_low=True, open_high=True),
    # generated frames only: at least one per split (prepare's own check), plays of at least one frame (0 silently
    # meant 1), frames of at least a pixel a side (how small a frame still holds a ball depends on ball_length)
    "dataset.n_frames": at_least(3),
    "dataset.frames_per_play": at_least(1),
    "dataset.frame_width": at_least(1),
    "dataset.frame_height": at_least(1),
    "dataset.no_ball_fraction": between(0, 1, open_high=True),
    # the ball's length as a share of the frame width: [shortest, longest] (a reversed pair is drawn from all the same)
    "dataset.ball_length.0": between(0, 1, open_low=True),
    "dataset.ball_length.1": between(0, 1, open_low=True),
    **{f"preprocessing.{name}": between(0, 1) for name in PROBABILITIES},
    # ± deltas (a negative one silently acted as its size)
    "preprocessing.brightness_delta": at_least(0),
    "preprocessing.hue_delta_degrees": at_least(0),
    # the normalisation divides by each channel's std
    **{f"preprocessing.std.{channel}": above(0) for channel in range(3)},
    "preprocessing.small_box_px": at_least(0),
    # the smallest input that works depends on the network and the classes (CONSTRAINTS): no pixels fails for all
    "model.input_size": at_least(1),
    # null: the whole frame; else at least networks.MIN_TILE (its overlap below it: CONSTRAINTS)
    "model.tile_size": at_least(16),
    "model.tile_overlap": at_least(0),
    # null: derived from the boxes; 0 or less gave anchors of no size, a NaN box loss read as a diverged training
    "model.anchor_scale": above(0),
    # GluonCV counts a negative value as 0
    "model.negative_mining_ratio": at_least(0),
    "model.min_hard_negatives": at_least(0),
    "model.rcnn_rois": at_least(1),
    "model.batch_size": at_least(1),
    "model.epochs": at_least(1),
    "model.lr": above(0),
    # the rate's factor at each step: 1 keeps it, 0 stops learning, a negative factor makes the rate negative
    "model.lr_decay": between(0, 1, open_low=True),
    "model.warmup_epochs": at_least(0),
    # SGD's: 1 would never forget a gradient
    "model.momentum": between(0, 1, open_high=True),
    "model.wd": at_least(0),
    "model.val_interval": at_least(1),
    # null: no limit (0 trained one batch)
    "model.max_train_seconds": above(0),
    "model.data_workers": at_least(0),
    # a detection's score is a probability (the endpoint refuses a request's threshold outside 0-1 too)
    "model.score_threshold": between(0, 1),
    "model.speed_frames": at_least(1),
}


# The smallest model.input_size each network trains and detects at, measured one by one (GluonCV 0.10, MXNet 1.9).
# Below these, an SSD's last extra 3×3 convolutions get a map smaller than their kernel, Faster-RCNN-101's pooling
# kernel is larger than its map, and Faster-RCNN-50 aborted the process (7 px) or diverged to NaN box losses.
SMALLEST_INPUT = {
    "ssd_300_resnet34_v1b_custom": 257,
    "ssd_300_vgg16_atrous_custom": 257,
    "ssd_512_vgg16_atrous_custom": 257,
    "faster_rcnn_resnet50_v1b_custom": 8,
    "faster_rcnn_resnet101_v1d_custom": 9,
}
# The other SSDs and YOLOv3 keep their top 100 detections after NMS (GluonCV's post_nms): an input with fewer anchors
# times classes fails that slice. Their anchors per cell on each map, a map being ceil(input / stride) a side
# (checked against every such network's own output at inputs of 1-69 px with 1-3 classes).
KEPT_DETECTIONS = 100
ANCHORS = {"ssd_": ((16, 4), (32, 6), (64, 6), (128, 6), (256, 4), (512, 4)), "yolo3_": ((8, 3), (16, 3), (32, 3))}


def smallest_input(network: str, n_classes: int) -> int:
    """The smallest input side `network` trains and detects at with `n_classes` classes (1: not measured)."""
    if network in SMALLEST_INPUT:
        return SMALLEST_INPUT[network]
    maps = next((anchors for prefix, anchors in ANCHORS.items() if network.startswith(prefix)), None)
    if maps is None or n_classes < 1:
        return 1
    size = 1
    while sum(math.ceil(size / stride) ** 2 * per_cell for stride, per_cell in maps) * n_classes < KEPT_DETECTIONS:
        size += 1
    return size


def input_fits_network(network: str, classes: list[str], input_size: int) -> bool:
    return input_size >= smallest_input(network, len(classes))


def tiles_advance(tile_size: int | None, tile_overlap: int) -> bool:
    """Whether each tile starts past the one before it: it shares fewer pixels with it than it has (null tile_size:
    the whole frame, no tiles)."""
    return tile_size is None or 0 <= tile_overlap < tile_size


CONSTRAINTS = (
    Constraint(
        ("dataset.val_fraction", "dataset.test_fraction"),
        leave_a_training_share,
        "dataset.val_fraction + dataset.test_fraction must be below 1, to leave frames for training",
        "lower one of them (defaults 0.15 + 0.15)",
    ),
    Constraint(
        ("model.tile_size", "model.tile_overlap"),
        tiles_advance,
        "model.tile_overlap must be below model.tile_size (null: the whole frame), or the tiles would not advance",
        "lower model.tile_overlap: at least the largest ball plus a few pixels (defaults 40 of 128)",
    ),
    Constraint(
        ("model.network", "model.classes", "model.input_size"),
        input_fits_network,
        "model.input_size must be at least the smallest input model.network trains and detects at (SSD and YOLOv3 "
        "keep 100 detections, so with fewer classes they need more anchors: a larger input)",
        lambda network, classes, _: (
            f"give model.input_size={smallest_input(network, len(classes))} or more "
            f"({len(classes)} class{'es' if len(classes) != 1 else ''})"
        ),
    ),
)

TASK = register(
    Task(
        "object_detection",
        f"{__name__}.stages",
        (
            # prepare also checks model.network, to fail before converting frames; its output does not depend on it
            StageSpec("prepare", params=("seed", "dataset", "model.classes"), outs=("{data}",)),
            StageSpec(
                "train",
                reads=("{data}",),
                params=("seed", "preprocessing", *TRAINING),
                outs=("{models}",),
                plots=(
                    Plot("{reports}/plots/training.csv", x="epoch", y="val_map_50"),
                    "{reports}/plots/training_curves.png",
                ),
            ),
            StageSpec(
                "evaluate",
                reads=("{data}", "{models}"),
                params=(
                    "preprocessing.mean",
                    "preprocessing.std",
                    "preprocessing.small_box_px",
                    "model.speed_frames",
                    "model.score_threshold",
                ),
                outs=("{reports}/plots/sensitivity.csv",),
                metrics=("{reports}/metrics.json",),
                plots=(
                    Plot("{reports}/plots/precision_recall.csv", x="recall", y="precision"),
                    "{reports}/plots/precision_recall.png",
                    "{reports}/plots/sensitivity.png",
                ),
            ),
            # serves on loopback (deploy=local) or registers the model: run by mlexp, not a DVC stage
            "deploy",
        ),
        uses_mxnet=True,
        bounds=BOUNDS,
        constraints=CONSTRAINTS,
    )
)
