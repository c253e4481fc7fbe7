"""deploy=sagemaker offline: the archive's handler answers like the registered model, and the endpoint requests
(CreateModel → CreateEndpointConfig → CreateEndpoint, UpdateEndpoint on a new model, InvokeEndpoint, Delete*)
are exactly what SageMaker needs. moto in this process; InvokeEndpoint through botocore's Stubber (moto's is canned).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shutil
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

import mlexp
from conftest import REPO, TINY
from mlexp import commands
from mlexp.config.schema import DeployConfig
from mlexp.errors import MlexpError
from mlexp.sagemaker import endpoint as sagemaker_endpoint
from mlexp.sagemaker import endpoint_setup
from mlexp.sagemaker.endpoint_errors import EndpointError
from mlexp.sagemaker.endpoint_model import resource_name
from mlexp.tasks.churn_incentives import classifier, features
from mlexp.tasks.churn_incentives.registered_model import customer_rows
from sagemaker_aws import FakeAws, sagemaker_aws  # noqa: F401

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311"
CHURN = (TINY[0], "model.num_round=5")  # TINY's rows (churn has no epochs)
ABALONE_ROW = {
    "sex": "M",
    "length": 0.455,
    "diameter": 0.365,
    "height": 0.095,
    "whole_weight": 0.514,
    "shucked_weight": 0.2245,
    "viscera_weight": 0.101,
    "shell_weight": 0.15,
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sagemaker-endpoint") / "project"
    shutil.copytree(REPO / "conf", folder / "conf")
    return folder


def _update_endpoint(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
    """UpdateEndpoint on moto's endpoint (moto 5.2.5 lacks the operation): it now serves the new config."""
    request = json.loads(params["body"])  # before-call gets the serialised request
    from botocore.awsrequest import AWSResponse
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    endpoint = backend.endpoints[request["EndpointName"]]
    config = backend.describe_endpoint_config(request["EndpointConfigName"])
    endpoint.endpoint_config_name = request["EndpointConfigName"]
    endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
    return AWSResponse("https://sagemaker.us-east-1.amazonaws.com/", 200, {}, None), {"EndpointArn": endpoint.arn}


@pytest.fixture
def aws(sagemaker_aws: FakeAws) -> Iterator[FakeAws]:  # noqa: F811 - the shared fixture, imported above
    """The shared offline account, plus UpdateEndpoint for clients created from now on (the request is captured)."""
    from botocore.handlers import BUILTIN_HANDLERS

    handler = ("before-call.sagemaker.UpdateEndpoint", _update_endpoint)
    BUILTIN_HANDLERS.append(handler)
    try:
        yield sagemaker_aws
    finally:
        BUILTIN_HANDLERS.remove(handler)


@pytest.fixture
def here(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`mlexp predict/undeploy <task>` read the project's conf/deploy/sagemaker.yaml."""
    monkeypatch.setenv("MLEXP_ROOT", str(project))
    # trials write the store from this process: no writer process (and its imports) per trial
    monkeypatch.setenv("MLEXP_TRACKING_WRITER", "inline")
    return project


def aws_settings(aws: FakeAws, prefix: str = "endpoints") -> list[str]:
    return [
        "deploy=sagemaker",
        f"deploy.role_arn={aws.role_arn}",
        f"deploy.model_data_prefix=s3://{aws.bucket}/{prefix}",
    ]


def unpacked(aws: FakeAws, model_data_url: str, into: Path) -> ModuleType:
    """The uploaded model.tar.gz extracted into `into`; returns its code/inference.py imported on its own."""
    bucket, key = model_data_url.removeprefix("s3://").split("/", 1)
    archive = aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tops = {name.split("/")[0] for name in tar.getnames()}
        tar.extractall(into, filter="data")
    assert tops == {"model", "code"}
    assert (into / "code" / "requirements.txt").read_text() == (into / "model" / "requirements.txt").read_text()
    spec = importlib.util.spec_from_file_location("packaged_inference", into / "code" / "inference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def handler_answer(handler: ModuleType, model: object, body: str, content_type: str, accept: str) -> tuple[str, str]:
    data = handler.input_fn(body.encode(), content_type)
    answer: tuple[str, str] = handler.output_fn(handler.predict_fn(data, model), accept)
    return answer


def test_two_deploys_in_one_second_get_two_resource_names_within_sagemakers_limit():
    first = datetime(2026, 12, 5, 2, 33, 27, 120_000, tzinfo=UTC)
    names = {resource_name("mlexp-" + "x" * 80, "v12", first + timedelta(milliseconds=ms)) for ms in (0, 1, 500)}
    assert len(names) == 3 and all(len(name) <= 63 for name in names)


def test_missing_role_is_refused_in_one_line_before_anything_is_uploaded(aws: FakeAws, here: Path):
    with pytest.raises(MlexpError) as refused:
        mlexp.run("churn_incentives", ["deploy=sagemaker", *CHURN], root=here)
    message = str(refused.value)
    assert "\n" not in message and "deploy.role_arn=arn:aws:iam::<account>:role/<role>" in message
    assert aws.operations("s3") == [] and aws.operations("sagemaker") == []
    with pytest.raises(MlexpError) as refused:
        mlexp.run("churn_incentives", aws_settings(aws)[:2] + ["deploy.model_data_prefix=s3://no-such-bucket/x"])
    assert "\n" not in str(refused.value) and "S3 bucket no-such-bucket is missing" in str(refused.value)
    assert aws.operations("s3") == ["HeadBucket"] and aws.operations("sagemaker") == []


def test_churn_endpoint_created_invoked_and_deleted(
    aws: FakeAws, here: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    first = mlexp.run("churn_incentives", [*aws_settings(aws), "deploy.source=trial", *CHURN], root=here)
    endpoint = "mlexp-churn-incentives"
    [model_request] = aws.calls("CreateModel")
    name = model_request["ModelName"]
    assert name.startswith(f"{endpoint}-{first.run_id[:8]}-")
    model_data = f"s3://{aws.bucket}/endpoints/{name}/model.tar.gz"
    assert model_request == {
        "ModelName": name,
        "PrimaryContainer": {
            "Image": IMAGE,
            "ModelDataUrl": model_data,
            "Environment": {
                "SAGEMAKER_PROGRAM": "inference.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                "SAGEMAKER_REGION": "us-east-1",
                "MLEXP_MODEL_SOURCE": f"trial {first.run_id}",
                "MLEXP_TASK": "churn_incentives",
            },
        },
        "ExecutionRoleArn": aws.role_arn,
        "Tags": [
            {"Key": "mlexp.task", "Value": "churn_incentives"},
            {"Key": "mlexp.model_source", "Value": f"trial {first.run_id}"},
        ],
    }
    [config_request] = aws.calls("CreateEndpointConfig")
    assert config_request["EndpointConfigName"] == name
    assert config_request["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": name,
            "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large",
            "InitialVariantWeight": 1.0,
        }
    ]
    [endpoint_request] = aws.calls("CreateEndpoint")
    assert {k: endpoint_request[k] for k in ("EndpointName", "EndpointConfigName")} == {
        "EndpointName": endpoint,
        "EndpointConfigName": name,
    }
    # the archive is uploaded before the model that points at it
    assert aws.operations().index("PutObject") < aws.operations().index("CreateModel")
    arn = first.tags["mlexp.sagemaker.endpoint_arn"]
    assert arn.endswith(f":endpoint/{endpoint}") and first.tags["mlexp.sagemaker.model_data_url"] == model_data

    # the handler, on the uploaded archive, answers a churn.txt row with the booster's probability
    handler = unpacked(aws, model_data, tmp_path / "first")
    model = handler.model_fn(str(tmp_path / "first"))
    request = (tmp_path / "first" / "model" / "serving_input_example.json").read_text()
    body, content_type = handler_answer(handler, model, request, "application/json", "application/json")
    predictions = json.loads(body)["predictions"]
    assert content_type == "application/json" and len(predictions) == 5
    # the trial's own booster and encoding on the same rows give the same probabilities
    rows = pd.DataFrame(
        json.loads(request)["dataframe_split"]["data"], columns=json.loads(request)["dataframe_split"]["columns"]
    )
    encoding = features.Encoding.load(Path(first.tags["paths.data"]) / "encoding.json")
    booster = classifier.load(Path(first.tags["paths.models"]))
    expected = classifier.predict(booster, encoding.transform(customer_rows(rows, encoding)), encoding.feature_names)
    np.testing.assert_allclose([p["churn_probability"] for p in predictions], expected, rtol=1e-6)
    csv, csv_type = handler_answer(handler, model, request, "application/json", "text/csv")
    assert csv_type == "text/csv" and csv.splitlines()[0] == "churn_probability" and len(csv.splitlines()) == 6
    with pytest.raises(Exception, match="content type 'image/png' is not supported") as refused:
        handler.input_fn(b"...", "image/png")
    assert refused.value.status_code == 415  # the toolkit's error, or RefusedRequest without it

    # mlexp predict: the request file goes to InvokeEndpoint as it is, the answer is printed
    from botocore.stub import Stubber
    from sagemaker.core.utils.utils import SageMakerClient

    runtime = SageMakerClient(region_name=aws.region).get_client("sagemaker-runtime")
    answer = b'{"predictions": [{"churn_probability": 0.125}]}'
    request_file = tmp_path / "request.json"
    request_file.write_text(request)
    with Stubber(runtime) as stub:
        stub.add_response(
            "invoke_endpoint",
            {"Body": io.BytesIO(answer), "ContentType": "application/json"},
            {
                "EndpointName": endpoint,
                "Body": request.encode(),
                "ContentType": "application/json",
                "Accept": "application/json",
            },
        )
        capsys.readouterr()
        assert commands.run("predict", ["churn_incentives", "--file", str(request_file)]) == 0
        stub.assert_no_pending_responses()
        assert capsys.readouterr().out == answer.decode() + "\n"
        # a spreadsheet's Latin-1 CSV goes as its bytes, under the content type naming its charset (docs/sagemaker.md)
        latin1 = tmp_path / "request.csv"
        latin1.write_bytes("State,Note\nKS,déçue\n".encode("latin-1"))
        csv_type = "text/csv; charset=latin-1"
        stub.add_response(
            "invoke_endpoint",
            {"Body": io.BytesIO(answer), "ContentType": "application/json"},
            {
                "EndpointName": endpoint,
                "Body": latin1.read_bytes(),
                "ContentType": csv_type,
                "Accept": "application/json",
            },
        )
        assert commands.run("predict", ["churn_incentives", "--file", str(latin1), "--content-type", csv_type]) == 0
        stub.assert_no_pending_responses()
        capsys.readouterr()
        # a refused request: InvokeEndpoint's ModelError carries the container's status and body (message, traceback)
        refusal = "column CustServ Calls is negative in row 2 (-1); correct it"
        stub.add_client_error(
            "invoke_endpoint",
            service_error_code="ModelError",
            service_message="Received client error (400) from primary with message ...",
            http_status_code=424,
            modeled_fields={
                "OriginalStatusCode": 400,
                "OriginalMessage": f"{refusal}\nTraceback (most recent call last):\n  File ...",
            },
        )
        assert commands.run("predict", ["churn_incentives", "--file", str(request_file)]) == 2
        [line] = capsys.readouterr().err.splitlines()
        assert f"refused the request: 400 {refusal}; check the request's format" in line and "Traceback" not in line

    # mlexp undeploy: the endpoint, its config and its model
    assert commands.run("undeploy", [endpoint]) == 0
    assert aws.calls("DeleteEndpoint") == [{"EndpointName": endpoint}]
    assert aws.calls("DeleteEndpointConfig") == [{"EndpointConfigName": name}]
    assert aws.calls("DeleteModel") == [{"ModelName": name}]
    assert "deleted endpoint mlexp-churn-incentives" in capsys.readouterr().out
    assert commands.run("undeploy", ["churn_incentives"]) == 2
    assert "there is no endpoint mlexp-churn-incentives in us-east-1" in capsys.readouterr().err


def test_abalone_champion_served_a_redeploy_changes_nothing_other_instances_update_it_in_place(
    aws: FakeAws, here: Path, tmp_path: Path
):
    trial = mlexp.run("tabular_regression", [*aws_settings(aws, "abalone"), *TINY], root=here)
    [model_request] = aws.calls("CreateModel")
    environment = model_request["PrimaryContainer"]["Environment"]
    assert environment["MLEXP_MODEL_SOURCE"] == "models:/tabular_regression/1"
    assert model_request["ModelName"].startswith("mlexp-tabular-regression-v1-")
    assert trial.tags["mlexp.sagemaker.model_source"] == "models:/tabular_regression/1"

    handler = unpacked(aws, model_request["PrimaryContainer"]["ModelDataUrl"], tmp_path)
    model = handler.model_fn(str(tmp_path))
    body, _ = handler_answer(
        handler, model, json.dumps({"dataframe_records": [ABALONE_ROW, {**ABALONE_ROW, "sex": "I"}]}), "", "*/*"
    )
    rings = [p["rings"] for p in json.loads(body)["predictions"]]
    csv_rows = "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight\n" + ",".join(
        str(v) for v in ABALONE_ROW.values()
    )
    csv, _ = handler_answer(handler, model, csv_rows, "text/csv; charset=utf-8", "application/json")
    assert len(rings) == 2 and rings[0] != rings[1]
    assert json.loads(csv)["predictions"] == [{"rings": rings[0]}]

    # deploying the same champion again (what a later trial's deploy stage does when it kept the alias) changes nothing
    settings = OmegaConf.merge(
        OmegaConf.structured(DeployConfig),
        OmegaConf.load(here / "conf" / "deploy" / "sagemaker.yaml"),
        {"role_arn": aws.role_arn, "model_data_prefix": f"s3://{aws.bucket}/abalone"},
    )

    def never_built(folder: Path) -> Path:
        raise AssertionError("the endpoint already serves this model: nothing is packaged")

    source, uploads = "models:/tabular_regression/1", aws.operations().count("PutObject")
    again = sagemaker_endpoint.deploy(
        settings, endpoint_setup.setup(settings), "tabular_regression", source, "v1", never_built
    )
    assert again.action == "unchanged" and again.model_name == model_request["ModelName"]
    assert again.endpoint_arn == trial.tags["mlexp.sagemaker.endpoint_arn"]
    assert aws.operations().count("PutObject") == uploads and len(aws.calls("CreateModel")) == 1
    assert aws.calls("UpdateEndpoint") == []

    # the same model on other instances is a new EndpointConfig and an UpdateEndpoint, in place
    def tiny_archive(folder: Path) -> Path:
        (folder / "model.tar.gz").write_bytes(b"archive")
        return folder / "model.tar.gz"

    settings.instance_type = "ml.c5.xlarge"
    moved = sagemaker_endpoint.deploy(
        settings, endpoint_setup.setup(settings), "tabular_regression", source, "v1", tiny_archive
    )
    [_, new_model] = aws.calls("CreateModel")
    [_, new_config] = aws.calls("CreateEndpointConfig")
    assert moved.action == "updated" and moved.model_name == new_model["ModelName"] != model_request["ModelName"]
    assert new_config["ProductionVariants"][0]["InstanceType"] == "ml.c5.xlarge"
    assert new_model["PrimaryContainer"]["Environment"]["MLEXP_MODEL_SOURCE"] == source
    assert aws.calls("UpdateEndpoint") == [
        {"EndpointName": "mlexp-tabular-regression", "EndpointConfigName": new_model["ModelName"]}
    ]
    assert len(aws.calls("CreateEndpoint")) == 1
    # the replaced config and model are deleted once the endpoint serves the new one
    assert aws.calls("DeleteEndpointConfig") == [{"EndpointConfigName": model_request["ModelName"]}]
    assert aws.calls("DeleteModel") == [{"ModelName": model_request["ModelName"]}]
    uploads += 1

    # an endpoint SageMaker is still changing is refused before anything is packaged or uploaded
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sagemaker.models import sagemaker_backends

    sagemaker_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].endpoints[
        "mlexp-tabular-regression"
    ].endpoint_status = "Updating"
    with pytest.raises(EndpointError, match="mlexp-tabular-regression is Updating: deploy again"):
        sagemaker_endpoint.deploy(
            settings, endpoint_setup.setup(settings), "tabular_regression", "models:/x/2", "v2", never_built
        )
    assert aws.operations().count("PutObject") == uploads and len(aws.calls("CreateModel")) == 2


def test_aws_errors_of_predict_and_undeploy_are_one_line_naming_the_fix(
    aws: FakeAws, here: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from botocore.exceptions import ClientError, EndpointConnectionError
    from botocore.handlers import BUILTIN_HANDLERS

    def denied(**_: Any) -> None:
        error = {"Error": {"Code": "AccessDeniedException", "Message": "not authorized to\nDescribeEndpoint"}}
        raise ClientError(error, "DescribeEndpoint")

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://runtime.sagemaker.us-east-1.amazonaws.com")

    handlers = [
        ("before-call.sagemaker.DescribeEndpoint", denied),
        ("before-call.sagemaker-runtime.InvokeEndpoint", unreachable),
    ]
    BUILTIN_HANDLERS.extend(handlers)
    try:
        capsys.readouterr()
        assert commands.run("undeploy", ["churn_incentives"]) == 2
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith("mlexp undeploy: error: deleting endpoint mlexp-churn-incentives in us-east-1 failed")
        assert "AccessDeniedException: not authorized to DescribeEndpoint" in line and "give your AWS identity" in line
        request = tmp_path / "r.json"
        request.write_text('{"dataframe_records": [{}]}')
        assert commands.run("predict", ["churn_incentives", "--file", str(request)]) == 2
        [line] = capsys.readouterr().err.splitlines()
        assert "the request to endpoint mlexp-churn-incentives in us-east-1 failed (EndpointConnectionError" in line
        assert "check the region (--region, deploy.region) and your network" in line
        # a folder named as the request: it said "no such file"
        assert commands.run("predict", ["churn_incentives", "--file", str(tmp_path)]) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"mlexp predict: error: --file {tmp_path}: a folder; name the request's file in it, or pipe it on "
            "standard input"
        ]
    finally:
        for handler in handlers:
            BUILTIN_HANDLERS.remove(handler)
    assert aws.calls("DeleteEndpoint") == []


def test_the_champion_to_deploy_tells_a_registry_that_is_down_from_a_missing_one(tmp_path, empty_store, monkeypatch):
    # every MLflow error was "models:/X@champion does not exist; register one first (mlexp task=X deploy=registry)",
    # an outage too, and the registration it offered was under the task's name, not deploy.model_name
    import shlex
    import socket

    from hydra.core.override_parser.overrides_parser import OverridesParser

    from conftest import seed_store
    from mlexp.errors import DataError
    from mlexp.sagemaker.model_package import registered_version

    store = f"sqlite:///{seed_store(tmp_path, empty_store)}"
    for model_name in ("shop,2", "R&D", "null", "a'b\"c"):  # pasted unquoted: a list, refused, None, refused
        cfg = OmegaConf.create(
            {"task": {"name": "tabular_regression"}, "tracking": {"uri": None}, "deploy": {"model_name": model_name}}
        )
        with pytest.raises(DataError, match=rf"^deploy.source=champion: models:/{model_name}@champion does not") as no:
            registered_version(cfg, store, "champion")
        offered = shlex.split(str(no.value).split("register one first (")[1].split(") or deploy")[0])
        assert offered[:3] == ["mlexp", "task=tabular_regression", "deploy=registry"]
        [name] = OverridesParser.create().parse_overrides(offered[3:])
        assert (name.key_or_group, name.value()) == ("deploy.model_name", model_name)
    # a source not of a run id's form comes from no run: not searched for (a trailing backslash broke the filter)
    cfg = OmegaConf.create({"task": {"name": "tabular_regression"}, "tracking": {"uri": None}, "deploy": {}})
    for source in ("it's", "run\\", "a'b\"c"):
        with pytest.raises(DataError, match=rf"^deploy.source={re.escape(source)}: no version of registered model "):
            registered_version(cfg, store, source)
    for variable in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.setenv(variable, "")  # unset as in a user's shell, restored after: the lookup bounds them itself
        monkeypatch.delenv(variable)
    with socket.socket() as closed:  # a loopback port nothing listens on
        closed.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{closed.getsockname()[1]}"
    for source in ("champion", "0123abcd"):  # the alias's version, or the version a trial run registered
        with pytest.raises(DataError, match=rf"^cannot reach the tracking server {uri} \("):
            registered_version(cfg, uri, source)
    # bounded for the lookups only: the model's download after them keeps MLflow's own timeout (10 s failed a large
    # model that a tracking server fetches from S3 before it sends a byte)
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ and "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


@pytest.mark.parametrize("source", ["champion", "0123abcd"])  # the alias's version, or the one a trial registered
def test_the_version_to_deploy_from_a_database_store_without_its_driver_is_one_line(source):
    # was SQLAlchemy's ModuleNotFoundError traceback, from the MlflowClient the lookup opens (no AWS call before it)
    from mlexp.errors import DataError
    from mlexp.sagemaker.model_package import registered_version

    cfg = OmegaConf.create({"task": {"name": "tabular_regression"}, "tracking": {"uri": None}, "deploy": {}})
    with pytest.raises(DataError) as refused:
        registered_version(cfg, "postgresql://u@127.0.0.1:1/x", source)
    assert str(refused.value).startswith(
        "the tracking store's database driver is not installed (No module named 'psycopg'); "
        "install it (pip install 'psycopg[binary]'), or name one that is in tracking.uri"
    )
