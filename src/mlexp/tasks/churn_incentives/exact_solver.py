"""Exact solver of the incentive program, vectorised over customers (10^7 in seconds).

Why it is exact. With s decreasing and convex, E_i(c) = (P_i - c)(1 - alpha_i·s(c)) has
E_i'' = 2·alpha_i·s' - (P_i - c)·alpha_i·s'' < 0 on [0, P_i): each customer's profit is concave
there, and E_i' < 0 beyond P_i, so the program is a concave maximisation over a convex set and
its KKT conditions are sufficient. They say: for one multiplier lambda >= 0 of the budget,
c_i = 0 where E_i'(0) <= lambda, else E_i'(c_i) = lambda; and lambda = 0 unless the budget is
all used. Each acceptance model solves E_i'(c) = lambda in closed form (acceptance.py).

How lambda is found. Each c_i(lambda) is convex and decreasing (acceptance.py), so the budget used,
S(lambda) = sum_i max(0, c_i(lambda)), is convex and decreasing too. Newton's method on S = C
therefore lands left of the root after at most one step, wherever it starts, and from there climbs
to it monotonically: every later iterate spends at least the budget and none overshoots, so no
bracket is needed. A customer whose incentive reaches 0 left of the root stays at 0 for every later
(larger) lambda, so each iteration works only on the customers still receiving an incentive.
Newton starts at lambda = 0, or, for a large customer base, at the multiplier of an evenly spaced
sample of about 10^5 of its customers (solved the same way, with the budget scaled to the sample),
which is usually within a few parts in a thousand: two or three passes over the whole base then
reach the root instead of about eight. The last iterate is scaled down by C/S (a change below
`tolerance`) so that the allocation never exceeds the budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from mlexp.errors import ConfigError
from mlexp.tasks.churn_incentives.program import IncentiveProblem

# above this many customers that may get an incentive, Newton starts from a sample's multiplier
SAMPLE_ABOVE = 200_000
SAMPLE_SIZE = 100_000


@dataclass(frozen=True)
class Allocation:
    discounts: np.ndarray
    multiplier: float  # lambda: expected profit one more budget dollar would add
    iterations: int  # passes over the customers who may get an incentive
    seconds: float
    solver: str


def solve(problem: IncentiveProblem, tolerance: float = 1e-10, max_iterations: int = 200) -> Allocation:
    """The optimal incentive of each customer; budget used within `tolerance` (relative) of the budget."""
    started = time.perf_counter()
    spend, alpha, gamma = problem.spend, problem.churn_probability, problem.convincing
    discounts = np.zeros_like(spend, dtype=np.float64)
    # E_i'(0) = alpha_i(1 + P_i/gamma_i) - 1 for every model here (s(0) = 1, s'(0) = -1/gamma):
    # customer i gets an incentive only while 1 + lambda < alpha_i(1 + P_i/gamma_i)
    first_dollar = alpha * (1.0 + spend / gamma)
    active = np.flatnonzero(first_dollar > 1.0)
    if not len(active) or problem.budget == 0:
        # no budget: lambda is the largest marginal profit of a first dollar
        return _allocation(discounts, max(0.0, float(first_dollar.max()) - 1.0), 0, started)
    lam = _sample_multiplier(problem, active) if len(active) > SAMPLE_ABOVE else 0.0
    response = problem.acceptance.best_response(spend[active], alpha[active], gamma[active])
    for iteration in range(1, max_iterations + 1):
        c, slope = response.at(lam)
        paid = c > 0
        excess = float(c.sum(where=paid)) - problem.budget
        if lam == 0 and excess <= 0:  # the unconstrained optimum fits the budget: lambda = 0
            discounts[active[paid]] = c[paid]
            return _allocation(discounts, 0.0, iteration, started)
        step = excess / -float(slope.sum(where=paid))
        if abs(excess) <= tolerance * problem.budget or max(lam + step, 0.0) == lam:
            discounts[active[paid]] = c[paid]
            discounts *= fit_budget(discounts, problem.budget)
            return _allocation(discounts, lam, iteration, started)
        if excess > 0 and not paid.all():  # left of the root: unpaid customers stay unpaid
            response.keep(paid)
            active = active[paid]
        lam = max(lam + step, 0.0)
    raise ConfigError(
        f"the exact solver did not reach the budget in optimizer.max_iterations={max_iterations} "
        f"(spends {excess + problem.budget:.6g} of {problem.budget:.6g}); raise it or loosen optimizer.tolerance"
    )


def _sample_multiplier(problem: IncentiveProblem, active: np.ndarray) -> float:
    """The multiplier of an evenly spaced sample of the customers, its budget scaled to the sample."""
    sample = active[:: max(1, len(active) // SAMPLE_SIZE)]
    scaled = IncentiveProblem(
        problem.spend[sample],
        problem.churn_probability[sample],
        problem.convincing[sample],
        problem.budget * len(sample) / len(active),
        problem.acceptance,
    )
    return solve(scaled).multiplier


def _allocation(discounts: np.ndarray, multiplier: float, iterations: int, started: float) -> Allocation:
    return Allocation(discounts, multiplier, iterations, time.perf_counter() - started, "exact")


def fit_budget(c: np.ndarray, budget: float) -> float:
    """A factor <= 1 after which sum(c) is at most the budget, rounding included."""
    factor = min(1.0, budget / float(c.sum()))
    while float((c * factor).sum()) > budget:
        factor = math.nextafter(factor, 0.0)
    return factor
