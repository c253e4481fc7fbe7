"""Delete an experiment hierarchically, as SageMaker Experiments' `experiment.delete_all('--force')`.

Its trials and their components, their artifacts, its sweep records (`<experiment>-sweeps`),
the registered model versions its trials made and the shared Pre-processing outputs of its
components all go; other experiments keep theirs. MLflow's own `delete_experiment` only marks
an experiment deleted and keeps its name taken, so on a SQL store (the default SQLite file)
mlexp removes it for good the way `mlflow gc` does, and the name can be used again. An MLflow
server offers no permanent delete over its API: there the experiment is renamed out of the way
and marked deleted (the server's `mlflow gc` purges it) and its artifacts are deleted through
the server's artifact API.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sized
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from filelock import FileLock
from mlflow.entities import Experiment, LifecycleStage, LoggedModel, Run, ViewType
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from mlexp import cleanup_registry
from mlexp.console import confirmed_on_terminal, quiet_third_party
from mlexp.errors import MlexpError, did_you_mean
from mlexp.paths import project_root
from mlexp.shared_component import SHARED_TAG
from mlexp.tracking import TrackingStore, tags
from mlexp.tracking.store import bound_store_retries, sqlite_path
from mlexp.trial_continuation import marker_path

# the SQL store's permanent deletes, the ones `mlflow gc` uses; a REST store (a server) has none
HARD_DELETES = ("_hard_delete_run", "_hard_delete_logged_model", "_hard_delete_experiment")


class ExperimentNotFound(MlexpError):
    """No experiment (nor sweep record experiment) of that name in the store."""


class DeletionNotConfirmed(MlexpError):
    """Deleting was asked without force=True (or --force, or a yes on the terminal)."""


@dataclass
class DeletionReport:
    """What deleting an experiment removes (`deleted=False`: nothing touched yet) or removed."""

    experiment: str
    tracking_uri: str
    trials: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    sweep_records: list[str] = field(default_factory=list)
    other_runs: list[str] = field(default_factory=list)
    logged_models: list[str] = field(default_factory=list)
    model_versions: list[str] = field(default_factory=list)  # "<registered model>/<version>"
    registered_models: list[str] = field(default_factory=list)  # those left without a version, removed whole
    shared_preprocessing: list[Path] = field(default_factory=list)
    running: int = 0
    # trials of other experiments that reused a Pre-processing component deleted here
    linked_elsewhere: int = 0
    permanent: bool = True  # False on a server: renamed and marked deleted, purged by its `mlflow gc`
    deleted: bool = False
    renamed_to: str | None = None
    moved_aliases: list[str] = field(default_factory=list)
    kept_artifacts: list[str] = field(default_factory=list)  # artifact stores that refused a delete, with why

    def contents(self) -> str:
        """Counts of what the experiment holds, in one phrase."""
        parts = [f"{_count(self.trials, 'trial')} with {_count(self.components, 'component')}"]
        if self.other_runs:
            parts.append(_count(self.other_runs, "other run"))
        if self.sweep_records:
            parts.append(_count(self.sweep_records, "sweep record"))
        if self.model_versions:
            versions = _count(self.model_versions, "registered model version")
            parts.append(f"{versions} ({', '.join(self.model_versions)})")
        if self.shared_preprocessing:
            parts.append(_count(self.shared_preprocessing, "shared pre-processing output"))
        phrase = ", ".join(parts)
        if self.running:
            phrase += f"; {self.running} of its runs still RUNNING"
        if self.linked_elsewhere:
            reusers = _count(self.linked_elsewhere, "trial")
            phrase += f"; {reusers} of other experiments keep their results but lose the Pre-processing they reused"
        return phrase

    def __str__(self) -> str:
        if not self.deleted:
            return f"experiment {self.experiment!r} in {self.tracking_uri}: {self.contents()}"
        how = "for good" if self.permanent else f"(renamed {self.renamed_to!r} and marked deleted on the server)"
        lines = [f"deleted experiment {self.experiment!r} {how}: {self.contents()}"]
        lines += [f"  removed registered model {name} (no version left)" for name in self.registered_models]
        lines += [f"  moved {alias}" for alias in self.moved_aliases]
        lines += [f"  artifacts kept: {reason}" for reason in self.kept_artifacts]
        lines.append(f"  the name {self.experiment!r} can be used again")
        return "\n".join(lines)


def _count(items: Sized | int, noun: str) -> str:
    number = items if isinstance(items, int) else len(items)
    return f"{number} {noun}{'' if number == 1 else 's'}"


@dataclass
class _Target:
    """The experiment and its sweeps' experiment, with their runs and logged models, in one store."""

    report: DeletionReport
    store: TrackingStore
    client: MlflowClient
    root: Path
    experiments: list[Experiment]
    runs: list[Run]
    models: list[LoggedModel]

    @property
    def run_ids(self) -> set[str]:
        return {run.info.run_id for run in self.runs}


def plan_deletion(name: str, *, tracking_uri: str | None = None, root: Path | None = None) -> DeletionReport:
    """What `delete_experiment(name, force=True)` would remove; nothing is touched."""
    quiet_third_party()  # a notebook calls this without the CLI, which quiets MLflow's plugins' noise
    return _survey(name, tracking_uri, root).report


def delete_experiment(
    name: str, *, force: bool = False, tracking_uri: str | None = None, root: Path | None = None
) -> DeletionReport:
    """Remove experiment `name` with its trials, components, artifacts, sweeps, registered versions and shared outputs.

    Args:
        force: must be True, as the post's `delete_all('--force')`; otherwise DeletionNotConfirmed says what would go.
        tracking_uri: the store (`tracking.uri`); None: $MLFLOW_TRACKING_URI, else the project's mlflow.db.
        root: the project folder (default: found from the working directory or $MLEXP_ROOT).
    """
    quiet_third_party()  # a notebook calls this without the CLI, which quiets MLflow's plugins' noise
    target = _survey(name, tracking_uri, root)
    if not force:
        raise DeletionNotConfirmed(
            f"{target.report}; nothing deleted: confirm with mlexp.delete_experiment({name!r}, force=True) "
            f"or `mlexp delete experiment={name} --force`"
        )
    return _delete(target)


def _delete(target: _Target) -> DeletionReport:
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


def _pages(fetch: Callable[[str | None], Any]) -> list[Any]:
    """Every item of a paged MLflow search."""
    items: list[Any] = []
    token = None
    while True:
        page = fetch(token)
        items.extend(page)
        token = page.token
        if not token:
            return items


def _survey(name: str, tracking_uri: str | None, root: Path | None) -> _Target:
    root = root or project_root()
    store = TrackingStore.resolve(tracking_uri, root)
    client = store.answering_client()
    found = [client.get_experiment_by_name(n) for n in (name, name + tags.SWEEPS_SUFFIX)]
    experiments = [e for e in found if e is not None]
    if not experiments:
        active = [e.name for e in client.search_experiments(max_results=50)]
        raise ExperimentNotFound(
            f"no experiment named {name!r} in {store.uri}; {did_you_mean(name, active)}"
            f"its experiments: {', '.join(active) or 'none'}"
        )
    if any(e.experiment_id == "0" for e in experiments):
        raise DeletionNotConfirmed(
            "the Default experiment (id 0) holds runs MLflow itself expects; delete its runs, not it"
        )
    ids = [e.experiment_id for e in experiments]
    runs = _pages(lambda token: client.search_runs(ids, run_view_type=ViewType.ALL, max_results=1000, page_token=token))
    models = _pages(lambda token: client.search_logged_models(ids, page_token=token))
    report = DeletionReport(name, store.uri, permanent=all(hasattr(_backend(client), m) for m in HARD_DELETES))
    for run in runs:
        kind = run.data.tags.get(tags.KIND)
        group = {"trial": report.trials, "component": report.components, "sweep": report.sweep_records}
        group.get(kind or "", report.other_runs).append(run.info.run_id)
        report.running += run.info.status == "RUNNING"
    if report.running:
        raise DeletionNotConfirmed(
            f"{report.running} run(s) of {name!r} are still RUNNING (a trial or sweep in progress); let them finish "
            "or stop them (Ctrl-C), then delete — even --force does not delete a running experiment"
        )
    report.logged_models = [m.model_id for m in models]
    target = _Target(report, store, client, root, experiments, runs, models)
    report.model_versions = [f"{v.name}/{v.version}" for v in cleanup_registry.versions_of(client, target.run_ids)]
    report.shared_preprocessing = [entry for entry, run_id in _shared_entries(root) if run_id in target.run_ids]
    report.linked_elsewhere = _linked_elsewhere(target)
    return target


def _backend(client: MlflowClient) -> object:
    # the store object behind the client: `mlflow gc` calls the same hard-delete methods on it
    return client._tracking_client.store


def _shared_entries(root: Path) -> list[tuple[Path, str]]:
    """Each published shared Pre-processing folder with the component run its outputs came from."""
    entries = []
    for record in sorted((root / ".mlexp" / "shared").glob("*/*/component.json")):
        try:
            entries.append((record.parent, str(json.loads(record.read_text())["run_id"])))
        except (OSError, ValueError, KeyError):
            continue
    return entries


def _linked_elsewhere(target: _Target) -> int:
    """Trials of other experiments tagged with a shared Pre-processing component of this one."""
    ours = {run.data.tags.get(SHARED_TAG) for run in target.runs} & target.run_ids
    if not ours:
        return 0
    mine = {e.experiment_id for e in target.experiments}
    client = target.client
    everyone = _pages(lambda token: client.search_experiments(page_token=token))
    others = [e.experiment_id for e in everyone if e.experiment_id not in mine]
    if not others:
        return 0
    return sum(
        len(client.search_runs(others, f"tags.`{SHARED_TAG}` = '{component}'", max_results=1000)) for component in ours
    )


def _delete_artifacts(target: _Target, uri: str) -> None:
    try:
        get_artifact_repository(uri, tracking_uri=target.store.uri).delete_artifacts()
    except Exception as error:  # an artifact store we cannot delete from must not stop the rest
        target.report.kept_artifacts.append(f"{uri} ({type(error).__name__}: {error})")


def _delete_from_store(target: _Target, experiment: Experiment) -> None:
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
    backend: Any = _backend(client)
    if experiment.lifecycle_stage == LifecycleStage.ACTIVE:
        client.delete_experiment(experiment.experiment_id)  # the hard delete takes only deleted experiments
    for run in runs:
        backend._hard_delete_run(run.info.run_id)
    for model in models:
        backend._hard_delete_logged_model(model.model_id)
    backend._hard_delete_experiment(experiment.experiment_id)


def _owns_location(target: _Target, experiment: Experiment) -> bool:
    """Whether the experiment's artifact folder holds nothing of another experiment (mlexp gives each its own)."""
    location = experiment.artifact_location.rstrip("/")
    everyone = _pages(lambda t: target.client.search_experiments(view_type=ViewType.ALL, page_token=t))
    for other in everyone:
        if other.experiment_id == experiment.experiment_id:
            continue
        theirs = other.artifact_location.rstrip("/")
        if theirs == location or theirs.startswith(location + "/") or location.startswith(theirs + "/"):
            return False
    return True


def _retire_on_server(target: _Target, experiment: Experiment, model_ids: list[str]) -> None:
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


def _delete_local_files(target: _Target) -> None:
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


def _refuse_other_tasks(target: _Target, name: str, task: str) -> None:
    """`delete task=` deletes the task's experiment: refused when other tasks' trials share it (a common
    tracking.experiment_name), which would go too."""
    runs = target.runs
    others = sorted({run.data.tags.get(tags.TASK, "?") for run in runs if run.data.tags.get(tags.KIND) == "trial"})
    others = [other for other in others if other != task]
    if others:
        raise MlexpError(
            f"experiment {name!r} of task={task} also holds trials of {', '.join(others)}, which would go too; "
            f"delete them all with `mlexp delete experiment={name}`"
        )


def confirm_and_delete(name: str, *, force: bool, tracking_uri: str | None, task: str | None) -> int:
    """`mlexp delete`: say what goes, confirm on a terminal (unless `force`), delete; 1 when not confirmed.

    Args:
        task: the task whose experiment `name` is (`delete task=`): refused when other tasks' trials share it.
    """
    bound_store_retries()  # a server that is down: one line in seconds, not MLflow's minutes of retries
    target = _survey(name, tracking_uri, None)
    if task:
        _refuse_other_tasks(target, name, task)
    if not force:
        print(f"would delete {target.report}")
        if not confirmed_on_terminal("mlexp delete", "delete all of it?", "nothing deleted"):
            return 1
        target = _survey(name, tracking_uri, None)  # what is there now: trials may have ended or begun while you read
    print(_delete(target))
    return 0
