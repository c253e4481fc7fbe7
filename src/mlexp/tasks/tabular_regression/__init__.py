"""Task `tabular_regression`: the abalone MLP of the SageMaker Experiments post."""

from mlexp.config.bounds import above, at_least, between
from mlexp.config.input_paths import InputPath
from mlexp.tasks import Plot, RawData, StageSpec, Task, register
from mlexp.tasks.tabular_regression import config  # noqa: F401  (registers the schemas)
from mlexp.tasks.tabular_regression.config_rules import CONSTRAINTS

ABALONE = RawData("abalone", "data/raw/abalone.data")
# read by prepare, and by deploy=registry for the model's input example (registered_model.input_example)
DATASET = InputPath(
    "dataset.path",
    read_by=("prepare", "deploy"),
    fix="give the path of your copy, or leave dataset.path unset for the copy shipped with mlexp",
    suffixes=(".data", ".csv", ".zip"),  # abalone.SUFFIXES, without importing pandas here
)


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
        inputs=(DATASET,),
    )
)
