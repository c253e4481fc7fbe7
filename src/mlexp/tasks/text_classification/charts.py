"""Charts of a text classifier: confusion matrix, reliability diagram, active-learning curves."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from mlexp.charts import save_figure
from mlexp.tasks.text_classification.active_learning import Curve
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


@dataclass(frozen=True)
class Review:
    """The service's review rule on the holdout: predictions scored below `threshold` go to a human."""

    threshold: float
    reviewed: int
    predictions: int

    @property
    def share(self) -> float:
        return self.reviewed / max(self.predictions, 1)


def reliability(calibration: Calibration, review: Review, path: Path) -> Path:
    """Accuracy per confidence bin, with its mean confidence and count: on the diagonal, a score of 0.8 is right
    80% of the time. The service's review threshold splits the predictions a human sees from those it trusts."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    filled = calibration.count > 0
    edges = calibration.edges
    low, width = edges[:-1][filled], np.diff(edges)[filled]
    bars = ax.bar(
        low,
        calibration.accuracy[filled],
        width=width,
        align="edge",
        alpha=0.7,
        edgecolor="white",
        label="accuracy of the bin's predictions",
    )
    ax.bar_label(bars, labels=[f"n={n}" for n in calibration.count[filled]], padding=2, fontsize=8)
    ax.scatter(
        low + width / 2,
        calibration.confidence[filled],
        marker="_",
        s=300,
        color="C1",
        zorder=3,
        label="mean confidence of the bin",
    )
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    ax.axvspan(0, review.threshold, color="C3", alpha=0.08)
    ax.axvline(
        review.threshold,
        color="C3",
        linewidth=1.2,
        label=f"review threshold {review.threshold:g}: {review.share:.1%} of predictions "
        f"({review.reviewed} of {review.predictions}) go to review",
    )
    ax.set(xlim=(0, 1), ylim=(0, 1.08), xlabel="confidence (score of the predicted class)", ylabel="accuracy")
    ax.set_title(f"Reliability on the holdout (ECE {calibration.ece:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    return save_figure(fig, path)


@dataclass(frozen=True)
class LearningCurves:
    """What the active-learning chart draws: the curves, random's final accuracy and where each strategy reached
    it (NaN: never), and the accuracy of always answering the pool's most frequent class."""

    curves: dict[str, Curve]
    target: float
    labels_to_target: dict[str, float]
    majority_accuracy: float


def learning_curves(found: LearningCurves, path: Path) -> Path:
    """Accuracy and macro-F1 against labels used, one line per strategy (the band: the repeats' range)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for i, (name, curve) in enumerate(found.curves.items()):
        style, colour = ("--" if name == "random" else "-"), f"C{i}"
        left.plot(curve.labels, curve.accuracy, style, marker=".", color=colour, label=name)
        right.plot(curve.labels, curve.macro_f1, style, marker=".", color=colour, label=name)
        if curve.repeats > 1 and curve.accuracy_min is not None and curve.accuracy_max is not None:
            left.fill_between(
                curve.labels, curve.accuracy_min, curve.accuracy_max, color=colour, alpha=0.15, linewidth=0
            )
        needed = found.labels_to_target.get(name, math.nan)
        if not math.isnan(needed):
            left.plot(
                [needed],
                [found.target],
                "o",
                color=colour,
                markersize=8 + 4 * i,  # rings of one size hid each other where two strategies reach it together
                markerfacecolor="none",
                label=f"{name} reaches it with {needed:.0f} labels",
            )
    left.axhline(
        found.target, color="grey", linewidth=0.8, linestyle=":", label=f"random's final accuracy ({found.target:.3f})"
    )
    left.axhline(
        found.majority_accuracy,
        color="black",
        linewidth=0.8,
        linestyle="-.",
        label=f"majority class ({found.majority_accuracy:.3f})",
    )
    repeats = next(iter(found.curves.values())).repeats if found.curves else 1
    band = f", band: range of {repeats} repeats" if repeats > 1 else ""
    left.set(xlabel="labelled documents", ylabel="holdout accuracy", title=f"Accuracy vs labels{band}")
    right.set(xlabel="labelled documents", ylabel="holdout macro-F1", title="Macro-F1 vs labels")
    left.legend(fontsize=7)
    right.legend(fontsize=8)
    return save_figure(fig, path)
