"""The suite's CLI server (forked_cli.py) gives what a fresh `python -m mlexp.cli` gives: exit code, output,
and a trial's metrics, so a test that passes on a forked command would pass on the real one."""

from __future__ import annotations

import re

import pytest

import conftest
from conftest import TINY, cli_env, run_cli, trials_of


def _forked(project, *args: str, check: bool = True, server: str = "_forked_cli"):
    """run_cli that fails unless the command really went through the server (`server`: conftest's name for it)."""
    before = getattr(conftest, server).commands if getattr(conftest, server) else 0
    done = run_cli(project, *args, check=check)
    assert getattr(conftest, server) and getattr(conftest, server).commands == before + 1, "the command was not forked"
    return done


def test_a_forked_config_error_reads_as_the_fresh_one(tmp_project):
    forked = _forked(tmp_project, "task=tabular_regresion", check=False)
    fresh = run_cli(tmp_project, "task=tabular_regresion", check=False, fresh=True)
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert forked.returncode == 2 and forked.stderr.startswith("mlexp: error: task='tabular_regresion'")


def _without_ids(text: str) -> str:
    """Output with what differs between any two trials (ids, times, folders, timings) blanked; the second trial
    reuses the first one's pre-processing and says so."""
    text = "".join(line for line in text.splitlines(keepends=True) if "reusing component" not in line)
    text = re.sub(r"[0-9a-f]{32}", "<id>", text)
    text = re.sub(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(-\d+)?", "<time>", text)
    text = re.sub(r"(forked|fresh)", "<name>", text)
    text = re.sub(r"\d+(\.\d+)?(s|it/s|epoch/s| s)\b", "<t>", text)
    return re.sub(r"experiments/\d+", "experiments/<n>", text)


@pytest.mark.usefixtures("tmp_project_with_store")
def test_a_forked_trial_measures_and_prints_what_a_fresh_one_does(tmp_project):
    forked = _forked(tmp_project, "task=tabular_regression", *TINY, "tracking.experiment_name=forked")
    fresh = run_cli(tmp_project, "task=tabular_regression", *TINY, "tracking.experiment_name=fresh", fresh=True)
    [forked_trial] = trials_of(tmp_project, experiment="forked")
    [fresh_trial] = trials_of(tmp_project, experiment="fresh")
    assert forked_trial.status == fresh_trial.status == "FINISHED"
    assert forked_trial.metrics == fresh_trial.metrics and "test_msle" in forked_trial.metrics
    assert _without_ids(forked.stdout) == _without_ids(fresh.stdout)
    assert "Traceback" not in forked.stderr and "warning" not in forked.stderr.lower()


@pytest.mark.usefixtures("tmp_project_with_store")
def test_a_store_command_forked_from_the_server_with_mlflow_reads_as_the_fresh_one(tmp_project):
    run_cli(tmp_project, "task=tabular_regression", *TINY)
    ran = {}
    for command in ("compare task=tabular_regression", "sync", "compare experiment=nope"):
        forked = _forked(tmp_project, *command.split(), check=False, server="_forked_store_cli")
        fresh = run_cli(tmp_project, *command.split(), check=False, fresh=True)
        assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
        assert "Traceback" not in forked.stderr
        ran[command] = forked
    compared = ran["compare task=tabular_regression"]
    assert compared.returncode == 0 and "test_msle" in compared.stdout
    assert ran["compare experiment=nope"].returncode == 2
    # the store commands' server has MLflow imported, the other has not (a trial leaves MLflow to its writer)
    assert conftest._forked_store_cli.loaded(["mlflow", "mxnet"]) == ["mlflow"]
    _forked(tmp_project, "data", "--help")
    assert conftest._forked_cli.loaded(["mlflow", "mxnet"]) == []
    # a store command with MLflow settings of its own (read when MLflow is imported) goes to the other server
    before = conftest._forked_cli.commands
    run_cli(tmp_project, "sync", env=cli_env(tmp_project) | {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    assert conftest._forked_cli.commands == before + 1
