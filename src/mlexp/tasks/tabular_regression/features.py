"""Pre-processing of abalone rows: one-hot Sex, standard scaling fitted on train only."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlexp.data.abalone import NUMERIC, SEX_CODES
from mlexp.tasks.tabular_regression.config_rules import training_rows

FEATURES = [c for c in NUMERIC if c != "rings"]
TARGET = "rings"


@dataclass
class Preprocessors:
    """The fitted encoder and scaler, stored as JSON (safe to load, unlike a pickle)."""

    sex_codes: list[str]
    means: dict[str, float]
    scales: dict[str, float]

    @classmethod
    def fit(cls, train: pd.DataFrame) -> Preprocessors:
        std = train[FEATURES].std(ddof=0).replace(0.0, 1.0)
        return cls(
            sex_codes=list(SEX_CODES),
            means={c: float(train[c].mean()) for c in FEATURES},
            scales={c: float(std[c]) for c in FEATURES},
        )

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame({f"sex_{code}": (frame["sex"] == code).astype("float32") for code in self.sex_codes})
        for column in FEATURES:
            out[column] = ((frame[column] - self.means[column]) / self.scales[column]).astype("float32")
        out[TARGET] = frame[TARGET].astype("float32").to_numpy()
        return out

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> Preprocessors:
        return cls(**json.loads(path.read_text()))


def split(frame: pd.DataFrame, train_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded random split: `train_fraction` of rows for training, the rest for test."""
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = training_rows(len(frame), train_fraction)  # the count the task's constraint on dataset.n_rows reads
    return frame.iloc[order[:cut]].reset_index(drop=True), frame.iloc[order[cut:]].reset_index(drop=True)


def arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    features = frame.drop(columns=[TARGET]).to_numpy(dtype="float32")
    return features, frame[TARGET].to_numpy(dtype="float32")
