"""The registered abalone model: raw UCI rows in, predicted rings out (an MLflow pyfunc model).

Input: a DataFrame with the UCI abalone columns except Rings — `sex` (M, F or I) and the seven
measurements — as `abalone.data` holds them; the saved preprocessors (one-hot Sex, the training
split's scaling) are applied inside. Output: a DataFrame with one column, `rings`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema
from omegaconf import DictConfig

from mlexp.data import abalone
from mlexp.errors import DataError
from mlexp.serving.pyfunc_model import PyfuncModel
from mlexp.tasks.tabular_regression import features, network

INPUT_COLUMNS = ["sex", *features.FEATURES]
EXAMPLE_ROWS = 5
# what pyfunc_model reads from paths.data: a SageMaker training job ships it in its model.tar.gz
DATA_FILES = ("preprocessors.json",)


class AbaloneRings(PythonModel):
    """The trial's Gluon MLP behind its fitted preprocessors."""

    def load_context(self, context: Any) -> None:
        self.net = network.load(Path(context.artifacts["network"]))
        self.preprocessors = features.Preprocessors.load(Path(context.artifacts["preprocessors"]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input).assign(sex=lambda f: f["sex"].astype(str).str.strip())
        unknown = sorted(set(frame["sex"]) - set(self.preprocessors.sex_codes))
        if unknown:
            raise MlflowException.invalid_parameter_value(
                f"sex must be one of {'/'.join(self.preprocessors.sex_codes)}; got {', '.join(map(repr, unknown))}"
            )
        # the preprocessors also carry the target through; a placeholder keeps them unchanged
        x, _ = features.arrays(self.preprocessors.transform(frame.assign(**{features.TARGET: 0.0})))
        return pd.DataFrame({"rings": network.predict(self.net, x).astype("float64")})


def signature() -> ModelSignature:
    return ModelSignature(
        inputs=Schema([ColSpec("string", "sex"), *(ColSpec("double", c) for c in features.FEATURES)]),
        outputs=Schema([ColSpec("double", "rings")]),
    )


def input_example(cfg: DictConfig) -> pd.DataFrame:
    """The first rows of the trial's test split, raw: the rows whose predictions `evaluate` wrote first."""
    frame = abalone.load(cfg.dataset.path, cfg.dataset.n_rows, cfg.seed)
    _, test = features.split(frame, cfg.preprocessing.train_test_split, cfg.seed)
    return test[INPUT_COLUMNS].head(EXAMPLE_ROWS).reset_index(drop=True)


def pyfunc_model(cfg: DictConfig, staging: Path) -> PyfuncModel:
    """The trial's network (models folder) and preprocessors (data folder) as a pyfunc model."""
    models, preprocessors = Path(cfg.paths.models), Path(cfg.paths.data) / "preprocessors.json"
    for needed, stage in ((models / "model.params", "train"), (preprocessors, "prepare")):
        if not needed.exists():
            raise DataError(f"{needed} is missing: run the {stage} stage first (mlexp task={cfg.task.name})")
    # the two files the network needs, not whatever else the models folder may come to hold
    folder = staging / "network"
    folder.mkdir(parents=True)
    for name in ("model.params", "model.json"):
        shutil.copy2(models / name, folder / name)
    return PyfuncModel(
        python_model=AbaloneRings,
        artifacts={"network": folder, "preprocessors": preprocessors},
        input_example=input_example(cfg),
        signature=signature(),
        requirements=("mxnet",),
    )
