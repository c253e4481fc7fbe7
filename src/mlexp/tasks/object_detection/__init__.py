"""Task `object_detection`: football detection with GluonCV ("Football tracking in the NFL with Amazon SageMaker")."""

from mlexp.config.bounds import Bound, above, at_least, between
from mlexp.config.input_paths import Accepts, InputPath, RelativeTo, given
from mlexp.tasks import Plot, StageSpec, Task, register
from mlexp.tasks.object_detection import config  # noqa: F401  (registers the schemas)
from mlexp.tasks.object_detection.config_rules import CONSTRAINTS

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
    # null: the whole frame; else at least network_choice.MIN_TILE (its overlap below it: CONSTRAINTS)
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


INPUTS = (
    InputPath(
        "dataset.path",
        read_by=("prepare",),
        fix="give a Ground Truth output manifest, a folder or a glob of them, or leave dataset.path unset for "
        "generated frames",
        suffixes=(".manifest", ".jsonl", ".json"),  # ground_truth_manifest.SUFFIXES
    ),
    InputPath(
        "dataset.image_root",
        read_by=("prepare",),
        fix="give your local copy of the labeling job's bucket, or leave dataset.image_root unset to read each "
        "frame from its source-ref",
        accepts=Accepts.FOLDER,
        when=("dataset.path", given),  # generated frames are written with the manifest
    ),
    # prepare checks it too, to fail before converting frames; runs:/<run id>/... is looked up before the trial
    # (config_rules), and by train when the store did not answer then
    InputPath(
        "model.init_from",
        read_by=("prepare", "train"),
        fix="give a .params file or runs:/<run id>/model/model.params, or leave model.init_from unset",
        accepts=Accepts.FILE,
        relative_to=RelativeTo.WORKING_DIRECTORY,
        uris=("runs:/",),  # init_from._download
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
        inputs=INPUTS,
    )
)
