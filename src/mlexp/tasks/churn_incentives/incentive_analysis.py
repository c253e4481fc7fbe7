"""The Incentive analysis component: the post's cutoff analysis, budget and optimal program.

The cutoff is chosen on the validation split; every figure is the test split's.

Everything is computed (and every input checked) before the first file is written.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from mlexp.errors import ConfigError
from mlexp.tasks.churn_incentives import acceptance, charts, customers, cutoff, exact_solver, program
from mlexp.tasks.churn_incentives.allocation import allocate
from mlexp.tasks.churn_incentives.config import IncentiveProgram, Optimizer, XGBoostChurn
from mlexp.tasks.churn_incentives.program import IncentiveProblem, Scenarios
from mlexp.tracking import Tracker


def incentive_budget(spend: np.ndarray, settings: IncentiveProgram, fraction: float | None = None) -> float:
    """model.incentives.budget dollars, else a fraction of the customers' total monthly spend."""
    if settings.budget is not None and fraction is None:
        return float(settings.budget)
    return float((settings.budget_fraction if fraction is None else fraction) * spend.sum())


def problem_for(scored: customers.ScoredCustomers, settings: IncentiveProgram, budget: float) -> IncentiveProblem:
    gamma = acceptance.convincing_factor(scored.churn_probability, settings.convincing)
    model = acceptance.acceptance_model(settings.acceptance)
    return IncentiveProblem(scored.spend, scored.churn_probability, gamma, budget, model)


def budget_curve(scored: customers.ScoredCustomers, settings: IncentiveProgram) -> pd.DataFrame:
    """Uplifts at each model.incentives.budget_curve fraction, solved exactly (milliseconds each)."""
    rows = []
    for fraction in settings.budget_curve:
        problem = problem_for(scored, settings, incentive_budget(scored.spend, settings, fraction))
        result = program.compare(problem, exact_solver.solve(problem).discounts)
        rows.append((fraction, problem.budget, result.optimal, result.uplift_vs_none, result.uplift_vs_uniform))
    return pd.DataFrame(
        rows, columns=["budget_fraction", "budget", "profit_optimal", "uplift_vs_none", "uplift_vs_uniform"]
    )


def report_lines(
    analysis: cutoff.CutoffAnalysis, problem: IncentiveProblem, used: float, result: Scenarios
) -> list[str]:
    """The post's printed results, in its words."""
    return [
        *analysis.summary(),
        f"Total budget is: ${problem.budget:,.2f}",
        f"Per customer incentive is ${problem.uniform_discount:,.2f}",
        f"The total spend is ${used:,.2f} compared to our budget of ${problem.budget:,.2f}, and the total "
        f"customer spend is ${problem.spend.sum():,.2f} for {problem.customers:,} customers.",
        f"Expected total profit: optimal ${result.optimal:,.2f}, uniform ${result.uniform:,.2f}, "
        f"no discount ${result.none:,.2f}",
        f"Expected total profit compared to no campaign: {result.uplift_vs_none:.1%}",
        f"Expected total profit compared to uniform discount allocation: {result.uplift_vs_uniform:.1%}",
    ]


def run(cfg: DictConfig, tracker: Tracker, model: XGBoostChurn, optimizer: Optimizer) -> None:
    settings = model.incentives
    if settings.n_cutoffs < 1:
        raise ConfigError(f"model.incentives.n_cutoffs={settings.n_cutoffs} must be at least 1")
    scored = customers.scored(cfg, "test", model.nthread)
    problem = problem_for(scored, settings, incentive_budget(scored.spend, settings))
    curve = budget_curve(scored, settings)
    costs = cutoff.CostModel(settings.cost_fn, settings.value_tn, settings.incentive)
    validation = customers.scored(cfg, "validation", model.nthread)
    analysis = cutoff.analyse(
        scored.churned,
        scored.churn_probability,
        scored.spend,
        costs,
        settings.n_cutoffs,
        chosen_on=(validation.churned, validation.churn_probability),
    )
    allocation = allocate(problem, optimizer)
    result = program.compare(problem, allocation.discounts)
    used = float(allocation.discounts.sum())

    tracker.log_parameters({"solver": allocation.solver, "acceptance": str(settings.acceptance.value)})
    tracker.log_input("test split", "text/csv", customers.split_path(cfg, "test"))
    tracker.log_input("validation split", "text/csv", customers.split_path(cfg, "validation"))
    tracker.log_metrics(
        {
            "min_cost_cutoff": analysis.min_cost_cutoff,  # chosen on the validation split
            "test_cost": analysis.test_cost,  # the test split's cost at it: held out
            "min_cost_in_sample": analysis.min_cost_in_sample,  # the test curve's own minimum: not held out
            "customers_paid": analysis.customers_paid,
            "incentive_outlay": analysis.outlay,
            "paid_customers_spend": analysis.paid_customers_spend,
            "no_action_cost": analysis.no_action_cost,
            "customers": problem.customers,
            "total_spend": float(problem.spend.sum()),
            "budget": problem.budget,
            "uniform_incentive": problem.uniform_discount,
            "budget_used": used,
            "customers_offered": int(np.count_nonzero(allocation.discounts > 0)),
            "budget_multiplier": allocation.multiplier,
            "solver_seconds": allocation.seconds,
            "profit_optimal": result.optimal,
            "profit_uniform": result.uniform,
            "profit_none": result.none,
            "uplift_vs_none": result.uplift_vs_none,
            "uplift_vs_uniform": result.uplift_vs_uniform,
        }
    )
    _write(cfg, tracker, analysis, scored, settings, problem, allocation.discounts, result, curve)
    lines = report_lines(analysis, problem, used, result)
    report = Path(cfg.paths.reports) / "incentive_report.txt"
    report.write_text("\n".join(lines) + "\n")
    tracker.log_artifact(report, name="reports", media_type="text/plain")
    print("\n".join(lines))


def _write(
    cfg: DictConfig,
    tracker: Tracker,
    analysis: cutoff.CutoffAnalysis,
    scored: customers.ScoredCustomers,
    settings: IncentiveProgram,
    problem: IncentiveProblem,
    discounts: np.ndarray,
    result: Scenarios,
    curve: pd.DataFrame,
) -> None:
    reports = Path(cfg.paths.reports)
    plots = reports / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    per_customer = pd.DataFrame(
        {
            "customer": scored.customer,
            "spend": problem.spend,
            "churn_probability": problem.churn_probability,
            "gamma": problem.convincing,
            "discount": discounts,
            "expected_profit": problem.expected_profit(discounts),
        }
    )
    customers.write_csv(per_customer, reports / "incentives.csv")
    tracker.log_output("per-customer incentives", "text/csv", reports / "incentives.csv")
    with (plots / "cost_by_cutoff.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["cutoff", "cost"])
        writer.writerows(zip(np.round(analysis.cutoffs, 10), analysis.costs))
    curve.to_csv(plots / "uplift_by_budget.csv", index=False)
    written = [
        charts.score_histogram(
            problem.churn_probability,
            scored.churned,
            settings.convincing,
            plots / "score_histogram.png",
        ),
        charts.cost_by_cutoff(analysis, plots / "cost_by_cutoff.png"),
        charts.scenarios(result, plots / "profit_by_scenario.png"),
        charts.discounts(discounts, problem.uniform_discount, plots / "discounts.png"),
    ]
    if len(curve):
        written.append(
            charts.uplift_by_budget(
                curve["budget_fraction"].to_numpy(),
                curve["uplift_vs_none"].to_numpy(),
                curve["uplift_vs_uniform"].to_numpy(),
                problem.budget / max(float(problem.spend.sum()), 1e-12),
                problem.budget,
                plots / "uplift_by_budget.png",
            )
        )
    for chart in written:
        tracker.log_artifact(chart, name="plots", media_type="image/png")
    tracker.log_artifact(reports / "incentives.csv", name="reports", media_type="text/csv")
