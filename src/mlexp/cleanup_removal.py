"""Deleting what a plan lists: registered versions, artifacts, runs, logged models, the experiments, local files.

On a SQL store (the default SQLite file) the runs, models and experiments go for good, as
`mlflow gc` removes them, so the name can be used again. An MLflow server offers no permanent
delete over its API: there each experiment is renamed out of the way and marked deleted (the
server's `mlflow gc` purges it) and its artifacts are deleted through the server's artifact API.
"""

from __future__ import annotations

import shutil
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

from filelock import FileLock
from mlflow.entities import Experiment, LifecycleStage, ViewType
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.utils.file_utils import local_file_uri_to_path

from mlexp import cleanup_registry
from mlexp.cleanup_plan import DeletionTarget, every_page, store_backend
from mlexp.cleanup_report import DeletionReport
from mlexp.tracking.store import sqlite_path
from mlexp.trial_continuation import marker_path


def delete_target(target: DeletionTarget) -> DeletionReport:
    """Delete everything `target` lists; its report, marked deleted, says what went and what was kept."""
    report = target.report
    cleanup_registry.delete_versions(target.client, target.store.uri, target.run_ids, report)
    db = sqlite_path(target.store.uri)
    # the same lock TrackingStore.experiment_id takes: no trial creates the experiment meanwhile
    with FileLock(str(db) + ".lock", timeout=120) if db is not None else nullcontext():
        for experiment in target.experiments:
            _delete_from_store(target, experiment)
    _delete_local_files(target)
    report.deleted = True
    return report


def _delete_artifacts(target: DeletionTarget, uri: str) -> None:
    if (outside := _outside_artifact_root(target, uri)) is not None:
        target.report.kept_artifacts.append(f"{uri} (outside the store's artifact folder {outside}: left as it is)")
        return
    try:
        get_artifact_repository(uri, tracking_uri=target.store.uri).delete_artifacts()
    except Exception as error:  # an artifact store we cannot delete from must not stop the rest
        target.report.kept_artifacts.append(f"{uri} ({type(error).__name__}: {error})")


def _outside_artifact_root(target: DeletionTarget, uri: str) -> Path | None:
    """The store's artifact folder when `uri`, a local folder, is not inside it, else None: an experiment named
    `..` (or `team%2F..` before its folder name was encoded) had its artifacts in the project itself, which deleting
    them removed whole."""
    root = target.store.artifact_root
    if root is None or not root.startswith("file:") or not uri.startswith("file:"):
        return None  # a server's or a bucket's artifacts: deleted through their own API
    folder = Path(local_file_uri_to_path(root)).resolve()
    path = Path(local_file_uri_to_path(uri)).resolve()
    return None if path != folder and path.is_relative_to(folder) else folder


def _delete_from_store(target: DeletionTarget, experiment: Experiment) -> None:
    """Its runs' and logged models' artifacts, then the runs, models and experiment themselves."""
    client, report = target.client, target.report
    runs = [run for run in target.runs if run.info.experiment_id == experiment.experiment_id]
    models = [model for model in target.models if model.experiment_id == experiment.experiment_id]
    for run in runs:
        _delete_artifacts(target, run.info.artifact_uri)
    for model in models:
        _delete_artifacts(target, model.artifact_location)
    if _owns_location(target, experiment):
        _delete_artifacts(target, experiment.artifact_location)
    if not report.permanent:
        _retire_on_server(target, experiment, [m.model_id for m in models])
        return
    backend: Any = store_backend(client)
    if experiment.lifecycle_stage == LifecycleStage.ACTIVE:
        client.delete_experiment(experiment.experiment_id)  # the hard delete takes only deleted experiments
    for run in runs:
        backend._hard_delete_run(run.info.run_id)
    for model in models:
        backend._hard_delete_logged_model(model.model_id)
    backend._hard_delete_experiment(experiment.experiment_id)


def _owns_location(target: DeletionTarget, experiment: Experiment) -> bool:
    """Whether the experiment's artifact folder holds nothing of another experiment (mlexp gives each its own)."""
    location = experiment.artifact_location.rstrip("/")
    everyone = every_page(lambda t: target.client.search_experiments(view_type=ViewType.ALL, page_token=t))
    for other in everyone:
        if other.experiment_id == experiment.experiment_id:
            continue
        theirs = other.artifact_location.rstrip("/")
        if theirs == location or theirs.startswith(location + "/") or location.startswith(theirs + "/"):
            return False
    return True


def _retire_on_server(target: DeletionTarget, experiment: Experiment, model_ids: list[str]) -> None:
    """Free the name on a server: rename the experiment, then mark it (and its runs and models) deleted."""
    client = target.client
    for model_id in model_ids:
        client.delete_logged_model(model_id)
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        client.restore_experiment(experiment.experiment_id)  # only an active experiment can be renamed
    retired = f"{experiment.name}-deleted-{datetime.now():%Y%m%d-%H%M%S-%f}"
    client.rename_experiment(experiment.experiment_id, retired)
    client.delete_experiment(experiment.experiment_id)
    if experiment.name == target.report.experiment:
        target.report.renamed_to = retired


def _delete_local_files(target: DeletionTarget) -> None:
    """Shared Pre-processing outputs of its components, its sweeps' job records and its DVC trial markers."""
    for folder in target.report.shared_preprocessing:
        # the key's lock: no trial is copying these outputs while they go
        with FileLock(str(folder) + ".lock", timeout=600):
            shutil.rmtree(folder, ignore_errors=True)
    for sweep_id in target.report.sweep_records:
        shutil.rmtree(target.root / ".mlexp" / "sweeps" / sweep_id, ignore_errors=True)
    for experiment in target.experiments:
        markers = marker_path(target.root, target.store.uri, experiment.name, "any").parent
        shutil.rmtree(markers, ignore_errors=True)
