"""Multirun sweeps: parallel trials on the default SQLite store, a sweep run with the best trial."""

from __future__ import annotations

import math
import os
import re
import shutil
import socket
import time

import pytest
import yaml

from conftest import REPO, TINY, run_cli, store_client, trials_of
from mlexp.paths import experiment_folder

pytestmark = pytest.mark.slow
# a fresh store's set-up under parallel trials is the grid sweep's concern; the other sweeps start with one in place
STORE_EXISTS = pytest.mark.usefixtures("tmp_project_with_store")


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    project = tmp_path_factory.mktemp("sweep") / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    done = run_cli(
        project,
        "-m",
        "task=tabular_regression",
        "sweep=grid",
        "sweep.name=grid/a",  # a free-text name with a slash: its charts still get one folder
        "sweep.max_parallel_jobs=2",
        "model.l1_size=4,16",
        "model.l1_activation=relu,tanh",
        *TINY,
    )
    return project, done


def sweep_trials(project):
    """The grid sweep's trials: the rows of the task's experiment that carry the sweep's id."""
    return [t for t in trials_of(project) if "mlexp.sweep_id" in t.tags]


def test_parallel_sweep_loses_no_trial(grid_sweep):
    project, done = grid_sweep
    trials = sweep_trials(project)
    assert len(trials) == 4
    assert all(t.status == "FINISHED" for t in trials)
    assert all({"Training", "Evaluation"} <= t.component_names for t in trials)
    assert sorted((t.params["model.l1_size"], t.params["model.l1_activation"]) for t in trials) == [
        ("16", "relu"),
        ("16", "tanh"),
        ("4", "relu"),
        ("4", "tanh"),
    ]
    assert "database is locked" not in done.stderr


def test_a_sweep_of_architectures_runs_preprocessing_once_and_every_trial_links_to_it(grid_sweep):
    project, _ = grid_sweep
    trials = sweep_trials(project)
    [owner] = [t for t in trials if "Pre-processing" in t.component_names]
    component = owner.components["Pre-processing"]
    assert {t.tags["mlexp.shared_component.prepare"] for t in trials} == {component}
    client = store_client(project)
    for trial in trials:
        inputs = client.get_run(trial.run_id).inputs.dataset_inputs
        assert [i.dataset.name for i in inputs] == ["preprocessed data"]
        assert trial.metrics["rows_train"] == owner.metrics["rows_train"]  # the shared component's figures


def test_a_dataset_path_to_no_file_is_refused_with_the_packaged_data_cached(grid_sweep):
    project, _ = grid_sweep
    # the sweep published the packaged abalone.data's pre-processing: a path to no file is never served from it
    missing = run_cli(project, "task=tabular_regression", *TINY, "dataset.path=nowhere/abalone.data", check=False)
    assert missing.returncode == 2 and "dataset.path=nowhere/abalone.data: no such file" in missing.stderr


def test_sweep_trials_are_top_level_rows_grouped_by_tags_with_the_record_elsewhere(grid_sweep):
    project, done = grid_sweep
    trials = sweep_trials(project)
    client = store_client(project)
    sweep_ids = {t.tags["mlexp.sweep_id"] for t in trials}
    assert len(sweep_ids) == 1
    sweep = client.get_run(sweep_ids.pop())
    assert sweep.data.tags["mlexp.kind"] == "sweep"
    # trials are rows of the task's experiment, not children of the sweep; the record is in a companion experiment
    assert all("mlflow.parentRunId" not in t.tags for t in trials)
    assert {t.tags["mlexp.sweep_name"] for t in trials} == {sweep.info.run_name}
    assert client.get_experiment(sweep.info.experiment_id).name == "tabular_regression-sweeps"
    experiment = client.get_experiment_by_name("tabular_regression")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert f"sweep {sweep.info.run_name} (id {sweep.info.run_id})" in done.stdout
    best = min(trials, key=lambda t: t.metrics["test_msle"])
    assert [t.run_id for t in trials if t.tags.get("mlexp.best_in_sweep") == "true"] == [best.run_id]
    assert sweep.data.tags["mlexp.best_trial"] == best.run_id
    assert sweep.data.metrics["best_test_msle"] == pytest.approx(best.metrics["test_msle"])
    assert f"best trial: {best.name}" in done.stdout
    artifacts = {a.path for a in client.list_artifacts(sweep.info.run_id, "comparison")}
    assert "comparison/train_loss_by_step.png" in artifacts
    assert "comparison/model_l1_size_vs_test_msle.png" in artifacts


def test_the_sweeps_charts_are_in_one_folder_named_after_it(grid_sweep):
    project, done = grid_sweep
    [name] = re.findall(r"mlexp compare sweep=(\S+)", done.stdout)
    assert name.startswith("grid/a-")
    sweeps = project / "outputs" / "sweeps" / "tabular_regression"
    [folder] = sweeps.iterdir()  # not grid/a-…: a folder per part of the name
    assert folder.name == experiment_folder(name) and folder.name.startswith("grid_a-")
    assert (folder / "train_loss_by_step.png").stat().st_size > 0


def test_compare_prints_trials_best_first_and_writes_charts(grid_sweep):
    project, _ = grid_sweep
    out = run_cli(project, "compare", "task=tabular_regression").stdout
    lines = [line for line in out.splitlines() if "-trial-" in line]
    assert len(lines) == 4
    header = next(line for line in out.splitlines() if line.startswith("#"))
    assert "model.l1_size" in header and "model.l1_activation" in header and "test_msle" in header
    column = header.split().index("test_msle")
    values = [float(line.split()[column]) for line in lines]
    assert values == sorted(values)
    charts = project / "outputs" / "compare" / "tabular_regression"
    assert (charts / "train_loss_by_step.png").stat().st_size > 0
    assert (charts / "model_l1_size_vs_test_msle.png").stat().st_size > 0


def test_compare_finds_a_sweep_by_its_printed_name_without_a_task(grid_sweep):
    project, done = grid_sweep
    [name] = re.findall(r"mlexp compare sweep=(\S+)", done.stdout)
    out = run_cli(project, "compare", f"sweep={name}").stdout
    assert f"sweep {name} in experiment tabular_regression: 4 trials" in out
    assert len([line for line in out.splitlines() if "-trial-" in line]) == 4
    [url] = re.findall(r"^MLflow UI: (\S+)$", out, re.MULTILINE)
    assert "/#/experiments/" in url


def test_compare_of_an_unknown_experiment_fails_clearly(grid_sweep):
    project, _ = grid_sweep
    done = run_cli(project, "compare", "experiment=nothing-here", check=False)
    assert done.returncode != 0
    assert "no trials in experiment 'nothing-here'" in done.stderr
    done = run_cli(project, "compare", "task=tabular_regresion", check=False)
    assert (done.returncode, done.stderr.splitlines()[0]) == (
        2,
        "mlexp compare: error: task='tabular_regresion' is not a task; did you mean tabular_regression? choose one "
        "of: anomaly_detection, churn_incentives, document_extraction, object_detection, recommendation, "
        "tabular_regression, text_classification",
    )


def test_compare_against_a_server_that_is_down_fails_in_seconds_in_one_line(tmp_project):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    started = time.monotonic()
    done = run_cli(
        tmp_project, "compare", "task=tabular_regression", f"tracking.uri=http://127.0.0.1:{port}", check=False
    )
    assert time.monotonic() - started < 60  # MLflow's own retries take minutes
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"mlexp compare: error: cannot reach the tracking server http://127.0.0.1:{port} (Connection refused); "
        "check that it runs and that the address is right (tracking.uri, or $MLFLOW_TRACKING_URI)"
    )


@STORE_EXISTS
def test_tpe_sweep_minimises_the_task_objective(tmp_project):
    run_cli(
        tmp_project,
        "-m",
        "task=tabular_regression",
        "sweep=tpe",
        "sweep.max_jobs=2",  # each trial its own draw, the best of them the study's: two show it as well as more
        "sweep.max_parallel_jobs=1",
        "model.learning_rate=tag(log, interval(0.001, 0.1))",
        *TINY,
    )
    trials = trials_of(tmp_project)
    assert len(trials) == 2
    assert len({t.params["model.learning_rate"] for t in trials}) == 2
    assert all(0.001 <= float(t.params["model.learning_rate"]) <= 0.1 for t in trials)
    assert all(not math.isnan(t.metrics["test_msle"]) for t in trials)
    study = (tmp_project / "outputs" / "multirun" / "tabular_regression").glob("*/optimization_results.yaml")
    results = yaml.safe_load(next(study).read_text())
    assert min(t.metrics["test_msle"] for t in trials) == pytest.approx(results["best_value"])


@STORE_EXISTS
def test_a_failed_trial_fails_the_sweep_but_not_the_other_trials(tmp_project):
    bad = tmp_project / "bad.data"
    bad.write_text("X,1,2,3,4,5,6,7,8\n")
    done = run_cli(tmp_project, "-m", "task=tabular_regression", f"dataset.path={bad},null", *TINY, check=False)
    assert done.returncode == 1
    statuses = sorted(t.status for t in trials_of(tmp_project))
    assert statuses == ["FAILED", "FINISHED"]
    assert "1 job(s) of sweep" in done.stderr


@STORE_EXISTS
def test_preprocessing_runs_again_when_its_config_or_input_file_changes_or_the_shared_folder_is_deleted(tmp_project):
    from mlexp.data import abalone

    data = tmp_project / "abalone.data"
    abalone.export_packaged(data)
    seen: set[str] = set()

    def next_trial(*overrides: str):
        run_cli(tmp_project, "task=tabular_regression", *TINY, f"dataset.path={data}", *overrides)
        [trial] = [t for t in trials_of(tmp_project) if t.run_id not in seen]
        seen.add(trial.run_id)
        return trial

    first = next_trial()
    assert "Pre-processing" in first.component_names
    changed = next_trial("preprocessing.train_test_split=0.7")
    assert "Pre-processing" in changed.component_names
    assert changed.metrics["rows_train"] == 210  # 70% of 300 rows
    # a change of the model only, after another config's pre-processing was published: the first one's is reused
    reused = next_trial("model.l1_size=8")
    assert "Pre-processing" not in reused.component_names
    assert reused.tags["mlexp.shared_component.prepare"] == first.components["Pre-processing"]

    data.write_text("".join(data.read_text().splitlines(keepends=True)[:-1]))  # the same path, one row fewer
    assert "Pre-processing" in next_trial().component_names
    # a value corrected in place: the same size, a later modification time (set, as two writes within the file
    # system's clock tick may share one)
    written = data.stat().st_mtime_ns
    data.write_text(data.read_text().replace("M,0.455,", "M,0.456,", 1))
    os.utime(data, ns=(written + 10**9, written + 10**9))
    assert "Pre-processing" in next_trial().component_names

    shutil.rmtree(tmp_project / ".mlexp" / "shared")
    assert "Pre-processing" in next_trial().component_names


@STORE_EXISTS
def test_the_abalone_tpe_sweep_searches_the_keys_its_file_lists(tmp_project):
    sweep_file = yaml.safe_load((REPO / "conf" / "sweep" / "abalone_tpe.yaml").read_text())
    searched = set(sweep_file["hydra"]["sweeper"]["params"])
    run_cli(
        tmp_project,
        "-m",
        "task=tabular_regression",
        "sweep=abalone_tpe",
        "sweep.max_jobs=2",
        "sweep.max_parallel_jobs=1",
        *TINY,
    )
    trials = trials_of(tmp_project)
    assert [t.status for t in trials] == ["FINISHED", "FINISHED"]
    assert all(searched <= t.params.keys() for t in trials)
    assert all(t.params["model.l1_size"] in {"8", "16", "32", "64", "128"} for t in trials)
    assert all(t.params["model.l2_size"] in {"4", "8", "16", "32"} for t in trials)
    assert all(t.params["model.l1_activation"] in {"relu", "tanh"} for t in trials)
    # sampled, not the config's 0.01: two draws from the log interval
    rates = {float(t.params["model.learning_rate"]) for t in trials}
    assert len(rates) == 2 and all(0.001 <= rate <= 0.1 for rate in rates)
    study = (tmp_project / "outputs" / "multirun" / "tabular_regression").glob("*/optimization_results.yaml")
    assert set(yaml.safe_load(next(study).read_text())["best_params"]) == searched
