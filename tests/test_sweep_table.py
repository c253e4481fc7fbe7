"""A sweep's closing table and lines: a swept config group is a column, a tied best says so, a report sweep reads by
its parameter, and a sweep file with a report of its own names that report's command."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, TEXT_TINY, TrialView, run_cli, seed_store, store_client, trials_of

CHURN_TINY = ("dataset.n_rows=600", "model.num_round=20", "model.incentives.budget_curve=[]")
RECOMMENDATION_TINY = (
    "dataset.n_users=300",
    "dataset.n_videos=300",
    "dataset.n_interactions=10000",
    "model.metadata_hybrid.epochs=1",
)
# the sweep files' trials run one at a time here: the closing table is what is checked, and each parallel worker
# imports the task's libraries again (test_sweeps.py runs a parallel sweep)
ONE_AT_A_TIME = "sweep.max_parallel_jobs=1"
SweepRun = tuple[Path, subprocess.CompletedProcess]  # the project, and the sweep's command as it ended


def table_rows(stdout: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the sweep's table (split on runs of two spaces, so an empty cell is dropped)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#  trial"))
    body = []
    for line in lines[start + 2 :]:
        if not line[:1].isdigit():
            break
        body.append(line.split())
    return lines[start].split(), body


@pytest.fixture(scope="module")
def cutoff_sweep(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> SweepRun:
    """A churn sweep over the decision threshold, read by the tests below (none changes it). The threshold changes no
    classifier setting, so every trial has the same val_auc, the task's usual objective: a tied best. The lowest value
    is not the first job, so the tie's order is the table's, not the launch's."""
    project = tmp_path_factory.mktemp("cutoff") / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    seed_store(project, empty_store)
    done = run_cli(project, "-m", "task=churn_incentives", "model.decision_threshold=0.7,0.2,0.5", *CHURN_TINY)
    return project, done


def _by_threshold(project: Path) -> dict[str, TrialView]:
    return {t.params["model.decision_threshold"]: t for t in trials_of(project, "churn_incentives")}


def test_a_sweep_over_the_churn_cutoff_shows_what_the_cutoff_changes(cutoff_sweep: SweepRun) -> None:
    # accuracy, precision and recall are scored at model.decision_threshold; the table showed only figures the cutoff
    # does not change, alike in every row
    project, done = cutoff_sweep
    trials = _by_threshold(project)
    assert len({trials["0.2"].metrics["recall"], trials["0.7"].metrics["recall"]}) == 2
    header = next(line for line in done.stdout.splitlines() if "model.decision_threshold" in line and "trial" in line)
    assert header.split()[header.split().index("auc") :][:4] == ["auc", "accuracy", "precision", "recall"]


@pytest.mark.slow
@pytest.mark.usefixtures("tmp_project_with_store")
def test_a_swept_config_group_is_a_column_of_the_table(tmp_project: Path) -> None:
    done = run_cli(tmp_project, "-m", "task=text_classification", "sweep=text_classification_models", *TEXT_TINY)
    header, rows = table_rows(done.stdout)
    # before: model.C, model.smoothing, ... and no `model`: the classifier was to be guessed from blank cells
    assert header[:4] == ["#", "trial", "status", "model"]
    assert sorted(row[3] for row in rows) == ["tfidf_linear", "tfidf_naive_bayes"]
    import mlexp

    sweep = trials_of(tmp_project, "text_classification")[0].tags["mlexp.sweep_id"]
    frame = mlexp.analytics(sweep=sweep, tracking_uri=f"sqlite:///{tmp_project / 'mlflow.db'}")
    assert frame.attrs["choices"] == ["model"] and "model" not in frame.attrs["params"]  # an MLflow param it is not
    assert sorted(frame["model"]) == ["tfidf_linear", "tfidf_naive_bayes"]


@pytest.mark.slow
def test_a_best_value_shared_by_several_trials_is_said_and_tagged(cutoff_sweep: SweepRun) -> None:
    project, done = cutoff_sweep
    trials = _by_threshold(project)
    assert len({t.metrics["val_auc"] for t in trials.values()}) == 1
    best = [t for t in trials.values() if t.tags.get("mlexp.best_in_sweep") == "true"]
    assert len(best) == 1 and best[0].params["model.decision_threshold"] == "0.2"  # the table's first
    others = [trials[value].name for value in ("0.5", "0.7")]  # in the table's order
    assert f"best trial: {best[0].name} ({best[0].run_id})" in done.stdout
    assert f"  tied with 2 other trials at that value: {', '.join(others)}" in done.stdout
    assert f"the objective cannot choose between them: {best[0].name} is marked best" in done.stdout
    sweep = store_client(project).get_run(best[0].tags["mlexp.sweep_id"])
    assert sweep.data.tags["mlexp.best_trial"] == best[0].run_id and sweep.data.tags["mlexp.best_trial_ties"] == "2"


@pytest.mark.slow
@pytest.mark.usefixtures("tmp_project_with_store")
def test_a_report_sweep_lists_its_trials_by_the_figure_then_by_its_parameter(tmp_project: Path) -> None:
    budgets = "model.incentives.budget_fraction=0.0025,0.05,0.01"
    done = run_cli(
        tmp_project, "-m", "task=churn_incentives", "sweep=churn_budget", ONE_AT_A_TIME, budgets, *CHURN_TINY
    )
    header, rows = table_rows(done.stdout)
    budget, profit = header.index("model.incentives.budget_fraction"), header.index("profit_optimal")
    # profit_optimal never falls as the budget grows; where it is flat the budget orders the rows
    assert [row[budget] for row in rows] == ["0.0025", "0.01", "0.05"]
    assert [float(row[profit]) for row in rows] == sorted(float(row[profit]) for row in rows)
    assert len({row[profit] for row in rows}) < len(rows)  # a tie at these sizes: the budget, not the profit, decides


@pytest.mark.slow
@pytest.mark.usefixtures("tmp_project_with_store")
def test_a_sweep_with_a_report_of_its_own_names_its_command(tmp_project: Path) -> None:
    done = run_cli(
        tmp_project,
        "-m",
        "task=recommendation",
        "sweep=recommendation_metadata",
        ONE_AT_A_TIME,
        "features=interactions_only,signal_users",
        "seed=1",
        *RECOMMENDATION_TINY,
    )
    name = trials_of(tmp_project, "recommendation")[0].tags["mlexp.sweep_name"]
    command = f"python -m mlexp.tasks.recommendation.metadata_selection sweep={name}"
    assert f"each feature set vs interactions_only (the post's table and chart): {command}\n" in done.stdout
    # `features` is not a column beside `features.name`, which names the same option
    header, _ = table_rows(done.stdout)
    assert "features.name" in header and "features" not in header
