"""A trial's name given where its run id is wanted (deploy.source=, model.init_from=runs:/): the ids it names.

`mlexp compare` and the MLflow UI list trials by name (`object_detection-20261207-105724`), so that is what users
copy; MLflow looks runs up by id only."""

from __future__ import annotations

from typing import Any

from mlexp.tracking import tags


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
