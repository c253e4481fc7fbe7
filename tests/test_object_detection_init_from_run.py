"""model.init_from=runs:/... looked up before the trial: what a server that hangs or refuses costs and says, which
trial's id the hint offers, and that what the check found is kept for that trial's train stage only."""

from __future__ import annotations

import json
import logging
import shlex
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import run_cli
from loopback_server import answering
from mlexp.cleanup_plan import store_backend
from mlexp.errors import DataError
from mlexp.tasks.object_detection.config_rules import CONSTRAINTS
from mlexp.tasks.object_detection.init_from_run import locate, problem
from mlexp.tracking import tags

# the rule as the runner and the sweep check ask it: `holds`, then `fix` when it does not
RULE = next(rule for rule in CONSTRAINTS if rule.keys[0] == "model.init_from")


def _refusal(init_from: str, uri: str, root: Path) -> str | None:
    refused = RULE.refusal((init_from, uri, str(root), "local", None))
    return None if refused is None else str(refused).removeprefix(f"model.init_from={init_from}: {RULE.rule}; ")


def test_a_server_that_hangs_costs_the_check_one_bounded_request_and_prints_no_retries(tmp_path, monkeypatch, caplog):
    # 22 s and two "[HYDRA] Retrying ... Read timed out" lines: the timeout was taken for "no such run", and the
    # hint's search of the experiments waited as long again
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")  # the user's own, kept under QUICK_CHECK: a quick test
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)  # QUICK_CHECK's: what earlier tests left
    caplog.set_level(logging.WARNING, logger="urllib3")
    swept = ["runs:/0123abcd/model/model.params", "runs:/4567cdef/model/model.params"]
    requests: list[str] = []
    with answering(None, requests=requests) as url:
        assert [problem(value, url, str(tmp_path), "local", None) for value in swept] == [None, None]
    # QUICK_CHECK's two tries of the first value's run, and nothing more: it asked the run and then searched the
    # experiments (two tries each), for each value of the sweep: 8 requests of 2 s
    assert len(requests) <= 2 and all("/runs/get" in path for path in requests), requests
    assert not [record for record in caplog.records if "Retrying" in record.getMessage()]


def test_a_server_that_refuses_to_read_the_run_says_so(tmp_path):
    # it said "no run 0123abcd in the tracking store" (or nothing): the account may not read it
    with answering(403) as url:
        said = _refusal("runs:/0123abcd/model/model.params", url, tmp_path)
    assert said == (
        f"the tracking server {url} refused the request (API request to endpoint /api/2.0/mlflow/runs/get failed with "
        "error code 403 != 200. Response body: ''); use an account the server lets read its experiments"
    )


# MLflow's answer to runs/get for an id no run has: what makes the check search the store for a trial of that name
NO_SUCH_RUN = (404, json.dumps({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run 'od-1150' not found"}))


def test_a_store_that_fails_the_search_for_a_trials_name_is_not_told_no_trial_has_it(tmp_path, monkeypatch):
    # the check and the train stage said "no run od-1150 in the tracking store; runs:/ takes a run id", a typo to look
    # for, when the store had failed the search for a trial of that name
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # refused at once, not after MLflow's backoff
    init_from = "runs:/od-1150/model/model.params"
    with answering(503, except_for={"/runs/get": NO_SUCH_RUN}) as url:
        assert _refusal(init_from, url, tmp_path) is None  # no verdict: the train stage asks again
        with pytest.raises(DataError) as failed:
            locate(init_from, MlflowClient(url))
    assert (
        str(failed.value)
        == f"model.init_from={init_from}: cannot reach the tracking server {url} (it answered HTTP 503 to every try)"
    )
    # a server that refuses this account the search says so before the trial, as it does for the run itself
    with answering(403, except_for={"/runs/get": NO_SUCH_RUN}) as url:
        said = _refusal(init_from, url, tmp_path)
    assert said == (
        f"the tracking server {url} refused the request (API request to endpoint /api/2.0/mlflow/experiments/search "
        "failed with error code 403 != 200. Response body: ''); use an account the server lets read its experiments"
    )


def test_help_with_init_from_asks_no_store(tmp_project: Path):
    # 13 s before the help, against a server that never answers: the help judged the rule, which asked for the run
    init_from = "runs:/0123abcd/model/model.params"
    requests: list[str] = []
    with answering(None, requests=requests) as url:
        started = time.monotonic()
        done = run_cli(
            tmp_project, "--help", "task=object_detection", f"model.init_from={init_from}", f"tracking.uri={url}"
        )
        took = time.monotonic() - started
    [line] = [line for line in done.stdout.splitlines() if line.startswith(f"  {RULE.rule}")]
    assert f"(now model.init_from={init_from})" in line and "broken" not in line, line
    assert requests == [] and took < 8, (requests, took)


def _trial(client: MlflowClient, experiment: str, name: str, status: str = "RUNNING", **run_tags: str) -> str:
    run = client.create_run(experiment, run_name=name, tags={tags.KIND: "trial", **run_tags}).info.run_id
    if status != "RUNNING":
        client.set_terminated(run, status)
    return run


def test_a_trial_that_failed_after_training_is_told_its_run_id(tmp_project_with_store: Path, tmp_path: Path):
    # a review: offering finished trials only refused a trial whose evaluate stage failed, though its id serves
    uri = f"sqlite:///{tmp_project_with_store / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("object_detection", artifact_location=(tmp_path / "artifacts").as_uri())
    failed = _trial(client, experiment, "object_detection-20261207-1150", "FAILED")
    train = client.create_run(experiment, tags={tags.MLFLOW_PARENT_RUN_ID: failed, tags.STAGE: "train"}).info.run_id
    (tmp_path / "model.params").write_bytes(b"weights")
    client.log_artifact(train, str(tmp_path / "model.params"), "model")
    said = _refusal("runs:/object_detection-20261207-1150/model/model.params", uri, tmp_project_with_store)
    assert said is not None and said.startswith(
        "object_detection-20261207-1150 is a trial's name, runs:/ takes its run id: "
        f"model.init_from=runs:/{failed}/model/model.params"
    )
    assert _refusal(f"runs:/{failed}/model/model.params", uri, tmp_project_with_store) is None  # and it serves
    # one that failed before training, or is still running, holds no weights: its id would be refused again
    for name, status in (("object_detection-20261207-1152", "FAILED"), ("object_detection-20261207-1153", "RUNNING")):
        trial = _trial(client, experiment, name, status)
        said = _refusal(f"runs:/{name}/model/model.params", uri, tmp_project_with_store)
        assert said is not None and trial not in said, said
        how = "ended FAILED" if status == "FAILED" else "has not finished (RUNNING)"
        assert said.startswith(f"{name} is a trial's name, but it {how} and never trained: "), said
    # a trial that trained, with a typo in the path: its id, whose check then names the path, not "never trained"
    said = _refusal("runs:/object_detection-20261207-1150/model/model.param", uri, tmp_project_with_store)
    assert said is not None and said.startswith(
        f"object_detection-20261207-1150 is a trial's name, runs:/ takes its run id: model.init_from=runs:/{failed}/"
    ), said
    said = _refusal(f"runs:/{failed}/model/model.param", uri, tmp_project_with_store)
    assert said is not None and "has no artifact model.param there" in said, said
    # a trial that reused another trial's train stage (a partial `dvc repro`) serves that component's weights
    reused = client.create_run(
        experiment,
        run_name="object_detection-20261207-1154",
        tags={"mlexp.kind": "trial", "mlexp.shared_component.train": train},
    ).info.run_id
    client.set_terminated(reused)
    said = _refusal("runs:/object_detection-20261207-1154/model/model.params", uri, tmp_project_with_store)
    assert said is not None and f"model.init_from=runs:/{reused}/model/model.params" in said, said
    assert _refusal(f"runs:/{reused}/model/model.params", uri, tmp_project_with_store) is None
    # two trials of one name, neither trained
    for _ in "ab":
        _trial(client, experiment, "object_detection-20261207-1155", "FAILED")
    said = _refusal("runs:/object_detection-20261207-1155/model/model.params", uri, tmp_project_with_store)
    assert said is not None and said.startswith(
        "object_detection-20261207-1155 names 2 trials, none of which trained: give the run id of a trial that trained"
    ), said


def test_what_the_check_found_is_kept_for_its_trial_only(tmp_project_with_store: Path, tmp_path: Path):
    # mlexp.run twice in one process: the refusal was repeated after the weights were logged, and the weights of
    # the trial's first train stage were used after it was run again
    uri = f"sqlite:///{tmp_project_with_store / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("object_detection", artifact_location=(tmp_path / "artifacts").as_uri())
    trial = _trial(client, experiment, "object_detection-20261207-1151")
    (tmp_path / "model.params").write_bytes(b"weights")

    def train_stage(start_time: int) -> str:
        parent = {tags.MLFLOW_PARENT_RUN_ID: trial, tags.STAGE: "train"}
        run = client.create_run(experiment, start_time=start_time, tags=parent).info.run_id
        client.log_artifact(run, str(tmp_path / "model.params"), "model")
        client.log_artifact(run, str(tmp_path / "model.params"), "other")
        return run

    init_from = f"runs:/{trial}/model/model.params"
    assert _refusal(init_from, uri, tmp_project_with_store) == f"run {trial} (nor its train component) has no " + (
        "artifact model.params there"
    )
    first = train_stage(1000)
    assert _refusal(init_from, uri, tmp_project_with_store) is None
    assert locate(init_from, client).run_id == first
    again = train_stage(2000)
    swept = [init_from, f"runs:/{trial}/other/model.params"]  # a sweep's jobs, checked before any trains
    assert [_refusal(value, uri, tmp_project_with_store) for value in swept] == [None, None]
    assert [(w.run_id, w.path) for w in (locate(value, client) for value in swept)] == [
        (again, "model/model.params"),
        (again, "other/model.params"),
    ]


def _component(client: MlflowClient, experiment: str, trial: str, stage: str, logged: Path | None = None) -> str:
    """A component of `trial` as the runner records it; the train stage's logs `logged` under model/."""
    component_tags = {tags.KIND: "component", tags.STAGE: stage, tags.MLFLOW_PARENT_RUN_ID: trial}
    run = client.create_run(experiment, run_name=stage.capitalize(), tags=component_tags).info.run_id
    if logged is not None:
        client.log_artifact(run, str(logged), "model")
    client.set_terminated(run, "FINISHED")
    return run


def test_a_trial_whose_training_was_deleted_is_told_so_and_how_to_restore_it(tmp_project_with_store: Path, tmp_path):
    # it said the trial of a partial `dvc repro` "never trained": it reused another trial's Training component, which
    # was deleted since (the MLflow UI deletes it with that trial)
    uri = f"sqlite:///{tmp_project_with_store / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("object_detection", artifact_location=(tmp_path / "artifacts").as_uri())
    (tmp_path / "model.params").write_bytes(b"weights")
    first = _trial(client, experiment, "object_detection-20261207-1160")
    training = _component(client, experiment, first, "train", tmp_path / "model.params")
    client.set_terminated(first)
    kept = _trial(
        client, experiment, "object_detection-20261207-1161", **{f"{tags.SHARED_COMPONENT_PREFIX}train": training}
    )
    _component(client, experiment, kept, "evaluate")
    client.set_terminated(kept)
    client.delete_run(training)

    def told(name: str, trial: str) -> list[list[str]]:
        """The restore commands the refusal of `name` gives, checked to offer `trial`'s run id once restored."""
        said = _refusal(f"runs:/{name}/model/model.params", uri, tmp_project_with_store) or ""
        assert said.startswith(
            f"{name} is a trial's name and it trained, but its Training component was deleted since, and its weights "
            "with it: restore it (`"
        ), said
        assert f"`), then give model.init_from=runs:/{trial}/model/model.params (" in said, said
        return [shlex.split(command) for command in said.split("`")[1::2]]

    restore = [f"MLFLOW_TRACKING_URI={uri}", "mlflow", "runs", "restore", "--run-id", training]
    assert told("object_detection-20261207-1161", kept) == [restore]
    assert told("object_detection-20261207-1160", first) == [restore]  # its own Training component, the same run
    client.restore_run(training)  # as the command does
    assert _refusal(f"runs:/{kept}/model/model.params", uri, tmp_project_with_store) is None
    # deleted for good (`mlflow gc`, with the SQL store's own hard delete): nothing to restore, the weights are gone
    client.delete_run(training)
    store_backend(client)._hard_delete_run(training)
    said = _refusal("runs:/object_detection-20261207-1161/model/model.params", uri, tmp_project_with_store)
    assert said is not None and said.startswith(
        "object_detection-20261207-1161 is a trial's name and it trained, but its weights are gone: the Training "
        f"component it reused, run {training}, is no longer in the tracking store; give the run id of a trial that "
        "trained"
    ), said
