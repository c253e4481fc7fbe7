"""Remote stores: a real MLflow server on loopback, and a SageMaker-managed server's ARN (offline)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import TINY, cli_env, run_cli, trials_of
from mlexp.tracking import TrackingStore


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path):
    port = _free_port()
    database = f"sqlite:///{tmp_path / 'server.db'}"
    MlflowClient(database).search_experiments()  # create the schema here, not in the server's start-up
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # the server starts workers: stop them as one process group
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                MlflowClient(url).search_experiments()
                break
            except Exception:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start within 90 s")
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_trial_goes_to_an_mlflow_server(tmp_project, mlflow_server):
    env = cli_env(tmp_project)
    env["MLFLOW_TRACKING_URI"] = mlflow_server
    run_cli(tmp_project, "task=tabular_regression", *TINY, env=env)
    [trial] = trials_of(tmp_project, client=MlflowClient(mlflow_server))
    assert trial.status == "FINISHED"
    assert trial.component_names == {"Pre-processing", "Training", "Evaluation"}
    assert not (tmp_project / "mlflow.db").exists()
    artifacts = {a.path for a in MlflowClient(mlflow_server).list_artifacts(trial.run_id)}
    assert "config.yaml" in artifacts


def test_sagemaker_tracking_server_arn_uses_the_sagemaker_mlflow_plugin(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/mlexp"
    store = TrackingStore.resolve(arn, tmp_path)
    assert store.uri == arn and store.artifact_root is None
    backend = store.client()._tracking_client.store
    assert type(backend).__name__ == "MlflowSageMakerStore"
    assert backend.get_host_creds().host == "https://eu-west-1.experiments.sagemaker.aws"
