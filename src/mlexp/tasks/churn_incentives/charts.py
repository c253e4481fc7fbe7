"""The post's charts for the churn task (PNG, matplotlib without a display)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import StrMethodFormatter

from mlexp.charts import save_figure
from mlexp.tasks.churn_incentives.config import ConvincingFactor, ConvincingRule
from mlexp.tasks.churn_incentives.cutoff import CutoffAnalysis
from mlexp.tasks.churn_incentives.program import Scenarios


def roc_curve(false_positive_rate: np.ndarray, true_positive_rate: np.ndarray, auc: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot(false_positive_rate, true_positive_rate, label=f"XGBoost (AUC = {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="Churn model: ROC on the test split")
    ax.legend(loc="lower right")
    return save_figure(fig, path)


@dataclass(frozen=True)
class Matrix:
    """counts[actual, predicted] of the test split at one cutoff, with 0 = stays, 1 = churns."""

    counts: np.ndarray
    cutoff: float
    name: str  # where the cutoff comes from: model.decision_threshold, the cost-optimal cutoff chosen on validation


def confusion_matrices(matrices: list[Matrix], path: Path) -> Path:
    """One confusion matrix per cutoff, side by side, each titled with its cutoff and predicted churners."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.5 * len(matrices), 4.4), squeeze=False)
    for ax, matrix in zip(axes[0], matrices):
        counts = matrix.counts
        ax.imshow(counts, cmap="Blues")
        for (row, column), value in np.ndenumerate(counts):
            colour = "white" if value > counts.max() / 2 else "black"
            ax.text(column, row, str(int(value)), ha="center", va="center", color=colour, fontsize=14)
        ax.set_xticks([0, 1], ["stays", "churns"])
        ax.set_yticks([0, 1], ["stayed", "churned"])
        churners = int(counts[:, 1].sum())
        ax.set(xlabel=f"predicted (score > {matrix.cutoff:g})", ylabel="actual")
        ax.set_title(f"{matrix.name}: cutoff {matrix.cutoff:g}\n{churners} predicted churners", fontsize=10)
    fig.suptitle(f"Confusion matrices ({int(matrices[0].counts.sum())} test customers)")
    return save_figure(fig, path)


def score_histogram(scores: np.ndarray, churned: np.ndarray, convincing: ConvincingFactor, path: Path) -> Path:
    """The post's churn scores by actual churn, from which the business picks the band it can convince."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.hist(
        [scores[~churned], scores[churned]],
        bins=40,
        range=(0.0, 1.0),
        stacked=True,
        color=["tab:blue", "tab:orange"],
        label=[f"stayed ({int((~churned).sum())})", f"churned ({int(churned.sum())})"],
    )
    if convincing.rule == ConvincingRule.band:
        inside = int(np.count_nonzero((scores >= convincing.low) & (scores <= convincing.high)))
        ax.axvspan(
            convincing.low,
            convincing.high,
            color="tab:green",
            alpha=0.15,
            label=f"convincing band {convincing.low:g}–{convincing.high:g} (γ = {convincing.inside:g}): "
            f"{inside} customers",
        )
    ax.set_yscale("log")
    title = "Churn scores of the test customers"
    if convincing.rule != ConvincingRule.band:
        title += f" (γ = {convincing.inside:g} for every customer)"
    ax.set(xlim=(0, 1), xlabel="churn score", ylabel="customers (log scale)", title=title)
    ax.legend()
    return save_figure(fig, path)


def cost_by_cutoff(analysis: CutoffAnalysis, path: Path) -> Path:
    """The test split's cost curve, marked at the cutoff validation chose and at the curve's own minimum."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(analysis.cutoffs, analysis.costs, label="campaign cost")
    ax.axhline(analysis.no_action_cost, color="grey", linestyle="--", linewidth=1, label="no action")
    ax.scatter(
        [analysis.min_cost_cutoff],
        [analysis.test_cost],
        color="red",
        zorder=3,
        label=f"cutoff chosen on validation ({analysis.min_cost_cutoff:g}): ${analysis.test_cost:,.0f}",
    )
    ax.scatter(
        [analysis.cutoffs[analysis.in_sample_best]],
        [analysis.min_cost_in_sample],
        facecolors="none",
        edgecolors="black",
        zorder=4,
        label=f"this curve's own minimum ({analysis.cutoffs[analysis.in_sample_best]:g}, in-sample): "
        f"${analysis.min_cost_in_sample:,.0f}",
    )
    ax.set(xlabel="cutoff", ylabel="cost ($)", title=f"Cost by cutoff, {analysis.customers} test customers")
    ax.legend()
    return save_figure(fig, path)


def scenarios(result: Scenarios, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    names = ["optimal", "uniform", "no discount"]
    values = [result.optimal, result.uniform, result.none]
    bars = ax.bar(names, values, color=["tab:green", "tab:blue", "tab:grey"])
    ax.bar_label(bars, labels=[f"${v:,.0f}" for v in values], padding=3)
    ax.set_ylim(0, 1.15 * max(max(values), 0.0) + 1.0)
    ax.yaxis.set_major_formatter(StrMethodFormatter("${x:,.0f}"))
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


def uplift_by_budget(
    fractions: np.ndarray,
    vs_none: np.ndarray,
    vs_uniform: np.ndarray,
    budget_fraction: float,
    budget: float,
    path: Path,
) -> Path:
    """Uplifts at each budget_curve fraction; the trial's own budget (`budget` dollars) as a vertical line."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(100 * fractions, 100 * vs_none, marker="o", label="optimal vs no discount")
    ax.plot(100 * fractions, 100 * vs_uniform, marker="s", label="optimal vs uniform discount")
    ax.axvline(
        100 * budget_fraction,
        color="red",
        linestyle="--",
        linewidth=1,
        label=f"this trial's budget ({budget_fraction:.2%} = ${budget:,.0f})",
    )
    ax.set(xlabel="budget (% of monthly spend)", ylabel="expected profit uplift (%)", title="Uplift by budget")
    ax.legend()
    return save_figure(fig, path)
