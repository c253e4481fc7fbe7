"""Charts of a text classifier: confusion matrix, reliability diagram, active-learning curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from mlexp.charts import save_figure
from mlexp.tasks.text_classification.scores import Calibration


def confusion_matrix(counts: np.ndarray, labels: list[str], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted class", ylabel="true class", title="Holdout confusion matrix")
    return save_figure(fig, path)


def reliability(calibration: Calibration, path: Path) -> Path:
    """Accuracy against confidence per bin: on the diagonal, a score of 0.8 is right 80% of the time."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    filled = calibration.count > 0
    width = 1.0 / len(calibration.count)
    centers = (np.arange(len(calibration.count)) + 0.5) * width
    ax.bar(centers[filled], calibration.accuracy[filled], width=width * 0.9, alpha=0.7, label="accuracy in bin")
    ax.plot(calibration.confidence[filled], calibration.accuracy[filled], "o-", color="C1", label="per bin")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (score of the predicted class)", ylabel="accuracy")
    ax.set_title(f"Reliability on the holdout (ECE {calibration.ece:.3f})")
    ax.legend(loc="upper left")
    return save_figure(fig, path)


def learning_curves(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], target: float, path: Path) -> Path:
    """Accuracy and macro-F1 against labels used, one line per strategy; the random final accuracy dashed."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, (labels, accuracy, macro_f1) in curves.items():
        style = "--" if name == "random" else "-"
        left.plot(labels, accuracy, style, marker=".", label=name)
        right.plot(labels, macro_f1, style, marker=".", label=name)
    left.axhline(target, color="grey", linewidth=0.8, linestyle=":", label="random's final accuracy")
    left.set(xlabel="labelled documents", ylabel="holdout accuracy", title="Accuracy vs labels")
    right.set(xlabel="labelled documents", ylabel="holdout macro-F1", title="Macro-F1 vs labels")
    left.legend()
    right.legend()
    return save_figure(fig, path)
