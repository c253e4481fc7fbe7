"""`mlexp task=churn_incentives` end to end on the real churn table, gekko agreeing with the exact solver."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, run_cli, seed_store, store_client, trials_of
from drawn_charts import Untracked, keep_figures, task_config
from mlexp.data import telecom_churn
from mlexp.tasks.churn_incentives import acceptance, charts, customers, exact_solver, program, stages
from run_folders import run_folder

TASK = "churn_incentives"
HEADLINE = {
    "val_auc",
    "auc",
    "accuracy",
    "precision",
    "recall",
    "min_cost_cutoff",
    "test_cost",
    "budget",
    "budget_used",
    "profit_optimal",
    "profit_uniform",
    "profit_none",
    "uplift_vs_none",
    "uplift_vs_uniform",
}


@pytest.fixture(scope="module")
def churn_run(tmp_path_factory, empty_store):
    """One trial on the whole real table given as a churn.txt CSV, with a 10-round XGBoost."""
    project = tmp_path_factory.mktemp("churn") / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    seed_store(project, empty_store)  # the store's first set-up is other tests' concern
    telecom_churn.export_packaged(project / "churn.txt")
    done = run_cli(project, f"task={TASK}", "dataset.path=churn.txt", "model.num_round=10")
    return project, done


def test_trial_has_the_four_components_and_the_validation_auc_curve(churn_run):
    project, _ = churn_run
    [trial] = trials_of(project, experiment=TASK)
    assert trial.status == "FINISHED"
    assert trial.component_names == {"Pre-processing", "Training", "Evaluation", "Incentive analysis"}
    assert trial.params["model.num_round"] == "10" and trial.params["optimizer.solver"] == "exact"
    client = store_client(project)
    for run_id in (trial.run_id, trial.components["Training"]):  # val_auc is one of the task's curves
        assert sorted(m.step for m in client.get_metric_history(run_id, "val_auc")) == list(range(1, 11))
    assert trial.metrics["rows_test"] == 1500  # the post's 1,500 customers


def test_metrics_json_holds_every_headline_metric(churn_run):
    project, done = churn_run
    [trial] = trials_of(project, experiment=TASK)
    metrics = json.loads((run_folder(done) / "reports" / "metrics.json").read_text())
    assert set(metrics) == HEADLINE
    for name, value in metrics.items():
        assert value == pytest.approx(trial.metrics[name])
    assert metrics["auc"] > 0.85 and metrics["val_auc"] > 0.85
    assert 0 < metrics["min_cost_cutoff"] < 1
    assert metrics["test_cost"] < trial.metrics["no_action_cost"]
    assert metrics["budget"] == pytest.approx(0.01 * trial.metrics["total_spend"])
    assert metrics["budget_used"] <= metrics["budget"]
    assert metrics["profit_optimal"] >= metrics["profit_uniform"] > metrics["profit_none"]
    assert metrics["uplift_vs_none"] == pytest.approx(metrics["profit_optimal"] / metrics["profit_none"] - 1)


def test_outputs_match_the_reported_figures(churn_run):
    project, done = churn_run
    reports = run_folder(done) / "reports"
    metrics = json.loads((reports / "metrics.json").read_text())
    per_customer = pd.read_csv(reports / "incentives.csv")
    assert list(per_customer.columns) == [
        "customer",
        "spend",
        "churn_probability",
        "gamma",
        "discount",
        "expected_profit",
    ]
    assert len(per_customer) == 1500 and set(per_customer["gamma"]) <= {1.0, 100.0}
    assert per_customer["discount"].sum() == pytest.approx(metrics["budget_used"])
    assert per_customer["expected_profit"].sum() == pytest.approx(metrics["profit_optimal"])
    costs = pd.read_csv(reports / "plots" / "cost_by_cutoff.csv")
    assert len(costs) == 100
    at_chosen = costs.loc[costs["cutoff"] == metrics["min_cost_cutoff"], "cost"]
    assert at_chosen.item() == metrics["test_cost"]  # the test curve at the cutoff validation chose
    for chart in (
        "roc",
        "confusion_matrix",
        "score_histogram",
        "cost_by_cutoff",
        "profit_by_scenario",
        "discounts",
        "uplift_by_budget",
    ):
        assert (reports / "plots" / f"{chart}.png").stat().st_size > 0
    for line in (
        f"Cost is minimized near a cutoff of: {metrics['min_cost_cutoff']:g} on the validation split",
        f"At that cutoff the 1500 test customers (held out) cost $ {metrics['test_cost']:,.0f};",
        "Incentive is paid to",
        "Per customer incentive is $",
    ):
        assert line in done.stdout
    assert "Expected total profit compared to no campaign:" in (reports / "incentive_report.txt").read_text()
    curve = pd.read_csv(reports / "plots" / "uplift_by_budget.csv")
    assert curve["budget_fraction"].tolist() == [0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1]
    assert curve["uplift_vs_none"].is_monotonic_increasing  # more budget never lowers the optimal profit
    assert curve.loc[curve["budget_fraction"] == 0.01, "profit_optimal"].item() == pytest.approx(
        metrics["profit_optimal"]
    )


def _stage_config(done, reports):
    """The trial's config, reading its data and model, writing its reports to `reports`."""
    return task_config(TASK, *_trained_by(done), f"paths.reports={reports}", "model.num_round=10")


def _campaign_costs(scored: customers.ScoredCustomers) -> np.ndarray:
    """The post's cost ($500 a lost churner, $50 an incentive) at cutoffs 0, 0.01, ... 0.99, counted here."""
    paid = scored.churn_probability[None, :] > (np.arange(100) / 100)[:, None]
    return 500.0 * (scored.churned & ~paid).sum(axis=1) + 50.0 * paid.sum(axis=1)


def test_the_cutoff_is_validations_cheapest_and_the_reported_figures_are_the_test_splits_at_it(churn_run, tmp_path):
    project, done = churn_run
    [trial] = trials_of(project, experiment=TASK)
    cfg = _stage_config(done, tmp_path)
    validation, test = customers.scored(cfg, "validation"), customers.scored(cfg, "test")
    on_validation, on_test = _campaign_costs(validation), _campaign_costs(test)
    chosen = int(np.argmin(on_validation))
    # this trial's two splits disagree (0.33 on validation, 0.3 on test), so the test asserts which one chose
    assert chosen != int(np.argmin(on_test))
    assert trial.metrics["min_cost_cutoff"] == chosen / 100
    assert trial.metrics["test_cost"] == on_test[chosen]
    assert trial.metrics["customers_paid"] == np.count_nonzero(test.churn_probability > chosen / 100)
    assert trial.metrics["min_cost_in_sample"] == on_test.min()
    assert "min_cost" not in trial.metrics  # the old name meant the test curve's minimum: retired, not reused


def test_confusion_matrices_at_the_decision_threshold_and_at_the_printed_cost_optimal_cutoff(
    churn_run, monkeypatch, tmp_path
):
    project, done = churn_run
    [trial] = trials_of(project, experiment=TASK)
    figures = keep_figures(monkeypatch, charts)
    stages.evaluate(_stage_config(done, tmp_path), Untracked())  # type: ignore[arg-type]
    at_threshold, at_cheapest = figures["confusion_matrix.png"].axes
    cells = [[int(t.get_text()) for t in ax.texts] for ax in (at_threshold, at_cheapest)]  # TN, FP, FN, TP
    assert "cutoff 0.5" in at_threshold.get_title()
    assert cells[0] == [trial.metrics[f"test_{n}"] for n in ("tn", "fp", "fn", "tp")]
    # the matrix behind the console's "Incentive is paid to N customers" at its cutoff, chosen on validation
    assert f"cost-optimal on validation: cutoff {trial.metrics['min_cost_cutoff']:g}" in at_cheapest.get_title()
    assert cells[1][1] + cells[1][3] == trial.metrics["customers_paid"]
    assert f"{int(trial.metrics['customers_paid'])} predicted churners" in at_cheapest.get_title()
    assert sum(cells[1]) == 1500


def test_incentive_charts_show_the_convincing_band_the_budget_and_dollar_axes(churn_run, monkeypatch, tmp_path):
    project, done = churn_run
    [trial] = trials_of(project, experiment=TASK)
    figures = keep_figures(monkeypatch, charts)
    stages.incentives(_stage_config(done, tmp_path), Untracked())  # type: ignore[arg-type]
    per_customer = pd.read_csv(tmp_path / "incentives.csv")

    [histogram] = figures["score_histogram.png"].axes
    assert sum(bar.get_height() for bars in histogram.containers for bar in bars) == 1500
    [band] = [p for p in histogram.patches if p.get_label().startswith("convincing band")]
    assert (band.get_x(), band.get_x() + band.get_width()) == pytest.approx((0.55, 0.95))
    inside = per_customer["churn_probability"].between(0.55, 0.95).sum()
    assert band.get_label() == f"convincing band 0.55–0.95 (γ = 1): {inside} customers"

    [profit] = figures["profit_by_scenario.png"].axes
    assert profit.yaxis.get_major_formatter()(80000, 0) == "$80,000"
    labels = [text for text in profit.texts if text.get_text().startswith("$")]
    assert len(labels) == 3 and all(label.xyann[1] > 0 for label in labels)  # clear of the bar tops

    [cost] = figures["cost_by_cutoff.png"].axes
    chosen, in_sample = (c for c in cost.collections if c.get_label() != "_nolegend_")
    assert chosen.get_offsets().tolist() == [[trial.metrics["min_cost_cutoff"], trial.metrics["test_cost"]]]
    assert chosen.get_label().startswith("cutoff chosen on validation")
    assert in_sample.get_offsets()[0][1] == trial.metrics["min_cost_in_sample"]
    assert "in-sample" in in_sample.get_label()

    [uplift] = figures["uplift_by_budget.png"].axes
    [budget] = [line for line in uplift.lines if line.get_label().startswith("this trial's budget")]
    assert list(budget.get_xdata()) == pytest.approx([100 * trial.metrics["budget"] / trial.metrics["total_spend"]] * 2)
    assert "1.00%" in budget.get_label()


def _trained_by(done) -> list[str]:
    """One stage run alone reads the data and model of an earlier run: name its folders."""
    folder = run_folder(done)
    return [f"paths.data={folder / 'data'}", f"paths.models={folder / 'models'}"]


def test_gekko_agrees_with_the_exact_solver_on_the_1500_customers(churn_run):
    project, done = churn_run
    out = project / "reports_gekko"
    # a budget below what the unconstrained optimum spends, so the budget constraint binds
    run_cli(
        project,
        f"task={TASK}",
        "stage=incentives",
        "optimizer.solver=gekko",
        "model.incentives.budget_fraction=0.0025",
        "model.incentives.budget_curve=[]",
        *_trained_by(done),
        f"paths.reports={out}",
    )
    gekko = pd.read_csv(out / "incentives.csv")
    metrics = json.loads((out / "metrics.json").read_text())
    problem = program.IncentiveProblem(
        gekko["spend"].to_numpy(),
        gekko["churn_probability"].to_numpy(),
        gekko["gamma"].to_numpy(),
        metrics["budget"],
        acceptance.Exponential(),
    )
    exact = exact_solver.solve(problem)
    assert exact.multiplier > 0  # the budget binds
    exact_profit = problem.expected_profit(exact.discounts).sum()
    assert metrics["profit_optimal"] == pytest.approx(exact_profit, rel=1e-4)
    assert metrics["budget_used"] == pytest.approx(exact.discounts.sum(), rel=1e-6)
    assert gekko["discount"].sum() <= metrics["budget"]
    np.testing.assert_allclose(gekko["discount"], exact.discounts, atol=1e-3)


def test_a_negative_budget_fails_before_any_output(churn_run):
    project, done = churn_run
    out = project / "reports_negative"
    done = run_cli(
        project,
        f"task={TASK}",
        "stage=incentives",
        "model.incentives.budget_fraction=-0.01",
        *_trained_by(done),
        f"paths.reports={out}",
        check=False,
    )
    # refused by the task's range before the stage starts (it was the stage's own "the incentive budget is -...")
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "mlexp: error: model.incentives.budget_fraction=-0.01 is out of range: it must be at least 0"
    ], done.stderr
    assert not (out / "incentives.csv").exists() and not (out / "metrics.json").exists()
