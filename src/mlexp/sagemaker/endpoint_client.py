"""What `mlexp predict` and `mlexp undeploy` ask of a deploy=sagemaker endpoint: InvokeEndpoint, Delete*."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from mlexp.aws_setup import REGION_RULE, region_error, region_name_valid
from mlexp.errors import DataError
from mlexp.sagemaker.endpoint_errors import EndpointError, aws_failure
from mlexp.sagemaker.endpoint_setup import Setup
from mlexp.sagemaker.endpoint_state import existing_endpoint, served_models
from mlexp.sagemaker.session import NO_CREDENTIALS, SageMakerSetupError

if TYPE_CHECKING:
    import boto3


def _session(region: str | None) -> tuple[boto3.Session, str]:
    """A session in `region` (--region, else deploy.region of conf/deploy/sagemaker.yaml, else botocore's), refused
    before any request when the region is missing or not a name boto3 takes, or the credentials are missing."""
    if region and not region_name_valid(region):
        # boto3 would refuse the client, and the request's failure would blame the endpoint's name
        raise SageMakerSetupError(
            f"region {region!r} (--region, else deploy.region of conf/deploy/sagemaker.yaml) is not {REGION_RULE}; "
            "pass one such as --region us-east-1"
        )
    import boto3

    session = boto3.Session(region_name=region or None)
    if not session.region_name:
        raise SageMakerSetupError(
            "no AWS region: pass --region <region>, or set AWS_DEFAULT_REGION, or `aws configure`"
        )
    refused = region_error("--region", None, session.region_name, "--region us-east-1")  # AWS_DEFAULT_REGION's
    if refused is not None:
        raise SageMakerSetupError(str(refused))
    if session.get_credentials() is None:
        raise SageMakerSetupError(NO_CREDENTIALS)
    return session, session.region_name


def invoke(name: str, body: bytes, content_type: str, accept: str, region: str | None = None) -> tuple[bytes, str]:
    """Send one request to the endpoint (InvokeEndpoint); returns the answer's body and content type."""
    from botocore.exceptions import BotoCoreError, ClientError
    from sagemaker.core.resources import Endpoint

    _, region_name = _session(region)
    endpoint = Endpoint(endpoint_name=name)
    # the SDK's cached runtime client of the region (SageMakerClient): one connection pool for every request
    endpoint._set_client_context(session=None, region=region_name)
    try:
        answer = endpoint.invoke(body=body, content_type=content_type, accept=accept)
        data = answer.body
        data = data.read() if hasattr(data, "read") else data
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ModelError":
            raise aws_failure(f"the request to endpoint {name}", region_name, error) from None
        raise EndpointError(
            f"endpoint {name} ({region_name}) refused the request: {_container_answer(error.response)}; check the "
            f"request's format (--content-type) and the endpoint's logs (/aws/sagemaker/Endpoints/{name})"
        ) from None
    except BotoCoreError as error:
        raise aws_failure(f"the request to endpoint {name}", region_name, error) from None
    return (data if isinstance(data, bytes) else str(data).encode()), str(answer.content_type or "")


def _container_answer(response: dict) -> str:
    """What the model's container answered, in one line: its status and its body's first line (the inference
    toolkit's message; a traceback follows it), else SageMaker's own message."""
    body = str(response.get("OriginalMessage") or "").strip()
    if body:
        return f"{response.get('OriginalStatusCode', '?')} {body.splitlines()[0].strip()}"
    return " ".join(str(response.get("Error", {}).get("Message", "")).split())


def undeploy(name: str, region: str | None = None) -> list[str]:
    """Delete the endpoint, its endpoint config and its model(s); returns what was deleted."""
    from botocore.exceptions import BotoCoreError, ClientError

    session, region_name = _session(region)
    checked = Setup(session, region_name, "", "", "")
    try:
        current = existing_endpoint(name, checked)
        if current is None:
            raise DataError(f"there is no endpoint {name} in {region_name}: nothing to undeploy (check --region)")
        config = str(current.endpoint_config_name)
        try:
            models, _ = served_models(current, checked)
        except ClientError:
            models = []  # its config was deleted by hand; the endpoint still goes
        client = session.client("sagemaker", region_name=region_name)
        client.delete_endpoint(EndpointName=name)
    except (BotoCoreError, ClientError) as error:
        raise aws_failure(f"deleting endpoint {name}", region_name, error) from None
    deleted = [f"endpoint {name}"]
    for what, call in (
        (f"endpoint config {config}", lambda: client.delete_endpoint_config(EndpointConfigName=config)),
        *((f"model {m}", lambda m=m: client.delete_model(ModelName=m)) for m in models),
    ):
        try:
            call()
            deleted.append(what)
        except (BotoCoreError, ClientError) as error:
            print(f"kept {what}: {aws_failure(f'deleting {what}', region_name, error)}", file=sys.stderr)
    return deleted
