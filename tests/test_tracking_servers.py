"""Remote stores: a real MLflow server on loopback, and a SageMaker-managed server's ARN (offline)."""

from __future__ import annotations

import contextlib

import pytest
from mlflow.tracking import MlflowClient

from conftest import TINY, cli_env, run_cli, running_mlflow_server, trials_of
from mlexp.tracking import TrackingStore


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


def test_a_server_whose_allowed_hosts_leave_out_the_address_used_says_to_list_it(
    tmp_project, tmp_path, empty_store, monkeypatch: pytest.MonkeyPatch
):
    with contextlib.ExitStack() as server:
        # `mlflow server --allowed-hosts ...` only passes its value to the server's app in this variable, and the
        # suite's server takes this process's environment; listing a name stops MLflow allowing localhost
        with monkeypatch.context() as server_env:
            server_env.setenv("MLFLOW_SERVER_ALLOWED_HOSTS", "mlflow.team.internal,mlflow.team.internal:5000")
            uri = server.enter_context(running_mlflow_server(tmp_path, template=empty_store))
        done = run_cli(tmp_project, "compare", "experiment=x", f"tracking.uri={uri}", check=False)
    address = uri.removeprefix("http://")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"mlexp compare: error: the tracking server {uri} refused the request: its host check does not allow "
        f"{address} ('Invalid Host header'); on the server, add {address} to `mlflow server --allowed-hosts` (or "
        "reach the server by a name listed there)"
    )


def test_sagemaker_tracking_server_arn_uses_the_sagemaker_mlflow_plugin(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/mlexp"
    store = TrackingStore.resolve(arn, tmp_path)
    assert store.uri == arn and store.artifact_root is None
    backend = store.client()._tracking_client.store
    assert type(backend).__name__ == "MlflowSageMakerStore"
    assert backend.get_host_creds().host == "https://eu-west-1.experiments.sagemaker.aws"
