"""What a deploy=sagemaker endpoint is given to serve: model.tar.gz in S3, a SageMaker Model, an EndpointConfig.

The container: `deploy.image_uri`, or the SageMaker PyTorch inference container for Python 3.11 (PyTorch 2.5.1,
CPU or GPU after the instance type). It is chosen for its Python, not for PyTorch: it runs the same inference
toolkit as the scikit-learn, XGBoost and MXNet containers (code/inference.py's four functions, a pip install of
code/requirements.txt), but the MXNet inference containers stop at Python 3.8 and the scikit-learn/XGBoost ones
at 3.9/3.10, below the Python MLflow 3 (the pyfunc models' code) and mlexp need.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

if TYPE_CHECKING:
    from mlexp.sagemaker.endpoint_setup import Setup

# the framework container every task's model runs in when deploy.image_uri is null (see the module docstring)
FRAMEWORK, FRAMEWORK_VERSION, PY_VERSION = "pytorch", "2.5.1", "py311"
VARIANT = "AllTraffic"
# the toolkit reads these: the handler module and where the archive's code/ folder lands
HANDLER_ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": "inference.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
}
# what the endpoint serves, on its SageMaker Model: a redeploy of the same champion changes nothing
SOURCE_VARIABLE = "MLEXP_MODEL_SOURCE"
TASK_VARIABLE = "MLEXP_TASK"
NAME_LIMIT = 63


def image_uri(deploy: DictConfig, region: str) -> str:
    """deploy.image_uri, or the region's PyTorch 2.5.1 / Python 3.11 inference container for the instance type."""
    if deploy.get("image_uri"):
        return str(deploy.image_uri)
    from sagemaker.core import image_uris

    return str(
        image_uris.retrieve(
            FRAMEWORK,
            region=region,
            version=FRAMEWORK_VERSION,
            py_version=PY_VERSION,
            image_scope="inference",
            instance_type=str(deploy.instance_type),
        )
    )


def resource_name(endpoint: str, label: str, now: datetime) -> str:
    """The name of a deployment's Model and EndpointConfig: <endpoint>-<label>-<UTC time>, at most NAME_LIMIT."""
    # to the millisecond: a second deploy within the same second (new instances for the same model) needs a new name
    stamp = f"{now:%Y%m%d-%H%M%S}-{now.microsecond // 1000:03d}"
    head = endpoint[: NAME_LIMIT - len(label) - len(stamp) - 2].rstrip("-")
    return f"{head}-{label}-{stamp}"


def upload(setup: Setup, archive: Path, key: str) -> str:
    """Put model.tar.gz at s3://<bucket>/<key> with a progress bar; returns its URI."""
    from tqdm import tqdm

    size = archive.stat().st_size
    with tqdm(total=size, unit="B", unit_scale=True, desc=f"upload {archive.name}", leave=False, disable=None) as bar:
        setup.boto_session.client("s3", region_name=setup.region).upload_file(
            str(archive), setup.bucket, key, Callback=bar.update
        )
    return f"s3://{setup.bucket}/{key}"


def resource_tags(task: str, source: str) -> list[Any]:
    """The tags of the Model, the EndpointConfig and a new endpoint."""
    from sagemaker.core.shapes import Tag

    return [Tag(key="mlexp.task", value=task), Tag(key="mlexp.model_source", value=source)]


def create_model(
    setup: Setup, resource: str, image: str, model_data: str, task: str, source: str, tags: list[Any]
) -> None:
    """CreateModel: `model_data` on the `image` container, its handler told the task and the model's source."""
    from sagemaker.core.resources import Model
    from sagemaker.core.shapes import ContainerDefinition

    Model.create(
        model_name=resource,
        primary_container=ContainerDefinition(
            image=image,
            model_data_url=model_data,
            environment={
                **HANDLER_ENVIRONMENT,
                "SAGEMAKER_REGION": setup.region,
                SOURCE_VARIABLE: source,
                TASK_VARIABLE: task,
            },
        ),
        execution_role_arn=setup.role_arn,
        tags=tags,
        session=setup.boto_session,
        region=setup.region,
    )


def create_config(deploy: DictConfig, setup: Setup, resource: str, tags: list[Any]) -> None:
    """CreateEndpointConfig: one variant taking all traffic, on deploy.instance_type × initial_instance_count."""
    from sagemaker.core.resources import EndpointConfig
    from sagemaker.core.shapes import ProductionVariant

    EndpointConfig.create(
        endpoint_config_name=resource,
        production_variants=[
            ProductionVariant(
                variant_name=VARIANT,
                model_name=resource,
                initial_instance_count=int(deploy.initial_instance_count),
                instance_type=str(deploy.instance_type),
                initial_variant_weight=1.0,
            )
        ],
        tags=tags,
        session=setup.boto_session,
        region=setup.region,
    )
