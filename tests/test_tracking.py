"""The Tracker and the store, against a real SQLite MLflow store."""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from mlexp.tracking import TrackingStore, Trial
from mlexp.tracking.tracker import TRUNCATED


@pytest.fixture
def store(tmp_path: Path) -> TrackingStore:
    return TrackingStore.resolve(None, tmp_path)


def _trial(store: TrackingStore, buffer: int = 1000) -> Trial:
    return Trial.open(store.client(), store.experiment_id("exp"), "t", {}, buffer, curves=("loss",))


def test_a_long_epochs_values_reach_the_store_once_the_flush_interval_passed_not_at_the_components_end(store):
    """What the MLflow UI shows while a training runs: each step's values together, without waiting for a full batch.
    (A step logged before the interval has passed goes out once it has: test_tracking_flush.py.)"""
    client = store.client()
    for flush_s, stored in ((0.2, 2), (3600, 0)):
        trial = Trial.open(client, store.experiment_id("exp"), "t", {}, 1000, curves=("loss",), metric_flush_s=flush_s)
        with trial.component("Training", "train") as tracker:
            time.sleep(0.3)  # an epoch longer than the interval: its values go out as it logs them
            tracker.log_metrics({"loss": 1.0, "lr": 0.1}, step=1)
            found = [client.get_metric_history(tracker.run_id, name) for name in ("loss", "lr")]
            assert sum(len(history) for history in found) == stored
            curve = client.get_metric_history(trial.run_id, "loss")  # a declared curve reaches the trial as it goes
            assert len(curve) == stored // 2
        trial.close()


def test_default_store_is_a_sqlite_file_with_artifacts_beside_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = TrackingStore.resolve(None, tmp_path)
    assert store.uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = store.client().get_experiment(store.experiment_id("exp"))
    assert experiment.artifact_location == (tmp_path / "mlartifacts" / "exp").as_uri()


def test_relative_sqlite_uri_is_taken_from_the_project_root(tmp_path):
    store = TrackingStore.resolve("sqlite:///stores/m.db", tmp_path)
    assert store.uri == f"sqlite:///{tmp_path / 'stores' / 'm.db'}"


def test_environment_uri_is_used_when_config_names_none(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert TrackingStore.resolve(None, tmp_path).uri == "http://127.0.0.1:5999"
    assert TrackingStore.resolve("sqlite:////x/y.db", tmp_path).uri == "sqlite:////x/y.db"


def test_buffered_metrics_all_reach_the_component_and_curves_reach_the_trial(store):
    trial = _trial(store, buffer=300)
    with trial.component("Training", "train") as tracker:
        for step in range(1000):
            tracker.log_metric("loss", 1.0 / (step + 1), step=step)
            tracker.log_metric("learning_rate", 0.1 / (step + 1), step=step)
        tracker.log_parameters({"epochs": 3})
        component_id = tracker.run_id
    trial.close()
    client = store.client()
    for run_id in (component_id, trial.run_id):
        history = client.get_metric_history(run_id, "loss")
        assert sorted(m.step for m in history) == list(range(1000))
    assert len(client.get_metric_history(component_id, "learning_rate")) == 1000
    # not a declared curve: the trial's run carries its last value only
    [last] = client.get_metric_history(trial.run_id, "learning_rate")
    assert (last.step, last.value) == (999, 0.1 / 1000)
    assert client.get_run(component_id).data.params == {"epochs": "3"}
    assert client.get_run(trial.run_id).info.status == "FINISHED"


def test_long_parameter_values_are_truncated_not_fatal(store):
    trial = _trial(store)
    trial.log_params({"prompt": "x" * 10_000, "short": 1})
    trial.close()
    params = store.client().get_run(trial.run_id).data.params
    assert params["short"] == "1"
    assert params["prompt"].endswith(TRUNCATED) and len(params["prompt"]) <= 6000


def test_log_input_records_the_files_content_hash(store, tmp_path):
    data = tmp_path / "rows.csv"
    data.write_text("a,b\n1,2\n")
    trial = _trial(store)
    with trial.component("Pre-processing", "prepare") as tracker:
        tracker.log_input("raw data", "text/csv", data)
        tracker.log_output("missing output", "s3/uri", "s3://bucket/key")
        run_id = tracker.run_id
    run = store.client().get_run(run_id)
    assert run.data.tags["data_version.raw data"] == hashlib.md5(data.read_bytes()).hexdigest()
    assert run.data.tags["input.raw data.media_type"] == "text/csv"
    assert run.data.tags["output.missing output"] == "s3://bucket/key"
    assert "data_version.missing output" not in run.data.tags


def test_a_raising_component_is_failed_with_its_error(store):
    trial = _trial(store)
    with pytest.raises(RuntimeError), trial.component("Training", "train") as tracker:
        tracker.log_metric("loss", 1.0, step=1)
        raise RuntimeError("out of memory")
    trial.close(RuntimeError("out of memory"))
    client = store.client()
    component = client.get_run(tracker.run_id)
    assert component.info.status == "FAILED"
    assert component.data.tags["mlexp.error"] == "RuntimeError: out of memory"
    assert component.data.metrics["loss"] == 1.0  # what was logged before the error is kept
    assert client.get_run(trial.run_id).info.status == "FAILED"


def _create_experiment(uri: str) -> str:
    return TrackingStore(uri, None).experiment_id("raced")


def test_processes_racing_to_create_the_store_get_one_experiment(tmp_path):
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        ids = pool.map(_create_experiment, [uri] * 4)
    assert len(set(ids)) == 1
    assert [e.name for e in MlflowClient(uri).search_experiments()].count("raced") == 1
