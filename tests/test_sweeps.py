"""Multirun sweeps: parallel trials on the default SQLite store, a sweep run with the best trial."""

from __future__ import annotations

import math
import shutil

import pytest
import yaml

from conftest import REPO, TINY, run_cli, store_client, trials_of

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    project = tmp_path_factory.mktemp("sweep") / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    done = run_cli(
        project,
        "-m",
        "task=tabular_regression",
        "sweep=grid",
        "sweep.max_parallel_jobs=2",
        "model.l1_size=4,16",
        "model.l1_activation=relu,tanh",
        *TINY,
    )
    return project, done


def test_parallel_sweep_loses_no_trial(grid_sweep):
    project, done = grid_sweep
    trials = trials_of(project)
    assert len(trials) == 4
    assert all(t.status == "FINISHED" for t in trials)
    assert all({"Pre-processing", "Training", "Evaluation"} == t.component_names for t in trials)
    assert sorted((t.params["model.l1_size"], t.params["model.l1_activation"]) for t in trials) == [
        ("16", "relu"),
        ("16", "tanh"),
        ("4", "relu"),
        ("4", "tanh"),
    ]
    assert "database is locked" not in done.stderr


def test_sweep_run_groups_its_trials_and_records_the_best(grid_sweep):
    project, done = grid_sweep
    trials = trials_of(project)
    client = store_client(project)
    sweep_ids = {t.tags["mlexp.sweep_id"] for t in trials}
    assert len(sweep_ids) == 1
    sweep = client.get_run(sweep_ids.pop())
    assert sweep.data.tags["mlexp.kind"] == "sweep"
    assert all(t.tags["mlflow.parentRunId"] == sweep.info.run_id for t in trials)
    best = min(trials, key=lambda t: t.metrics["test_msle"])
    assert sweep.data.tags["mlexp.best_trial"] == best.run_id
    assert sweep.data.metrics["best_test_msle"] == pytest.approx(best.metrics["test_msle"])
    assert f"best trial: {best.name}" in done.stdout
    artifacts = {a.path for a in client.list_artifacts(sweep.info.run_id, "comparison")}
    assert "comparison/train_loss_by_step.png" in artifacts
    assert "comparison/model_l1_size_vs_test_msle.png" in artifacts


def test_compare_prints_trials_best_first_and_writes_charts(grid_sweep):
    project, _ = grid_sweep
    out = run_cli(project, "compare", "task=tabular_regression").stdout
    lines = [line for line in out.splitlines() if "-trial-" in line]
    assert len(lines) == 4
    header = next(line for line in out.splitlines() if line.startswith("#"))
    assert "model.l1_size" in header and "model.l1_activation" in header and "test_msle" in header
    column = header.split().index("test_msle")
    values = [float(line.split()[column]) for line in lines]
    assert values == sorted(values)
    charts = project / "reports" / "tabular_regression" / "compare"
    assert (charts / "train_loss_by_step.png").stat().st_size > 0
    assert (charts / "model_l1_size_vs_test_msle.png").stat().st_size > 0


def test_compare_of_an_unknown_experiment_fails_clearly(grid_sweep):
    project, _ = grid_sweep
    done = run_cli(project, "compare", "experiment=nothing-here", check=False)
    assert done.returncode != 0
    assert "no trials in experiment 'nothing-here'" in done.stderr


def test_tpe_sweep_minimises_the_task_objective(tmp_project):
    run_cli(
        tmp_project,
        "-m",
        "task=tabular_regression",
        "sweep=tpe",
        "sweep.max_jobs=3",
        "sweep.max_parallel_jobs=1",
        "model.learning_rate=tag(log, interval(0.001, 0.1))",
        *TINY,
    )
    trials = trials_of(tmp_project)
    assert len(trials) == 3
    assert len({t.params["model.learning_rate"] for t in trials}) == 3
    assert all(0.001 <= float(t.params["model.learning_rate"]) <= 0.1 for t in trials)
    assert all(not math.isnan(t.metrics["test_msle"]) for t in trials)
    study = (tmp_project / "outputs" / "multirun" / "tabular_regression").glob("*/optimization_results.yaml")
    results = yaml.safe_load(next(study).read_text())
    assert min(t.metrics["test_msle"] for t in trials) == pytest.approx(results["best_value"])


def test_a_failed_trial_fails_the_sweep_but_not_the_other_trials(tmp_project):
    bad = tmp_project / "bad.data"
    bad.write_text("X,1,2,3,4,5,6,7,8\n")
    done = run_cli(tmp_project, "-m", "task=tabular_regression", f"dataset.path={bad},null", *TINY, check=False)
    assert done.returncode == 1
    statuses = sorted(t.status for t in trials_of(tmp_project))
    assert statuses == ["FAILED", "FINISHED"]
    assert "1 trial(s) of sweep" in done.stderr
