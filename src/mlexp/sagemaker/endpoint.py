"""deploy=sagemaker: a task's model behind a SageMaker real-time endpoint, updated in place on a new champion.

The deploy stage checks role, region, credentials and bucket first (endpoint_setup.py: nothing is uploaded when one
is missing), packages the model (model_package.py), uploads model.tar.gz, then CreateModel → CreateEndpointConfig
(endpoint_model.py) → CreateEndpoint, or, when the endpoint exists (endpoint_state.py), a new EndpointConfig and
UpdateEndpoint (the endpoint keeps answering while SageMaker swaps instances), and waits for InService
(endpoint_wait.py). `mlexp predict` and `mlexp undeploy` (InvokeEndpoint, Delete*) are in endpoint_client.py.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from mlexp.sagemaker.endpoint_errors import aws_failure
from mlexp.sagemaker.endpoint_model import create_config, create_model, image_uri, resource_name, resource_tags, upload
from mlexp.sagemaker.endpoint_setup import Setup, endpoint_name, setup
from mlexp.sagemaker.endpoint_state import check_updatable, existing_endpoint, model_already_serving, served_models
from mlexp.sagemaker.endpoint_wait import wait_in_service

if TYPE_CHECKING:
    from mlexp.tracking import Tracker

TAG_PREFIX = "mlexp.sagemaker."


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
    from sagemaker.core.resources import Endpoint

    name = endpoint_name(task, deploy_cfg.get("endpoint_name"))
    current = existing_endpoint(name, setup)
    image = image_uri(deploy_cfg, setup.region)
    if current is not None:
        check_updatable(current)
        wanted = {
            "source": source,
            "image": image,
            "instance_type": str(deploy_cfg.instance_type),
            "initial_instance_count": int(deploy_cfg.initial_instance_count),
        }
        same = model_already_serving(current, setup, wanted)
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
    resource = resource_name(name, label, now or datetime.now(UTC))
    with tempfile.TemporaryDirectory(prefix="mlexp-sagemaker-") as folder:
        archive = archive_of(Path(folder))
        key = "/".join(p for p in (setup.prefix, resource, archive.name) if p)
        model_data = upload(setup, archive, key)
    tags = resource_tags(task, source)
    create_model(setup, resource, image, model_data, task, source, tags)
    create_config(deploy_cfg, setup, resource, tags)
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
        old_models, _ = served_models(current, setup)
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
