"""A task whose objective is reporting-only (direction: report): sweeps report it and name no best trial."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli, trials_of


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_grid_sweep_of_a_reporting_only_objective_tags_no_best_trial(tmp_project: Path) -> None:
    done = run_cli(tmp_project, "-m", "task=anomaly_detection", "dataset.n_rows=400", "model.max_duration_hours=6,24")
    trials = [t for t in trials_of(tmp_project, "anomaly_detection") if "mlexp.sweep_id" in t.tags]
    assert len(trials) == 2 and all(t.status == "FINISHED" for t in trials)
    assert all("percent_flagged" in t.metrics for t in trials)
    assert not any(t.tags.get("mlexp.best_in_sweep") for t in trials)
    assert "reporting-only" in done.stdout and "best trial:" not in done.stdout


def test_a_search_over_a_reporting_only_objective_is_refused(tmp_project: Path) -> None:
    refused = run_cli(
        tmp_project,
        "-m",
        "task=anomaly_detection",
        "sweep=tpe",
        "model.max_duration_hours=interval(6, 48)",
        check=False,
    )
    assert refused.returncode != 0
    assert "reporting-only" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_project / "mlflow.db").exists() or not trials_of_or_none(tmp_project)


def trials_of_or_none(project: Path) -> list:
    try:
        return trials_of(project, "anomaly_detection")
    except AssertionError:
        return []
