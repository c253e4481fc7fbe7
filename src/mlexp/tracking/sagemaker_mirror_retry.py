"""`mlexp sync` for the SageMaker Experiments mirror: trials whose mirror failed are mirrored again, whole.

Each trial is replayed from the MLflow store as sagemaker_mirror.ExperimentsMirror would have seen it written:
the trial, each of its components (created, params, tags, metric histories, artifacts, status), then the
trial's own metrics, links and status. Entities that exist already are kept (the trial is "revisited").
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mlexp.tracking import tags as mlexp_tags
from mlexp.tracking.sagemaker_experiments import STATUSES, SageMakerMirrorSetupError, check_setup
from mlexp.tracking.sagemaker_mirror import FAILED, MIRROR_TAG, ExperimentsMirror, Pair, _created, _new

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient


def retry(mirror: ExperimentsMirror, trial_run: str) -> str | None:
    """Mirror a stored trial again, whole, from the MLflow store; returns why it failed, or None."""
    mirror.failures.pop(trial_run, None)
    for run in [r for r, entity in mirror._runs.items() if entity.trial_run == trial_run]:
        del mirror._runs[run]
    mirror._ignored.discard(trial_run)
    mirror._revisited.add(trial_run)
    found = mirror._client.get_run(trial_run)
    experiment = found.info.experiment_id
    children = mirror._client.search_runs(
        [experiment],
        f"tags.`{mlexp_tags.MLFLOW_PARENT_RUN_ID}` = '{trial_run}'",
        order_by=["attribute.start_time ASC"],
    )
    mirror._guarded(trial_run, mirror._create_trial, trial_run, _new(found))
    for child in children:
        if child.data.tags.get(mlexp_tags.KIND) == "component":
            create = functools.partial(mirror._create_component, *_created(child), trial_run)
            mirror._guarded(trial_run, replay_run, mirror, child, create)
    mirror._guarded(trial_run, replay_run, mirror, found, lambda: None)  # its metrics, links and status last
    return mirror.failures.get(trial_run)


def replay_run(mirror: ExperimentsMirror, found: Run, create: Callable[[], None]) -> None:
    """Mirror a run as the store holds it: created, its params, tags, metric histories, artifacts, status."""
    run = found.info.run_id
    create()
    entity = mirror._runs[run]
    history = [
        (m.key, float(m.value), int(m.timestamp), int(m.step))
        for key in found.data.metrics
        for m in mirror._client.get_metric_history(run, key)
    ]
    mirror._log(run, entity, history, _items(found.data.params), _items(found.data.tags))
    for artifact in mirror._client.list_artifacts(run):
        mirror.artifact_logged(run, artifact.path)
    mirror._flush(entity, STATUSES.get(found.info.status, found.info.status), found.info.end_time)


def _items(mapping: Mapping[str, str]) -> list[Pair]:
    return [(str(k), str(v)) for k, v in mapping.items()]


class MirrorsNotRetried(Exception):
    """The mirror's AWS set-up is missing (no region, no credentials): no failed trial is tried again."""

    def __init__(self, trials: int, reason: str) -> None:
        super().__init__(f"the SageMaker Experiments mirror of {trials} trial(s) is not tried again: {reason}")


def retry_failed(client: MlflowClient) -> dict[str, str | None]:
    """Mirror again every trial of the store whose mirror failed; returns each trial's new failure (None: done).

    Raises MirrorsNotRetried, before any request, when the set-up a trial's mirror is refused without is missing."""
    ids = [e.experiment_id for e in client.search_experiments()]
    if not ids:
        return {}
    runs = client.search_runs(ids, f"tags.`{MIRROR_TAG}` LIKE '{FAILED}%'", max_results=1000)
    if not runs:
        return {}
    try:
        check_setup(offline=True)
    except SageMakerMirrorSetupError as error:
        raise MirrorsNotRetried(len(runs), str(error)) from None
    mirror = ExperimentsMirror(client, announce_failures=False)
    return {run.info.run_id: retry(mirror, run.info.run_id) for run in runs}


def retry_failed_mirrors(root: Path) -> dict[str, str | None]:
    """`mlexp sync`: mirror again the trials of the project's store (tracking.uri's default) whose mirror failed."""
    from mlexp.tracking.store import TrackingStore, has_schema, sqlite_path

    store = TrackingStore.resolve(None, root)
    db = sqlite_path(store.uri)
    if db is not None and not has_schema(db):
        return {}
    return retry_failed(store.client())
