"""Team scale: a 10-job parallel sweep into a real MLflow server on a real PostgreSQL, and into SQLite in WAL mode.

Each store gets every trial FINISHED, every epoch's train_loss in every history and every component, with no
error in the CLI's output nor in the server's log.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from conftest import _free_port, _wait_for_health, cli_env, run_cli, stop_process_group, trials_of
from postgres_server import create_database, postgres_server

pytestmark = pytest.mark.slow

TRIALS = 10
EPOCHS = 3
# 10 grid points queued on 2 joblib workers; pre-processing is shared, so each trial trains and evaluates
SWEEP = (
    "-m",
    "task=tabular_regression",
    "sweep=grid",
    "sweep.max_parallel_jobs=2",
    "model.l1_size=" + ",".join(str(size) for size in range(2, 2 + TRIALS)),
    "dataset.n_rows=300",
    f"model.epochs={EPOCHS}",
)
# what a lost write, a lock timeout or a server fault leaves in the CLI's output or the server's log
ERRORS = re.compile(r"Traceback|unexpected error|\bERROR\b|Exception|database is locked|mlexp: error|\b50[0-9] ")


@pytest.fixture(scope="module")
def team_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """(URL, server log, artifact folder) of `mlflow server` on 127.0.0.1 over a real PostgreSQL."""
    folder = tmp_path_factory.mktemp("team-server")
    with postgres_server(folder / "postgres") as postgres:
        # MLflow reads a bare postgresql:// as psycopg 3; the psycopg2 driver is named in the URL
        database = create_database(postgres, "mlflow").replace("postgresql://", "postgresql+psycopg2://", 1)
        artifacts, log, port = folder / "artifacts", folder / "server.log", _free_port()
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
        with log.open("wb") as out:
            # 2 workers: requests of parallel trials land in different processes, each with its own connections
            server = subprocess.Popen(
                [os.path.join(os.path.dirname(sys.executable), "mlflow"), "server", "--host", "127.0.0.1"]
                + ["--port", str(port), "--workers", "2", "--backend-store-uri", database]
                + ["--serve-artifacts", "--artifacts-destination", str(artifacts)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for_health(url, server, log, seconds=120)
            yield url, log, artifacts
        finally:
            with contextlib.suppress(ProcessLookupError):  # a server that died at start-up has no group left
                stop_process_group(server)


def assert_complete_sweep(client: MlflowClient, project: Path, done: subprocess.CompletedProcess[str]) -> None:
    """10 FINISHED trials, each with its components and every epoch's train_loss; nothing failed on the way."""
    output = done.stdout + done.stderr
    assert not ERRORS.search(output), ERRORS.search(output)
    trials = [t for t in trials_of(project, client=client) if "mlexp.sweep_id" in t.tags]
    assert len(trials) == TRIALS
    assert sorted(int(t.params["model.l1_size"]) for t in trials) == list(range(2, 2 + TRIALS))
    assert {t.status for t in trials} == {"FINISHED"}
    epochs = list(range(1, EPOCHS + 1))
    # pre-processing runs once and later trials link to its component (again if mlexp's source changed meanwhile)
    preprocessing = {t.components["Pre-processing"] for t in trials if "Pre-processing" in t.component_names}
    assert 1 <= len(preprocessing) < TRIALS
    for trial in trials:
        assert {"Training", "Evaluation"} <= trial.component_names
        assert trial.tags["mlexp.shared_component.prepare"] in preprocessing
        for component in trial.components.values():
            assert client.get_run(component).info.status == "FINISHED"
        for run_id in (trial.run_id, trial.components["Training"]):
            history = client.get_metric_history(run_id, "train_loss")
            assert sorted(m.step for m in history) == epochs, (trial.name, run_id)
        assert {"test_msle", "test_mae", "final_train_loss", "rows_train"} <= set(trial.metrics)
    assert f"best trial: {min(trials, key=lambda t: t.metrics['test_msle']).name}" in done.stdout
    assert_each_run_once(client)
    assert list(project.glob(".mlexp/journal/*/header.json")) == []  # every journal reached the store


def assert_each_run_once(client: MlflowClient) -> None:
    """The store itself (not trials_of, which keys components by name) holds TRIALS trials, each component once."""
    experiment = client.get_experiment_by_name("tabular_regression")
    runs = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL, max_results=1000)
    trials = [r for r in runs if r.data.tags.get("mlexp.kind") == "trial"]
    assert len(trials) == TRIALS, [r.info.run_name for r in trials]
    for trial in trials:
        children = [r.info.run_name for r in runs if r.data.tags.get(MLFLOW_PARENT_RUN_ID) == trial.info.run_id]
        assert sorted(children) == sorted(set(children)) and {"Training", "Evaluation"} <= set(children), children


def test_a_10_job_parallel_sweep_fills_an_mlflow_server_on_postgresql(tmp_project, team_server):
    url, log, artifacts = team_server
    env = cli_env(tmp_project)
    env["MLEXP_TRACKING_SERVER"] = url  # tracking=server reads the team's server from here
    done = run_cli(tmp_project, *SWEEP, "tracking=server", env=env)
    client = MlflowClient(url)
    assert_complete_sweep(client, tmp_project, done)
    assert not (tmp_project / "mlflow.db").exists() and not (tmp_project / "mlartifacts").exists()
    server_log = log.read_text()
    assert not ERRORS.search(server_log), ERRORS.search(server_log)
    # the server's access log saw the trials' writes, and answered none of its requests with a server error
    requests = re.findall(r'"[A-Z]+ (\S+) HTTP/[\d.]+" (\d{3})', server_log)
    assert sum(path.endswith("/runs/log-batch") for path, _ in requests) >= 3 * TRIALS
    assert [r for r in requests if r[1].startswith("5")] == []
    # artifacts went through the server into its destination folder: every trial's config
    assert len(list(artifacts.rglob("config.yaml"))) >= TRIALS
    experiment = client.get_experiment_by_name("tabular_regression")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")


def test_tracking_server_without_a_url_fails_instead_of_writing_a_local_store(tmp_project):
    done = run_cli(tmp_project, "task=tabular_regression", "dataset.n_rows=300", "tracking=server", check=False)
    assert done.returncode != 0
    assert "MLEXP_TRACKING_SERVER" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_project / "mlflow.db").exists()


def test_a_10_job_parallel_sweep_fills_a_sqlite_store_in_wal_mode(tmp_project):
    database = tmp_project / "mlflow.db"
    done = run_cli(tmp_project, *SWEEP)
    # mlexp switches the store to WAL when it first opens it: readers and one writer work at once
    assert_complete_sweep(MlflowClient(f"sqlite:///{database}"), tmp_project, done)
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
