"""A real `mlexp` run leaves one trial with its components, params, step metrics and artifacts."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import REPO, TINY, cli_env, run_cli, store_client, trials_of
from mlexp.data import abalone
from run_folders import run_folder


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    project = tmp_path_factory.mktemp("run") / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    done = run_cli(project, "task=tabular_regression", *TINY, "model.l1_size=8", "seed=7")
    return project, done


def test_trial_has_the_posts_components(finished_run):
    project, _ = finished_run
    [trial] = trials_of(project)
    assert trial.status == "FINISHED"
    assert trial.component_names == {"Pre-processing", "Training", "Evaluation"}
    assert trial.params["model.l1_size"] == "8"
    assert trial.params["preprocessing.train_test_split"] == "0.8"
    assert trial.params["seed"] == "7"


def test_train_loss_is_a_step_metric_on_the_trial_and_its_component(finished_run):
    project, _ = finished_run
    [trial] = trials_of(project)
    client = store_client(project)
    for run_id in (trial.run_id, trial.components["Training"]):
        history = client.get_metric_history(run_id, "train_loss")
        assert sorted(m.step for m in history) == [1, 2]
    assert 0 < trial.metrics["test_msle"] < 10
    assert trial.metrics["test_mae"] > 0


def test_trial_records_provenance(finished_run):
    project, _ = finished_run
    [trial] = trials_of(project)
    assert trial.tags["mlexp.seed"] == "7"
    assert "model.l1_size=8" in trial.tags["mlexp.command"]
    assert "model.l1_size=8" in trial.tags["mlexp.overrides"]
    assert trial.tags["git.commit"]
    assert trial.tags["git.dirty"] in ("true", "false")
    assert trial.tags["version.mxnet"] == "1.9.1"
    client = store_client(project)
    config = client.download_artifacts(trial.run_id, "config.yaml", str(project / "dl"))
    assert "l1_size: 8" in Path(config).read_text()
    overrides = client.download_artifacts(trial.run_id, "overrides.txt", str(project / "dl"))
    assert Path(overrides).read_text().splitlines() == [
        "task=tabular_regression",
        *TINY,
        "model.l1_size=8",
        "seed=7",
    ]


def test_preprocessing_records_data_versions_and_preprocessors(finished_run):
    project, _ = finished_run
    [trial] = trials_of(project)
    client = store_client(project)
    component = client.get_run(trial.components["Pre-processing"])
    packaged = abalone.packaged_copy()
    assert component.data.tags["data_version.raw data"] == hashlib.md5(packaged.read_bytes()).hexdigest()
    assert component.data.params["train_test_split"] == "0.8"
    assert [d.dataset.name for d in component.inputs.dataset_inputs] == ["raw data"]
    fitted = client.download_artifacts(component.info.run_id, "preprocessors/preprocessors.json", str(project / "dl"))
    scaler = json.loads(Path(fitted).read_text())
    assert scaler["sex_codes"] == ["M", "F", "I"] and "length" in scaler["means"]


def test_metrics_json_holds_the_headline_metrics(finished_run):
    project, done = finished_run
    [trial] = trials_of(project)
    reports = run_folder(done) / "reports"
    metrics = json.loads((reports / "metrics.json").read_text())
    assert metrics["test_msle"] == pytest.approx(trial.metrics["test_msle"])
    assert set(metrics) == {"test_msle", "test_mae", "final_train_loss"}
    assert "mlflow ui --backend-store-uri" in done.stdout
    assert (reports / "plots" / "predicted_vs_actual.png").stat().st_size > 0
    # a plain run never writes the folders DVC tracks
    assert not (project / "reports").exists() and not (project / "data").exists()


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_same_seed_gives_the_same_metrics(tmp_project):
    # fresh interpreters: forks of one would share every library's random state and Python's hash seed
    for _ in range(2):
        run_cli(tmp_project, "task=tabular_regression", *TINY, "seed=3", fresh=True)
    run_cli(tmp_project, "task=tabular_regression", *TINY, "seed=4", fresh=True)
    # MXNet without its engine thread (the README's advice for sweeps of small networks): the same numbers
    naive = {**cli_env(tmp_project), "MXNET_ENGINE_TYPE": "NaiveEngine"}
    run_cli(tmp_project, "task=tabular_regression", *TINY, "seed=3", fresh=True, env=naive)
    by_seed: dict[str, list[float]] = {}
    for trial in trials_of(tmp_project):
        by_seed.setdefault(trial.params["seed"], []).append(trial.metrics["test_msle"])
    assert by_seed["3"][0] == by_seed["3"][1] == by_seed["3"][2]
    assert by_seed["4"][0] != by_seed["3"][0]


def test_mlflow_tracking_uri_is_honoured_and_tracking_uri_override_wins(tmp_project, tmp_path):
    env = cli_env(tmp_project)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'from_env.db'}"
    run_cli(tmp_project, "task=tabular_regression", *TINY, env=env)
    assert (tmp_path / "from_env.db").exists()
    assert not (tmp_project / "mlflow.db").exists()

    override = tmp_path / "from_override.db"
    run_cli(tmp_project, "task=tabular_regression", *TINY, f"tracking.uri=sqlite:///{override}", env=env)
    assert len(trials_of(tmp_project, client=MlflowClient(f"sqlite:///{override}"))) == 1
    assert len(trials_of(tmp_project, client=MlflowClient(f"sqlite:///{tmp_path / 'from_env.db'}"))) == 1


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_experiment_name_override(tmp_project):
    run_cli(tmp_project, "task=tabular_regression", *TINY, "tracking.experiment_name=abalone-age")
    assert len(trials_of(tmp_project, experiment="abalone-age")) == 1


def test_predicted_vs_actual_is_in_rings_and_titled_with_the_splits_scores(monkeypatch, tmp_path):
    import numpy as np

    from mlexp import charts
    from mlexp.tasks.tabular_regression.stages import scored_title

    figures: list = []
    monkeypatch.setattr(charts, "save_figure", lambda fig, path: figures.append(fig) or path)
    title = scored_title(836, 0.0512, 1.53)
    charts.predicted_vs_actual(np.array([5.0, 9.0]), np.array([6.0, 8.0]), tmp_path / "p.png", title, "rings")
    [ax] = figures[0].axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("actual (rings)", "predicted (rings)")
    assert "test split (836 rows)" in ax.get_title() and "MSLE 0.0512, MAE 1.53 rings" in ax.get_title()
