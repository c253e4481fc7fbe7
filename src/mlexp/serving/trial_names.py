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
    from mlflow.exceptions import MlflowException

    experiments = [e.experiment_id for e in client.search_experiments()]
    try:
        named = client.search_runs(
            experiments,
            filter_string=f"attributes.run_name = '{name}' and tags.`{tags.KIND}` = 'trial'",
        )
    except MlflowException:  # a name MLflow's filter cannot quote: no lookup
        return []
    return [run.info.run_id for run in named]


def no_trained_trial(client: Any, source: str, task: str) -> str:
    """The line for a deploy.source that names no trained trial of `task` by its run id: a trial's name is told its
    run id. Looked up only then, so a source that is right costs no search."""
    ids = trials_named(client, source)
    if len(ids) == 1:
        why = f"{source} is a trial's name, deploy.source takes its run id: deploy.source={ids[0]}"
    elif ids:  # two projects' trials on one server may share a name
        why = f"{source} names {len(ids)} trials: give deploy.source the run id of one of {', '.join(ids)}"
    else:
        why = (
            "no trial run with a trained model has this id; use deploy.source=champion, best, trial or the run id of "
            f"a trained {task} trial"
        )
    return f"deploy.source={source}: {why}"
