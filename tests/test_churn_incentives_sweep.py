"""The TPE sweep over the churn classifier's XGBoost hyperparameters maximises validation AUC."""

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
    assert cfg.task.objective.metric == "val_auc" and cfg.task.objective.direction.value == "maximize"
    with pytest.raises(ConfigCompositionException, match="optimizer.solver=simplex") as failure:
        _compose("optimizer.solver=simplex")
    assert "exact" in str(failure.value.__cause__) and "gekko" in str(failure.value.__cause__)
