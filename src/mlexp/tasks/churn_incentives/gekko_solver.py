"""The post's solver: the program as a GEKKO model, solved by IPOPT on this machine (remote=False).

GEKKO writes the model to a temporary folder and runs its bundled solver binary; nothing goes
over the network. It builds one variable per customer, so it suits the post's 1,500 customers
(seconds), not a whole customer base (the exact solver is for that).
"""

from __future__ import annotations

import time

import numpy as np

from mlexp.errors import ConfigError
from mlexp.tasks.churn_incentives.exact_solver import Allocation
from mlexp.tasks.churn_incentives.program import IncentiveProblem

IPOPT = 3  # GEKKO's solver number for IPOPT


def solve(problem: IncentiveProblem, tolerance: float = 1e-10, max_iterations: int = 200) -> Allocation:
    """Maximise the expected total profit with IPOPT; `tolerance` sets GEKKO's RTOL and OTOL (at least 1e-10)."""
    from gekko import GEKKO  # imported here: only this solver needs it

    started = time.perf_counter()
    model = GEKKO(remote=False)
    try:
        model.options.SOLVER = IPOPT
        model.options.MAX_ITER = max(max_iterations, 500)
        model.options.RTOL = model.options.OTOL = max(tolerance, 1e-10)
        discounts = [
            model.Var(value=0.0, lb=0.0, ub=float(p))
            for p in problem.spend  # beyond P_i profit only falls
        ]
        model.Equation(model.sum(discounts) <= problem.budget)
        terms = [
            (float(p) - c) * (1.0 - float(a) * problem.acceptance.gekko_not_swayed(model, c, float(g)))
            for c, p, a, g in zip(discounts, problem.spend, problem.churn_probability, problem.convincing)
        ]
        model.Maximize(model.sum(terms))
        try:
            model.solve(disp=False)
        except Exception as error:  # GEKKO raises a bare Exception when IPOPT fails
            raise ConfigError(f"GEKKO/IPOPT found no solution ({error}); try optimizer.solver=exact") from error
        values = np.clip(np.array([v.value[0] for v in discounts], dtype=np.float64), 0.0, problem.spend)
        multiplier = float("nan")
    finally:
        model.cleanup()
    return Allocation(values, multiplier, int(model.options.ITERATIONS), time.perf_counter() - started, "gekko")
