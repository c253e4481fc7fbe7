"""tracking.sagemaker_mirror=true: each trial, as written to MLflow, is also written to SageMaker Experiments.

Trials run in this process (MLEXP_TRACKING_WRITER=inline: the writer's StoreWriter is the one that mirrors, in
the writer process otherwise) under moto, and every SageMaker request is asserted.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.handlers import BUILTIN_HANDLERS

import sagemaker_aws as fake_aws
from conftest import REPO, TINY, _free_port, cli_env, private_writer_env, run_cli, store_client, trials_of
from mlexp import commands
from mlexp.api import run
from mlexp.errors import MlexpError
from mlexp.tracking import TrackingStore, Trial
from mlexp.tracking.sagemaker_experiments import (
    NO_CREDENTIALS,
    NO_REGION,
    SageMakerMirrorSetupError,
    experiment_name,
    run_entity_name,
)
from mlexp.tracking.sagemaker_mirror import MIRROR_TAG
from mlexp.tracking.store_writer import StoreWriter
from mlexp.tracking.trial_state import read_trial_state

sagemaker_aws = fake_aws.sagemaker_aws  # the shared fixture (tests/sagemaker_aws.py), by its name

TASK = "tabular_regression"
MIRROR = "tracking.sagemaker_mirror=true"
VALID_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}")
# what each request is about, to read a call sequence at a glance
SUBJECT = ("TrialComponentName", "TrialName", "ExperimentName")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project: later trials reuse the first trial's Pre-processing (a trial component shared by trials)."""
    folder = tmp_path_factory.mktemp("mirror") / "project"
    folder.mkdir()
    shutil.copytree(REPO / "conf", folder / "conf")
    return folder


@pytest.fixture
def inline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLEXP_TRACKING_WRITER", "inline")  # the writer in this process, where moto's mock is


def sequence(aws: fake_aws.FakeAws, start: int = 0) -> list[tuple[str, str]]:
    return [(op, _subject(p)) for _, op, p in aws.requests[start:]]


def _subject(params: dict[str, Any]) -> str:
    if "SearchExpression" in params:  # is this component in this trial already?
        component, trial = (f["Value"] for f in params["SearchExpression"]["Filters"])
        return f"{component} in {trial}"
    return str(next(params[key] for key in SUBJECT if key in params))


def updates(aws: fake_aws.FakeAws, component: str) -> dict[str, Any]:
    """Everything UpdateTrialComponent set on `component`, merged by key as the service merges it."""
    merged: dict[str, Any] = {}
    for params in aws.calls("UpdateTrialComponent"):
        if params["TrialComponentName"] == component:
            for key, value in params.items():
                merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    return merged


def metrics(aws: fake_aws.FakeAws, component: str) -> list[tuple[str, float, int]]:
    return [
        (m["MetricName"], m["Value"], m["Step"])
        for params in aws.calls("BatchPutMetrics")
        if params["TrialComponentName"] == component
        for m in params["MetricData"]
    ]


def test_a_trial_and_a_shared_component_are_mirrored_request_by_request(
    sagemaker_aws: fake_aws.FakeAws, project: Path, inline: None
) -> None:
    first = run(TASK, [*TINY, MIRROR], root=project)
    second = run(TASK, [*TINY, MIRROR, "model.l1_size=8"], root=project)

    client = store_client(project)
    experiment = "tabular-regression-" + hashlib.sha1(TASK.encode()).hexdigest()[:8]
    trial = f"{first.name.replace('_', '-')}-{first.run_id}"
    views = {view.run_id: view for view in trials_of(project)}
    stage = {name: f"{name.lower()}-{run_id}" for name, run_id in views[first.run_id].components.items()}
    prepare, training, evaluation = stage["Pre-processing"], stage["Training"], stage["Evaluation"]
    second_trial = f"{second.name.replace('_', '-')}-{second.run_id}"
    second_stages = {f"{name.lower()}-{run_id}" for name, run_id in views[second.run_id].components.items()}
    second_training, second_evaluation = sorted(second_stages, reverse=True)

    assert sequence(sagemaker_aws) == [
        ("CreateExperiment", experiment),
        ("CreateTrial", trial),
        ("CreateTrialComponent", trial),  # the trial's own config, metrics and artifacts
        ("AssociateTrialComponent", trial),
        ("UpdateTrialComponent", trial),  # its config, sent as its first stage starts
        ("CreateTrialComponent", prepare),
        ("AssociateTrialComponent", prepare),
        ("BatchPutMetrics", prepare),
        ("BatchPutMetrics", trial),
        ("UpdateTrialComponent", prepare),  # params, artifacts, Completed
        ("UpdateTrialComponent", trial),  # the published Pre-processing's data as the trial's input
        ("CreateTrialComponent", training),
        ("AssociateTrialComponent", training),
        ("BatchPutMetrics", training),
        ("BatchPutMetrics", trial),
        ("UpdateTrialComponent", training),
        ("CreateTrialComponent", evaluation),
        ("AssociateTrialComponent", evaluation),
        ("BatchPutMetrics", evaluation),
        ("BatchPutMetrics", trial),
        ("UpdateTrialComponent", evaluation),
        ("UpdateTrialComponent", trial),  # Completed
        # the second trial reuses the first one's Pre-processing: associated, not created again
        ("CreateExperiment", experiment),
        ("CreateTrial", second_trial),
        ("CreateTrialComponent", second_trial),
        ("AssociateTrialComponent", second_trial),
        ("AssociateTrialComponent", prepare),
        ("BatchPutMetrics", second_trial),
        ("UpdateTrialComponent", second_trial),
        ("CreateTrialComponent", second_training),
        ("AssociateTrialComponent", second_training),
        ("BatchPutMetrics", second_training),
        ("BatchPutMetrics", second_trial),
        ("UpdateTrialComponent", second_training),
        ("CreateTrialComponent", second_evaluation),
        ("AssociateTrialComponent", second_evaluation),
        ("BatchPutMetrics", second_evaluation),
        ("BatchPutMetrics", second_trial),
        ("UpdateTrialComponent", second_evaluation),
        ("UpdateTrialComponent", second_trial),
    ]
    # names: valid, unique, the MLflow names kept as display names
    assert sagemaker_aws.calls("CreateExperiment")[0] == {"ExperimentName": experiment, "DisplayName": TASK}
    assert sagemaker_aws.calls("CreateTrial")[0] == {
        "TrialName": trial,
        "ExperimentName": experiment,
        "DisplayName": first.name,
    }
    created = {c["TrialComponentName"]: c for c in sagemaker_aws.calls("CreateTrialComponent")}
    assert all(VALID_NAME.fullmatch(name) and name == name.lower() for name in created)
    assert created[training]["DisplayName"] == "Training" and created[trial]["DisplayName"] == first.name
    start = client.get_run(views[first.run_id].components["Training"]).info.start_time
    assert created[training]["Status"] == {"PrimaryStatus": "InProgress"}
    assert created[training]["StartTime"].timestamp() * 1000 == pytest.approx(start)
    # associations: each stage to its trial, the shared Pre-processing to both trials
    pairs = {(c["TrialComponentName"], c["TrialName"]) for c in sagemaker_aws.calls("AssociateTrialComponent")}
    assert {(prepare, trial), (prepare, second_trial), (training, trial), (second_training, second_trial)} <= pairs
    assert prepare not in [c["TrialComponentName"] for c in sagemaker_aws.calls("CreateTrialComponent")[4:]]
    # parameters: the trial's whole config, each stage's own (numbers as numbers)
    trial_update = updates(sagemaker_aws, trial)
    assert trial_update["Parameters"]["model.l1_size"] == {"NumberValue": int(first.params["model.l1_size"])}
    assert trial_update["Parameters"]["tracking.sagemaker_mirror"] == {"StringValue": "True"}
    assert len(trial_update["Parameters"]) == len(first.params)
    training_run = client.get_run(views[first.run_id].components["Training"])
    training_params = updates(sagemaker_aws, training)["Parameters"]
    assert set(training_params) == set(training_run.data.params)
    assert training_params["l1_size"] == {"NumberValue": 32} and training_params["learning_rate"] == {
        "NumberValue": 0.01
    }
    assert training_params["l1_activation"] == {"StringValue": training_run.data.params["l1_activation"]}
    assert updates(sagemaker_aws, second_training)["Parameters"]["l1_size"] == {"NumberValue": 8}
    # artifacts: MLflow's URIs as output artifacts, logged inputs as input artifacts
    outputs = trial_update["OutputArtifacts"]
    uri = client.get_run(first.run_id).info.artifact_uri
    assert outputs["config.yaml"] == {"Value": f"{uri}/config.yaml"}
    assert "preprocessed data" in updates(sagemaker_aws, second_trial)["InputArtifacts"]
    assert updates(sagemaker_aws, prepare)["InputArtifacts"]["raw data"]["MediaType"] == "text/csv"
    # metrics: the values MLflow holds, step by step
    history = client.get_metric_history(training_run.info.run_id, "train_loss")
    assert [(m[1], m[2]) for m in metrics(sagemaker_aws, training) if m[0] == "train_loss"] == [
        (h.value, h.step) for h in history
    ]
    evaluated = dict((name, value) for name, value, _ in metrics(sagemaker_aws, evaluation))
    assert evaluated["test_msle"] == pytest.approx(first.metrics["test_msle"])
    assert dict((n, v) for n, v, _ in metrics(sagemaker_aws, trial))["test_msle"] == evaluated["test_msle"]
    # statuses: every component Completed with its end time
    for component in (trial, prepare, training, evaluation, second_trial, second_evaluation):
        assert updates(sagemaker_aws, component)["Status"] == {"PrimaryStatus": "Completed"}
        assert "EndTime" in updates(sagemaker_aws, component)
    # the MLflow trials say where their copy is
    assert views[first.run_id].tags[MIRROR_TAG] == trial
    assert views[second.run_id].tags[MIRROR_TAG] == second_trial


@pytest.fixture
def throttled_training() -> Iterator[dict[str, bool]]:
    """SageMaker throttles the creation of Training components (what a busy account gets), until switched off."""
    throttling = {"on": True}

    def throttle(params: dict[str, Any], **_: Any) -> None:
        if throttling["on"] and params.get("DisplayName") == "Training":
            error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
            raise ClientError(error, "CreateTrialComponent")

    handler = ("before-parameter-build.sagemaker.CreateTrialComponent", throttle)
    BUILTIN_HANDLERS.append(handler)
    yield throttling
    BUILTIN_HANDLERS.remove(handler)


def test_a_mirror_failure_keeps_the_mlflow_trial_and_sync_mirrors_it_again(
    sagemaker_aws: fake_aws.FakeAws,
    project: Path,
    inline: None,
    throttled_training: dict[str, bool],
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # a trial failing in a stage (a file that is there but not abalone's): its component and the trial's are
    # Failed with the error as message
    (tmp_path / "malformed.csv").write_text("M,0.455,0.365\n")
    start = len(sagemaker_aws.requests)
    with pytest.raises(MlexpError):
        run(TASK, [*TINY, MIRROR, f"dataset.path={tmp_path / 'malformed.csv'}"], root=project)
    failed = next(v for v in trials_of(project) if v.status == "FAILED")
    error = failed.tags["mlexp.error"]
    assert "malformed.csv" in error
    components = {c for op, c in sequence(sagemaker_aws, start) if op == "CreateTrialComponent"}
    assert len(components) == 2  # the trial's own and its Pre-processing
    for component in components:
        assert updates(sagemaker_aws, component)["Status"] == {"PrimaryStatus": "Failed", "Message": error}
    capfd.readouterr()

    trial = run(TASK, ["dataset.n_rows=280", "model.epochs=2", MIRROR], root=project)  # its own Pre-processing

    view = next(v for v in trials_of(project) if v.run_id == trial.run_id)
    assert view.status == "FINISHED" and {"Training", "Evaluation"} <= view.component_names
    assert "test_msle" in view.metrics
    reason = "ClientError: An error occurred (ThrottlingException) when calling the CreateTrialComponent operation"
    assert view.tags[MIRROR_TAG].startswith(f"failed: {reason}")
    said = [line for line in capfd.readouterr().err.splitlines() if "SageMaker Experiments mirror" in line]
    assert len(said) == 1 and trial.run_id in said[0] and "mlexp sync" in said[0]
    # nothing more is sent for that trial once its mirror failed
    assert sequence(sagemaker_aws)[-1] == ("CreateTrialComponent", f"training-{view.components['Training']}")

    # `mlexp sync` while SageMaker still throttles: the trial's outcome in one line, not the mirror's own line too
    monkeypatch.setenv("MLEXP_ROOT", str(project))
    assert commands.run("sync", []) == 1
    said = [line for line in "".join(capfd.readouterr()).splitlines() if trial.run_id in line]
    assert len(said) == 1 and said[0].startswith(f"trial {trial.run_id}: SageMaker Experiments mirror failed again ")

    throttled_training["on"] = False
    start = len(sagemaker_aws.requests)
    assert commands.run("sync", []) == 0  # `mlexp sync`
    assert f"trial {trial.run_id}: SageMaker Experiments mirror done" in capfd.readouterr().out

    name = f"{trial.name.replace('_', '-')}-{trial.run_id}"
    evaluation = f"evaluation-{view.components['Evaluation']}"
    again = sequence(sagemaker_aws, start)
    assert ("CreateTrialComponent", evaluation) in again and ("AssociateTrialComponent", evaluation) in again
    pairs = {(c["TrialComponentName"], c["TrialName"]) for c in sagemaker_aws.calls("AssociateTrialComponent")}
    assert (f"training-{view.components['Training']}", name) in pairs and (evaluation, name) in pairs
    assert updates(sagemaker_aws, evaluation)["Status"] == {"PrimaryStatus": "Completed"}
    assert store_client(project).get_run(trial.run_id).data.tags[MIRROR_TAG] == name


def test_a_trial_continued_by_a_later_stage_process_keeps_its_mirror(
    sagemaker_aws: fake_aws.FakeAws, project: Path
) -> None:
    """A DVC stage continues a trial in a new process, whose writer never saw the trial's config."""
    store = TrackingStore.resolve(None, project)
    writer = StoreWriter(store.client(), store)
    trial = Trial.open(writer, writer.experiment_id(TASK), "continued", {})
    trial.log_params({"tracking.sagemaker_mirror": True, "model.l1_size": 8})
    with trial.component("Training", "train") as tracker:
        tracker.log_metric("train_loss", 0.5, step=1)
    trial.close()

    start = len(sagemaker_aws.requests)
    state = read_trial_state(store.client(), trial.run_id, TASK)
    assert state is not None and state.components == {"train": "FINISHED"} and state.in_experiment
    continued = Trial.resume(StoreWriter(store.client(), store), trial.run_id, state)
    with continued.component("Deployment", "deploy") as tracker:
        tracker.log_parameters({"alias": "champion"})
    continued.close()

    name = run_entity_name("continued", trial.run_id)
    deployment = run_entity_name("Deployment", continued.tracker.writer.run_id(tracker.run))
    assert sequence(sagemaker_aws, start) == [
        ("DescribeExperiment", "tabular-regression-" + hashlib.sha1(TASK.encode()).hexdigest()[:8]),
        ("DescribeTrial", name),  # there already: kept as it is
        ("DescribeTrialComponent", name),
        ("Search", f"{name} in {name}"),  # associated already: not again
        ("UpdateTrialComponent", name),  # InProgress again
        ("DescribeTrialComponent", deployment),
        ("CreateTrialComponent", deployment),
        ("Search", f"{deployment} in {name}"),
        ("AssociateTrialComponent", deployment),
        ("UpdateTrialComponent", deployment),
        ("UpdateTrialComponent", name),
    ]
    assert sagemaker_aws.calls("AssociateTrialComponent")[-1] == {"TrialName": name, "TrialComponentName": deployment}
    assert updates(sagemaker_aws, deployment) == {
        "TrialComponentName": deployment,
        "Parameters": {"alias": {"StringValue": "champion"}},
        "Status": {"PrimaryStatus": "Completed"},
        "EndTime": sagemaker_aws.calls("UpdateTrialComponent")[-2]["EndTime"],
    }
    assert sagemaker_aws.calls("UpdateTrialComponent")[-1]["Status"] == {"PrimaryStatus": "Completed"}
    assert store.client().get_run(trial.run_id).data.tags[MIRROR_TAG] == name


def _no_aws_access(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(folder / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _without_aws(env: dict[str, str], home: Path) -> dict[str, str]:
    """`env` where botocore finds no AWS region nor credentials: no variables, no files, no metadata service.

    HOME is `home` only when the suite's holds a ~/.boto, the boto2 file botocore reads credentials from: a command
    whose HOME is not the suite's runs in a new interpreter (forked_cli.py), 2 CPU s more."""
    env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    env |= {"HOME": str(home)} if (Path.home() / ".boto").exists() else {}
    env |= {"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(home / "none")}
    return env | {"AWS_SHARED_CREDENTIALS_FILE": str(home / "none")}


@pytest.mark.parametrize("sweep", [(), ("-m", "model.l1_size=8,16")], ids=["a-trial", "a-sweep"])
@pytest.mark.parametrize(
    ("region", "line"),
    [(None, NO_REGION), ("eu-west-1", NO_CREDENTIALS)],
    ids=["no-region", "region-without-credentials"],
)
def test_no_region_or_credentials_are_refused_before_the_trial_opens(
    tmp_project: Path, tmp_path: Path, region: str | None, line: str, sweep: tuple[str, ...]
) -> None:
    # it was the same line and exit 2, but with a FAILED trial tagged SageMakerMirrorSetupError in the store; a sweep
    # opened its record and ended "0/2 jobs finished", each job giving the line
    env = _without_aws(cli_env(tmp_project), tmp_path) | ({"AWS_DEFAULT_REGION": region} if region else {})
    done = run_cli(tmp_project, *sweep, f"task={TASK}", *TINY, MIRROR, env=env, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"mlexp: error: {line}"]
    assert not (tmp_project / "mlflow.db").exists()  # no trial opened, no store made
    assert not (tmp_project / "data").exists()  # no stage ran


def test_with_a_region_and_credentials_the_trial_runs_and_only_its_mirror_fails(
    tmp_project: Path, tmp_path: Path
) -> None:
    # fake credentials pass the check before the trial; SageMaker (a closed port here) fails the mirror, not the trial
    env = _without_aws(private_writer_env(tmp_project), tmp_path) | {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL_SAGEMAKER": f"http://127.0.0.1:{_free_port()}",
        "AWS_MAX_ATTEMPTS": "1",
    }
    done = run_cli(tmp_project, f"task={TASK}", *TINY, MIRROR, env=env, check=False)
    assert done.returncode == 0, done.stderr
    [trial] = trials_of(tmp_project)
    assert trial.status == "FINISHED" and {"Training", "Evaluation"} <= trial.component_names
    assert trial.tags[MIRROR_TAG].startswith("failed: ")
    assert "mlexp.error" not in trial.tags


def test_a_trial_opened_without_the_runners_check_still_fails_at_its_start_in_one_line(
    project: Path, inline: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # what the check before the trial cannot judge offline (an instance without a role) is refused as the trial starts
    _no_aws_access(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = TrackingStore.resolve(None, project)
    writer = StoreWriter(store.client(), store)
    trial = Trial.open(writer, writer.experiment_id(TASK), "unchecked", {})
    with pytest.raises(SageMakerMirrorSetupError) as refused:
        trial.log_params({"tracking.sagemaker_mirror": True, "model.l1_size": 8})
    assert str(refused.value) == NO_CREDENTIALS
    [view] = [v for v in trials_of(project) if v.run_id == trial.run_id]
    assert view.status == "FAILED" and not view.components
    assert view.tags["mlexp.error"] == f"SageMakerMirrorSetupError: {NO_CREDENTIALS}"


def test_the_check_before_the_trial_refuses_no_region_and_no_credentials_in_process_too(
    project: Path, inline: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_aws_access(monkeypatch, tmp_path)
    before = len(trials_of(project)) if store_client(project).get_experiment_by_name(TASK) else 0
    with pytest.raises(SageMakerMirrorSetupError) as refused:
        run(TASK, [*TINY, MIRROR], root=project)
    assert str(refused.value) == NO_REGION
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(SageMakerMirrorSetupError) as refused:
        run(TASK, [*TINY, MIRROR], root=project)
    assert str(refused.value) == NO_CREDENTIALS
    # a region boto3 refuses is named as such, not blamed on the credentials a client for it would fail with
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us east 1")
    with pytest.raises(SageMakerMirrorSetupError) as refused:
        run(TASK, [*TINY, MIRROR], root=project)
    assert str(refused.value) == (
        "tracking.sagemaker_mirror=true: the AWS region botocore found ('us east 1': AWS_DEFAULT_REGION, or the AWS "
        "profile's region) is not the code of an AWS region: letters, digits and hyphens, as boto3 requires; "
        "correct it, or give one such as AWS_DEFAULT_REGION=us-east-1, or run with tracking.sagemaker_mirror=false"
    )
    after = len(trials_of(project)) if store_client(project).get_experiment_by_name(TASK) else 0
    assert after == before  # no trial opened


MIRROR_OFF = """
import sys
from types import SimpleNamespace

import mlexp.runner, mlexp.tracking.writer_process  # the trial's and the writer's imports
from mlexp.tracking.sagemaker_mirror import ExperimentsMirror

# a trial recorded with the mirror off, as StoreWriter reports its writes (no MLflow read is needed for it)
mirror = ExperimentsMirror(client=None)
info = SimpleNamespace(start_time=0, artifact_uri="file:///a")
mirror.run_created("t", "1", "trial", {"mlexp.kind": "trial"}, info)
mirror.artifact_logged("t", "config.yaml")
mirror.batch_logged("t", [], [("tracking.sagemaker_mirror", "False"), ("model.l1_size", "8")], [])
mirror.run_created("c", "1", "Training", {"mlexp.kind": "component", "mlflow.parentRunId": "t"}, info)
mirror.batch_logged("c", [("loss", 1.0, 0, 1)], [("l1_size", "8")], [("output.model", "m")])
mirror.dataset_logged("c", "data", "/d", "text/csv")
mirror.status_set("c", "FINISHED", True)
mirror.status_set("t", "FINISHED", True)
print(sorted(m for m in sys.modules if m.split(".")[0] == "sagemaker"))  # the SDK (MLflow's plugin is boto3)
"""


def test_with_the_mirror_off_the_sdk_is_not_imported() -> None:
    done = subprocess.run([sys.executable, "-c", MIRROR_OFF], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_names_are_valid_deterministic_and_unique() -> None:
    assert experiment_name("churn-model") == "churn-model"
    assert experiment_name("a_b") != experiment_name("a-b") and experiment_name("a_b") == experiment_name("a_b")
    long = run_entity_name("Ä" * 50 + "x_y " * 60, "0123456789abcdef0123456789abcdef")
    assert VALID_NAME.fullmatch(long) and len(long) <= 120 and long.endswith("-0123456789abcdef0123456789abcdef")
    assert all(VALID_NAME.fullmatch(experiment_name(n)) for n in ("tabular_regression", "-x-", "数据", "A" * 300))


def test_sync_without_the_mirrors_aws_set_up_says_so_once_and_tries_no_trial(
    project: Path, inline: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    trial = run(TASK, list(TINY), root=project)
    store_client(project).set_tag(trial.run_id, MIRROR_TAG, "failed: ClientError: throttled")
    client = store_client(project)
    every_experiment = [e.experiment_id for e in client.search_experiments()]
    failed = len(client.search_runs(every_experiment, f"tags.`{MIRROR_TAG}` LIKE 'failed%'"))  # earlier tests' too
    _no_aws_access(monkeypatch, tmp_path)
    monkeypatch.setenv("MLEXP_ROOT", str(project))
    capfd.readouterr()
    assert commands.run("sync", []) == 1
    out, err = capfd.readouterr()
    # it was SageMaker's SDK's own "ValueError: Must setup local AWS configuration with a region ..." per trial
    assert err.splitlines() == [
        f"mlexp sync: the SageMaker Experiments mirror of {failed} trial(s) is not tried again: {NO_REGION}"
    ]
    assert "ValueError" not in out + err
    assert store_client(project).get_run(trial.run_id).data.tags[MIRROR_TAG] == "failed: ClientError: throttled"
