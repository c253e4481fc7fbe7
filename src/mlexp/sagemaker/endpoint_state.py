"""What a deploy=sagemaker endpoint serves now, and whether UpdateEndpoint would take it (DescribeEndpoint, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlexp.sagemaker.endpoint_errors import EndpointError
from mlexp.sagemaker.endpoint_model import SOURCE_VARIABLE

if TYPE_CHECKING:
    from mlexp.sagemaker.endpoint_setup import Setup


def existing_endpoint(name: str, setup: Setup) -> Any | None:
    """The endpoint resource, or None when there is none of that name."""
    from botocore.exceptions import ClientError
    from sagemaker.core.resources import Endpoint

    try:
        return Endpoint.get(endpoint_name=name, session=setup.boto_session, region=setup.region)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationException":
            return None
        raise


def served_models(endpoint: Any, setup: Setup) -> tuple[list[str], Any | None]:
    """(model names, primary model resource) behind the endpoint's current config."""
    from sagemaker.core.resources import EndpointConfig, Model

    config = EndpointConfig.get(
        endpoint_config_name=endpoint.endpoint_config_name, session=setup.boto_session, region=setup.region
    )
    names = [str(v.model_name) for v in config.production_variants]
    model = Model.get(model_name=names[0], session=setup.boto_session, region=setup.region) if names else None
    return names, model


def model_already_serving(endpoint: Any, setup: Setup, variant: dict[str, Any]) -> Any | None:
    """The endpoint's model when it already serves `source` on the same container and instances, else None."""
    if endpoint.endpoint_status != "InService":
        return None
    from sagemaker.core.resources import EndpointConfig, Model

    config = EndpointConfig.get(
        endpoint_config_name=endpoint.endpoint_config_name, session=setup.boto_session, region=setup.region
    )
    if len(config.production_variants) != 1:
        return None
    served = config.production_variants[0]
    model = Model.get(model_name=served.model_name, session=setup.boto_session, region=setup.region)
    container = model.primary_container
    now = {
        "source": (container.environment or {}).get(SOURCE_VARIABLE),
        "image": container.image,
        "instance_type": served.instance_type,
        "initial_instance_count": served.initial_instance_count,
    }
    return model if now == variant else None


def check_updatable(endpoint: Any) -> None:
    """Refuse, before anything is uploaded, an endpoint that UpdateEndpoint would refuse."""
    status = str(endpoint.endpoint_status)
    if status == "Failed":
        raise EndpointError(
            f"endpoint {endpoint.endpoint_name} is Failed ({endpoint.failure_reason}): delete it with "
            f"`mlexp undeploy {endpoint.endpoint_name}`, then deploy again"
        )
    if status not in ("InService", "OutOfService"):
        raise EndpointError(
            f"endpoint {endpoint.endpoint_name} is {status}: deploy again once it is InService "
            "(SageMaker changes one endpoint at a time)"
        )
