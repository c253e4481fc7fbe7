"""Task `tabular_regression`: the abalone MLP of the SageMaker Experiments post."""

from dataclasses import replace
from typing import Any

from mlexp.config.bounds import above, at_least, between
from mlexp.config.input_paths import InputPath
from mlexp.tasks import Plot, RawData, StageSpec, Task, register
from mlexp.tasks.tabular_regression import config  # noqa: F401  (registers the schemas)
from mlexp.tasks.tabular_regression.config_rules import CONSTRAINTS

ABALONE = RawData("abalone", "data/raw/abalone.data")
DATASET = InputPath(
    "dataset.path",
    read_by=("prepare",),
    fix="give the path of your copy, or leave dataset.path unset for the copy shipped with mlexp",
    suffixes=(".data", ".csv", ".zip"),  # abalone.SUFFIXES, without importing pandas here
    written_by=ABALONE.written_by,
)


def saves_this_trials_model(deploy: dict[str, Any]) -> bool:
    """Whether the deploy stage saves this trial's model, reading its input example from dataset.path
    (registered_model.input_example): deploy=registry, and deploy=sagemaker of deploy.source=trial. deploy=sagemaker
    of the champion saves it only for a trial that holds the objective (a whole run, whose prepare reads the path
    first) and else serves the registered version; deploy=local is refused for this task."""
    target = deploy.get("target")
    return target == "registry" or (target == "sagemaker" and deploy.get("source") == "trial")


# `stage=deploy deploy=sagemaker`, serving the champion already registered, reads no dataset.path
SAVED_MODEL_EXAMPLE = replace(DATASET, read_by=("deploy",), when=("deploy", saves_this_trials_model))


TASK = register(
    Task(
        "tabular_regression",
        f"{__name__}.stages",
        (
            StageSpec(
                "prepare",
                reads=(ABALONE,),
                args=(f"dataset.path={ABALONE.path}",),
                params=("seed", "dataset.n_rows", "preprocessing.train_test_split"),
                outs=("{data}",),
            ),
            StageSpec(
                "train",
                reads=("{data}",),
                params=("seed", "model"),
                outs=("{models}",),
                plots=(Plot("{reports}/plots/train_loss.csv", x="epoch", y="train_loss"),),
            ),
            StageSpec(
                "evaluate",
                reads=("{data}", "{models}"),
                metrics=("{reports}/metrics.json",),
                plots=(
                    Plot("{reports}/plots/predictions.csv", x="actual", y="predicted", template="scatter"),
                    "{reports}/plots/predicted_vs_actual.png",
                ),
            ),
        ),
        uses_mxnet=True,
        stages_without_mxnet=("prepare",),  # pandas only: `dvc repro`'s prepare stage need not load MXNet
        small_mxnet_operators=True,  # a 2-layer regressor of 32 and 16 units
        bounds={
            # fewer never make a train and a test set (the prepare stage checks the split itself)
            "dataset.n_rows": at_least(2),
            "preprocessing.train_test_split": between(0, 1, open_low=True, open_high=True),
            "model.l1_size": at_least(1),
            "model.l2_size": at_least(1),
            "model.learning_rate": above(0),
            "model.batch_size": at_least(1),
            "model.epochs": at_least(1),
        },
        constraints=CONSTRAINTS,
        inputs=(DATASET, SAVED_MODEL_EXAMPLE),
    )
)
