"""The post's cost-based cutoff: which churn-score threshold makes the campaign cheapest.

cost(C) = cost_fn·FN(C) + value_tn·TN(C) + incentive·FP(C) + incentive·TP(C), where a customer
counts as predicted to churn when its score is above C; FN … TP are customer counts.

The post picks the cheapest cutoff on the customers it then reports on. Here the cutoff is chosen on
the validation split and the figures come from the test split, which nothing chose or fitted on.
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
    """The held-out split's cost at every cutoff, and its figures at the cutoff chosen on another split."""

    cutoffs: np.ndarray
    costs: np.ndarray  # of the held-out (test) customers
    chosen: int  # index of the cheapest cutoff on the validation split (the lowest one on a tie)
    chosen_on: int  # validation customers the cutoff was chosen on
    customers_paid: int
    outlay: float
    paid_customers_spend: float
    no_action_cost: float
    customers: int

    @property
    def min_cost_cutoff(self) -> float:
        """The cutoff that minimises the validation split's cost."""
        return float(self.cutoffs[self.chosen])

    @property
    def test_cost(self) -> float:
        """The held-out customers' cost at min_cost_cutoff."""
        return float(self.costs[self.chosen])

    @property
    def in_sample_best(self) -> int:
        """Index of the held-out split's own cheapest cutoff: chosen on the data it is scored on."""
        return int(np.argmin(self.costs))

    @property
    def min_cost_in_sample(self) -> float:
        """The held-out cost curve's minimum: optimistic, as that split chose its own cutoff."""
        return float(self.costs[self.in_sample_best])

    def summary(self) -> list[str]:
        """The lines the post prints, saying which split chose the cutoff and which one the figures are from."""
        in_sample = float(self.cutoffs[self.in_sample_best])
        return [
            f"Cost is minimized near a cutoff of: {self.min_cost_cutoff:g} on the validation split "
            f"({self.chosen_on} customers).",
            f"At that cutoff the {self.customers} test customers (held out) cost $ {self.test_cost:,.0f}; the test "
            f"split's own minimum (in-sample, not held out) is $ {self.min_cost_in_sample:,.0f} at {in_sample:g}.",
            f"Incentive is paid to {self.customers_paid} of the {self.customers} test customers (scores above the "
            f"validation-chosen cutoff), for a total outlay of $ {self.outlay:,.0f}",
            f"Total customer spend of these customers is $ {self.paid_customers_spend:,.2f}",
            f"Cost of taking no action on the test customers: $ {self.no_action_cost:,.0f}",
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


def cost_curve(
    churned: np.ndarray, scores: np.ndarray, costs: CostModel, n_cutoffs: int
) -> tuple[np.ndarray, np.ndarray]:
    """(cutoffs, cost at each): `n_cutoffs` evenly spaced cutoffs in [0, 1) (the post: 100)."""
    churned = np.asarray(churned, dtype=bool)
    cutoffs = np.arange(n_cutoffs) / n_cutoffs  # i/n: 0.21, where the post's arange printed 0.21000000000000002
    totals = np.array([campaign_cost(costs, *confusion_counts(churned, scores > cutoff)) for cutoff in cutoffs])
    return cutoffs, totals


def analyse(
    churned: np.ndarray,
    scores: np.ndarray,
    spend: np.ndarray,
    costs: CostModel,
    n_cutoffs: int,
    *,
    chosen_on: tuple[np.ndarray, np.ndarray],
) -> CutoffAnalysis:
    """Choose the cheapest cutoff on `chosen_on` (the validation split's labels and scores), then cost every
    cutoff and count the customers paid at the chosen one on the held-out split (churned, scores, spend)."""
    churned = np.asarray(churned, dtype=bool)
    validation_churned, validation_scores = chosen_on
    _, validation_costs = cost_curve(validation_churned, validation_scores, costs, n_cutoffs)
    chosen = int(np.argmin(validation_costs))
    cutoffs, totals = cost_curve(churned, scores, costs, n_cutoffs)
    paid = scores > cutoffs[chosen]
    return CutoffAnalysis(
        cutoffs=cutoffs,
        costs=totals,
        chosen=chosen,
        chosen_on=len(validation_scores),
        customers_paid=int(paid.sum()),
        outlay=float(costs.incentive * paid.sum()),
        paid_customers_spend=float(spend[paid].sum()),
        no_action_cost=campaign_cost(costs, *confusion_counts(churned, np.zeros_like(churned))),
        customers=len(scores),
    )
