"""`optimizer.solver`: which solver allocates the budget; every allocation is made to fit it."""

from __future__ import annotations

from collections.abc import Callable

from mlexp.tasks.churn_incentives import exact_solver
from mlexp.tasks.churn_incentives.config import Optimizer, Solver
from mlexp.tasks.churn_incentives.exact_solver import Allocation
from mlexp.tasks.churn_incentives.program import IncentiveProblem

SolveFunction = Callable[[IncentiveProblem, float, int], Allocation]


def _solver(solver: Solver) -> SolveFunction:
    # gekko and scipy are imported only when chosen
    if solver == Solver.gekko:
        from mlexp.tasks.churn_incentives import gekko_solver

        return gekko_solver.solve
    if solver == Solver.scipy:
        from mlexp.tasks.churn_incentives import scipy_solver

        return scipy_solver.solve
    return exact_solver.solve


def allocate(problem: IncentiveProblem, optimizer: Optimizer) -> Allocation:
    """Solve with the configured solver, then scale away any overshoot (IPOPT allows ~1e-7 of the budget)."""
    allocation = _solver(Solver(optimizer.solver))(problem, optimizer.tolerance, optimizer.max_iterations)
    discounts = allocation.discounts
    if float(discounts.sum()) > problem.budget:
        discounts = discounts * exact_solver.fit_budget(discounts, problem.budget)
    return Allocation(discounts, allocation.multiplier, allocation.iterations, allocation.seconds, allocation.solver)
