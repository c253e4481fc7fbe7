"""Exact incentive solver from 10^4 to 10^7 customers: time, peak memory and the scaling curve.

Goals (2 cores): 10^6 customers in under 1 s and 10^7 in under 10 s. Baseline, measured in the same
run at each size: one evaluation of the expected total profit (the cost of looking at an allocation
once); the ratio says how many such passes a whole solve costs.

Customer bases: the 1,500 real test customers' (spend, churn probability) pairs, scored by the
task's XGBoost model, resampled with a little jitter to each size, budget 0.25% of spend (the
budget binds). A stress case puts every customer in the persuadable band (churn probability
uniform in [0.55, 0.95], gamma = 1), so no customer can be set aside early.
Peak memory is what the solve allocates on top of its inputs (tracemalloc), and the process's
peak resident size.

    .venv/bin/python benchmarks/churn_incentives_scaling.py
"""

from __future__ import annotations

import os
import resource
import time
import tracemalloc

import numpy as np

from mlexp.data import telecom_churn
from mlexp.tasks.churn_incentives import acceptance, classifier, exact_solver, features, program
from mlexp.tasks.churn_incentives.config import ConvincingFactor, XGBoostChurn

SIZES = (10**4, 10**5, 10**6, 10**7)
GOALS_S = {10**6: 1.0, 10**7: 10.0}
BUDGET_FRACTION = 0.0025


def real_customers() -> tuple[np.ndarray, np.ndarray]:
    frame = telecom_churn.load()
    parts = features.split(frame, 0.15, 0.45, seed=42)
    categorical = ["State", "Area Code", "Int'l Plan", "VMail Plan"]
    dropped = ["Phone", *telecom_churn.CHARGES, telecom_churn.TOTAL_SPEND]
    encoding = features.Encoding.fit(parts["train"], categorical, dropped)
    data = {name: (encoding.transform(part), features.labels(part)) for name, part in parts.items()}
    names = encoding.feature_names
    booster = classifier.train(XGBoostChurn(), data["train"], data["validation"], names, 42, lambda *_: None)
    return parts["test"][telecom_churn.TOTAL_SPEND].to_numpy(float), classifier.predict(booster, data["test"][0], names)


def resampled(spend: np.ndarray, alpha: np.ndarray, size: int, seed: int) -> program.IncentiveProblem:
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(spend), size)
    p = spend[pick] * rng.uniform(0.98, 1.02, size)
    a = np.clip(alpha[pick] + rng.normal(0.0, 0.005, size), 0.0, 1.0)
    gamma = acceptance.convincing_factor(a, ConvincingFactor())
    return program.IncentiveProblem(p, a, gamma, BUDGET_FRACTION * p.sum(), acceptance.Exponential())


def persuadable(size: int, seed: int) -> program.IncentiveProblem:
    rng = np.random.default_rng(seed)
    p = rng.uniform(20.0, 100.0, size)
    a = rng.uniform(0.55, 0.95, size)
    return program.IncentiveProblem(p, a, np.ones(size), BUDGET_FRACTION * p.sum(), acceptance.Exponential())


def measure(problem: program.IncentiveProblem) -> tuple[float, float, int, float, float]:
    """(solve s, one-objective s, iterations, extra peak MB, budget used / budget)."""
    started = time.perf_counter()
    problem.expected_profit(0.0).sum()
    baseline = time.perf_counter() - started
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    allocation = exact_solver.solve(problem)
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    # timed again without tracemalloc, which slows allocation a little
    seconds = min(exact_solver.solve(problem).seconds for _ in range(2 if problem.customers >= 10**7 else 3))
    return seconds, baseline, allocation.iterations, peak / 1e6, allocation.discounts.sum() / problem.budget


def main() -> None:
    print(f"load average: {os.getloadavg()[0]:.2f} (2 cores; other work skews the timings)")
    spend, alpha = real_customers()
    met = True
    for label, build in (
        ("real-score customer base", lambda n: resampled(spend, alpha, n, seed=n)),
        ("stress: everyone persuadable", lambda n: persuadable(n, seed=n)),
    ):
        print(f"\n{label}, budget {BUDGET_FRACTION:.2%} of spend")
        print(
            f"{'customers':>11} {'solve s':>9} {'1 objective s':>14} {'ratio':>6} {'iters':>6} {'extra MB':>9} "
            f"{'used/budget':>12}"
        )
        for size in SIZES:
            problem = build(size)
            seconds, baseline, iterations, megabytes, used = measure(problem)
            goal = GOALS_S.get(size)
            verdict = "" if goal is None else ("  goal met" if seconds < goal else f"  GOAL MISSED (< {goal:g} s)")
            met &= goal is None or seconds < goal
            print(
                f"{size:>11,} {seconds:>9.3f} {baseline:>14.3f} {seconds / baseline:>6.1f} {iterations:>6} "
                f"{megabytes:>9.1f} {used:>12.10f}{verdict}"
            )
            del problem
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess peak resident memory: {peak_rss:,.0f} MB")
    print(f"\n{'GOAL MET' if met else 'GOAL MISSED'} (10^6 customers < 1 s, 10^7 < 10 s, both customer bases)")


if __name__ == "__main__":
    main()
