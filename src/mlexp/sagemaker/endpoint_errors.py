"""Errors of deploy=sagemaker, `mlexp predict` and `mlexp undeploy`: one line naming the problem and the fix."""

from __future__ import annotations

from mlexp.errors import MlexpError

CREDENTIAL_CODES = ("UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException")


class EndpointError(MlexpError):
    """An endpoint that is missing, failed, or did not reach InService in time."""


def aws_failure(doing: str, region: str, error: Exception) -> EndpointError:
    """A botocore error as one line naming what failed and what to do (the CLI prints it without a traceback)."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
    if isinstance(error, ClientError):
        problem = f"{code}: {error.response.get('Error', {}).get('Message', '')}"
    else:
        problem = f"{type(error).__name__}: {error}"
    if isinstance(error, EndpointConnectionError | ConnectionError):
        fix = f"SageMaker in {region} is unreachable: check the region (--region, deploy.region) and your network"
    elif isinstance(error, NoCredentialsError) or code in CREDENTIAL_CODES:
        fix = "check your AWS credentials (`aws sts get-caller-identity`; `aws sso login` when they expired)"
    elif "AccessDenied" in code:
        fix = "give your AWS identity the SageMaker permission the error names (AmazonSageMakerFullAccess covers it)"
    elif "Throttl" in code or code == "LimitExceededException":
        fix = "SageMaker is busy or at a quota: try again in a minute, or raise the quota in Service Quotas"
    else:
        fix = "check the name and --region, then try again"
    return EndpointError(" ".join(f"{doing} in {region} failed ({problem}); {fix}".split()))
