"""Delete an experiment hierarchically, as SageMaker Experiments' `experiment.delete_all('--force')`.

Its trials and their components, their artifacts, its sweep records (`<experiment>-sweeps`),
the registered model versions its trials made and the shared Pre-processing outputs of its
components all go; other experiments keep theirs. MLflow's own `delete_experiment` only marks
an experiment deleted and keeps its name taken; mlexp removes it so that the name can be used
again (cleanup_removal says how, on a SQL store and on a server). What goes is planned first
(cleanup_plan) and told in a DeletionReport (cleanup_report).
"""

from __future__ import annotations

from pathlib import Path

from mlexp.cleanup_plan import DeletionNotConfirmed, DeletionTarget, ExperimentNotFound, survey
from mlexp.cleanup_removal import delete_target
from mlexp.cleanup_report import DeletionReport
from mlexp.console import confirmed_on_terminal, quiet_third_party
from mlexp.errors import MlexpError
from mlexp.paths import project_root
from mlexp.tracking import TrackingStore, tags
from mlexp.tracking.store import bound_store_retries

__all__ = [
    "DeletionNotConfirmed",
    "DeletionReport",
    "ExperimentNotFound",
    "confirm_and_delete",
    "delete_experiment",
    "plan_deletion",
]


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
    return delete_target(target)


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
    print(delete_target(target))
    return 0


def _survey(name: str, tracking_uri: str | None, root: Path | None) -> DeletionTarget:
    """The plan for `name` in the store and project the caller names (or the defaults)."""
    root = root or project_root()
    return survey(name, TrackingStore.resolve(tracking_uri, root), root)


def _refuse_other_tasks(target: DeletionTarget, name: str, task: str) -> None:
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
