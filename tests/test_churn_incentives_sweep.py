"""The TPE sweep over the churn classifier's XGBoost hyperparameters maximises validation AUC; the budget sweep
reports the expected profit per budget and names no best trial."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException

from conftest import run_cli, store_client, trials_of

pytestmark = pytest.mark.slow


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_tpe_sweep_maximises_validation_auc(tmp_project):
    run_cli(
        tmp_project,
        "-m",
        "task=churn_incentives",
        "sweep=churn_tpe",
        "sweep.max_jobs=2",
        "sweep.max_parallel_jobs=1",
        "dataset.n_rows=600",
        "model.incentives.budget_curve=[]",
    )
    trials = trials_of(tmp_project, experiment="churn_incentives")
    assert len(trials) == 2 and all(t.status == "FINISHED" for t in trials)
    assert all(
        t.component_names - {"Pre-processing"} == {"Training", "Evaluation", "Incentive analysis"} for t in trials
    )
    # the XGBoost search does not change the data: one Pre-processing component serves both trials
    [owner] = [t for t in trials if "Pre-processing" in t.component_names]
    assert {t.tags["mlexp.shared_component.prepare"] for t in trials} == {owner.components["Pre-processing"]}
    for trial in trials:
        assert 2 <= int(trial.params["model.max_depth"]) <= 8
        assert 0.02 <= float(trial.params["model.eta"]) <= 0.5
        assert 0.5 <= float(trial.params["model.subsample"]) <= 1.0
        assert trial.params["model.num_round"] in {"50", "100", "200"}
    assert len({t.params["model.eta"] for t in trials}) == 2
    best = max(trials, key=lambda t: t.metrics["val_auc"])
    sweep = store_client(tmp_project).get_run(best.tags["mlexp.sweep_id"])
    assert sweep.data.tags["mlexp.best_trial"] == best.run_id
    assert sweep.data.metrics["best_val_auc"] == pytest.approx(best.metrics["val_auc"])


@pytest.mark.usefixtures("tmp_project_with_store")
def test_budget_sweep_reports_profit_per_budget_and_names_no_best_trial(tmp_project):
    # the budget changes no classifier setting: every trial's val_auc is the same, and the old sweep ranked by it
    # and named the last trial best (budget 0.05, val_auc = 0.909082 like the other four)
    done = run_cli(
        tmp_project,
        "-m",
        "task=churn_incentives",
        "sweep=churn_budget",
        "model.incentives.budget_fraction=0.0025,0.01,0.05",
        "dataset.n_rows=600",
        "model.num_round=20",
        "model.incentives.budget_curve=[]",
    )
    trials = trials_of(tmp_project, experiment="churn_incentives")
    assert len(trials) == 3 and all(t.status == "FINISHED" for t in trials)
    assert len({t.metrics["val_auc"] for t in trials}) == 1
    assert not any(t.tags.get("mlexp.best_in_sweep") for t in trials)
    sweep = store_client(tmp_project).get_run(trials[0].tags["mlexp.sweep_id"])
    assert "mlexp.best_trial" not in sweep.data.tags and not any(k.startswith("best_") for k in sweep.data.metrics)
    assert "best trial:" not in done.stdout
    assert "profit_optimal is reported per trial above" in done.stdout and "no trial is marked best" in done.stdout
    # why no best: the program may leave budget unspent, so its expected profit after incentives never falls as
    # the budget grows: naming the best would name the largest budget, or any of those tied at the top
    by_budget = sorted(trials, key=lambda t: float(t.params["model.incentives.budget_fraction"]))
    profits = [t.metrics["profit_optimal"] for t in by_budget]
    assert all(later >= earlier - 1e-6 * abs(earlier) for earlier, later in zip(profits, profits[1:]))


def _compose(*overrides: str):
    from hydra import compose, initialize_config_dir

    from conftest import REPO
    from mlexp.config import make_composable

    make_composable()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=["task=churn_incentives", *overrides], return_hydra_config=True)


def test_budget_sweep_and_solver_choice_compose():
    cfg = _compose("sweep=churn_budget", "optimizer.solver=gekko")
    assert cfg.hydra.sweeper.params["model.incentives.budget_fraction"] == "0.0025,0.005,0.01,0.02,0.05"
    assert cfg.optimizer.solver.value == "gekko"
    assert cfg.task.objective.metric == "profit_optimal" and cfg.task.objective.direction.value == "report"
    plain = _compose()
    assert plain.task.objective.metric == "val_auc" and plain.task.objective.direction.value == "maximize"
    with pytest.raises(ConfigCompositionException, match="optimizer.solver=simplex") as failure:
        _compose("optimizer.solver=simplex")
    assert "exact" in str(failure.value.__cause__) and "gekko" in str(failure.value.__cause__)
