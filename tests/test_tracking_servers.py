"""Remote stores: a real MLflow server on loopback, and a SageMaker-managed server's ARN (offline)."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from conftest import TINY, cli_env, run_cli, trials_of
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


def test_sagemaker_tracking_server_arn_uses_the_sagemaker_mlflow_plugin(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/mlexp"
    store = TrackingStore.resolve(arn, tmp_path)
    assert store.uri == arn and store.artifact_root is None
    backend = store.client()._tracking_client.store
    assert type(backend).__name__ == "MlflowSageMakerStore"
    assert backend.get_host_creds().host == "https://eu-west-1.experiments.sagemaker.aws"
