"""Task `object_detection`: football detection with GluonCV ("Football tracking in the NFL with Amazon SageMaker")."""

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
    )
)
