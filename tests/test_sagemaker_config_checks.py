"""compute=sagemaker and deploy=sagemaker configs SageMaker would refuse, or that cannot work, are refused by the
command in one line with exit status 2 — before AWS credentials are looked up, code is uploaded or a trial opens.

The command runs with no AWS credentials and no region in its environment: a check that came after the session's
would print the credentials' line instead. The moto test shows that with credentials nothing is requested either.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conftest import REPO, cli_env, run_cli, store_client
from mlexp.config.validate import MAX_RUNTIME_S, ROLE_ARN, ROLE_ARN_LENGTH
from mlexp.errors import ConfigError
from sagemaker_aws import FakeAws, replaced, sagemaker_aws  # noqa: F401

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
JOB = ("task=tabular_regression", "compute=sagemaker", f"compute.role_arn={ROLE}", "compute.region=us-east-1")
TUNING = ("-m", "sweep=random", "model.learning_rate=tag(log, interval(0.001, 0.1))", *JOB)
ENDPOINT = ("task=tabular_regression", "deploy=sagemaker", f"deploy.role_arn={ROLE}", "deploy.region=us-east-1")
NOT_A_ROLE = (
    "is not an IAM role ARN: set {group}.role_arn=arn:aws:iam::<account>:role/<role> with the 12-digit account "
    "(`aws iam get-role --role-name <role> --query Role.Arn` prints it)"
)
SWEEP_RACE = (
    "deploy=sagemaker updates one endpoint and would race between the sweep's trials; sweep with deploy=registry, "
    "then deploy the champion: "
)
WRONG_REGION = "us east 1"
NOT_A_REGION = (
    f"{{key}}={WRONG_REGION}: {{key}} is the code of an AWS region: letters, digits and hyphens, as boto3 requires; "
    "give one such as {key}=us-east-1"
)
FOUND_NOT_A_REGION = (
    f"the AWS region botocore found ({WRONG_REGION!r}: AWS_DEFAULT_REGION, or the AWS profile's region) is not the "
    "code of an AWS region: letters, digits and hyphens, as boto3 requires; correct it, or give one such as {example}"
)

REFUSED = {
    # 1. a deploy target with compute=sagemaker that this machine cannot deploy after the job: refused before the
    # endpoint's or the job's AWS checks
    "deploy=sagemaker with a stage alone": (
        (*JOB, "deploy=sagemaker", f"deploy.role_arn={ROLE}", "deploy.region=us-east-1", "stage=train"),
        "deploy=sagemaker with compute=sagemaker and stage=train: the job runs the task's stages and this machine "
        "deploys the model they made; drop stage= (or run stage=deploy on this machine, without compute=sagemaker)",
    ),
    "deploy=local": (
        (*JOB, "deploy=local"),
        "deploy=local with compute=sagemaker: the HTTP service would hold this command after the job; run the job "
        "with deploy=registry, then serve its model: mlexp task=tabular_regression stage=deploy deploy=local",
    ),
    "deploy=registry with data in S3": (
        (*JOB, "deploy=registry", "dataset.path=s3://bucket/abalone.data"),
        "deploy=registry with compute=sagemaker and dataset.path=s3://bucket/abalone.data: the registered model's "
        "input example is read from the dataset on this machine; run the job with deploy=none, then register its "
        "model with the command it prints and a local copy of the data",
    ),
    "deploy=registry without waiting": (
        (*JOB, "deploy=registry", "compute.wait=false"),
        "deploy=registry with compute=sagemaker and compute.wait=false: this machine deploys the job's model when it "
        "comes back, which needs mlexp to wait for the job; set compute.wait=true, or deploy=none",
    ),
    # a tuning job: its own line, not the local sweep's "sweep with deploy=registry" (which it refuses too)
    "deploy=sagemaker in a tuning job": (
        (*TUNING, "deploy=sagemaker", f"deploy.role_arn={ROLE}"),
        "deploy=sagemaker with a tuning job: its training jobs' models are not brought back to this machine; tune "
        "with deploy=none: the best trial's model.tar.gz is named by its tag mlexp.sagemaker.model_artifacts",
    ),
    # a local sweep: the command it suggests instead runs as given, with the sweep's role, endpoint and store (not
    # its source: it deploys the champion), or a role to fill in (it was left out, and the command then failed)
    "deploy=sagemaker in a sweep": (
        ("-m", "task=tabular_regression", "model.l1_size=4,8", "deploy=sagemaker"),
        f"{SWEEP_RACE}mlexp task=tabular_regression stage=deploy deploy=sagemaker "
        "deploy.role_arn=arn:aws:iam::<account>:role/<role>",
    ),
    "deploy=sagemaker in a sweep, with its role and endpoint": (
        (
            "-m",
            *ENDPOINT,
            "model.l1_size=4,8",
            "deploy.endpoint_name=abalone",
            "deploy.source=trial",
            "deploy.instance_type=ml.m5.large,ml.c5.large",
            "tracking.experiment_name=abalone",
        ),
        f"{SWEEP_RACE}mlexp task=tabular_regression stage=deploy deploy=sagemaker deploy.role_arn={ROLE} "
        "deploy.region=us-east-1 deploy.endpoint_name=abalone tracking.experiment_name=abalone",
    ),
    # 2. what SageMaker needs, missing: exit status 2 like any refused config (it was 1)
    "no role": (
        ("task=tabular_regression", "compute=sagemaker", "compute.region=us-east-1"),
        "compute=sagemaker needs an execution role: set compute.role_arn=arn:aws:iam::<account>:role/<role> (a role "
        "SageMaker can assume, with S3 access to the bucket; docs/sagemaker.md)",
    ),
    "no region": (
        ("task=tabular_regression", "compute=sagemaker", f"compute.role_arn={ROLE}"),
        "no AWS region: set compute.region=<region> (e.g. us-east-1), or AWS_DEFAULT_REGION, or `aws configure`",
    ),
    "no credentials": (
        JOB,
        "SageMaker: no AWS credentials found; run `aws configure` (or `aws sso login`), or set "
        "AWS_PROFILE=<profile> (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or run where an IAM role provides "
        "them",
    ),
    "no region for the endpoint": (
        ("task=tabular_regression", "deploy=sagemaker", f"deploy.role_arn={ROLE}"),
        "no AWS region: set deploy.region=<region> (e.g. us-east-1), or AWS_DEFAULT_REGION, or `aws configure`",
    ),
    # 3. values SageMaker refuses, known without AWS
    "no instance": (
        (*JOB, "compute.instance_count=0"),
        "compute.instance_count=0 is out of range: it must be at least 1",
    ),
    "negative run time": (
        (*JOB, "compute.max_runtime_s=-5"),
        "compute.max_runtime_s=-5 is out of range: it must be at least 1",
    ),
    "over 28 days": (
        (*JOB, f"compute.max_runtime_s={MAX_RUNTIME_S + 1}"),
        f"compute.max_runtime_s={MAX_RUNTIME_S + 1} is longer than SageMaker lets a training job run (28 days, "
        "2419200 s): lower it",
    ),
    "no volume": (
        (*JOB, "compute.volume_size_gb=0"),
        "compute.volume_size_gb=0 is out of range: it must be at least 1",
    ),
    "negative poll": ((*JOB, "compute.poll_s=-1"), "compute.poll_s=-1 is out of range: it must be at least 0"),
    "spot wait shorter than the run": (
        (*JOB, "compute.spot=true", "compute.max_runtime_s=600", "compute.max_wait_s=300"),
        "compute.max_wait_s=300 is shorter than compute.max_runtime_s=600: a spot job waits for capacity and runs "
        "within max_wait_s; raise it or set compute.max_wait_s=null (twice the run time)",
    ),
    "spot wait shorter than the run in a tuning job": (
        (*TUNING, "compute.spot=true", "compute.max_runtime_s=600", "compute.max_wait_s=300"),
        "compute.max_wait_s=300 is shorter than compute.max_runtime_s=600: a spot job waits for capacity and runs "
        "within max_wait_s; raise it or set compute.max_wait_s=null (twice the run time)",
    ),
    "not an ARN": (
        replaced(JOB, "compute.role_arn=notanarn"),
        "compute.role_arn='notanarn' " + NOT_A_ROLE.format(group="compute"),
    ),
    "an 11-digit account": (
        replaced(JOB, "compute.role_arn=arn:aws:iam::12345678901:role/x"),
        "compute.role_arn='arn:aws:iam::12345678901:role/x' " + NOT_A_ROLE.format(group="compute"),
    ),
    "a user, not a role": (
        replaced(JOB, "compute.role_arn=arn:aws:iam::123456789012:user/me"),
        "compute.role_arn='arn:aws:iam::123456789012:user/me' " + NOT_A_ROLE.format(group="compute"),
    ),
    "no instance in a tuning job": (
        (*TUNING, "compute.volume_size_gb=0"),
        "compute.volume_size_gb=0 is out of range: it must be at least 1",
    ),
    "endpoint role not an ARN": (
        replaced(ENDPOINT, "deploy.role_arn=notanarn"),
        "deploy.role_arn='notanarn' " + NOT_A_ROLE.format(group="deploy"),
    ),
    "endpoint without instances": (
        (*ENDPOINT, "deploy.initial_instance_count=0"),
        "deploy.initial_instance_count=0 is out of range: it must be at least 1",
    ),
    # a region boto3 refuses to make a client for: named before the credentials (it was "the AWS credentials are not
    # accepted (Provided region_name ...)" with credentials, "no AWS credentials" without)
    "a region boto3 refuses": (
        (*JOB[:-1], f"compute.region={WRONG_REGION}"),
        NOT_A_REGION.format(key="compute.region"),
    ),
    "a region boto3 refuses in a tuning job": (
        (*TUNING[:-1], f"compute.region={WRONG_REGION}"),
        NOT_A_REGION.format(key="compute.region"),
    ),
    "an endpoint region boto3 refuses": (
        (*ENDPOINT[:-1], f"deploy.region={WRONG_REGION}"),
        NOT_A_REGION.format(key="deploy.region"),
    ),
}


def _without_aws(project: Path) -> dict[str, str]:
    """The command's environment with no AWS credentials or region from anywhere (variables, files, the instance)."""
    env = {name: value for name, value in cli_env(project).items() if not name.startswith("AWS_")}
    missing = str(project / "no-aws-config")
    return env | {
        "AWS_CONFIG_FILE": missing,
        "AWS_SHARED_CREDENTIALS_FILE": missing,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.mark.parametrize("case", REFUSED)
def test_a_config_sagemaker_cannot_run_is_one_line_exit_2_before_credentials(tmp_project: Path, case: str):
    args, line = REFUSED[case]
    done = run_cli(tmp_project, *args, check=False, env=_without_aws(tmp_project))

    assert (done.returncode, done.stderr.strip().splitlines()) == (2, [f"mlexp: error: {line}"]), done.stdout
    assert not (tmp_project / "mlflow.db").exists()  # no trial (or sweep record) opened
    assert not (tmp_project / "outputs").exists()  # and no run folder left behind


@pytest.mark.parametrize(
    "override",
    [
        "deploy=sagemaker compute.wait=false",
        "compute.instance_count=0",
        "compute.role_arn=notanarn",
        "compute.spot=true",
    ],
)
def test_with_credentials_a_refused_config_sends_no_request(
    sagemaker_aws: FakeAws,  # noqa: F811 - the shared fixture, imported above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    override: str,
):
    from mlexp.cli_in_process import command_line, run_trial

    project = tmp_path / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    monkeypatch.setenv("MLEXP_TRACKING_WRITER", "inline")
    spot = ["compute.max_runtime_s=600", "compute.max_wait_s=60"] if override == "compute.spot=true" else []
    overrides = [
        "task=tabular_regression",
        "compute=sagemaker",
        f"compute.role_arn={sagemaker_aws.role_arn}",
        f"compute.bucket={sagemaker_aws.bucket}",
        f"deploy.role_arn={sagemaker_aws.role_arn}",
        *override.split(),
        *spot,
    ]
    with pytest.raises(ConfigError), command_line(project, overrides) as conf_dir:
        run_trial(conf_dir, overrides)

    assert sagemaker_aws.requests == []  # not even STS's GetCallerIdentity, nor the endpoint's HeadBucket
    assert not (project / "mlflow.db").exists() or store_client(project).search_experiments() == []


def test_the_role_pattern_is_sagemakers_own():
    """ROLE_ARN is CreateTrainingJob's RoleArn pattern and length in botocore's service model (the venv's)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    role = model.operation_model("CreateTrainingJob").input_shape.members["RoleArn"]
    assert (ROLE_ARN.pattern, ROLE_ARN_LENGTH) == (
        role.metadata["pattern"],
        (role.metadata["min"], role.metadata["max"]),
    )
    # the shape's pattern is a full match in SageMaker's validation: one with a suffix is refused
    assert ROLE_ARN.fullmatch(ROLE) and not ROLE_ARN.fullmatch(ROLE + " ")
    assert re.fullmatch(ROLE_ARN, "arn:aws-cn:iam::123456789012:role/service-role/AmazonSageMaker-Execution")


@pytest.mark.parametrize(
    ("overrides", "default_region", "line"),
    [
        (["compute=sagemaker", f"compute.region={WRONG_REGION}"], None, NOT_A_REGION.format(key="compute.region")),
        (["deploy=sagemaker", f"deploy.region={WRONG_REGION}"], None, NOT_A_REGION.format(key="deploy.region")),
        # the region of the environment (or the profile) when the config gives none
        (["compute=sagemaker"], WRONG_REGION, FOUND_NOT_A_REGION.format(example="compute.region=us-east-1")),
        (["deploy=sagemaker"], WRONG_REGION, FOUND_NOT_A_REGION.format(example="deploy.region=us-east-1")),
    ],
)
def test_with_credentials_a_region_boto3_refuses_is_named_before_any_request(
    sagemaker_aws: FakeAws,  # noqa: F811 - the shared fixture, imported above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    overrides: list[str],
    default_region: str | None,
    line: str,
):
    from mlexp.cli_in_process import command_line, run_trial

    project = tmp_path / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    monkeypatch.setenv("MLEXP_TRACKING_WRITER", "inline")
    if default_region is not None:
        monkeypatch.setenv("AWS_DEFAULT_REGION", default_region)
    overrides = [
        "task=tabular_regression",
        f"compute.role_arn={sagemaker_aws.role_arn}",
        f"compute.bucket={sagemaker_aws.bucket}",
        f"deploy.role_arn={sagemaker_aws.role_arn}",
        *overrides,
    ]
    with pytest.raises(ConfigError) as refused, command_line(project, overrides) as conf_dir:
        run_trial(conf_dir, overrides)

    assert str(refused.value) == line  # the region named, not the credentials blamed
    assert sagemaker_aws.requests == []
    assert not (project / "mlflow.db").exists() or store_client(project).search_experiments() == []


@pytest.mark.parametrize("command", ["predict", "undeploy"])
@pytest.mark.parametrize("where", ["--region", "AWS_DEFAULT_REGION"])
def test_predict_and_undeploy_name_a_region_boto3_refuses_before_any_request(
    sagemaker_aws: FakeAws,  # noqa: F811 - the shared fixture, imported above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    where: str,
):
    from mlexp import commands

    request = tmp_path / "request.json"
    request.write_text('{"dataframe_records": [{}]}')
    args = ["mlexp-endpoint", *(["--file", str(request)] if command == "predict" else [])]
    if where == "--region":
        args += ["--region", WRONG_REGION]
        line = (
            f"region {WRONG_REGION!r} (--region, else deploy.region of conf/deploy/sagemaker.yaml) is not the code of "
            "an AWS region: letters, digits and hyphens, as boto3 requires; pass one such as --region us-east-1"
        )
    else:
        monkeypatch.setenv("AWS_DEFAULT_REGION", WRONG_REGION)
        line = FOUND_NOT_A_REGION.format(example="--region us-east-1")
    capsys.readouterr()

    assert commands.run(command, args) == 2
    assert capsys.readouterr().err.splitlines() == [f"mlexp {command}: error: {line}"]
    assert sagemaker_aws.requests == []
