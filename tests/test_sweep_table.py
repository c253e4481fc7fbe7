"""A sweep's closing table and lines: a swept config group is a column, a tied best says so, a report sweep reads by
its parameter, and a sweep file with a report of its own names that report's command."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import TEXT_TINY, run_cli, store_client, trials_of

CHURN_TINY = ("dataset.n_rows=600", "model.num_round=20", "model.incentives.budget_curve=[]")
RECOMMENDATION_TINY = (
    "dataset.n_users=300",
    "dataset.n_videos=300",
    "dataset.n_interactions=10000",
    "model.metadata_hybrid.epochs=1",
)


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


def test_a_sweep_over_the_churn_cutoff_shows_what_the_cutoff_changes(tmp_project: Path) -> None:
    # accuracy, precision and recall are scored at model.decision_threshold; the table showed only figures the cutoff
    # does not change, alike in every row
    done = run_cli(tmp_project, "-m", "task=churn_incentives", "model.decision_threshold=0.2,0.7", *CHURN_TINY)
    trials = trials_of(tmp_project, "churn_incentives")
    assert len({t.metrics["recall"] for t in trials}) == 2
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
@pytest.mark.usefixtures("tmp_project_with_store")
def test_a_best_value_shared_by_several_trials_is_said_and_tagged(tmp_project: Path) -> None:
    # the budget changes no classifier setting: all three trials have the same val_auc, the task's usual objective
    done = run_cli(
        tmp_project, "-m", "task=churn_incentives", "model.incentives.budget_fraction=0.05,0.0025,0.01", *CHURN_TINY
    )
    trials = trials_of(tmp_project, "churn_incentives")
    assert len({t.metrics["val_auc"] for t in trials}) == 1
    best = [t for t in trials if t.tags.get("mlexp.best_in_sweep") == "true"]
    assert len(best) == 1 and best[0].params["model.incentives.budget_fraction"] == "0.0025"  # the table's first
    by_budget = sorted(trials, key=lambda t: float(t.params["model.incentives.budget_fraction"]))
    others = [t.name for t in by_budget[1:]]  # in the table's order
    assert f"best trial: {best[0].name} ({best[0].run_id})" in done.stdout
    assert f"  tied with 2 other trials at that value: {', '.join(others)}" in done.stdout
    assert f"the objective cannot choose between them: {best[0].name} is marked best" in done.stdout
    sweep = store_client(tmp_project).get_run(best[0].tags["mlexp.sweep_id"])
    assert sweep.data.tags["mlexp.best_trial"] == best[0].run_id and sweep.data.tags["mlexp.best_trial_ties"] == "2"


@pytest.mark.slow
@pytest.mark.usefixtures("tmp_project_with_store")
def test_a_report_sweep_lists_its_trials_by_the_figure_then_by_its_parameter(tmp_project: Path) -> None:
    budgets = "model.incentives.budget_fraction=0.0025,0.05,0.01"
    done = run_cli(tmp_project, "-m", "task=churn_incentives", "sweep=churn_budget", budgets, *CHURN_TINY)
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
