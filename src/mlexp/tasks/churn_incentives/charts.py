"""The post's charts for the churn task (PNG, matplotlib without a display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from mlexp.charts import save_figure
from mlexp.tasks.churn_incentives.cutoff import CutoffAnalysis
from mlexp.tasks.churn_incentives.program import Scenarios


def roc_curve(false_positive_rate: np.ndarray, true_positive_rate: np.ndarray, auc: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot(false_positive_rate, true_positive_rate, label=f"XGBoost (AUC = {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="Churn model: ROC on the test split")
    ax.legend(loc="lower right")
    return save_figure(fig, path)


def confusion_matrix(counts: np.ndarray, threshold: float, path: Path) -> Path:
    """counts[actual, predicted] with 0 = stays, 1 = churns."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(counts, cmap="Blues")
    for (row, column), value in np.ndenumerate(counts):
        colour = "white" if value > counts.max() / 2 else "black"
        ax.text(column, row, str(int(value)), ha="center", va="center", color=colour, fontsize=14)
    ax.set_xticks([0, 1], ["stays", "churns"])
    ax.set_yticks([0, 1], ["stayed", "churned"])
    ax.set(xlabel=f"predicted (score > {threshold:g})", ylabel="actual", title="Confusion matrix (test split)")
    return save_figure(fig, path)


def cost_by_cutoff(analysis: CutoffAnalysis, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(analysis.cutoffs, analysis.costs, label="campaign cost")
    ax.axhline(analysis.no_action_cost, color="grey", linestyle="--", linewidth=1, label="no action")
    ax.scatter([analysis.min_cost_cutoff], [analysis.min_cost], color="red", zorder=3, label="minimum")
    ax.set(xlabel="cutoff", ylabel="cost ($)", title=f"Cost by cutoff, {analysis.customers} customers")
    ax.legend()
    return save_figure(fig, path)


def scenarios(result: Scenarios, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    names = ["optimal", "uniform", "no discount"]
    values = [result.optimal, result.uniform, result.none]
    bars = ax.bar(names, values, color=["tab:green", "tab:blue", "tab:grey"])
    ax.bar_label(bars, labels=[f"${v:,.0f}" for v in values])
    ax.set_ylim(0, 1.12 * max(max(values), 0.0) + 1.0)
    title = (
        f"Expected total profit: optimal {result.uplift_vs_none:+.1%} vs none, "
        f"{result.uplift_vs_uniform:+.1%} vs uniform"
    )
    ax.set(ylabel="expected total profit ($)", title=title)
    ax.title.set_fontsize(10)
    return save_figure(fig, path)


def discounts(values: np.ndarray, uniform: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.hist(values, bins=50, color="tab:green")
    ax.axvline(uniform, color="red", linewidth=1.5, label=f"uniform discount (${uniform:,.2f})")
    ax.set_yscale("log")
    ax.set(xlabel="discount offered ($)", ylabel="customers (log scale)", title="Optimal discounts")
    ax.legend()
    return save_figure(fig, path)


def uplift_by_budget(fractions: np.ndarray, vs_none: np.ndarray, vs_uniform: np.ndarray, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(100 * fractions, 100 * vs_none, marker="o", label="optimal vs no discount")
    ax.plot(100 * fractions, 100 * vs_uniform, marker="s", label="optimal vs uniform discount")
    ax.set(xlabel="budget (% of monthly spend)", ylabel="expected profit uplift (%)", title="Uplift by budget")
    ax.legend()
    return save_figure(fig, path)
