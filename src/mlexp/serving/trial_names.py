"""A trial's name given where its run id is wanted (deploy.source=, model.init_from=runs:/): the ids it names.

`mlexp compare` and the MLflow UI list trials by name (`object_detection-20261207-105724`), so that is what users
copy; MLflow looks runs up by id only."""

from __future__ import annotations

from typing import Any

from mlexp.tracking import tags

# MLflow's error codes for a run id no run has (a server may refuse an id of another form as a bad parameter)
NO_SUCH_RUN = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def trials_named(client: Any, name: str) -> list[str]:
    """The run ids of the trials called `name`, in any experiment of the client's store (two projects' trials on one
    server may share a name); none for a name MLflow's filter cannot quote."""
    return [run.info.run_id for run in _named(client, name)]


def _named(client: Any, name: str) -> list[Any]:
    from mlflow.exceptions import MlflowException

    experiments = [e.experiment_id for e in client.search_experiments()]
    try:
        return list(
            client.search_runs(
                experiments, filter_string=f"attributes.run_name = '{name}' and tags.`{tags.KIND}` = 'trial'"
            )
        )
    except MlflowException:  # a name MLflow's filter cannot quote: no lookup
        return []


def no_trained_trial(client: Any, source: str, task: str, experiment_id: str | None = None) -> str:
    """The line for a deploy.source that names no trained trial of `task` by its run id: a trial's name is told its
    run id, if that trial can serve: it finished, and it is in `experiment_id` when the task reads only that one
    (else the tracking.experiment_name that reads it is given too). Looked up only then, so a source that is right
    costs no search."""
    named = _named(client, source)
    here = [run for run in named if experiment_id is None or run.info.experiment_id == experiment_id]
    finished = [run.info.run_id for run in here if run.info.status == "FINISHED"]
    if len(finished) == 1:
        why = f"{source} is a trial's name, deploy.source takes its run id: deploy.source={finished[0]}"
    elif finished:  # two projects' trials on one server may share a name
        why = f"{source} names {len(finished)} trials: give deploy.source the run id of one of {', '.join(finished)}"
    elif here:  # a trial that failed or was stopped saved no model
        why = f"{source} is a trial's name, but it ended {here[0].info.status}: give a finished {task} trial's run id"
    elif named:
        other = named[0].info
        name = client.get_experiment(other.experiment_id).name
        why = (
            f"{source} is a trial of experiment {name!r}, which the deploy stage reads with "
            f"tracking.experiment_name={name} deploy.source={other.run_id}"
        )
    else:
        why = (
            "no trial run with a trained model has this id; use deploy.source=champion, best, trial or the run id of "
            f"a trained {task} trial"
        )
    return f"deploy.source={source}: {why}"
