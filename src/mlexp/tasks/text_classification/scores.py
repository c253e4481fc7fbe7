"""Holdout scores: accuracy, macro-F1 (the objective), F1 per class, confusion matrix and calibration (ECE)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

# ten equal-width confidence bins, the usual reliability diagram
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class Calibration:
    """Per confidence bin: mean confidence, accuracy and count; ECE is their count-weighted gap."""

    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray
    ece: float

    @property
    def edges(self) -> np.ndarray:
        """The bins' edges: equal widths from 0 to 1, as `calibration` counts them."""
        return np.linspace(0.0, 1.0, len(self.count) + 1)


@dataclass(frozen=True)
class Scores:
    accuracy: float
    macro_f1: float
    f1: dict[str, float]
    confusion: np.ndarray  # rows: true class, columns: predicted class, in `labels` order
    calibration: Calibration


def metric_name(label: str) -> str:
    """A class name as part of a metric name: f1_sci_tech for Sci/Tech, f1_спорт for Спорт.

    MLflow checks metric names with Python's Unicode \\w (letters and digits of any script, and _), so a class
    in another script keeps its letters; an ASCII-only name made every Cyrillic class the same `f1_`. Combining
    marks, which \\w leaves out, become separators."""
    return re.sub(r"\W+", "_", unicodedata.normalize("NFKC", label).casefold()).strip("_")


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS) -> Calibration:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=confidence, minlength=bins) / count
        accuracy = np.bincount(which, weights=correct.astype(float), minlength=bins) / count
    gaps = np.where(count > 0, np.abs(mean_conf - accuracy), 0.0)
    ece = float((gaps * count).sum() / max(count.sum(), 1))
    return Calibration(mean_conf, accuracy, count, ece)


def score(truth: list[str], proba: np.ndarray, labels: list[str]) -> Scores:
    """Scores of calibrated probabilities `proba` (columns in `labels` order) against the true classes."""
    index = {label: i for i, label in enumerate(labels)}
    true = np.array([index.get(t, -1) for t in truth])
    predicted = proba.argmax(axis=1)
    n = len(labels)
    known = true >= 0  # a holdout class the model never saw counts as an error in accuracy
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (true[known], predicted[known]), 1)
    f1 = {}
    for i, label in enumerate(labels):
        tp = confusion[i, i]
        fp = confusion[:, i].sum() - tp
        fn = (true == i).sum() - tp
        f1[label] = float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0
    correct = predicted == true
    return Scores(
        accuracy=float(correct.mean()),
        macro_f1=float(np.mean(list(f1.values()))),
        f1=f1,
        confusion=confusion,
        calibration=calibration(proba.max(axis=1), correct),
    )
