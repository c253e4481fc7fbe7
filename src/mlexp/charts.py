"""PNG charts shared by tasks and comparisons (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Write `fig` as a PNG (creating folders) and free it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray, path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(actual, predicted, s=8, alpha=0.5)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="perfect")
    ax.set(xlabel="actual", ylabel="predicted", title=title)
    ax.legend()
    return save_figure(fig, path)


def metric_by_step(series: Mapping[str, Sequence[tuple[int, float]]], metric: str, path: Path) -> Path:
    """One line per trial: `metric` against its step (the post's loss-by-epoch chart)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in series.items():
        steps, values = zip(*sorted(points)) if points else ((), ())
        ax.plot(steps, values, marker=".", label=label)
    ax.set(xlabel="step (epoch)", ylabel=metric, title=f"{metric} by step, per trial")
    ax.legend(fontsize="small")
    return save_figure(fig, path)


def param_vs_objective(
    values: Sequence[float | str], objective: Sequence[float], param: str, metric: str, path: Path
) -> Path:
    """Scatter of one hyperparameter against the objective (the post's l1_size vs MSLE chart)."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    numeric = all(isinstance(v, (int, float)) for v in values)
    if numeric:
        ax.scatter(values, objective)
    else:
        labels = sorted({str(v) for v in values})
        ax.scatter([labels.index(str(v)) for v in values], objective)
        ax.set_xticks(range(len(labels)), labels)
    ax.set(xlabel=param, ylabel=metric, title=f"{param} vs {metric}")
    return save_figure(fig, path)
