"""Incentive-program solvers on the post's 1,500 customers: the exact solver vs GEKKO (IPOPT) and SciPy SLSQP.

The customers are the real ones: the classic churn table's test split (1,500 customers), scored by
the task's XGBoost model trained here in a second. Two budgets: the post's 1% of monthly spend
(on this data the unconstrained optimum spends less, so the budget does not bind) and 0.25%
(binding). Baseline: GEKKO with IPOPT, the post's solver, measured in this run.

Goals: the exact solver agrees with GEKKO (objective within 1e-4 relative, budget used within 1e-6
relative) and is at least 100x faster. SLSQP is timed on 250 and 500 customers to completion and
on the 1,500 with a time cap (it keeps a dense n x n matrix; at 1,500 it runs for many minutes);
its figures are printed, with no goal.

    .venv/bin/python benchmarks/churn_incentives_solvers.py
"""

from __future__ import annotations

import os
import time

import numpy as np

from mlexp.data import telecom_churn
from mlexp.tasks.churn_incentives import acceptance, classifier, exact_solver, features, gekko_solver, program
from mlexp.tasks.churn_incentives.config import ConvincingFactor, XGBoostChurn
from mlexp.tasks.churn_incentives.scipy_solver import solve as slsqp

GOAL_SPEEDUP = 100.0
GOAL_OBJECTIVE = 1e-4
GOAL_BUDGET = 1e-6
SLSQP_SIZES = (250, 500)
SLSQP_CAP_S = 120.0


def scored_customers() -> tuple[np.ndarray, np.ndarray]:
    """(spend, churn probability) of the 1,500 test customers, as the task's pipeline computes them."""
    frame = telecom_churn.load()
    parts = features.split(frame, 0.15, 0.45, seed=42)
    categorical = ["State", "Area Code", "Int'l Plan", "VMail Plan"]
    dropped = ["Phone", *telecom_churn.CHARGES, telecom_churn.TOTAL_SPEND]
    encoding = features.Encoding.fit(parts["train"], categorical, dropped)
    data = {name: (encoding.transform(part), features.labels(part)) for name, part in parts.items()}
    names = encoding.feature_names
    booster = classifier.train(XGBoostChurn(), data["train"], data["validation"], names, 42, lambda *_: None)
    test = parts["test"]
    return test[telecom_churn.TOTAL_SPEND].to_numpy(float), classifier.predict(booster, data["test"][0], names)


def problem_of(spend: np.ndarray, alpha: np.ndarray, fraction: float) -> program.IncentiveProblem:
    gamma = acceptance.convincing_factor(alpha, ConvincingFactor())
    return program.IncentiveProblem(spend, alpha, gamma, fraction * spend.sum(), acceptance.Exponential())


def best_of(runs: int, solve, problem):  # type: ignore[no-untyped-def]
    results = [solve(problem) for _ in range(runs)]
    return min(results, key=lambda r: r.seconds)


class TimeUp(Exception):
    pass


def capped_slsqp(problem: program.IncentiveProblem, cap_s: float) -> tuple[float, float, bool]:
    """(seconds, objective, finished) of SLSQP stopped after cap_s seconds (objective at its last iterate)."""
    started = time.perf_counter()
    last = {"x": np.minimum(problem.uniform_discount, problem.spend)}
    original = problem.expected_profit

    class Capped(program.IncentiveProblem):
        def expected_profit(self, discounts):  # type: ignore[no-untyped-def]
            if time.perf_counter() - started > cap_s:
                raise TimeUp
            last["x"] = np.array(discounts, dtype=float)
            return original(discounts)

    capped = Capped(problem.spend, problem.churn_probability, problem.convincing, problem.budget, problem.acceptance)
    try:
        allocation = slsqp(capped, 1e-10, 1000)
        return allocation.seconds, float(original(allocation.discounts).sum()), True
    except TimeUp:
        x = np.clip(last["x"], 0.0, problem.spend)
        if x.sum() > problem.budget:
            x *= problem.budget / x.sum()
        return time.perf_counter() - started, float(original(x).sum()), False


def main() -> None:
    print(f"load average: {os.getloadavg()[0]:.2f} (2 cores; other work skews the timings)")
    spend, alpha = scored_customers()
    print(f"customers: {len(spend)} real test customers, total monthly spend ${spend.sum():,.2f}\n")
    met = True
    for fraction in (0.01, 0.0025):
        problem = problem_of(spend, alpha, fraction)
        exact = best_of(5, exact_solver.solve, problem)
        gekko = gekko_solver.solve(problem)
        ours, theirs = (float(problem.expected_profit(a.discounts).sum()) for a in (exact, gekko))
        objective_gap = abs(ours - theirs) / abs(theirs)
        used_gap = abs(exact.discounts.sum() - gekko.discounts.sum()) / problem.budget
        speedup = gekko.seconds / exact.seconds
        binds = "binding" if exact.multiplier > 0 else "not binding"
        print(f"budget {fraction:.2%} of spend = ${problem.budget:,.2f} ({binds}; lambda = {exact.multiplier:.4g})")
        print(f"  exact: {exact.seconds * 1e3:9.3f} ms  objective ${ours:,.4f}  used ${exact.discounts.sum():,.6f}")
        print(f"  gekko: {gekko.seconds * 1e3:9.1f} ms  objective ${theirs:,.4f}  used ${gekko.discounts.sum():,.6f}")
        print(f"  objective difference {objective_gap:.2e} (relative), budget used difference {used_gap:.2e}")
        print(f"  ratio: exact is {speedup:,.0f}x faster than gekko")
        met &= objective_gap <= GOAL_OBJECTIVE and used_gap <= GOAL_BUDGET and speedup >= GOAL_SPEEDUP
        print()

    problem = problem_of(spend, alpha, 0.0025)
    print("SciPy SLSQP (scipy.optimize.minimize, analytic gradient), budget 0.25%:")
    for size in SLSQP_SIZES:
        part = problem_of(spend[:size], alpha[:size], 0.0025)
        started = time.perf_counter()
        found = slsqp(part, 1e-10, 1000)
        seconds = time.perf_counter() - started
        exact = exact_solver.solve(part)
        gap = 1 - part.expected_profit(found.discounts).sum() / part.expected_profit(exact.discounts).sum()
        print(
            f"  {size:5d} customers: {seconds:8.2f} s, {found.iterations} iterations, objective gap {gap:.1e}, "
            f"{seconds / exact.seconds:,.0f}x the exact solver's time"
        )
    seconds, objective, finished = capped_slsqp(problem, SLSQP_CAP_S)
    best = float(problem.expected_profit(exact_solver.solve(problem).discounts).sum())
    state = "finished" if finished else f"stopped at the {SLSQP_CAP_S:.0f} s cap"
    print(f"  {len(spend):5d} customers: {seconds:8.2f} s ({state}), objective gap {1 - objective / best:.1e}")
    print()
    print(
        "GOAL MET" if met else "GOAL MISSED",
        f"(exact vs gekko: objective <= {GOAL_OBJECTIVE:g}, budget used <= "
        f"{GOAL_BUDGET:g}, >= {GOAL_SPEEDUP:g}x faster)",
    )


if __name__ == "__main__":
    main()
