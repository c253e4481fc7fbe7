"""Offline AWS for the SageMaker tests: moto in this process (`sagemaker_aws`) or on loopback (`moto_server`).

Every request any boto3 client makes while `sagemaker_aws` is active is captured as (service, operation, params),
so a test asserts the exact CreateTrainingJob / CreateHyperParameterTuningJob / ... request the SDK sent.
Import the fixtures in a test module: `from sagemaker_aws import moto_server, sagemaker_aws  # noqa: F401`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REGION = "us-east-1"
BUCKET = "mlexp-sagemaker-tests"
ROLE_NAME = "mlexp-sagemaker-execution"
# the telemetry opt-out: otherwise the SDK starts threads that try to reach AWS after every call
TELEMETRY_OPT_OUT = 'SchemaVersion: "1.0"\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n'
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "SAGEMAKER_VALIDATE_ROLE": "false",  # role validation calls iam:SimulatePrincipalPolicy, which moto lacks
}
# a profile or endpoint from the developer's shell must never redirect the tests
CLEARED_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


@dataclass
class FakeAws:
    """The offline account: captured requests, a bucket, an execution role and an S3 client."""

    region: str
    bucket: str
    role_arn: str
    s3: Any
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def calls(self, operation: str) -> list[dict[str, Any]]:
        """The params of each call to `operation` (e.g. "CreateTrainingJob"), in order."""
        return [params for _, name, params in self.requests if name == operation]

    def operations(self, service: str | None = None) -> list[str]:
        """The operations called, in order (of one service if named)."""
        return [name for svc, name, _ in self.requests if service is None or svc == service]


def _strip_empty_structs(value: Any) -> Any:
    """Drop the `{}` moto returns for unset optional structs (VpcConfig, ...), which sagemaker-core rejects."""
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if isinstance(v, dict) and not v]:
            del value[key]
        for item in value.values():
            _strip_empty_structs(item)
    elif isinstance(value, list):
        for item in value:
            _strip_empty_structs(item)
    return value


def _snapshot(value: Any) -> Any:
    """A copy of request params the code may mutate later; streams (PutObject's Body) are kept as they are."""
    if isinstance(value, dict):
        return {key: _snapshot(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_snapshot(item) for item in value]
    try:
        return copy.deepcopy(value)
    except TypeError:
        return value


def _reset_sdk_clients() -> None:
    """sagemaker-core caches its boto3 clients per session: a client from an earlier test would outlive its moto."""
    import sys

    if "sagemaker.core.utils.utils" in sys.modules:
        sys.modules["sagemaker.core.utils.utils"].SageMakerClient.reset()


# validators of the schemas already checked, for the whole test session (the SDK's schema is a module constant)
_CHECKED: dict[int, Any] = {}


def _schema_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """jsonschema.validate with each schema checked once, not per call.

    The SDK validates its config file against its (large) schema each time a session or resource loads it, and
    jsonschema.validate re-checks that schema against the metaschema every time: 2 s a call on a busy machine.
    Instances are validated as before (same validator class, same best_match error).
    """
    import jsonschema
    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for

    original = jsonschema.validate

    def validate(instance: Any, schema: Any, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            return original(instance, schema, *args, **kwargs)
        validator = _CHECKED.get(id(schema))
        if validator is None:
            cls = validator_for(schema)
            cls.check_schema(schema)
            validator = _CHECKED[id(schema)] = cls(schema)
        error = best_match(validator.iter_errors(instance))
        if error is not None:
            raise error
        return None

    monkeypatch.setattr(jsonschema, "validate", validate)


def _fake_environment(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    for name in CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    config = folder / "sagemaker_config.yaml"
    config.write_text(TELEMETRY_OPT_OUT)
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(config))
    _schema_checked_once(monkeypatch)


@pytest.fixture
def sagemaker_aws(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeAws]:
    """moto's `mock_aws` in this process with every request captured; yields the account's bucket, role and log."""
    import boto3
    from botocore.handlers import BUILTIN_HANDLERS
    from moto import mock_aws

    _fake_environment(monkeypatch, tmp_path_factory.mktemp("sagemaker-aws"))
    requests: list[tuple[str, str, dict[str, Any]]] = []

    def capture(params: dict[str, Any], model: Any, **_: Any) -> None:
        requests.append((model.service_model.service_name, model.name, _snapshot(params)))

    def strip(parsed: dict[str, Any], **_: Any) -> None:
        _strip_empty_structs(parsed)

    # every botocore session created from now on registers these (moto registers its own stubber the same way)
    handlers = [("provide-client-params", capture), ("after-call.sagemaker", strip)]
    BUILTIN_HANDLERS.extend(handlers)
    _reset_sdk_clients()
    try:
        with mock_aws():
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket=BUCKET)
            role = boto3.client("iam", region_name=REGION).create_role(
                RoleName=ROLE_NAME,
                AssumeRolePolicyDocument='{"Statement": [{"Effect": "Allow", "Principal": '
                '{"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}',
            )
            aws = FakeAws(REGION, BUCKET, role["Role"]["Arn"], s3, requests)
            requests.clear()  # the set-up above is not the test's traffic
            yield aws
    finally:
        for handler in handlers:
            BUILTIN_HANDLERS.remove(handler)
        _reset_sdk_clients()


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's standalone server on 127.0.0.1 (a free port) for subprocesses (DVC, the CLI); yields its endpoint URL.

    The fake credentials and region are set in this process's environment, so a subprocess started with
    `os.environ` (plus AWS_ENDPOINT_URL=<url>, or DVC's `endpointurl`) reaches it. Nothing is captured here:
    a request log crosses no process boundary; assert on the server's state (objects, jobs) instead.
    """
    from moto.server import ThreadedMotoServer

    _fake_environment(monkeypatch, tmp_path_factory.mktemp("moto-server"))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


__all__ = ["FakeAws", "moto_server", "sagemaker_aws"]


def archive_of(files: dict[str, bytes]) -> bytes:
    """A model.tar.gz holding `files` (name -> content) at its root, as SageMaker uploads /opt/ml/model."""
    import io
    import tarfile

    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return data.getvalue()


@contextmanager
def on_create_training_job(aws: FakeAws, play: Any) -> Iterator[None]:
    """After each CreateTrainingJob moto took, `play(params, job)` plays the job's container: the request as sent and
    moto's job, whose status, metrics and model artifact it sets (its model.tar.gz goes to S3 with `put_model`)."""
    from botocore.handlers import BUILTIN_HANDLERS
    from moto.sagemaker.models import sagemaker_backends

    def after_create(context: dict[str, Any], **_: Any) -> None:
        params = context["mlexp_params"]
        play(params, sagemaker_backends["123456789012"][aws.region].training_jobs[params["TrainingJobName"]])

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["mlexp_params"] = params

    handlers = [
        ("provide-client-params.sagemaker.CreateTrainingJob", remember),
        ("after-call.sagemaker.CreateTrainingJob", after_create),
    ]
    BUILTIN_HANDLERS.extend(handlers)
    try:
        yield
    finally:
        for one in handlers:
            BUILTIN_HANDLERS.remove(one)


def put_model(aws: FakeAws, job: Any, archive: bytes) -> None:
    """The job's model.tar.gz where its ModelArtifacts say."""
    bucket, _, key = job.model_artifacts["S3ModelArtifacts"].removeprefix("s3://").partition("/")
    aws.s3.put_object(Bucket=bucket, Key=key, Body=archive)


def replaced(overrides: tuple[str, ...] | list[str], *more: str) -> list[str]:
    """`overrides` then `more`, a key of `more` replacing its value in `overrides` (the command refuses a key given
    twice)."""
    keys = {override.partition("=")[0] for override in more}
    return [*(o for o in overrides if o.partition("=")[0] not in keys), *more]


def job_overrides(aws: FakeAws, task: str, experiment: str, *more: str) -> list[str]:
    """A trial as a training job on the fake AWS, polled without waiting; `more` adds sizes and settings (or replaces
    these: `compute.role_arn=null`)."""
    base = [
        f"task={task}",
        f"tracking.experiment_name={experiment}",
        "compute=sagemaker",
        f"compute.role_arn={aws.role_arn}",
        f"compute.bucket={aws.bucket}",
        "compute.poll_s=0",
    ]
    return replaced(base, *more)


def run_in_process(project: Path, overrides: list[str]) -> str:
    """`mlexp <overrides>` in this process (moto does not cross processes); returns the trial's run id."""
    from mlexp.cli_in_process import command_line, run_trial

    with command_line(project, overrides) as conf_dir:
        return run_trial(conf_dir, overrides).run_id


def container_env(code: Path, opt_ml: Path, hyperparameters: dict[str, Any], **channels: Path) -> dict[str, str]:
    """The environment SageMaker gives the job's entry: its folders under `opt_ml`, its hyperparameters, each input
    channel as SM_CHANNEL_<NAME>; no AWS credentials and no store of this machine."""
    import json
    import os

    kept = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLEXP_", "PYTHONPATH", "AWS_"))}
    return {
        **kept,
        "MLEXP_TRACKING_WRITER": "inline",
        "PYTHONPATH": str(code / "src"),
        "SM_MODEL_DIR": str(opt_ml / "model"),
        "SM_OUTPUT_DATA_DIR": str(opt_ml / "output" / "data"),
        "SM_OUTPUT_DIR": str(opt_ml / "output"),
        "SM_HPS": json.dumps(hyperparameters),
        **{f"SM_CHANNEL_{name.upper()}": str(path) for name, path in channels.items()},
    }
