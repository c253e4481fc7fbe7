"""deploy=sagemaker: a task's model behind a SageMaker real-time endpoint, updated in place on a new champion.

The deploy stage checks role, region, credentials and bucket first (nothing is uploaded when one is missing),
packages the model (model_package.py), uploads model.tar.gz, then CreateModel → CreateEndpointConfig →
CreateEndpoint, or, when the endpoint exists, a new EndpointConfig and UpdateEndpoint (the endpoint keeps
answering while SageMaker swaps instances), and waits for InService.
`mlexp predict` and `mlexp undeploy` (InvokeEndpoint, Delete*) are in endpoint_client.py.

The container: `deploy.image_uri`, or the SageMaker PyTorch inference container for Python 3.11 (PyTorch 2.5.1,
CPU or GPU after the instance type). It is chosen for its Python, not for PyTorch: it runs the same inference
toolkit as the scikit-learn, XGBoost and MXNet containers (code/inference.py's four functions, a pip install of
code/requirements.txt), but the MXNet inference containers stop at Python 3.8 and the scikit-learn/XGBoost ones
at 3.9/3.10, below the Python MLflow 3 (the pyfunc models' code) and mlexp need.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from mlexp.aws_setup import region_error
from mlexp.config.bounds import at_least, out_of_bounds
from mlexp.config.validate import role_arn_error
from mlexp.errors import MlexpError
from mlexp.sagemaker.endpoint_errors import EndpointError, aws_failure

if TYPE_CHECKING:
    import boto3

    from mlexp.tracking import Tracker

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
POLL_S = 15.0
TAG_PREFIX = "mlexp.sagemaker."


@dataclass(frozen=True)
class Setup:
    """What every SageMaker call of a deployment needs, checked before anything is uploaded."""

    boto_session: boto3.Session
    region: str
    role_arn: str
    bucket: str
    prefix: str  # key prefix inside the bucket, without slashes at either end


@dataclass(frozen=True)
class Deployed:
    endpoint_name: str
    endpoint_arn: str
    model_name: str
    endpoint_config_name: str
    model_data_url: str
    image_uri: str
    source: str
    action: str  # created | updated | unchanged


def endpoint_name(task: str, configured: str | None = None) -> str:
    """deploy.endpoint_name, or mlexp-<task> (SageMaker names take letters, digits and hyphens)."""
    return configured or "mlexp-" + re.sub(r"[^a-zA-Z0-9]+", "-", task).strip("-")


def _setup_error(message: str) -> MlexpError:
    from mlexp.sagemaker.session import SageMakerSetupError

    return SageMakerSetupError(message)


def _split_s3(uri: str) -> tuple[str, str]:
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", uri)
    if match is None:
        raise _setup_error(f"deploy.model_data_prefix={uri} is not an S3 URI: write it as s3://<bucket>/<prefix>")
    return match.group(1), match.group(2).strip("/")


def setup(deploy: DictConfig) -> Setup:
    """Role, region, credentials and bucket of `deploy` (cfg.deploy), or SageMakerSetupError naming what is missing."""
    from botocore.exceptions import BotoCoreError, ClientError

    from mlexp.sagemaker.session import _account_id

    refused = role_arn_error("deploy", deploy.get("role_arn"))
    if refused is not None:
        raise _setup_error(str(refused))
    # CreateEndpointConfig's InitialInstanceCount is at least 1; refused before credentials are looked up
    error = out_of_bounds("deploy.initial_instance_count", deploy.get("initial_instance_count"), at_least(1))
    if error is not None:
        raise error
    # a name boto3 refuses would fail the first client, blaming the credentials
    refused = region_error("deploy.region", deploy.get("region"))
    if refused is not None:
        raise _setup_error(str(refused))
    import boto3

    boto_session = boto3.Session(region_name=deploy.get("region") or None)
    region = boto_session.region_name
    if not region:
        raise _setup_error(
            "no AWS region: set deploy.region=<region> (e.g. us-east-1), or AWS_DEFAULT_REGION, or `aws configure`"
        )
    refused = region_error("deploy.region", None, region)  # AWS_DEFAULT_REGION's, the profile's
    if refused is not None:
        raise _setup_error(str(refused))
    account = _account_id(boto_session)
    prefix_uri = deploy.get("model_data_prefix")
    if prefix_uri:
        bucket, prefix = _split_s3(str(prefix_uri))
    else:
        bucket, prefix = f"sagemaker-{region}-{account}", "mlexp/endpoints"
    try:
        boto_session.client("s3", region_name=region).head_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError) as error:
        raise _setup_error(
            f"S3 bucket {bucket} is missing or not yours to write ({error}): create it with `aws s3 mb s3://{bucket}` "
            "or set deploy.model_data_prefix=s3://<a bucket you can write to>/<prefix>"
        ) from error
    return Setup(boto_session, region, str(deploy.role_arn), bucket, prefix)


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


def _resource_name(endpoint: str, label: str, now: datetime) -> str:
    # to the millisecond: a second deploy within the same second (new instances for the same model) needs a new name
    stamp = f"{now:%Y%m%d-%H%M%S}-{now.microsecond // 1000:03d}"
    head = endpoint[: NAME_LIMIT - len(label) - len(stamp) - 2].rstrip("-")
    return f"{head}-{label}-{stamp}"


def _endpoint(name: str, setup: Setup) -> Any | None:
    """The endpoint resource, or None when there is none of that name."""
    from botocore.exceptions import ClientError
    from sagemaker.core.resources import Endpoint

    try:
        return Endpoint.get(endpoint_name=name, session=setup.boto_session, region=setup.region)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationException":
            return None
        raise


def _served_model(endpoint: Any, setup: Setup) -> tuple[list[str], Any | None]:
    """(model names, primary model resource) behind the endpoint's current config."""
    from sagemaker.core.resources import EndpointConfig, Model

    config = EndpointConfig.get(
        endpoint_config_name=endpoint.endpoint_config_name, session=setup.boto_session, region=setup.region
    )
    names = [str(v.model_name) for v in config.production_variants]
    model = Model.get(model_name=names[0], session=setup.boto_session, region=setup.region) if names else None
    return names, model


def _serves(endpoint: Any, setup: Setup, variant: dict[str, Any]) -> Any | None:
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


def upload(setup: Setup, archive: Path, key: str) -> str:
    """Put model.tar.gz at s3://<bucket>/<key> with a progress bar; returns its URI."""
    from tqdm import tqdm

    size = archive.stat().st_size
    with tqdm(total=size, unit="B", unit_scale=True, desc=f"upload {archive.name}", leave=False, disable=None) as bar:
        setup.boto_session.client("s3", region_name=setup.region).upload_file(
            str(archive), setup.bucket, key, Callback=bar.update
        )
    return f"s3://{setup.bucket}/{key}"


def wait_in_service(endpoint: Any, seconds: float, poll_s: float = POLL_S) -> str:
    """Poll DescribeEndpoint until InService (a progress line shows the status); raises when Failed or too slow."""
    from tqdm import tqdm

    started = time.monotonic()
    name = endpoint.endpoint_name
    with tqdm(desc=f"endpoint {name}", bar_format="{desc} [{elapsed}]", leave=False, disable=None) as bar:
        while True:
            endpoint.refresh()
            status = str(endpoint.endpoint_status)
            bar.set_description_str(f"endpoint {name}: {status}")
            if status == "InService":
                return status
            if status in ("Failed", "OutOfService", "UpdateRollbackFailed"):
                raise EndpointError(
                    f"endpoint {name} is {status}: {endpoint.failure_reason}; see its CloudWatch "
                    f"logs (/aws/sagemaker/Endpoints/{name}), fix, and deploy again"
                )
            if time.monotonic() - started >= seconds:
                raise EndpointError(
                    f"endpoint {name} is still {status} after {seconds:.0f} s; it keeps going: "
                    "watch it in the SageMaker console, or deploy with a larger deploy.wait_s"
                )
            time.sleep(poll_s)


def _check_updatable(endpoint: Any) -> None:
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


def deploy(
    deploy_cfg: DictConfig,
    setup: Setup,
    task: str,
    source: str,
    label: str,
    archive_of: Any,
    now: datetime | None = None,
) -> Deployed:
    """Create the endpoint, or update it in place to a new model; `archive_of(folder)` builds model.tar.gz."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return _deploy(deploy_cfg, setup, task, source, label, archive_of, now)
    except (BotoCoreError, ClientError) as error:
        name = endpoint_name(task, deploy_cfg.get("endpoint_name"))
        raise aws_failure(f"deploying endpoint {name}", setup.region, error) from None


def _deploy(
    deploy_cfg: DictConfig,
    setup: Setup,
    task: str,
    source: str,
    label: str,
    archive_of: Any,
    now: datetime | None,
) -> Deployed:
    from sagemaker.core.resources import Endpoint, EndpointConfig, Model
    from sagemaker.core.shapes import ContainerDefinition, ProductionVariant, Tag

    name = endpoint_name(task, deploy_cfg.get("endpoint_name"))
    current = _endpoint(name, setup)
    image = image_uri(deploy_cfg, setup.region)
    if current is not None:
        _check_updatable(current)
        wanted = {
            "source": source,
            "image": image,
            "instance_type": str(deploy_cfg.instance_type),
            "initial_instance_count": int(deploy_cfg.initial_instance_count),
        }
        same = _serves(current, setup, wanted)
        if same is not None:
            print(f"endpoint {name} already serves {source}: nothing to deploy", flush=True)
            return Deployed(
                name,
                str(current.endpoint_arn),
                str(same.model_name),
                str(current.endpoint_config_name),
                str(same.primary_container.model_data_url),
                str(same.primary_container.image),
                source,
                "unchanged",
            )
    resource = _resource_name(name, label, now or datetime.now(UTC))
    with tempfile.TemporaryDirectory(prefix="mlexp-sagemaker-") as folder:
        archive = archive_of(Path(folder))
        key = "/".join(p for p in (setup.prefix, resource, archive.name) if p)
        model_data = upload(setup, archive, key)
    tags = [Tag(key="mlexp.task", value=task), Tag(key="mlexp.model_source", value=source)]
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
    EndpointConfig.create(
        endpoint_config_name=resource,
        production_variants=[
            ProductionVariant(
                variant_name=VARIANT,
                model_name=resource,
                initial_instance_count=int(deploy_cfg.initial_instance_count),
                instance_type=str(deploy_cfg.instance_type),
                initial_variant_weight=1.0,
            )
        ],
        tags=tags,
        session=setup.boto_session,
        region=setup.region,
    )
    old_config: str | None = None
    old_models: list[str] = []
    if current is None:
        endpoint = Endpoint.create(
            endpoint_name=name,
            endpoint_config_name=resource,
            tags=tags,
            session=setup.boto_session,
            region=setup.region,
        )
        action = "created"
    else:
        old_config = str(current.endpoint_config_name)
        old_models, _ = _served_model(current, setup)
        current.endpoint_config_name = resource
        endpoint = current.update()
        action = "updated"
    waited = float(deploy_cfg.wait_s)
    if waited > 0:
        wait_in_service(endpoint, waited)
        if old_config is not None:
            # the endpoint no longer uses them; undeploy deletes only what it serves
            _delete_config_and_models(setup, old_config, old_models)
    return Deployed(name, str(endpoint.endpoint_arn), resource, resource, model_data, image, source, action)


def _delete_config_and_models(setup: Setup, config_name: str, models: list[str]) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    client = setup.boto_session.client("sagemaker", region_name=setup.region)
    for delete in (
        lambda: client.delete_endpoint_config(EndpointConfigName=config_name),
        *(lambda m=m: client.delete_model(ModelName=m) for m in models),
    ):
        try:
            delete()
        except (BotoCoreError, ClientError) as error:
            print(f"kept an old resource: {aws_failure('a clean-up', setup.region, error)}", file=sys.stderr)


def check(cfg: DictConfig, task: Any) -> Setup:
    """Before a trial opens: the task has a model, the source is one deploy=sagemaker takes, AWS is set up."""
    from mlexp.errors import ConfigError

    if not task.has_registered_model():
        raise ConfigError(
            f"deploy=sagemaker: task {task.name!r} has no predictive model to deploy "
            f"(no module {task.model_module}); run it with deploy=none"
        )
    if str(cfg.deploy.source) == "best":
        raise ConfigError("deploy=sagemaker takes deploy.source=champion|trial|<trial run id>, not best")
    return setup(cfg.deploy)


def deploy_trial(cfg: DictConfig, tracker: Tracker) -> None:
    """The deploy stage for deploy=sagemaker: checks, (registers,) packages, deploys and records the endpoint."""
    from mlexp import tasks
    from mlexp.sagemaker import model_package
    from mlexp.serving import registry
    from mlexp.tracking import TrackingStore

    checked = check(cfg, tasks.get(cfg.task.name))
    store_uri = TrackingStore.resolve(cfg.tracking.uri, Path(cfg.paths.root)).uri
    source = str(cfg.deploy.source)
    if source == "champion":
        # this trial competes for the alias first, so a better model reaches the endpoint in the same run
        metrics = registry.metrics_of_trial(tracker)
        if cfg.task.objective.metric in metrics:
            registry.deploy(cfg, tracker, metrics)
        else:
            print(f"this run has no {cfg.task.objective.metric}: deploying the current champion", flush=True)
    where = model_package.resolve(cfg, store_uri, tracker.trial_run_id)
    deployed = deploy(
        cfg.deploy,
        checked,
        cfg.task.name,
        where.uri,
        where.label,
        lambda folder: model_package.build(cfg, store_uri, where, folder),
    )
    record(tracker, deployed)
    verb = {"created": "created", "updated": "updated in place", "unchanged": "unchanged"}[deployed.action]
    print(
        f"endpoint {deployed.endpoint_name} {verb}: serves {deployed.source} ({deployed.model_data_url})\n"
        f"  predict:   mlexp predict {cfg.task.name} --file request.json\n"
        f"  undeploy:  mlexp undeploy {cfg.task.name}",
        flush=True,
    )


def record(tracker: Tracker, deployed: Deployed) -> None:
    """Endpoint name, ARN, model and model data URI as tags of the Deployment component and of its trial."""
    tags = {
        f"{TAG_PREFIX}endpoint_name": deployed.endpoint_name,
        f"{TAG_PREFIX}endpoint_arn": deployed.endpoint_arn,
        f"{TAG_PREFIX}endpoint_config_name": deployed.endpoint_config_name,
        f"{TAG_PREFIX}model_name": deployed.model_name,
        f"{TAG_PREFIX}model_data_url": deployed.model_data_url,
        f"{TAG_PREFIX}image_uri": deployed.image_uri,
        f"{TAG_PREFIX}model_source": deployed.source,
        f"{TAG_PREFIX}action": deployed.action,
    }
    tracker.set_tags(tags)
    tracker.log_output("endpoint", "sagemaker/endpoint", deployed.endpoint_arn)
    if tracker.trial_run is not None:
        tracker.writer.log_batch(tracker.trial_run, tags=list(tags.items()))
