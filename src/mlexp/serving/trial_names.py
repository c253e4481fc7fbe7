"""A trial's name given where its run id is wanted (deploy.source=, model.init_from=runs:/): the ids it names.

`mlexp compare` and the MLflow UI list trials by name (`object_detection-20261207-105724`), so that is what users
copy; MLflow looks runs up by id only."""

from __future__ import annotations

import shlex
from typing import Any

from mlexp.serving.trained_components import training_components
from mlexp.tracking import tags


def finished_trials(client: Any, name: str) -> tuple[list[Any], list[Any]]:
    """The finished trials called `name` (the ones whose run id a deploy stage serves), and all trials of that
    name, in any experiment of the client's store (two projects' trials on one server may share a name). A store
    that fails the search raises its MlflowException: that is no answer that no trial has the name."""
    named = _named(client, name)
    return [run for run in named if run.info.status == "FINISHED"], named


def not_finished(trial: Any) -> str:
    """How a trial that is not finished stands, for a hint: `ended FAILED`, `has not finished (RUNNING)`."""
    status = trial.info.status
    return f"ended {status}" if status in ("FAILED", "KILLED") else f"has not finished ({status})"


def _named(client: Any, name: str) -> list[Any]:
    if not tags.quotable(name):
        return []  # looked up as no trial: no filter can hold the name
    experiments = [e.experiment_id for e in client.search_experiments()]
    return list(
        client.search_runs(
            experiments, filter_string=f"attributes.run_name = {tags.quoted(name)} and tags.`{tags.KIND}` = 'trial'"
        )
    )


def no_trained_trial(client: Any, source: str, task: str, experiment_id: str | None = None) -> str:
    """The line for a deploy.source that names no trained trial of `task` by its run id: a trial's name is told its
    run id, if that trial can serve: it finished, and it is in `experiment_id` when the task reads only that one
    (else the tracking.experiment_name that reads it is given too); a finished trial's run id that is deleted (and
    that restoring would make servable), or in an experiment that is deleted or not read, is told so. Looked up only
    then, so a source that is right costs no search; a store that fails that search is said in its one line."""
    from mlflow.exceptions import MlflowException

    from mlexp.tracking.store import store_failure

    try:
        finished, named = finished_trials(client, source)
    except MlflowException as error:
        failed = f"the search for a trial of this name failed: {store_failure(error, str(client.tracking_uri))}"
        return f"deploy.source={source}: no trial run with a trained model has this id, and {failed}"
    here = [run.info.run_id for run in finished if experiment_id in (None, run.info.experiment_id)]
    elsewhere = [run.info for run in finished if experiment_id not in (None, run.info.experiment_id)]
    if len(here) == 1:
        why = f"{source} is a trial's name, deploy.source takes its run id: deploy.source={here[0]}"
    elif here:  # two projects' trials on one server may share a name
        why = f"{source} names {len(here)} trials: give deploy.source the run id of one of {', '.join(here)}"
    elif elsewhere:
        why = _in_other_experiments(client, source, elsewhere)
    elif named:  # a trial that failed or was stopped saved no model
        why = f"{source} is a trial's name, but it {not_finished(named[0])}: give a finished {task} trial's run id"
    else:
        why = _run_not_served(client, source, task, experiment_id) or (
            "no trial run with a trained model has this id; use deploy.source=champion, best, trial or the run id of "
            f"a trained {task} trial"
        )
    return f"deploy.source={source}: {why}"


def _run_not_served(client: Any, source: str, task: str, experiment_id: str | None) -> str | None:
    """Why the finished `task` trial whose run id is `source` is not served: it, or its experiment, is deleted, or the
    deploy stage does not read its experiment; None for anything else (no such run, a component, a trial of another
    task, one that did not finish or that restoring would leave without a Training component: the general line)."""
    from mlflow.exceptions import MlflowException

    if not tags.is_run_id(source):
        return None
    try:
        run = client.get_run(source)
        if run.data.tags.get(tags.KIND) != "trial" or run.data.tags.get(tags.TASK, task) != task:
            return None
        if run.info.status != "FINISHED":
            return None
        experiment = client.get_experiment(run.info.experiment_id)
        deleted = "deleted" in (run.info.lifecycle_stage, experiment.lifecycle_stage)
        to_restore = runs_to_restore(client, run) if deleted else []
    except MlflowException:  # only a better line: the general one is still true
        return None
    if to_restore is None:
        return None
    other = experiment_id not in (None, run.info.experiment_id)
    read_with = f", then serve it with {_serving_override(experiment.name, source)}" if other else ""
    if experiment.lifecycle_stage == "deleted":  # restoring it restores its runs too
        restore = _mlflow_command(client, "experiments", "restore", "--experiment-id", experiment.experiment_id)
        return f"run {source} is in experiment {experiment.name!r}, which is deleted; restore it ({restore}){read_with}"
    if run.info.lifecycle_stage == "deleted":
        what = "it" if len(to_restore) == 1 else "it and its deleted Training components"
        return f"run {source} is deleted; restore {what} ({restore_commands(client, to_restore)}){read_with}"
    return _read_elsewhere(source, experiment.name) if other else None


def runs_to_restore(client: Any, trial: Any) -> list[str] | None:
    """The deleted `trial` and, when none of its Training components (own, or reused through its tag) is active,
    every deleted one: the MLflow UI deletes a run's children with it. None when it has no finished Training
    component of its experiment at all (restoring would serve nothing)."""
    components = [c for c in training_components(client, trial, include_deleted=True) if c.info.status == "FINISHED"]
    if not components:
        return None
    itself = [trial.info.run_id] if trial.info.lifecycle_stage == "deleted" else []
    if any(component.info.lifecycle_stage == "active" for component in components):
        return itself
    return itself + [component.info.run_id for component in components]


def restore_commands(client: Any, run_ids: list[str]) -> str:
    """The shell commands that restore the deleted runs `run_ids` of the client's store, for a hint: `...` and `...`."""
    return " and ".join(_mlflow_command(client, "runs", "restore", "--run-id", run_id) for run_id in run_ids)


def _mlflow_command(client: Any, *arguments: str) -> str:
    """`mlflow <arguments>` on the client's store from any folder, as a hint quotes it: `MLFLOW_TRACKING_URI=...
    mlflow ...`."""
    from mlexp.tracking.store import mlflow_command_env

    return f"`{mlflow_command_env(str(client.tracking_uri))} {shlex.join(['mlflow', *arguments])}`"


def _serving_override(experiment: str, run_id: str) -> str:
    """The overrides with which a deploy stage reads experiment `experiment` and serves its trial `run_id`."""
    from mlexp.serving.registered_name import hydra_value

    return shlex.join([f"tracking.experiment_name={hydra_value(experiment)}", f"deploy.source={run_id}"])


def _read_elsewhere(source: str, experiment: str, run_id: str | None = None) -> str:
    """`source` names a trial (`run_id`, or source itself) of an experiment the deploy stage does not read."""
    override = _serving_override(experiment, run_id or source)
    return f"{source} is a trial of experiment {experiment!r}, which the deploy stage reads with {override}"


def _in_other_experiments(client: Any, source: str, trials: list[Any]) -> str:
    """The overrides that serve each finished trial `source` names in experiments the deploy stage does not read."""
    experiments = [client.get_experiment(trial.experiment_id).name for trial in trials]
    offers = [_serving_override(name, trial.run_id) for name, trial in zip(experiments, trials, strict=True)]
    if len(trials) == 1:
        return _read_elsewhere(source, experiments[0], trials[0].run_id)
    return f"{source} names {len(trials)} trials of other experiments: give {' or '.join(offers)}"
