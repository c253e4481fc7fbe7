"""deploy=sagemaker's pre-flight: the endpoint's name, and role, region, credentials and bucket checked before
anything is uploaded."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from mlexp.aws_setup import region_error
from mlexp.config.bounds import at_least, out_of_bounds
from mlexp.config.validate import role_arn_error
from mlexp.sagemaker.session import SageMakerSetupError, _account_id

if TYPE_CHECKING:
    import boto3


@dataclass(frozen=True)
class Setup:
    """What every SageMaker call of a deployment needs, checked before anything is uploaded."""

    boto_session: boto3.Session
    region: str
    role_arn: str
    bucket: str
    prefix: str  # key prefix inside the bucket, without slashes at either end


def endpoint_name(task: str, configured: str | None = None) -> str:
    """deploy.endpoint_name, or mlexp-<task> (SageMaker names take letters, digits and hyphens)."""
    return configured or "mlexp-" + re.sub(r"[^a-zA-Z0-9]+", "-", task).strip("-")


def _split_s3(uri: str) -> tuple[str, str]:
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", uri)
    if match is None:
        raise SageMakerSetupError(
            f"deploy.model_data_prefix={uri} is not an S3 URI: write it as s3://<bucket>/<prefix>"
        )
    return match.group(1), match.group(2).strip("/")


def setup(deploy: DictConfig) -> Setup:
    """Role, region, credentials and bucket of `deploy` (cfg.deploy), or SageMakerSetupError naming what is missing."""
    from botocore.exceptions import BotoCoreError, ClientError

    refused = role_arn_error("deploy", deploy.get("role_arn"))
    if refused is not None:
        raise SageMakerSetupError(str(refused))
    # CreateEndpointConfig's InitialInstanceCount is at least 1; refused before credentials are looked up
    error = out_of_bounds("deploy.initial_instance_count", deploy.get("initial_instance_count"), at_least(1))
    if error is not None:
        raise error
    # a name boto3 refuses would fail the first client, blaming the credentials
    refused = region_error("deploy.region", deploy.get("region"))
    if refused is not None:
        raise SageMakerSetupError(str(refused))
    import boto3

    boto_session = boto3.Session(region_name=deploy.get("region") or None)
    region = boto_session.region_name
    if not region:
        raise SageMakerSetupError(
            "no AWS region: set deploy.region=<region> (e.g. us-east-1), or AWS_DEFAULT_REGION, or `aws configure`"
        )
    refused = region_error("deploy.region", None, region)  # AWS_DEFAULT_REGION's, the profile's
    if refused is not None:
        raise SageMakerSetupError(str(refused))
    account = _account_id(boto_session)
    prefix_uri = deploy.get("model_data_prefix")
    if prefix_uri:
        bucket, prefix = _split_s3(str(prefix_uri))
    else:
        bucket, prefix = f"sagemaker-{region}-{account}", "mlexp/endpoints"
    try:
        boto_session.client("s3", region_name=region).head_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError) as error:
        raise SageMakerSetupError(
            f"S3 bucket {bucket} is missing or not yours to write ({error}): create it with `aws s3 mb s3://{bucket}` "
            "or set deploy.model_data_prefix=s3://<a bucket you can write to>/<prefix>"
        ) from error
    return Setup(boto_session, region, str(deploy.role_arn), bucket, prefix)
