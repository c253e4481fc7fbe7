"""The detection charts: precision–recall curve, mAP per frame characteristic, training curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np


def frames_word(count: int) -> str:
    """ "frame" after 1, else "frames" (the sensitivity table once said "1 frames")."""
    return "frame" if count == 1 else "frames"


def them_word(count: int) -> str:
    return "it" if count == 1 else "them"


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def precision_recall(recall: np.ndarray, precision: np.ndarray, ap: float, path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot(recall, precision, drawstyle="steps-post", label=f"football (mAP@0.5 = {ap:.3f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title=title)
    ax.legend(loc="lower left")
    return _save(fig, path)


def sensitivity_bars(rows: list[dict[str, Any]], overall: float, path: Path) -> Path:
    """Grouped bars: one group per characteristic, one bar per value (the post's error analysis).

    The row of frames without a ball (it has a false-positive rate, not an mAP) is a note under the title.
    """
    no_ball = [r for r in rows if "false_positive_rate" in r]
    rows = [r for r in rows if "false_positive_rate" not in r]
    names = sorted({r["attribute"] for r in rows})
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.38
    for slot in range(2):
        xs, heights, labels = [], [], []
        for i, name in enumerate(names):
            values = sorted((r for r in rows if r["attribute"] == name), key=lambda r: r["value"])
            if slot < len(values):
                xs.append(i + (slot - 0.5) * width)
                heights.append(values[slot]["map_50"])
                labels.append(f"{values[slot]['value']}\n(n={values[slot]['frames']})")
        bars = ax.bar(xs, heights, width, color=f"C{slot}")
        for bar, label in zip(bars, labels):
            ax.annotate(
                label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=7
            )
    ax.axhline(overall, color="grey", linestyle="--", linewidth=1, label=f"all frames ({overall:.3f})")
    ax.set_xticks(range(len(names)), [n.replace("_", " ") for n in names])
    title = "mAP@0.5 per frame characteristic (test frames)"
    for row in no_ball:
        count, rate = row["frames"], row["false_positive_rate"]
        title += f"\nno ball: {count} {frames_word(count)}, a false positive on {rate:.0%} of {them_word(count)}"
    ax.set(ylabel="mAP@0.5", ylim=(0, 1.15), title=title)
    ax.legend(loc="upper right", fontsize="small")
    return _save(fig, path)


def training_curves(epochs: list[dict[str, Any]], path: Path) -> Path:
    """Loss terms per epoch (left) and validation mAP@0.5 (right)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    steps = [e["epoch"] for e in epochs]
    for name in epochs[0]["losses"] if epochs else []:
        left.plot(steps, [e["losses"][name] for e in epochs], marker=".", label=name)
    left.set(xlabel="epoch", ylabel="loss", title="training loss terms")
    left.legend(fontsize="small")
    validated = [(e["epoch"], e["val_map_50"]) for e in epochs if e.get("val_map_50") is not None]
    if validated:
        right.plot(*zip(*validated), marker="o")
    right.set(xlabel="epoch", ylabel="mAP@0.5", ylim=(0, 1.02), title="validation mAP@0.5")
    return _save(fig, path)
