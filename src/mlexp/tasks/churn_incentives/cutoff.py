"""The post's cost-based cutoff: which churn-score threshold makes the campaign cheapest.

cost(C) = cost_fn·FN(C) + value_tn·TN(C) + incentive·FP(C) + incentive·TP(C), where a customer
counts as predicted to churn when its score is above C; FN … TP are customer counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CostModel:
    cost_fn: float  # replacing a churner we did not pay (the post: $500)
    value_tn: float  # a loyal customer we left alone (the post: $0)
    incentive: float  # paid to everyone predicted to churn (the post: $50)


@dataclass(frozen=True)
class CutoffAnalysis:
    cutoffs: np.ndarray
    costs: np.ndarray
    best: int  # index of the cheapest cutoff (the lowest one on a tie)
    customers_paid: int
    outlay: float
    paid_customers_spend: float
    no_action_cost: float
    customers: int

    @property
    def min_cost_cutoff(self) -> float:
        return float(self.cutoffs[self.best])

    @property
    def min_cost(self) -> float:
        return float(self.costs[self.best])

    def summary(self) -> list[str]:
        """The lines the post prints."""
        return [
            f"Cost is minimized near a cutoff of: {self.min_cost_cutoff} for a cost of: $ {self.min_cost:,.0f} "
            f"for these {self.customers} customers.",
            f"Incentive is paid to {self.customers_paid} customers, for a total outlay of $ {self.outlay:,.0f}",
            f"Total customer spend of these customers is $ {self.paid_customers_spend:,.2f}",
            f"Cost of taking no action: $ {self.no_action_cost:,.0f}",
        ]


def confusion_counts(churned: np.ndarray, predicted: np.ndarray) -> tuple[int, int, int, int]:
    """(TN, FP, FN, TP) of boolean arrays."""
    return (
        int(np.sum(~churned & ~predicted)),
        int(np.sum(~churned & predicted)),
        int(np.sum(churned & ~predicted)),
        int(np.sum(churned & predicted)),
    )


def campaign_cost(costs: CostModel, tn: int, fp: int, fn: int, tp: int) -> float:
    return costs.cost_fn * fn + costs.value_tn * tn + costs.incentive * (fp + tp)


def analyse(
    churned: np.ndarray, scores: np.ndarray, spend: np.ndarray, costs: CostModel, n_cutoffs: int
) -> CutoffAnalysis:
    """Cost at `n_cutoffs` evenly spaced cutoffs in [0, 1) (the post: 100), and the cheapest one."""
    churned = np.asarray(churned, dtype=bool)
    cutoffs = np.arange(n_cutoffs) / n_cutoffs  # i/n: 0.21, where the post's arange printed 0.21000000000000002
    totals = np.array([campaign_cost(costs, *confusion_counts(churned, scores > cutoff)) for cutoff in cutoffs])
    best = int(np.argmin(totals))
    paid = scores > cutoffs[best]
    return CutoffAnalysis(
        cutoffs=cutoffs,
        costs=totals,
        best=best,
        customers_paid=int(paid.sum()),
        outlay=float(costs.incentive * paid.sum()),
        paid_customers_spend=float(spend[paid].sum()),
        no_action_cost=campaign_cost(costs, *confusion_counts(churned, np.zeros_like(churned))),
        customers=len(scores),
    )
