"""The registered churn classifier: customer rows in churn.txt's columns in, churn probability out.

Input: a DataFrame with the columns of the SageMaker example's `churn.txt` (State … CustServ
Calls; `Churn?` is not needed). The columns the model reads are required, the others optional.
The encoding fitted on the training split (one-hot State, Area Code and plans) is applied
inside, and `Total Spend` is added from the four charges as the loader does. Output: a
DataFrame with one column, `churn_probability`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema, TensorSpec
from omegaconf import DictConfig

from mlexp.data import telecom_churn
from mlexp.errors import DataError
from mlexp.serving.pyfunc_model import PyfuncModel
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
    """Rows as the loader leaves them: plans as lower-case yes/no, State stripped, Total Spend added."""
    rows = frame.copy()
    for column in telecom_churn.PLANS:
        if column in rows:
            rows[column] = rows[column].astype(str).str.strip().str.lower()
    if "State" in rows:
        rows["State"] = rows["State"].astype(str).str.strip()
    if telecom_churn.TOTAL_SPEND not in rows and set(telecom_churn.CHARGES) <= set(rows.columns):
        rows[telecom_churn.TOTAL_SPEND] = rows[telecom_churn.CHARGES].sum(axis=1).round(2)
    missing = [c for c in needed_columns(encoding) if c not in rows]
    if missing:
        raise MlflowException.invalid_parameter_value(f"customer rows lack the columns {', '.join(missing)}")
    return rows


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
        rows = customer_rows(pd.DataFrame(model_input), self.encoding)
        probability = classifier.predict(self.booster, self.encoding.transform(rows), self.encoding.feature_names)
        return pd.DataFrame({"churn_probability": probability.astype(np.float64)})


def signature(example: pd.DataFrame, encoding: features.Encoding) -> ModelSignature:
    """Types as the test split holds them (Area Code a whole number, plans text); unread columns optional."""
    inferred = infer_signature(example).inputs
    needed = set(needed_columns(encoding))
    columns: list[ColSpec | TensorSpec] = [ColSpec(c.type, c.name, required=c.name in needed) for c in inferred.inputs]
    return ModelSignature(inputs=Schema(columns), outputs=Schema([ColSpec("double", "churn_probability")]))


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
    encoding = customers.encoding(cfg)
    example = input_example(cfg)
    folder = staging / "booster"
    folder.mkdir(parents=True)
    shutil.copy2(booster, folder / classifier.MODEL_FILE)
    return PyfuncModel(
        python_model=ChurnProbability,
        artifacts={"booster": folder, "encoding": Path(cfg.paths.data) / customers.ENCODING_FILE},
        input_example=example,
        signature=signature(example, encoding),
        requirements=("xgboost-cpu", "scikit-learn"),
    )
