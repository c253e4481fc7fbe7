"""A trial's name given as deploy.source: the run id offered is one that serves (a finished trial), with the
experiment that holds it as an override a shell and Hydra read back. Names and ids typed with quotes or a trailing
backslash, which MLflow's search filters hold only when quoted for them (tracking.tags.quoted), or not at all."""

from __future__ import annotations

import json
import shlex
import socket
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from mlflow.tracking import MlflowClient

from conftest import composed_with_hydra, run_cli
from loopback_server import answering
from mlexp.config.validate import check_model_name
from mlexp.errors import ConfigError
from mlexp.serving.trained_components import run_in_experiment
from mlexp.serving.trial_names import no_trained_trial
from mlexp.tasks.object_detection.deployment import _download_model as object_detection_model
from mlexp.tracking import tags


def test_a_trial_of_other_experiments_is_offered_only_finished_and_quoted(tmp_project_with_store: Path):
    # the other experiments' branch offered a FAILED trial, only the first of several, and `team a` unquoted
    client = MlflowClient(f"sqlite:///{tmp_project_with_store / 'mlflow.db'}")
    read = client.create_experiment("object_detection")
    ids = {}
    for experiment, name, status in [
        ("team a", "object_detection-20261207-1201", "FINISHED"),
        ("od_v2", "object_detection-20261207-1202", "FAILED"),
        ("od_v2", "object_detection-20261207-1203", "FINISHED"),
        ("od_v3", "object_detection-20261207-1203", "FINISHED"),
    ]:
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        run = client.create_run(experiment_id, run_name=name, tags={tags.KIND: "trial"}).info.run_id
        client.set_terminated(run, status)
        ids[(experiment, name)] = run

    def said(name: str) -> str:
        return no_trained_trial(client, name, "object_detection", read).removeprefix(f"deploy.source={name}: ")

    offered = said("object_detection-20261207-1201")
    assert offered == (
        "object_detection-20261207-1201 is a trial of experiment 'team a', which the deploy stage reads with "
        f"'tracking.experiment_name=team a' deploy.source={ids[('team a', 'object_detection-20261207-1201')]}"
    )
    override = shlex.split(offered.split(" reads with ")[1])[0]
    assert OverridesParser.create().parse_override(override).value() == "team a"
    assert said("object_detection-20261207-1202") == (
        "object_detection-20261207-1202 is a trial's name, but it ended FAILED: give a finished object_detection "
        "trial's run id"
    )
    both = said("object_detection-20261207-1203")
    assert both.startswith("object_detection-20261207-1203 names 2 trials of other experiments: give ")
    for experiment in ("od_v2", "od_v3"):
        assert (
            f"tracking.experiment_name={experiment} deploy.source={ids[(experiment, 'object_detection-20261207-1203')]}"
            in both
        )


@pytest.mark.parametrize("task", ["object_detection", "text_classification"])
def test_a_source_with_a_quote_is_told_no_trial_has_that_id(tmp_project_with_store: Path, task: str):
    # a `'` reached MLflow's search filter as a trial's run id: its parse error, not the one line of a wrong source.
    # Given quoted, as Hydra's grammar asks (the shell's `'deploy.source="it'"'"'s"'`)
    MlflowClient(f"sqlite:///{tmp_project_with_store / 'mlflow.db'}").create_experiment(task)
    done = run_cli(
        tmp_project_with_store, f"task={task}", "stage=deploy", "deploy=local", 'deploy.source="it\'s"', check=False
    )
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    said, _, trial = line.partition(" (trial ")
    assert said == (
        f"mlexp: error: stage 'deploy' failed: deploy.source=it's: no trial run with a trained model has this id; use "
        f"deploy.source=champion, best, trial or the run id of a trained {task} trial"
    )
    assert trial.endswith(" marked FAILED)")


def test_quoted_names_are_found_by_mlflows_searches_and_unquotable_ones_are_refused(tmp_project_with_store: Path):
    # MLflow never unescapes: a `'` ended a single-quoted value, and its parser reads a backslash before the closing
    # quote as part of the value
    client = MlflowClient(f"sqlite:///{tmp_project_with_store / 'mlflow.db'}")
    experiment = client.create_experiment("names")
    for name in ("it's", 'say "hi"', "a\\b"):
        run = client.create_run(experiment, run_name=name, tags={tags.KIND: "trial"})
        [found] = client.search_runs([experiment], f"attributes.run_name = {tags.quoted(name)}")
        assert found.info.run_id == run.info.run_id
        client.create_registered_model(name)
        client.create_model_version(name, "file:///nowhere", run_id=run.info.run_id)
        [version] = client.search_model_versions(f"name = {tags.quoted(name)} and run_id = '{run.info.run_id}'")
        assert version.name == name
    for name in ('it\'s "both"', "ends in \\"):
        assert not tags.quotable(name)
        with pytest.raises(ValueError):
            tags.quoted(name)
    assert tags.is_run_id(run.info.run_id) and not tags.is_run_id("it's") and not tags.is_run_id("")
    # a trial's name or a source no filter can hold is looked up as no trial, and said so in the one line
    for source in ('it\'s "both"', "ends in \\"):
        assert no_trained_trial(client, source, "object_detection", experiment).startswith(
            f"deploy.source={source}: no trial run with a trained model has this id"
        )
        assert object_detection_model(client, experiment, source, tmp_project_with_store) is None
        assert run_in_experiment(client, source, experiment) is None  # text classification's lookup


@pytest.mark.parametrize("name", ["a'b\"c", "ends in \\"])
def test_the_model_name_check_refuses_both_kinds_of_quote_and_a_trailing_backslash(tmp_project_with_store, name):
    config = composed_with_hydra(tmp_project_with_store, "task=tabular_regression", "deploy=registry")
    config.deploy.model_name = name
    refusal = (
        f"deploy.model_name={name}: MLflow's searches cannot hold a name with both kinds of quote, or one ending in a "
        "backslash; choose another name"
    )
    with pytest.raises(ConfigError) as refused:
        check_model_name(config)
    assert str(refused.value) == refusal


@pytest.mark.parametrize("sweep", [(), ("-m",)], ids=["trial", "sweep"])
def test_a_model_name_no_search_can_hold_is_refused_before_training(tmp_project_with_store: Path, sweep):
    done = run_cli(
        tmp_project_with_store,
        *(*sweep, "task=tabular_regression", "deploy=registry", "deploy.model_name='a\\'b\"c'", "model.epochs=1"),
        check=False,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "mlexp: error: deploy.model_name=a'b\"c: MLflow's searches cannot hold a name with both kinds of quote, or one "
        "ending in a backslash; choose another name"
    )
    # refused before any trial or sweep record was opened
    client = MlflowClient(f"sqlite:///{tmp_project_with_store / 'mlflow.db'}")
    assert [e.name for e in client.search_experiments()] == ["Default"]


def test_a_run_id_that_is_deleted_or_of_another_experiment_is_told_why_it_is_not_served(tmp_path):
    # each said "no trial run with a trained model has this id", though the trial exists
    store = tmp_path / "my store" / "mlflow.db"  # a space the printed command must quote
    store.parent.mkdir()
    client = MlflowClient(f"sqlite:///{store}")
    read, other, gone = (client.create_experiment(name) for name in ("object_detection", "team a", "old"))

    def trial(experiment: str, name: str, status: str = "FINISHED", trained: bool = True) -> str:
        run = client.create_run(experiment, run_name=name, tags={tags.KIND: "trial", tags.TASK: "object_detection"})
        if trained:
            component_tags = {tags.KIND: "component", tags.STAGE: "train", tags.MLFLOW_PARENT_RUN_ID: run.info.run_id}
            client.set_terminated(client.create_run(experiment, run_name="Training", tags=component_tags).info.run_id)
        client.set_terminated(run.info.run_id, status)
        return run.info.run_id

    def training(trial_id: str, experiment: str) -> str:
        [component] = client.search_runs([experiment], tags.component_filter(trial_id, "train"))
        return component.info.run_id

    deleted, both, elsewhere, in_gone = (
        trial(read, "od-1"),
        trial(read, "od-2"),
        trial(other, "od-3"),
        trial(gone, "od-4"),
    )
    component = training(both, read)
    for run_id in (deleted, both, component):
        client.delete_run(run_id)
    client.delete_experiment(gone)

    def said(source: str) -> str:
        return no_trained_trial(client, source, "object_detection", read).removeprefix(f"deploy.source={source}: ")

    def commands(line: str) -> list[list[str]]:
        return [shlex.split(quoted) for quoted in line.split("`")[1::2]]

    restore = ["mlflow", "runs", "restore", "--run-id"]
    assert said(deleted).startswith(f"run {deleted} is deleted; restore it (`")
    assert commands(said(deleted)) == [[f"MLFLOW_TRACKING_URI=sqlite:///{store}", *restore, deleted]]
    # the MLflow UI deletes a run's children with it: restoring the trial alone would serve nothing
    assert said(both).startswith(f"run {both} is deleted; restore it and its deleted Training components (`")
    assert [command[1:] for command in commands(said(both))] == [[*restore, both], [*restore, component]]
    assert said(in_gone).startswith(f"run {in_gone} is in experiment 'old', which is deleted; restore it (`")
    assert said(in_gone).endswith(f"`), then serve it with tracking.experiment_name=old deploy.source={in_gone}")
    assert commands(said(in_gone))[0][1:] == ["mlflow", "experiments", "restore", "--experiment-id", gone]
    assert said(elsewhere) == (
        f"{elsewhere} is a trial of experiment 'team a', which the deploy stage reads with "
        f"'tracking.experiment_name=team a' deploy.source={elsewhere}"
    )
    # what restoring or another experiment would not make servable gets the general line
    general = "no trial run with a trained model has this id; use deploy.source=champion, best, trial or the run id"
    failed, untrained = trial(other, "od-5", status="FAILED"), trial(read, "od-6", trained=False)
    client.delete_run(untrained)
    untrained_gone = trial(client.create_experiment("older"), "od-7", trained=False)
    client.delete_experiment(client.get_run(untrained_gone).info.experiment_id)
    for source in (failed, training(elsewhere, other), untrained, untrained_gone):
        assert said(source).startswith(general), source


def test_a_store_that_fails_the_search_for_a_trials_name_says_so_in_one_line(monkeypatch):
    # the listing that starts the search for a trial of that name was outside the guard: MLflow's error escaped; then
    # the failure was the general line, as if no trial had that name
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # refused at once, not after MLflow's backoff
    with socket.socket() as closed:  # a loopback port nothing listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    assert no_trained_trial(MlflowClient(url), "od-1", "object_detection") == (
        "deploy.source=od-1: no trial run with a trained model has this id, and the search for a trial of this name "
        f"failed: cannot reach the tracking server {url} (Connection refused)"
    )
    # the listing answered, the search of its experiments did not
    experiments = json.dumps({"experiments": [{"experiment_id": "1", "name": "object_detection"}]})
    with answering(503, except_for={"/experiments/search": (200, experiments)}) as url:
        said = no_trained_trial(MlflowClient(url), "od-1", "object_detection")
    assert said == (
        "deploy.source=od-1: no trial run with a trained model has this id, and the search for a trial of this name "
        f"failed: cannot reach the tracking server {url} (it answered HTTP 503 to every try)"
    )
