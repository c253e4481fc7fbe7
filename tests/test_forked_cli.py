"""The suite's CLI server (forked_cli.py) gives what a fresh `python -m mlexp.cli` gives: exit code, output,
and a trial's metrics, so a test that passes on a forked command would pass on the real one."""

from __future__ import annotations

import pytest

from conftest import TINY, run_cli, trials_of


def test_a_forked_config_error_reads_as_the_fresh_one(tmp_project):
    forked = run_cli(tmp_project, "task=tabular_regresion", check=False)
    fresh = run_cli(tmp_project, "task=tabular_regresion", check=False, fresh=True)
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert forked.returncode == 2 and forked.stderr.startswith("mlexp: error: task='tabular_regresion'")


@pytest.mark.usefixtures("tmp_project_with_store")
def test_a_forked_trial_measures_what_a_fresh_one_measures(tmp_project):
    run_cli(tmp_project, "task=tabular_regression", *TINY, "tracking.experiment_name=forked")
    run_cli(tmp_project, "task=tabular_regression", *TINY, "tracking.experiment_name=fresh", fresh=True)
    [forked] = trials_of(tmp_project, experiment="forked")
    [fresh] = trials_of(tmp_project, experiment="fresh")
    assert forked.status == fresh.status == "FINISHED"
    assert forked.metrics == fresh.metrics and "test_msle" in forked.metrics
