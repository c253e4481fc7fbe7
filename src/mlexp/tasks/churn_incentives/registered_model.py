"""The registered churn classifier: customer rows in churn.txt's columns in, churn probability out.

Input: a DataFrame with the columns of the SageMaker example's `churn.txt` (State … CustServ
Calls; `Churn?` is not needed). The columns the model reads are required, the others optional.
Each value gets the loader's check (a count is a whole number, nothing negative, infinite or
not a number; plans yes/no), and a value it refuses is a client error naming the request's row
and column. The encoding fitted on the training split (one-hot State, Area Code and plans) is
applied inside, and `Total Spend` is added from the four charges as the loader does. A request
that holds no rows (`{"inputs": 5}`) is a client error naming MLflow's formats. Output: a
DataFrame with one column, `churn_probability`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema
from omegaconf import DictConfig

from mlexp.data import telecom_churn
from mlexp.errors import DataError, first_few, lines_named
from mlexp.serving.pyfunc_model import PyfuncModel
from mlexp.serving.request_rows import request_rows
from mlexp.tasks.churn_incentives import classifier, customers, features

INPUT_COLUMNS = [c for c in telecom_churn.COLUMNS if c != telecom_churn.LABEL]
EXAMPLE_ROWS = 5
# the input example's rows as a training job ships them: its model.tar.gz carries these, not the whole test split
# (the customer base the program scores, as large as the user's data); a local trial reads the split itself
EXAMPLE_FILE = "input_example.csv"
# what pyfunc_model reads from paths.data (encoding, input example): a SageMaker training job ships them in its
# model.tar.gz (mlexp.sagemaker.trained_model)
DATA_FILES = (customers.ENCODING_FILE, EXAMPLE_FILE)


def customer_rows(frame: pd.DataFrame, encoding: features.Encoding) -> pd.DataFrame:
    """Rows as the loader leaves them (`telecom_churn.checked_rows`); a column the model reads that is missing, or a
    value the loader refuses, is a client error (HTTP 400 when served) naming the column and the request's rows."""
    needed = needed_columns(encoding)
    missing = [c for c in needed if c not in frame]
    if missing:
        raise MlflowException.invalid_parameter_value(
            f"customer rows lack the columns {first_few(missing)}; send the churn.txt columns the model reads: "
            f"{', '.join(needed)}"
        )
    try:
        return telecom_churn.checked_rows(frame.reset_index(drop=True))
    except telecom_churn.BadValues as bad:
        rows = [int(position) + 1 for position in bad.rows]
        named = lines_named(rows, noun="row")
        raise MlflowException.invalid_parameter_value(bad.naming(named, "the first row is row 1")) from None


def needed_columns(encoding: features.Encoding) -> list[str]:
    """The input columns the model reads (the charges stand in for Total Spend when it is a feature)."""
    read = [*encoding.numeric, *encoding.categories]
    if telecom_churn.TOTAL_SPEND in read:
        read = [c for c in read if c != telecom_churn.TOTAL_SPEND] + telecom_churn.CHARGES
    return [c for c in INPUT_COLUMNS if c in read]


class ChurnProbability(PythonModel):
    """The trial's XGBoost booster behind its fitted encoding."""

    def load_context(self, context: Any) -> None:
        self.booster = classifier.load(Path(context.artifacts["booster"]))
        self.encoding = features.Encoding.load(Path(context.artifacts["encoding"]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        rows = customer_rows(request_rows(model_input), self.encoding)
        probability = classifier.predict(self.booster, self.encoding.transform(rows), self.encoding.feature_names)
        return pd.DataFrame({"churn_probability": probability.astype(np.float64)})


def signature() -> ModelSignature:
    """The output only: an input schema would have MLflow cast or refuse request values before the loader's check
    sees them (a long column turns 2.5 calls into 2, a double one refuses int64 counts, `Any` columns refuse CSV
    requests), and name no row. The inputs are documented above and in the model's input example."""
    return ModelSignature(outputs=Schema([ColSpec("double", "churn_probability")]))


def first_rows(customer_base: pd.DataFrame) -> pd.DataFrame:
    return customer_base[INPUT_COLUMNS].head(EXAMPLE_ROWS).reset_index(drop=True)


def input_example(cfg: DictConfig) -> pd.DataFrame:
    """The first customers of the test split, else of EXAMPLE_FILE (where a training job's model came back without
    the split): a split the trial made wins over an example left from an earlier job's files."""
    shipped = Path(cfg.paths.data) / EXAMPLE_FILE
    if customers.split_path(cfg, "test").is_file() or not shipped.is_file():
        return first_rows(customers.read_split(cfg, "test"))
    # read as the split is, so the example's types (and the signature) are the same
    return first_rows(pd.read_csv(shipped, dtype=customers.TEXT_COLUMNS, keep_default_na=False))


def write_data_files(cfg: DictConfig) -> None:
    """In a training job, before its data files are shipped: the input example's rows as EXAMPLE_FILE (none when
    the stages wrote no test split: the trial on this machine then names the missing file)."""
    if customers.split_path(cfg, "test").is_file():
        customers.write_csv(first_rows(customers.read_split(cfg, "test")), Path(cfg.paths.data) / EXAMPLE_FILE)


def pyfunc_model(cfg: DictConfig, staging: Path) -> PyfuncModel:
    """The trial's booster (models folder) and encoding (data folder) as a pyfunc model."""
    booster = Path(cfg.paths.models) / classifier.MODEL_FILE
    if not booster.exists():
        raise DataError(f"{booster} is missing: run the train stage first (mlexp task={cfg.task.name})")
    customers.encoding(cfg)  # a missing encoding.json is named with the stage that writes it
    example = input_example(cfg)
    folder = staging / "booster"
    folder.mkdir(parents=True)
    shutil.copy2(booster, folder / classifier.MODEL_FILE)
    return PyfuncModel(
        python_model=ChurnProbability,
        artifacts={"booster": folder, "encoding": Path(cfg.paths.data) / customers.ENCODING_FILE},
        input_example=example,
        signature=signature(),
        requirements=("xgboost-cpu", "scikit-learn"),
    )
