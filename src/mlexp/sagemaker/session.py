"""The SageMaker session jobs are submitted with; refused early when role, region, credentials or bucket is missing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlexp.aws_setup import region_error
from mlexp.config.validate import role_arn_error
from mlexp.errors import ConfigError, MlexpError, no_credentials

if TYPE_CHECKING:
    from sagemaker.core.helper.session_helper import Session


class SageMakerSetupError(ConfigError):
    """Something SageMaker needs before any upload is missing: role, region, credentials or bucket. Refused before
    anything runs, as a wrong config is: exit status 2."""


# SageMaker's line when botocore's chain finds no credentials (a job, a tuning job, an endpoint, predict, undeploy)
NO_CREDENTIALS = no_credentials("SageMaker")


class AwsUnreachable(MlexpError):
    """AWS did not answer: that says nothing about the set-up (exit status 1, as a failure: try again)."""


def _account_id(boto_session: Any) -> str:
    """The caller's account, which also proves the credentials work (one STS call, nothing uploaded)."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    if boto_session.get_credentials() is None:
        raise SageMakerSetupError(NO_CREDENTIALS)
    try:
        return str(boto_session.client("sts").get_caller_identity()["Account"])
    except EndpointConnectionError as error:
        # no answer at all says nothing about the credentials
        raise AwsUnreachable(
            f"cannot reach AWS ({error.kwargs.get('endpoint_url', 'STS')}): check the network, the region "
            "or AWS_ENDPOINT_URL"
        ) from error
    except (BotoCoreError, ClientError) as error:
        raise SageMakerSetupError(
            f"the AWS credentials are not accepted ({error}): refresh them with `aws sso login` or `aws configure`"
        ) from error


def _check_bucket(boto_session: Any, bucket: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        boto_session.client("s3").head_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError) as error:
        raise SageMakerSetupError(
            f"compute.bucket={bucket} is not an S3 bucket these credentials can use ({error}): create it with "
            f"`aws s3 mb s3://{bucket}`, or set compute.bucket=null for the SDK's sagemaker-<region>-<account>"
        ) from error


def sagemaker_session(compute: Any) -> Session:
    """A SageMaker session for `compute` (cfg.compute); raises SageMakerSetupError before anything is uploaded."""
    # check_sagemaker_job's, for a caller without it
    refused = role_arn_error("compute", compute.get("role_arn")) or region_error(
        "compute.region", compute.get("region")
    )
    if refused is not None:
        raise SageMakerSetupError(str(refused))
    import boto3

    boto_session = boto3.Session(region_name=compute.get("region") or None)
    if not boto_session.region_name:
        raise SageMakerSetupError(
            "no AWS region: set compute.region=<region> (e.g. us-east-1), or AWS_DEFAULT_REGION, or `aws configure`"
        )
    refused = region_error("compute.region", None, boto_session.region_name)  # AWS_DEFAULT_REGION's, the profile's
    if refused is not None:
        raise SageMakerSetupError(str(refused))
    account = _account_id(boto_session)
    bucket = compute.get("bucket") or None
    if bucket:
        _check_bucket(boto_session, bucket)
    from sagemaker.core.helper.session_helper import Session

    session = Session(boto_session=boto_session, default_bucket=bucket)
    if bucket is None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            session.default_bucket()  # the SDK's sagemaker-<region>-<account>, created when missing
        except (BotoCoreError, ClientError) as error:
            raise SageMakerSetupError(
                f"cannot use or create the default bucket sagemaker-{boto_session.region_name}-{account} ({error}): "
                "set compute.bucket=<a bucket you can write to>"
            ) from error
    return session
