"""compute=sagemaker: the exact CreateTrainingJob request, its code archive, results copied back, the container entry.

AWS is moto in this process (tests/sagemaker_aws.py); the training job's container is played by a hook on
CreateTrainingJob that does what a finished job leaves behind: final metrics on the job and model.tar.gz in S3.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from conftest import REPO, TINY, store_client, trials_of
from mlexp.cli_in_process import command_line
from mlexp.errors import ConfigError
from mlexp.runner import TrialFailed
from mlexp.sagemaker.session import AwsUnreachable
from sagemaker_aws import (  # noqa: F401
    FakeAws,
    archive_of,
    container_env,
    job_overrides,
    on_create_training_job,
    put_model,
    run_in_process,
    sagemaker_aws,
)
from sagemaker_fixtures import job_aws, sdk_loaded_once  # noqa: F401

TASK = "tabular_regression"
# `python -m mlexp.sagemaker.entry`, then whether that local trial loaded the SageMaker SDK
ENTRY_THEN_SDK_CHECK = """
import runpy, sys
try:
    runpy.run_module("mlexp.sagemaker.entry", run_name="__main__", alter_sys=True)
except SystemExit as stop:
    print("SageMaker SDK imported:", "sagemaker" in sys.modules)
    print("mlexp from:", sys.modules["mlexp"].__file__)
    sys.exit(stop.code)
"""
IMAGE = "111111111111.dkr.ecr.us-east-1.amazonaws.com/mlexp:1"
# where `dvc get --show-url` points for a DVC-tracked file in an S3 remote: an object with no suffix
DVC_OBJECT = "files/md5/3f/a1c0b9e8d7f6a5b4c3d2e1f0a9b8c7d6"
PREPROCESSORS = "mlexp_data/preprocessors.json"
BILLABLE_S = 754  # the played job's BillableTimeInSeconds, as DescribeTrainingJob returns it


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One project for the module (its MLflow store is created once); each test has an experiment of its own."""
    folder = tmp_path_factory.mktemp("sagemaker") / "project"
    shutil.copytree(REPO / "conf", folder / "conf")
    shutil.copy(REPO / "requirements.lock", folder / "requirements.lock")
    with pytest.MonkeyPatch.context() as env:
        # the trial's records go straight to the store: no writer process to start (and import MLflow) per test
        env.setenv("MLEXP_TRACKING_WRITER", "inline")
        yield folder


@pytest.fixture
def experiment(request: pytest.FixtureRequest) -> str:
    return re.sub(r"\W", "_", request.node.name.removeprefix("test_"))[:60]


def sagemaker_overrides(aws: FakeAws, experiment: str, *more: str) -> list[str]:
    return job_overrides(aws, TASK, experiment, *TINY, *more)


@contextmanager
def finished_job(aws: FakeAws, status: str = "Completed", metrics: dict[str, float] | None = None) -> Iterator[None]:
    """Play the job's container: on CreateTrainingJob, the job ends `status` with `metrics` and a model.tar.gz."""

    def play(params: dict[str, Any], job: Any) -> None:
        if status != "Completed":
            job.training_job_status = job.secondary_status = status
            job.failure_reason = "AlgorithmError: stage 'train' failed: loss is NaN\nTraceback (most recent call last)"
            return
        job.billable_time_in_seconds = BILLABLE_S
        job.final_metric_data_list = [
            {"MetricName": name, "Value": value, "Timestamp": job.creation_time}
            for name, value in {"train:progress": 100.0, **(metrics or {})}.items()
        ]
        # the network, and the fitted preprocessors the entry copies beside it (mlexp.sagemaker.trained_model)
        put_model(aws, job, archive_of({"model.params": b"fake network weights", PREPROCESSORS: b'{"fitted": true}'}))

    with on_create_training_job(aws, play):
        yield


def code_archive(aws: FakeAws, request: dict[str, Any]) -> tarfile.TarFile:
    (code,) = [c for c in request["InputDataConfig"] if c["ChannelName"] == "code"]
    bucket, _, key = code["DataSource"]["S3DataSource"]["S3Uri"].removeprefix("s3://").partition("/")
    body = aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return tarfile.open(fileobj=io.BytesIO(body), mode="r:gz")


def test_a_trial_runs_as_a_training_job_and_its_results_come_back(aws: FakeAws, project: Path, experiment: str, capsys):
    aws.s3.put_object(Bucket=aws.bucket, Key=DVC_OBJECT, Body=b"M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15\n")
    overrides = sagemaker_overrides(
        aws,
        experiment,
        f"dataset.path=s3://{aws.bucket}/{DVC_OBJECT}",  # dataset.path=$(dvc get --show-url . data/abalone.data)
        "compute.instance_type=ml.c5.2xlarge",
        "compute.instance_count=2",
        "compute.volume_size_gb=50",
        "compute.max_runtime_s=1800",
        "compute.spot=true",
        "compute.max_wait_s=3600",
        f"compute.output_path=s3://{aws.bucket}/results",
    )
    with finished_job(aws, metrics={"test_msle": 0.0123, "test_mae": 1.5, "final_train_loss": 2.25}):
        run_id = run_in_process(project, overrides)

    (request,) = aws.calls("CreateTrainingJob")
    name = request["TrainingJobName"]
    assert re.fullmatch(r"mlexp-tabular-regression-\d{14}", name)
    algorithm = request["AlgorithmSpecification"]
    # compute.image_uri null: the PyTorch 2.5.1 Python 3.11 CPU image for a c5 instance
    assert algorithm["TrainingImage"] == "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311"
    number = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
    assert algorithm["MetricDefinitions"] == [
        {"Name": "test_msle", "Regex": f"mlexp-metric test_msle={number}"},
        {"Name": "test_mae", "Regex": f"mlexp-metric test_mae={number}"},
        {"Name": "final_train_loss", "Regex": f"mlexp-metric final_train_loss={number}"},
    ]
    prefix = f"s3://{aws.bucket}/mlexp-tabular-regression/{name}/input"
    assert request["InputDataConfig"] == [
        {
            "ChannelName": "path",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": f"s3://{aws.bucket}/{DVC_OBJECT}",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "InputMode": "File",
        },
        *(
            {
                "ChannelName": channel,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "InputMode": "File",
            }
            for channel, uri in (
                ("code", f"{prefix}/code/mlexp_code.tar.gz"),
                ("sm_drivers", f"{prefix}/sm_drivers"),
            )
        ),
    ]
    # the config travels as a file: the hyperparameters only name it
    assert request["HyperParameters"] == {"mlexp.task": "tabular_regression", "mlexp.config": "mlexp_config.yaml"}
    assert request["Environment"] == {
        "PYTHONPATH": "/opt/ml/input/data/code/src",
        "MLEXP_ROOT": "/opt/ml/input/data/code",
        "PYTHONUNBUFFERED": "1",
    }
    assert request["ResourceConfig"] == {"InstanceType": "ml.c5.2xlarge", "InstanceCount": 2, "VolumeSizeInGB": 50}
    assert request["OutputDataConfig"] == {"S3OutputPath": f"s3://{aws.bucket}/results", "CompressionType": "GZIP"}
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 3600}
    assert request["EnableManagedSpotTraining"] is True
    assert request["RoleArn"] == aws.role_arn

    archive = code_archive(aws, request)
    names = set(archive.getnames())
    assert {
        "src/mlexp/runner.py",
        "src/mlexp/sagemaker/entry.py",
        "src/mlexp/tasks/tabular_regression/stages.py",
    } <= names
    assert {"mlexp_config.yaml", "mlexp_job.json", "requirements.txt", "conf/config.yaml"} <= names
    assert not [n for n in names if "__pycache__" in n]
    shipped = OmegaConf.create(archive.extractfile("mlexp_config.yaml").read().decode())  # type: ignore[union-attr]
    assert shipped.compute.target == "local" and shipped.dataset.n_rows == 300 and shipped.model.epochs == 2
    # HeadObject found an object (no suffix to go by): the container reads the file in the channel folder
    assert shipped.dataset.path == f"/opt/ml/input/data/path/{DVC_OBJECT.rsplit('/', 1)[1]}"
    assert shipped.paths.models == "/opt/ml/model" and shipped.tracking.uri == "sqlite:////opt/ml/output/data/mlflow.db"

    (trial,) = trials_of(project, experiment)
    assert trial.run_id == run_id and trial.status == "FINISHED"
    assert trial.tags["mlexp.sagemaker.job_name"] == name
    assert trial.tags["mlexp.sagemaker.job_arn"] == f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"
    assert trial.tags["mlexp.sagemaker.status"] == "Completed"
    assert trial.tags["mlexp.sagemaker.billable_s"] == str(BILLABLE_S)
    assert trial.metrics == {"test_msle": 0.0123, "test_mae": 1.5, "final_train_loss": 2.25}  # not train:progress
    assert trial.params["compute.instance_type"] == "ml.c5.2xlarge"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    assert [a.path for a in client.list_artifacts(run_id, "sagemaker")] == ["sagemaker/model.tar.gz"]
    out = capsys.readouterr().out
    assert f"training job {name}: Completed (Completed)" in out
    assert "trial done: test_msle = 0.0123" in out
    # the model in the run's models folder, the preprocessors in its data folder (tests/test_sagemaker_trained_model)
    (run,) = [f for f in (project / "outputs" / TASK).iterdir() if (f / "models" / "model.tar.gz").is_file()]
    assert (run / "data" / "preprocessors.json").read_text() == '{"fitted": true}'
    assert f"register its model: MLEXP_PIPELINE_RUN=sagemaker-{name} mlexp task={TASK} " in out


def test_a_failed_job_fails_the_trial_with_its_reason(aws: FakeAws, project: Path, experiment: str):
    with finished_job(aws, status="Failed"), pytest.raises(TrialFailed) as raised:
        run_in_process(project, sagemaker_overrides(aws, experiment, f"compute.image_uri={IMAGE}"))

    name = aws.calls("CreateTrainingJob")[0]["TrainingJobName"]
    message = str(raised.value)
    assert message.startswith(
        f"SageMaker training job {name} Failed: AlgorithmError: stage 'train' failed: loss is NaN (trial "
    )
    assert "\n" not in message
    (trial,) = trials_of(project, experiment)
    assert trial.status == "FAILED" and trial.tags["mlexp.sagemaker.status"] == "Failed"
    assert aws.calls("CreateTrainingJob")[0]["AlgorithmSpecification"]["TrainingImage"] == IMAGE


def test_a_dry_run_prints_the_request_and_submits_nothing(aws: FakeAws, project: Path, experiment: str, capsys):
    run_in_process(project, sagemaker_overrides(aws, experiment, "compute.dry_run=true", f"compute.image_uri={IMAGE}"))

    out = capsys.readouterr().out
    assert "dry run: the CreateTrainingJob request (nothing submitted):" in out
    printed = json.loads(out.split("(nothing submitted):\n", 1)[1].split("\n}\n", 1)[0] + "\n}")
    assert printed["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert printed["RoleArn"] == aws.role_arn
    assert "CreateTrainingJob" not in aws.operations()
    assert store_client(project).get_experiment_by_name(experiment) is None  # no trial recorded


MISSING = {
    "role": (
        "compute.role_arn=null",
        "compute=sagemaker needs an execution role: set compute.role_arn=arn:aws:iam::<account>:role/<role> "
        "(a role SageMaker can assume, with S3 access to the bucket; docs/sagemaker.md)",
    ),
    "bucket": (
        "compute.bucket=no-such-bucket",
        "compute.bucket=no-such-bucket is not an S3 bucket these credentials can use (An error occurred (404) when "
        "calling the HeadBucket operation: Not Found): create it with `aws s3 mb s3://no-such-bucket`, or set "
        "compute.bucket=null for the SDK's sagemaker-<region>-<account>",
    ),
    "credentials": (
        "seed=42",
        "SageMaker: no AWS credentials found; run `aws configure` (or `aws sso login`), or set "
        "AWS_PROFILE=<profile> (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or run where an IAM role provides "
        "them",
    ),
}


@pytest.mark.parametrize("missing", MISSING)
def test_a_missing_setup_is_one_line_before_any_upload(
    aws: FakeAws, project: Path, experiment: str, missing: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    override, line = MISSING[missing]
    if missing == "credentials":
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigError) as raised:  # the role: check_sagemaker_job's; the rest: SageMakerSetupError's
        run_in_process(project, sagemaker_overrides(aws, experiment, override))

    assert str(raised.value) == line  # the line `mlexp` prints after "mlexp: error: "
    assert not {"PutObject", "CreateTrainingJob"} & set(aws.operations())  # nothing uploaded or submitted
    assert store_client(project).get_experiment_by_name(experiment) is None  # refused before a trial opened


def test_deploy_with_a_job_not_waited_for_is_refused_before_any_request(aws: FakeAws, project: Path, experiment: str):
    with pytest.raises(ConfigError) as raised:
        run_in_process(project, sagemaker_overrides(aws, experiment, "deploy=registry", "compute.wait=false"))

    assert str(raised.value) == (
        "deploy=registry with compute=sagemaker and compute.wait=false: this machine deploys the job's model when it "
        "comes back, which needs mlexp to wait for the job; set compute.wait=true, or deploy=none"
    )
    assert aws.operations() == []


def test_an_unreachable_aws_is_not_called_bad_credentials(monkeypatch: pytest.MonkeyPatch):
    from omegaconf import OmegaConf

    from mlexp.sagemaker.session import sagemaker_session

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the discard port: nothing listens
    compute = OmegaConf.create({"role_arn": "arn:aws:iam::123456789012:role/r", "region": "us-east-1"})
    with pytest.raises(AwsUnreachable) as raised:
        sagemaker_session(compute)

    assert str(raised.value) == (
        "cannot reach AWS (http://127.0.0.1:9/): check the network, the region or AWS_ENDPOINT_URL"
    )
    assert not isinstance(raised.value, ConfigError)  # not a refused config: exit status 1, try again


def test_the_container_entry_runs_the_runner_and_prints_metric_lines(project: Path, tmp_path):
    """The job's entry point, rehearsed here: SageMaker's folders are SM_* variables pointing into a temp /opt/ml."""
    from mlexp.data.abalone import packaged_copy
    from mlexp.sagemaker.packaging import container_config, package_code
    from mlexp.sagemaker.training_job import metric_definitions

    opt_ml = tmp_path / "opt_ml"
    code = opt_ml / "input" / "data" / "code"
    channel = opt_ml / "input" / "data" / "path"
    channel.mkdir(parents=True)
    shutil.copy(packaged_copy(), channel / "abalone.zip")  # the UCI copy the scikit-lego wheel ships
    job = {"choices": {"task": TASK}, "overrides": ["task=tabular_regression"], "trial": "rehearsal"}
    with command_line(project, [f"task={TASK}"]) as conf_dir:
        from hydra import compose, initialize_config_dir

        with initialize_config_dir(str(conf_dir), version_base=None):
            cfg = compose("config", [f"task={TASK}", *TINY, "dataset.path=s3://b/in/abalone.zip"])
        archive = package_code(cfg, project, job, tmp_path / "staging")
        assert container_config(cfg)["dataset"]["path"] == "/opt/ml/input/data/path/abalone.zip"
    code.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(code, filter="data")
    env = container_env(code, opt_ml, {"mlexp.task": TASK, "model.epochs": "1"}, path=channel)
    done = subprocess.run(
        [sys.executable, "-c", ENTRY_THEN_SDK_CHECK], cwd=code, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SageMaker SDK imported: False" in done.stdout  # a compute=local trial never loads the SDK
    assert f"mlexp from: {code / 'src' / 'mlexp' / '__init__.py'}" in done.stdout  # the code that travelled
    lines = {}
    for definition in metric_definitions(cfg):
        found = re.findall(definition["Regex"], done.stdout)
        assert len(found) == 1, (definition, done.stdout)
        lines[definition["Name"]] = float(found[0])
    shipped_metrics = json.loads((opt_ml / "model" / "reports" / "metrics.json").read_text())
    assert lines == pytest.approx(shipped_metrics, rel=1e-9) and lines["test_msle"] > 0
    # the same runner ran: a trial in the job's own store, with its stages as components, trained one epoch
    (trial,) = trials_of(opt_ml / "output" / "data", TASK)
    assert (
        trial.name == "rehearsal" and trial.params["model.epochs"] == "1" and trial.params["compute.target"] == "local"
    )
    assert {"Pre-processing", "Training", "Evaluation"} <= trial.component_names
    assert any(p.name.startswith("model") for p in (opt_ml / "model").iterdir())
