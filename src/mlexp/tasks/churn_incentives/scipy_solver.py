"""scipy.optimize.minimize with SLSQP, the common alternative the post names.

SLSQP keeps a dense quasi-Newton matrix over all customers, so its time grows with the cube of
their number: fine for a few hundred customers, minutes at the post's 1,500 (see the benchmark).
"""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, minimize

from mlexp.errors import ConfigError
from mlexp.tasks.churn_incentives.exact_solver import Allocation
from mlexp.tasks.churn_incentives.program import IncentiveProblem


def solve(problem: IncentiveProblem, tolerance: float = 1e-10, max_iterations: int = 200) -> Allocation:
    """Minimise minus the expected total profit from the uniform allocation (clipped to each spend)."""
    started = time.perf_counter()
    scale = max(1.0, float(problem.spend.sum()))  # keeps ftol meaningful whatever the base's size

    def loss(c: np.ndarray) -> float:
        return -float(problem.expected_profit(c).sum()) / scale

    def gradient(c: np.ndarray) -> np.ndarray:
        return -problem.marginal_profit(c) / scale

    start = np.minimum(problem.uniform_discount, problem.spend)
    result = minimize(
        loss,
        start,
        jac=gradient,
        method="SLSQP",
        bounds=Bounds(np.zeros_like(problem.spend), problem.spend),
        constraints=[LinearConstraint(np.ones((1, problem.customers)), -np.inf, problem.budget)],
        options={"maxiter": max_iterations, "ftol": tolerance},
    )
    if not result.success:
        raise ConfigError(
            f"SLSQP stopped without a solution ({result.message}); raise optimizer.max_iterations or use "
            "optimizer.solver=exact"
        )
    discounts = np.clip(result.x, 0.0, problem.spend)
    return Allocation(discounts, float("nan"), int(result.nit), time.perf_counter() - started, "scipy")
