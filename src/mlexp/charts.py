"""PNG charts shared by tasks and comparisons (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Write `fig` as a PNG (creating folders) and free it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def predicted_vs_actual(
    actual: np.ndarray, predicted: np.ndarray, path: Path, title: str, unit: str | None = None
) -> Path:
    """Predicted against actual, one dot per row, with the diagonal; both axes in `unit` when given."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(actual, predicted, s=8, alpha=0.5)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="perfect")
    in_unit = f" ({unit})" if unit else ""
    ax.set(xlabel=f"actual{in_unit}", ylabel=f"predicted{in_unit}", title=title)
    ax.legend()
    return save_figure(fig, path)
