"""Sweeps with compute=sagemaker as tuning jobs: the exact CreateHyperParameterTuningJob requests, refusals, results."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from conftest import REPO, run_cli, store_client, trials_of
from mlexp.errors import ConfigError, MlexpError
from mlexp.sagemaker import tuning_job, tuning_results
from sagemaker_aws import FakeAws, sagemaker_aws  # noqa: F401

# the post's CategoricalParameter(["resnet50_v1b", "resnet101_v1d"]): GluonCV's two Faster-RCNN bases
NETWORKS = ["faster_rcnn_resnet50_v1b_custom", "faster_rcnn_resnet101_v1d_custom"]
MANIFEST = "football/labels/output.manifest"
# object_detection's objective: the validation mAP of the kept checkpoint (the test split is never tuned on)
OBJECTIVE = "val_map_50"
ACCOUNT = "arn:aws:sagemaker:us-east-1:123456789012"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311"


@pytest.fixture
def aws(sagemaker_aws: FakeAws) -> Iterator[FakeAws]:  # noqa: F811 - the shared fixture, imported above
    yield sagemaker_aws


@pytest.fixture
def project(tmp_project, monkeypatch):
    monkeypatch.setenv("MLEXP_ROOT", str(tmp_project))
    monkeypatch.chdir(tmp_project)
    return tmp_project


def _aws_overrides(aws: FakeAws) -> list[str]:
    return [
        "compute=sagemaker",
        f"compute.role_arn={aws.role_arn}",
        f"compute.bucket={aws.bucket}",
        f"compute.image_uri={IMAGE}",
        "compute.requirements=null",
        "compute.wait=false",
    ]


def test_the_posts_tuning_job_runs_and_its_training_jobs_become_mlflow_trials(
    project, aws: FakeAws, capsys, tmp_path, monkeypatch
):
    from botocore.stub import Stubber

    aws.s3.put_object(Bucket=aws.bucket, Key=MANIFEST, Body=b'{"source-ref": "s3://frames/0001.jpg"}\n')
    stubbed: dict = {}

    def read_back_stubbed(cfg, tuner):
        """The job's own client, with the read-back moto lacks (ListTrainingJobsForHyperParameterTuningJob) stubbed."""
        client = sagemaker_client(cfg, tuner)
        name = aws.calls("CreateHyperParameterTuningJob")[0]["HyperParameterTuningJobName"]
        stubbed.update(stub=_queue_read_back(Stubber(client), name), client=client, name=name, cfg=cfg)
        stubbed["stub"].activate()
        return client

    sagemaker_client = tuning_job._sagemaker_client
    monkeypatch.setattr(tuning_job, "_sagemaker_client", read_back_stubbed)
    overrides = [
        "task=object_detection",
        "model=faster_rcnn",
        "sweep=object_detection_sagemaker",
        f"dataset.path=s3://{aws.bucket}/{MANIFEST}",
        "compute.max_runtime_s=7200",
        *_aws_overrides(aws),
        "compute.wait=true",
        "compute.poll_s=0",
    ]
    assert tuning_job.run(project / "conf", overrides) == 0

    (request,) = aws.calls("CreateHyperParameterTuningJob")
    config = request["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": OBJECTIVE}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 100, "MaxParallelTrainingJobs": 10}
    assert config["ParameterRanges"]["ContinuousParameterRanges"] == [
        {"Name": "model.lr", "MinValue": "0.001", "MaxValue": "0.1", "ScalingType": "Logarithmic"}
    ]
    assert config["ParameterRanges"]["CategoricalParameterRanges"] == [{"Name": "model.network", "Values": NETWORKS}]
    assert not config["ParameterRanges"].get("IntegerParameterRanges")
    assert config["TrainingJobEarlyStoppingType"] == "Off"
    assert config["RandomSeed"] == 42  # the config's seed, as the local sampler's
    assert re.fullmatch(r"mlexp-object-detecti-\d{4}-\d{6}", request["HyperParameterTuningJobName"])

    definition = request["TrainingJobDefinition"]
    metrics = {d["Name"]: d["Regex"] for d in definition["AlgorithmSpecification"]["MetricDefinitions"]}
    assert metrics[OBJECTIVE] == r"mlexp-metric val_map_50=([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
    assert definition["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert definition["RoleArn"] == aws.role_arn
    assert definition["ResourceConfig"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
    assert definition["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
    assert definition["OutputDataConfig"] == {
        "S3OutputPath": f"s3://{aws.bucket}/mlexp/object_detection",
        "CompressionType": "GZIP",
    }
    # the S3 dataset is channel "path", as for a training job; the shipped config names the file inside it
    data, drivers = definition["InputDataConfig"]
    assert data == {
        "ChannelName": "path",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": f"s3://{aws.bucket}/{MANIFEST}",
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }
    assert drivers["ChannelName"] == "sm_drivers"  # the SDK's own
    # the tuner's code path: the framework container runs sagemaker_program from sagemaker_submit_directory
    static = definition["StaticHyperParameters"]
    assert static["sagemaker_program"] == tuning_job.ENTRY_SCRIPT
    assert "model.lr" not in static and "model.network" not in static
    bucket, _, key = static["sagemaker_submit_directory"].removeprefix("s3://").partition("/")
    assert bucket == aws.bucket
    body = aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    code = tmp_path / "opt-ml-code"  # where the framework container unpacks sagemaker_submit_directory
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        archive.extractall(code, filter="data")
    assert (code / tuning_job.ENTRY_SCRIPT).is_file() and (code / "src/mlexp/sagemaker/entry.py").is_file()
    # each training job's tuned values (SM_HPS, as the container sets it) override the travelled config
    from mlexp.sagemaker.entry import load_config

    monkeypatch.setenv("SM_HPS", json.dumps({"model.lr": "0.02", "model.network": NETWORKS[1], **static}))
    job = load_config(code)
    assert (job.model.lr, job.model.network, job.compute.target) == (0.02, NETWORKS[1], "local")
    assert job.task.name == "object_detection" and "hydra" not in job
    assert job.model.epochs == 15 and job.dataset.path == "/opt/ml/input/data/path/output.manifest"

    out = capsys.readouterr().out
    name = request["HyperParameterTuningJobName"]
    assert f"tuning job {name}: Bayesian, 100 training jobs, 10 at a time, maximize {OBJECTIVE}" in out
    assert f"tuning job {name}: Completed (2 completed, 1 nonretryableerror)" in out

    # compute.wait=true: the ended tuning job was read back, each of its training jobs an MLflow trial
    stubbed["stub"].assert_no_pending_responses()
    jobs = _jobs(name)
    trials = sorted(trials_of(project, "object_detection"), key=lambda t: t.name)
    assert [t.tags["mlexp.sagemaker.job_name"] for t in trials] == [j["TrainingJobName"] for j in jobs]
    assert [t.status for t in trials] == ["FINISHED", "FINISHED", "FAILED"]
    assert [t.params for t in trials] == [j["TunedHyperParameters"] for j in jobs]
    assert [t.metrics.get(OBJECTIVE) for t in trials] == [0.41, 0.63, None]
    assert [t.metrics.get("map_50") for t in trials] == [0.38, 0.6, None]  # the test mAP, reported, never tuned on
    assert "train:progress" not in trials[0].metrics  # only the task's own metrics
    assert (
        trials[1].tags["mlexp.sagemaker.model_artifacts"]
        == f"s3://bucket/{jobs[1]['TrainingJobName']}/output/model.tar.gz"
    )
    sweep_id = trials[0].tags["mlexp.sweep_id"]
    assert all(t.tags["mlexp.sweep_id"] == sweep_id and t.tags["mlexp.kind"] == "trial" for t in trials)
    assert all(t.tags["mlexp.sagemaker.tuning_job_name"] == name for t in trials)
    assert [t.tags.get("mlexp.best_in_sweep") for t in trials] == [None, "true", None]
    # the MLflow UI's trials view lists them, as compare does (it leaves out runs that only served a model)
    from mlexp.tracking.ui_link import trials_filter

    experiment = store_client(project).get_run(trials[0].run_id).info.experiment_id
    listed = store_client(project).search_runs([experiment], trials_filter(sweep_id))
    assert sorted(run.info.run_id for run in listed) == sorted(t.run_id for t in trials)
    sweep = store_client(project).get_run(sweep_id)
    assert sweep.data.tags["mlexp.kind"] == "sweep" and sweep.info.status == "FINISHED"
    assert sweep.data.tags["mlexp.best_trial"] == trials[1].run_id
    assert sweep.data.tags["mlexp.sagemaker.tuning_job_name"] == name
    assert sweep.data.metrics[f"best_{OBJECTIVE}"] == 0.63
    assert f"best trial: {trials[1].name} ({jobs[1]['TrainingJobName']}) {OBJECTIVE} = 0.63" in out
    assert f"mlexp compare sweep={sweep.data.tags['mlexp.sweep_name']}" in out
    # read back once: a second time is refused before any AWS call (the stub has no response left)
    with pytest.raises(
        ConfigError, match=f"tuning job {name} is already recorded as sweep object_detection_sagemaker-"
    ):
        tuning_results.record_results(stubbed["cfg"], project, stubbed["client"], name)
    stubbed["stub"].deactivate()


def test_random_and_grid_searches_and_a_dry_run(project, aws: FakeAws, capsys):
    random = [
        "task=tabular_regression",
        "sweep=random",
        "sweep.max_jobs=12",
        "sweep.max_parallel_jobs=3",
        "sweep.early_stopping=Auto",
        "model.learning_rate=interval(0.001, 0.1)",
        "model.l1_size=int(interval(8, 64))",
        "sweep.tuning_job=null",  # said explicitly: the printed command must not give it twice
    ]
    assert tuning_job.run(project / "conf", [*random, *_aws_overrides(aws)]) == 0
    (request,) = aws.calls("CreateHyperParameterTuningJob")
    config = request["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Random"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Minimize", "MetricName": "test_msle"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 12, "MaxParallelTrainingJobs": 3}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    assert config["ParameterRanges"]["ContinuousParameterRanges"] == [
        {"Name": "model.learning_rate", "MinValue": "0.001", "MaxValue": "0.1", "ScalingType": "Linear"}
    ]
    assert config["ParameterRanges"]["IntegerParameterRanges"] == [
        {"Name": "model.l1_size", "MinValue": "8", "MaxValue": "64", "ScalingType": "Linear"}
    ]

    # compute.wait=false: the command to record its training jobs later
    out = capsys.readouterr().out
    assert "record its training jobs as MLflow trials when it ends: mlexp -m task=tabular_regression" in out
    assert f"sweep.tuning_job={request['HyperParameterTuningJobName']}" in out
    assert out.count("sweep.tuning_job=") == 1

    # a grid (Hydra's comma lists), as a dry run: the request is printed, nothing is uploaded or submitted
    aws.requests.clear()
    grid = ["task=tabular_regression", "model.l1_size=16,64", "model.l1_activation=relu,tanh", "compute.dry_run=true"]
    assert tuning_job.run(project / "conf", [*grid, *_aws_overrides(aws)]) == 0
    assert "CreateHyperParameterTuningJob" not in aws.operations() and "PutObject" not in aws.operations()
    out = capsys.readouterr().out
    printed = json.loads(out[out.index("{") :])
    config = printed["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Grid"
    assert config["ResourceLimits"] == {"MaxParallelTrainingJobs": 1}  # a grid runs every combination
    assert config["ParameterRanges"]["CategoricalParameterRanges"] == [
        {"Name": "model.l1_size", "Values": ["16", "64"]},
        {"Name": "model.l1_activation", "Values": ["relu", "tanh"]},
    ]


def test_a_sweep_the_tuner_cannot_express_is_refused_in_one_line(tmp_project):
    done = run_cli(
        tmp_project,
        "-m",
        "task=tabular_regression",
        "sweep=tpe",
        "model.l1_size=range(8, 64, 8)",
        "compute=sagemaker",
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "mlexp: error: model.l1_size=range(8, 64, 8): a stepped range has no SageMaker tuning range; list the values "
        "instead, e.g. 'model.l1_size=choice(...)', or run the sweep with compute=local"
    )
    assert not (tmp_project / "mlflow.db").exists()  # no local trial ran instead


def _summary(name: str, number: int, status: str, lr: str, network: str, value: float | None) -> dict:
    summary = {
        "TrainingJobName": name,
        "TrainingJobArn": f"{ACCOUNT}:training-job/{name}",
        "CreationTime": datetime(2026, 12, 2, 12, number, tzinfo=UTC),
        "TrainingJobStatus": status,
        "TunedHyperParameters": {"model.lr": lr, "model.network": network},
    }
    if value is not None:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {"MetricName": OBJECTIVE, "Value": value}
    return summary


def _described(summary: dict, metrics: dict[str, float]) -> dict:
    """A DescribeTrainingJob response for a completed training job of the tuning job."""
    final = [{"MetricName": k, "Value": v, "Timestamp": summary["CreationTime"]} for k, v in metrics.items()]
    return {
        "TrainingJobName": summary["TrainingJobName"],
        "TrainingJobArn": summary["TrainingJobArn"],
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://bucket/{summary['TrainingJobName']}/output/model.tar.gz"},
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 14400},
        "CreationTime": summary["CreationTime"],
        "FinalMetricDataList": [
            *final,
            {"MetricName": "train:progress", "Value": 100.0, "Timestamp": summary["CreationTime"]},
        ],
    }


def _jobs(name: str) -> list[dict]:
    return [
        _summary(f"{name}-001-aa", 1, "Completed", "0.0031", NETWORKS[0], 0.41),
        _summary(f"{name}-002-bb", 2, "Completed", "0.02", NETWORKS[1], 0.63),
        _summary(f"{name}-003-cc", 3, "Failed", "0.09", NETWORKS[0], None),
    ]


def _queue_read_back(stub, name: str):
    """The ended tuning job `name` as SageMaker describes it: 2 completed training jobs and a failed one, 2 pages."""
    jobs = _jobs(name)
    listing = {
        "HyperParameterTuningJobName": name,
        "MaxResults": 100,
        "SortBy": "CreationTime",
        "SortOrder": "Ascending",
    }
    described = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobArn": f"{ACCOUNT}:hyper-parameter-tuning-job/{name}",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 100, "MaxParallelTrainingJobs": 10},
        },
        "HyperParameterTuningJobStatus": "Completed",
        "CreationTime": datetime(2026, 12, 2, 12, 0, tzinfo=UTC),
        "TrainingJobStatusCounters": {"Completed": 2, "NonRetryableError": 1},
        "ObjectiveStatusCounters": {"Succeeded": 2, "Failed": 1},
        "BestTrainingJob": jobs[1],
    }
    # wait_for_tuning_job's description of the ended job, then record_results' own
    for _ in range(2):
        stub.add_response("describe_hyper_parameter_tuning_job", described, {"HyperParameterTuningJobName": name})
    # two pages: the read-back follows NextToken
    stub.add_response(
        "list_training_jobs_for_hyper_parameter_tuning_job",
        {"TrainingJobSummaries": jobs[:2], "NextToken": "page-2"},
        listing,
    )
    stub.add_response(
        "list_training_jobs_for_hyper_parameter_tuning_job",
        {"TrainingJobSummaries": jobs[2:]},
        {**listing, "NextToken": "page-2"},
    )
    for job, test_map in ((jobs[0], 0.38), (jobs[1], 0.6)):  # completed jobs: their headline metrics too
        stub.add_response(
            "describe_training_job",
            _described(
                job, {OBJECTIVE: job["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], "map_50": test_map}
            ),
            {"TrainingJobName": job["TrainingJobName"]},
        )
    return stub


REGRESSION = ["task=tabular_regression", "compute=sagemaker"]
LR = "model.learning_rate=interval(0.001, 0.1)"
REFUSED = {
    "config groups": (
        ["task=object_detection", "sweep=tpe", "model=ssd,yolo3", "model.lr=interval(0.001, 0.1)"],
        "model=ssd,yolo3 sweeps over config groups, which a tuning job cannot do (each training job runs one "
        "composed config); run one tuning job per model, or compute=local",
    ),
    "31 categorical values": (
        [*REGRESSION, "sweep=tpe", f"model.l1_size=choice({', '.join(map(str, range(1, 32)))})"],
        "model.l1_size has 31 values; a SageMaker categorical range takes at most 30: give an interval instead, "
        "or fewer values",
    ),
    "grid over an interval": (
        [*REGRESSION, "sweep=tpe", "sweep.strategy=Grid", LR],
        "sweep.strategy=Grid takes listed values only, but model.learning_rate is a range; list its values "
        "(choice(...)) or use sweep.strategy=Bayesian or Random",
    ),
    "hyperband with early stopping": (
        [*REGRESSION, "sweep=tpe", "sweep.strategy=Hyperband", "sweep.early_stopping=Auto", LR],
        "sweep.strategy=Hyperband stops jobs early itself: set sweep.early_stopping=Off",
    ),
    "deploy": (
        [*REGRESSION, "sweep=tpe", "deploy=registry", LR],
        "deploy=registry with a tuning job: its training jobs' models are not brought back to this machine; tune "
        "with deploy=none: the best trial's model.tar.gz is named by its tag mlexp.sagemaker.model_artifacts",
    ),
    # a grid: the local sweep would run it (sweep=tpe is refused earlier, by the local sweep's own check)
    "reporting-only objective": (
        ["task=anomaly_detection", "compute=sagemaker", "model.max_duration_hours=6,12"],
        "task anomaly_detection's objective percent_flagged is reporting-only (direction: report): a tuning job "
        "has nothing to optimise; run the grid with compute=local",
    ),
    # the task chooses model=ssd after the sweep file: its recipe would have trained the Faster-RCNN networks
    "the post's search without model=faster_rcnn": (
        ["task=object_detection", "sweep=object_detection_sagemaker", "compute=sagemaker"],
        "the sweep could run model.family=ssd, model.network=faster_rcnn_resnet50_v1b_custom (from "
        "model.network=choice(faster_rcnn_resnet50_v1b_custom, faster_rcnn_resnet101_v1d_custom) in "
        "sweep=object_detection_sagemaker): model.network must be a network of the chosen model option, whose "
        "training recipe is set for it; choose model=faster_rcnn for faster_rcnn_resnet50_v1b_custom (its recipe: "
        "epochs, batch size, optimizer), or one of the ssd_* networks",
    ),
    "no search space": (
        REGRESSION,
        "sweep=none has no search space, so every training job would be the same; give one, e.g. "
        "'model.learning_rate=tag(log, interval(0.001, 0.1))'",
    ),
}


@pytest.fixture
def unreachable_aws(monkeypatch):
    """Fake credentials and an endpoint nothing listens on: a refusal that regressed cannot reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("refused", REFUSED)
def test_what_a_tuning_job_cannot_run_is_refused_in_one_line(project, unreachable_aws, refused):
    overrides, line = REFUSED[refused]
    with pytest.raises(MlexpError) as raised:
        tuning_job.run(project / "conf", [*overrides, "compute.role_arn=arn:aws:iam::123456789012:role/r"])
    assert str(raised.value) == line


def test_sweep_strategy_overrides_the_samplers(project):
    # Optuna's TPE sampler alone would make it Bayesian
    cfg = tuning_job.compose(project / "conf", [*REGRESSION, "sweep=tpe", "sweep.strategy=Random", LR])
    assert tuning_job.tuning_plan(cfg).strategy == "Random"


def test_the_command_lines_value_wins_over_a_sweeps_fixed_one(project):
    # object_detection_tpe fixes a 900-s budget per job; the command line's, later, wins (as with the local sweeper)
    sweep = ["task=object_detection", "sweep=object_detection_tpe", "compute=sagemaker"]
    cfg = tuning_job.compose(project / "conf", sweep)
    assert tuning_job.tuning_plan(cfg).space.fixed["model.max_train_seconds"] == 900
    cfg = tuning_job.compose(project / "conf", [*sweep, "model.max_train_seconds=1800"])
    plan = tuning_job.tuning_plan(cfg)
    assert plan.space.fixed["model.max_train_seconds"] == 1800 and "model.lr" in plan.space.ranges
    assert tuning_job.job_config(cfg, plan).model.max_train_seconds == 1800


def _client_error(operation: str, code: str, message: str):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def _with_cause() -> ConfigError:
    try:
        raise _client_error("HeadObject", "403", "Forbidden")
    except Exception as cause:
        error = ConfigError("dataset.path=s3://b/k: these credentials cannot read it (403 Forbidden)")
        error.__cause__ = cause
        return error


FAILURES = {
    "aws": (
        _client_error("CreateHyperParameterTuningJob", "ResourceLimitExceeded", "The account-level service limit"),
        1,
        "mlexp: error: An error occurred (ResourceLimitExceeded) when calling the CreateHyperParameterTuningJob "
        "operation: The account-level service limit",
    ),
    "ctrl-c": (KeyboardInterrupt(), 130, "mlexp: interrupted (Ctrl-C)"),
    "mlexp error with a cause": (
        _with_cause(),
        2,
        "mlexp: error: dataset.path=s3://b/k: these credentials cannot read it (403 Forbidden)",
    ),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_the_command_reports_a_failed_tuning_job_in_one_line(monkeypatch, capsys, failure):
    from mlexp import cli

    error, status, line = FAILURES[failure]

    def fails(*_):
        raise error

    monkeypatch.setattr(tuning_job, "run", fails)
    assert cli._run_tuning_job(REPO / "conf", []) == status
    assert capsys.readouterr().err == line + "\n"
