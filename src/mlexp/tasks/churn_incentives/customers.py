"""The split CSVs prepare writes, and the scored customer base the evaluation and program read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from mlexp.data.telecom_churn import LABEL, TOTAL_SPEND
from mlexp.errors import DataError
from mlexp.tasks.churn_incentives import classifier, features

ENCODING_FILE = "encoding.json"
TEXT_COLUMNS = {"State": str, "Phone": str, "Int'l Plan": str, "VMail Plan": str}


def split_path(cfg: DictConfig, name: str) -> Path:
    return Path(cfg.paths.data) / f"{name}.csv"


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    partial = path.with_name(path.name + ".partial")
    frame.to_csv(partial, index=False)
    partial.replace(path)


def read_split(cfg: DictConfig, name: str) -> pd.DataFrame:
    path = split_path(cfg, name)
    if not path.exists():
        raise DataError(f"{path} is missing: run the prepare stage first (mlexp task={cfg.task.name} stage=prepare)")
    return pd.read_csv(path, dtype=TEXT_COLUMNS, keep_default_na=False)


def encoding(cfg: DictConfig) -> features.Encoding:
    path = Path(cfg.paths.data) / ENCODING_FILE
    if not path.exists():
        raise DataError(f"{path} is missing: run the prepare stage first (mlexp task={cfg.task.name} stage=prepare)")
    return features.Encoding.load(path)


@dataclass(frozen=True)
class ScoredCustomers:
    """One split's customers with the model's churn probability (the post's alpha)."""

    customer: np.ndarray
    spend: np.ndarray
    churned: np.ndarray
    churn_probability: np.ndarray

    def __len__(self) -> int:
        return len(self.customer)


def scored(cfg: DictConfig, name: str = "test", nthread: int = 1) -> ScoredCustomers:
    models = Path(cfg.paths.models)
    if not (models / classifier.MODEL_FILE).exists():
        raise DataError(f"{models / classifier.MODEL_FILE} is missing: run the train stage first")
    frame = read_split(cfg, name)
    encoder = encoding(cfg)
    probability = classifier.predict(classifier.load(models, nthread), encoder.transform(frame), encoder.feature_names)
    return ScoredCustomers(
        customer=frame[features.CUSTOMER].to_numpy(),
        spend=frame[TOTAL_SPEND].to_numpy(dtype=np.float64),
        churned=frame[LABEL].to_numpy(dtype=bool),
        churn_probability=probability,
    )
