"""Closing a sweep record its end callback never reached: which trials the closing line names."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import store_client
from mlexp.sweeps import SWEEP_EXPERIMENT_ENV, SWEEP_ID_ENV, SWEEP_NAME_ENV, SWEEP_STORE_ENV
from mlexp.sweeps.recorder import close_open_sweep
from mlexp.tracking import tags


@pytest.fixture
def open_sweep(tmp_project_with_store: Path, monkeypatch: pytest.MonkeyPatch):
    """A sweep record with a trial that failed on its own, one Ctrl-C killed in its process, and one still running."""
    client = store_client(tmp_project_with_store)
    experiment = client.create_experiment("sweep_close")
    sweep = client.create_run(experiment, run_name="random-1206")
    trials = {}
    for name, status in (("failed-alone", "FAILED"), ("killed-alone", "KILLED"), ("still-running", None)):
        run = client.create_run(experiment, run_name=name, tags={tags.SWEEP_ID: sweep.info.run_id})
        if status:
            client.set_terminated(run.info.run_id, status)
        trials[name] = run.info.run_id
    monkeypatch.setenv(SWEEP_ID_ENV, sweep.info.run_id)
    monkeypatch.setenv(SWEEP_NAME_ENV, "random-1206")
    monkeypatch.setenv(SWEEP_STORE_ENV, f"sqlite:///{tmp_project_with_store / 'mlflow.db'}")
    monkeypatch.setenv(SWEEP_EXPERIMENT_ENV, "sweep_close")
    return client, sweep.info.run_id, trials


def test_a_failed_sweep_names_only_the_trials_it_cut_short(open_sweep) -> None:
    client, sweep_id, trials = open_sweep
    said = close_open_sweep("FAILED")
    assert said == f"random-1206 (id {sweep_id}) and its trial still-running"
    assert client.get_run(trials["still-running"]).info.status == "FAILED"
    assert client.get_run(trials["killed-alone"]).info.status == "KILLED"
    assert client.get_run(sweep_id).info.status == "FAILED"


def test_a_killed_sweep_also_names_trials_ctrl_c_ended_in_their_own_process(open_sweep) -> None:
    client, sweep_id, trials = open_sweep
    said = close_open_sweep("KILLED")
    assert said == f"random-1206 (id {sweep_id}) and its trials killed-alone, still-running"
    assert client.get_run(trials["failed-alone"]).info.status == "FAILED"
