"""Stratified train/validation/test split and the one-hot encoding the classifier reads."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from mlexp.config.constraints import leave_a_training_share
from mlexp.data.telecom_churn import LABEL
from mlexp.errors import ConfigError, DataError

# the row a customer had in the input, so the program's per-customer CSV points back to it
CUSTOMER = "Customer"
SPLITS = ("train", "validation", "test")


def split(frame: pd.DataFrame, validation_fraction: float, test_fraction: float, seed: int) -> dict[str, pd.DataFrame]:
    """Seeded splits that keep the churn rate of `frame` in each part."""
    shares = (validation_fraction, test_fraction)
    if not (all(0 < share < 1 for share in shares) and leave_a_training_share(*shares)):
        raise ConfigError(
            f"preprocessing.validation_fraction={validation_fraction} and preprocessing.test_fraction="
            f"{test_fraction} must each lie in (0, 1) and leave rows to train on (sum < 1)"
        )
    frame = frame.assign(**{CUSTOMER: np.arange(1, len(frame) + 1)})
    churners = int(frame[LABEL].sum())
    try:
        rest, test = train_test_split(frame, test_size=test_fraction, stratify=frame[LABEL], random_state=seed)
        share = validation_fraction / (1 - test_fraction)
        train, validation = train_test_split(rest, test_size=share, stratify=rest[LABEL], random_state=seed)
    except ValueError as error:
        raise DataError(
            f"{len(frame)} rows with {churners} churners are too few for a stratified train/validation/test split "
            f"({error}); use more rows (dataset.n_rows) or other fractions"
        ) from error
    parts = {"train": train, "validation": validation, "test": test}
    return {name: part.sort_values(CUSTOMER).reset_index(drop=True) for name, part in parts.items()}


@dataclass
class Encoding:
    """Which columns the model reads and the categories of each one-hot column, fitted on train (JSON)."""

    categories: dict[str, list[str]]
    numeric: list[str]

    @classmethod
    def fit(cls, train: pd.DataFrame, categorical: list[str], dropped: list[str]) -> Encoding:
        unknown = [c for c in [*categorical, *dropped] if c not in train.columns]
        if unknown:
            raise ConfigError(
                f"preprocessing names columns the churn data lacks: {', '.join(unknown)}; "
                f"columns are: {', '.join(train.columns)}"
            )
        skip = {*categorical, *dropped, LABEL, CUSTOMER}
        return cls(
            categories={c: sorted(train[c].astype(str).unique().tolist()) for c in categorical},
            numeric=[c for c in train.columns if c not in skip],
        )

    @property
    def feature_names(self) -> list[str]:
        one_hot = [f"{column}={value}" for column, values in self.categories.items() for value in values]
        return [*self.numeric, *one_hot]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Feature matrix in `feature_names` order; a category unseen in training is all zeros."""
        blocks = [frame[self.numeric].to_numpy(dtype=np.float32)]
        for column, values in self.categories.items():
            text = frame[column].astype(str).to_numpy()
            blocks.append((text[:, None] == np.array(values)[None, :]).astype(np.float32))
        return np.hstack(blocks)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> Encoding:
        return cls(**json.loads(path.read_text()))


def labels(frame: pd.DataFrame) -> np.ndarray:
    return frame[LABEL].to_numpy(dtype=np.float32)
