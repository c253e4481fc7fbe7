"""The post's stochastic program: share an incentive budget to maximise expected profit.

Customer i brings profit P_i (current monthly spend), churns with probability alpha_i (the
model's score) and, offered an incentive c_i, is swayed to stay with probability beta_i(c_i) =
1 - s(c_i; gamma_i). The expected profit of customer i is

    E_i(c_i) = (P_i - c_i) · (1 - alpha_i · s(c_i; gamma_i)),

and the program is: maximise sum_i E_i(c_i) subject to c_i >= 0 and sum_i c_i <= C.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlexp.errors import ConfigError, DataError
from mlexp.tasks.churn_incentives.acceptance import AcceptanceModel


@dataclass(frozen=True)
class IncentiveProblem:
    """Validated inputs of the program; invalid ones fail here, before any solver runs."""

    spend: np.ndarray
    churn_probability: np.ndarray
    convincing: np.ndarray
    budget: float
    acceptance: AcceptanceModel

    def __post_init__(self) -> None:
        arrays = {"spend": self.spend, "churn probability": self.churn_probability, "gamma": self.convincing}
        sizes = {name: np.shape(values) for name, values in arrays.items()}
        if len(set(sizes.values())) != 1 or len(sizes["spend"]) != 1:
            raise DataError(f"spend, churn probability and gamma must be 1-D arrays of one length; got {sizes}")
        if len(self.spend) == 0:
            raise DataError("no customers to allocate incentives to")
        _require(self.spend, lambda p: np.isfinite(p) & (p >= 0), "spend is NaN, infinite or negative")
        _require(
            self.churn_probability,
            lambda a: np.isfinite(a) & (a >= 0) & (a <= 1),
            "churn probability is outside [0, 1]",
        )
        _require(self.convincing, lambda g: np.isfinite(g) & (g > 0), "convincing factor gamma is not positive")
        if not np.isfinite(self.budget) or self.budget < 0:
            raise ConfigError(
                f"the incentive budget is {self.budget}: no allocation c >= 0 fits a negative or undefined budget; "
                "set model.incentives.budget_fraction (or model.incentives.budget) to a value >= 0"
            )

    @property
    def customers(self) -> int:
        return len(self.spend)

    def expected_profit(self, discounts: np.ndarray | float) -> np.ndarray:
        """E_i(c_i) of each customer."""
        c = np.broadcast_to(np.asarray(discounts, dtype=np.float64), self.spend.shape)
        return (self.spend - c) * (1.0 - self.churn_probability * self.acceptance.not_swayed(c, self.convincing))

    def marginal_profit(self, discounts: np.ndarray) -> np.ndarray:
        """dE_i/dc_i of each customer."""
        s = self.acceptance.not_swayed(discounts, self.convincing)
        slope = self.acceptance.not_swayed_slope(discounts, self.convincing)
        return -(1.0 - self.churn_probability * s) - (self.spend - discounts) * self.churn_probability * slope

    @property
    def uniform_discount(self) -> float:
        return self.budget / self.customers


def _require(values: np.ndarray, ok: Callable[[np.ndarray], np.ndarray], message: str) -> None:
    bad = np.flatnonzero(~ok(np.asarray(values, dtype=np.float64)))
    if len(bad):
        shown = ", ".join(str(i + 1) for i in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise DataError(f"{message} for customers {shown} (e.g. {values[bad[0]]!r}); fix the input before solving")


@dataclass(frozen=True)
class Scenarios:
    """Expected total profit of the three campaigns the post compares."""

    optimal: float
    uniform: float
    none: float

    @property
    def uplift_vs_none(self) -> float:
        return (self.optimal - self.none) / abs(self.none) if self.none else float("nan")

    @property
    def uplift_vs_uniform(self) -> float:
        return (self.optimal - self.uniform) / abs(self.uniform) if self.uniform else float("nan")


def compare(problem: IncentiveProblem, discounts: np.ndarray) -> Scenarios:
    return Scenarios(
        optimal=float(problem.expected_profit(discounts).sum()),
        uniform=float(problem.expected_profit(problem.uniform_discount).sum()),
        none=float(problem.expected_profit(0.0).sum()),
    )
