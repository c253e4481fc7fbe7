"""The SageMaker Experiments requests of the mirror, through the SDK's experiment classes (imported on first use).

Names follow MLflow's, made valid for SageMaker (`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}`) the same way on every
machine: lower case (BatchPutMetrics wants lower-case trial component names), other characters as `-`, and
the MLflow run id appended to trials and components so that no two runs ever share a name. The MLflow name
stays visible as the DisplayName.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from mlexp.errors import ConfigError, no_credentials

NAME_MAX = 120
PARAMS_PER_REQUEST = 300  # the API's limits per request
ARTIFACTS_PER_REQUEST = 60
PARAM_TEXT_MAX = 2500
ARTIFACT_VALUE_MAX = 2048
ARTIFACT_KEY_MAX = 128
STATUS_MESSAGE_MAX = 1024
MEDIA_TYPE = re.compile(r"[-\w]+/[-\w+]+")
NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
# MLflow's run statuses as trial component statuses
STATUSES = {"RUNNING": "InProgress", "FINISHED": "Completed", "FAILED": "Failed", "KILLED": "Stopped"}

Artifact = tuple[str, str | None]  # value (a URI or path), media type


class SageMakerMirrorSetupError(ConfigError):
    """tracking.sagemaker_mirror=true without the AWS region or credentials the mirror needs."""


# the one line for each missing piece of the mirror's AWS set-up, before the trial opens or at its start
MIRROR_ON, MIRROR_OFF = "tracking.sagemaker_mirror=true", "tracking.sagemaker_mirror=false"
NO_REGION = (
    f"{MIRROR_ON} needs an AWS region: set AWS_DEFAULT_REGION (or `region` in ~/.aws/config for your AWS_PROFILE), "
    f"or run with {MIRROR_OFF}"
)
NO_CREDENTIALS = no_credentials(MIRROR_ON, without_aws=MIRROR_OFF)


def check_setup(offline: bool = False) -> None:
    """Refuse, in one line, a mirror that could not reach SageMaker: no AWS region, no credentials (imports boto3 only).

    offline=True, before the trial opens (the runner): credentials as aws_setup.credentials_found judges them, without
    a request, as engine=athena's are. Otherwise, at the trial's start (Trial.log_params): botocore's chain resolves
    them, which may ask a container's or an instance's credentials endpoint."""
    import boto3
    from botocore.exceptions import BotoCoreError

    from mlexp.aws_setup import credentials_found, region_error

    try:
        session = boto3.Session()
        found = credentials_found() if offline else session.get_credentials() is not None
    except BotoCoreError as error:  # e.g. an AWS_PROFILE that ~/.aws/config does not define
        raise SageMakerMirrorSetupError(f"tracking.sagemaker_mirror=true: {error}; fix the AWS set-up") from None
    if not session.region_name:
        raise SageMakerMirrorSetupError(NO_REGION)
    wrong_region = region_error(MIRROR_ON, None, found=session.region_name, example="AWS_DEFAULT_REGION=us-east-1")
    if wrong_region is not None:  # a client for it would fail blaming the credentials
        raise SageMakerMirrorSetupError(f"{MIRROR_ON}: {wrong_region}, or run with {MIRROR_OFF}")
    if not found:
        raise SageMakerMirrorSetupError(NO_CREDENTIALS)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def experiment_name(name: str) -> str:
    """The MLflow experiment's name, or (when that is not a valid name) its slug plus a hash of it."""
    slug = _slug(name)
    if slug == name and len(slug) <= NAME_MAX:
        return slug
    suffix = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{slug[: NAME_MAX - len(suffix) - 1].rstrip('-')}-{suffix}".lstrip("-")


def run_entity_name(run_name: str | None, run_id: str) -> str:
    """A trial's or trial component's name: the MLflow run's name, then its (unique) run id."""
    slug = _slug(run_name or "run")
    return f"{slug[: NAME_MAX - len(run_id) - 1].rstrip('-')}-{run_id}".lstrip("-")


def parameter_value(text: str) -> int | float | str:
    """MLflow keeps parameters as text; numbers become SageMaker NumberValues (sortable in Studio)."""
    if NUMBER.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return int(text) if re.fullmatch(r"-?\d+", text) and abs(number) < 2**53 else number
    return text[:PARAM_TEXT_MAX]


def media_type(value: str | None) -> str | None:
    """The logged media type, when the API accepts it (`type/subtype`): a dataset's context may be any text."""
    return value if value and len(value) <= 64 and MEDIA_TYPE.fullmatch(value) else None


def _chunks(items: Mapping[str, Any], size: int) -> list[dict[str, Any]]:
    pairs = list(items.items())
    return [dict(pairs[start : start + size]) for start in range(0, len(pairs), size)] or [{}]


def _time(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class Experiments:
    """One SageMaker session (region and credentials from the usual AWS chain) and the calls the mirror makes."""

    def __init__(self) -> None:
        import boto3
        from sagemaker.core.helper.session_helper import Session

        self.session = Session(boto_session=boto3.Session())

    # `existing`: the entity may be there already (a continued or retried trial): described first, kept as it is

    def create_experiment(self, name: str, display_name: str, existing: bool = False) -> None:
        from sagemaker.core.experiments.experiment import Experiment

        if not (existing and _found(Experiment.load, name, self.session)):
            Experiment._load_or_create(name, display_name=display_name, sagemaker_session=self.session)

    def create_trial(self, name: str, experiment: str, display_name: str, existing: bool = False) -> None:
        from sagemaker.core.experiments.trial import _Trial

        if not (existing and _found(_Trial.load, name, self.session)):
            _Trial._load_or_create(experiment, name, display_name=display_name, sagemaker_session=self.session)

    def create_component(self, name: str, display_name: str, start_ms: float, existing: bool = False) -> None:
        """CreateTrialComponent, InProgress since the run's start."""
        from botocore.exceptions import ClientError
        from sagemaker.core.common_utils import _is_resource_already_exists_error
        from sagemaker.core.experiments._api_types import TrialComponentStatus
        from sagemaker.core.experiments.trial_component import _TrialComponent

        if existing and _found(_TrialComponent.load, name, self.session):
            return
        fields = {
            "trial_component_name": name,
            "display_name": display_name,
            "status": TrialComponentStatus(primary_status=STATUSES["RUNNING"]),
            "start_time": _time(start_ms),
        }
        try:
            _TrialComponent._construct("create_trial_component", sagemaker_session=self.session, **fields)
        except ClientError as error:
            if not _is_resource_already_exists_error(error):
                raise
            _TrialComponent(self.session, **fields).save()

    def associate(self, component: str, trial: str, unless_associated: bool = False) -> None:
        """AssociateTrialComponent; `unless_associated`: search first (a trial mirrored again may hold it)."""
        from sagemaker.core.experiments.trial import _Trial
        from sagemaker.core.experiments.trial_component import _TrialComponent

        if unless_associated and _TrialComponent._trial_component_is_associated_to_trial(
            component, trial, self.session
        ):
            return
        _Trial(self.session, trial_name=trial).add_trial_component(component)

    def update_component(
        self,
        name: str,
        parameters: Mapping[str, str] | None = None,
        inputs: Mapping[str, Artifact] | None = None,
        outputs: Mapping[str, Artifact] | None = None,
        status: str | None = None,
        message: str = "",
        end_ms: float | None = None,
    ) -> None:
        """UpdateTrialComponent with what changed (the API merges maps by key), in requests within its limits."""
        from sagemaker.core.experiments._api_types import TrialComponentArtifact, TrialComponentStatus
        from sagemaker.core.experiments.trial_component import _TrialComponent

        values = {key[:320]: parameter_value(text) for key, text in (parameters or {}).items()}

        def artifacts(items: Mapping[str, Artifact] | None) -> dict[str, Any]:
            return {
                key[:ARTIFACT_KEY_MAX]: TrialComponentArtifact(value=value[:ARTIFACT_VALUE_MAX], media_type=kind)
                for key, (value, kind) in (items or {}).items()
            }

        param_chunks = _chunks(values, PARAMS_PER_REQUEST)
        input_chunks = _chunks(artifacts(inputs), ARTIFACTS_PER_REQUEST)
        output_chunks = _chunks(artifacts(outputs), ARTIFACTS_PER_REQUEST)
        requests = max(len(param_chunks), len(input_chunks), len(output_chunks))
        for number in range(requests):
            component = _TrialComponent(self.session, trial_component_name=name)
            # empty maps are left out of the request: the SDK would send `{}`s that change nothing
            component.parameters = _at(param_chunks, number) or None
            component.input_artifacts = _at(input_chunks, number) or None
            component.output_artifacts = _at(output_chunks, number) or None
            if number == requests - 1 and status is not None:  # the status last: Completed once all is there
                component.status = TrialComponentStatus(
                    primary_status=status, message=message[:STATUS_MESSAGE_MAX] or None
                )
                component.end_time = _time(end_ms) if end_ms is not None else None
            component.save()

    def put_metrics(self, component: str, metrics: Iterable[tuple[str, float, int, int]]) -> None:
        """BatchPutMetrics, ten values a request; NaN and infinities are left out (the API takes numbers only)."""
        from sagemaker.core.experiments._metrics import _MetricsManager

        manager = _MetricsManager(component, self.session)
        for name, value, timestamp_ms, step in metrics:
            if math.isfinite(value):
                manager.log_metric(name, value, timestamp=timestamp_ms / 1000, step=int(step))
        manager.close()


def _found(load: Any, name: str, session: Any) -> bool:
    """Whether Describe* finds `name` (any refusal, not found included, means: create it)."""
    from botocore.exceptions import ClientError

    try:
        load(name, sagemaker_session=session)
    except ClientError:
        return False
    return True


def _at(chunks: list[dict[str, Any]], number: int) -> dict[str, Any]:
    return chunks[number] if number < len(chunks) else {}
