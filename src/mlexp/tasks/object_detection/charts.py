"""The detection charts: precision–recall curve, mAP per frame characteristic, training curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator


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
    if np.any(recall > 0):
        ax.plot(recall, precision, drawstyle="steps-post", label=f"football (mAP@0.5 = {ap:.3f})")
        ax.legend(loc="lower left")
    else:
        # no detection matched a ball: the curve is empty, say so rather than leave a blank box
        ax.text(
            0.5, 0.5, f"no true positive at any threshold\n(mAP@0.5 = {ap:.3f})", ha="center", va="center",
            transform=ax.transAxes,
        )  # fmt: skip
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title=title)
    return _save(fig, path)


def sensitivity_bars(rows: list[dict[str, Any]], overall: float, path: Path) -> Path:
    """One bar per value of each characteristic, grouped by characteristic (the post's error analysis).

    A characteristic with a single value in the test frames compares nothing: it is named, not drawn.
    The row of frames without a ball (it has a false-positive rate, not an mAP) is a note under the title.
    """
    no_ball = [r for r in rows if "false_positive_rate" in r]
    rows = [r for r in rows if "false_positive_rate" not in r]
    names = sorted({r["attribute"] for r in rows})
    fig, ax = plt.subplots(figsize=(9, 4.8))
    ticks: list[tuple[float, str]] = []
    x = 0.0
    for name in names:
        values = sorted((r for r in rows if r["attribute"] == name), key=lambda r: r["value"])
        label = name.replace("_", " ")
        if len(values) == 1:
            only = values[0]
            ax.text(x, 0.02, f"1 value only:\n{only['value']} (n={only['frames']})", ha="center", fontsize=8)
            ticks.append((x, label))
            x += 1.5
            continue
        xs = x + np.arange(len(values))
        # one colour: a bar's value is on its tick, colour would only repeat it
        bars = ax.bar(xs, [v["map_50"] for v in values], 0.8, color="C0")
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
        ticks += [(xi, f"{label}:\n{v['value']} (n={v['frames']})") for xi, v in zip(xs, values)]
        x += len(values) + 0.5
    ax.axhline(overall, color="grey", linestyle="--", linewidth=1, label=f"all frames ({overall:.3f})")
    ax.set_xticks([t for t, _ in ticks], [text for _, text in ticks], fontsize=8)
    title = "mAP@0.5 per frame characteristic (test frames)"
    for row in no_ball:
        count, rate = row["frames"], row["false_positive_rate"]
        title += f"\nno ball: {count} {frames_word(count)}, a false positive on {rate:.0%} of {them_word(count)}"
    ax.set(ylabel="mAP@0.5", ylim=(0, 1.15), title=title)
    ax.legend(loc="upper right", fontsize="small")
    return _save(fig, path)


def training_curves(epochs: list[dict[str, Any]], path: Path, best_epoch: int | None = None) -> Path:
    """Loss terms per epoch (left) and validation mAP@0.5 (right), with the epoch whose weights were kept
    (`best_epoch`: the test mAP is measured on it) marked."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    steps = [e["epoch"] for e in epochs]
    for name in epochs[0]["losses"] if epochs else []:
        left.plot(steps, [e["losses"][name] for e in epochs], marker=".", label=name)
    left.set(xlabel="epoch", ylabel="loss", title="training loss terms")
    left.legend(fontsize="small")
    validated = [(e["epoch"], e["val_map_50"]) for e in epochs if e.get("val_map_50") is not None]
    if validated:
        right.plot(*zip(*validated), marker="o")
    best = dict(validated).get(best_epoch) if best_epoch is not None else None
    if best is not None:
        for side in (left, right):
            side.axvline(best_epoch, color="grey", linestyle=":", linewidth=1)
        right.plot([best_epoch], [best], marker="*", markersize=14, color="C3", linestyle="none",
                   label=f"kept: epoch {best_epoch}, mAP@0.5 {best:.3f}")  # fmt: skip
        right.legend(fontsize="small", loc="lower right")
    # the range follows the values: a model still near 0 would be a flat line on a 0-1 axis
    right.set(xlabel="epoch", ylabel="mAP@0.5", title="validation mAP@0.5")
    right.set_ylim(bottom=0)
    for side in (left, right):
        side.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(fig, path)
