"""The component runs that may hold a trial's trained model: its own Training component, or the one it reused.

A trial of a partial `dvc repro` whose train stage DVC kept trained nothing itself: it names the component that
trained the kept model (`mlexp.shared_component.train`, mlexp.reused_stages), as SageMaker Experiments' shared trial
components. Serving such a trial by its run id, or as the best trial, must look there too.
"""

from __future__ import annotations

from typing import Any

from mlexp.tracking import tags

TRAIN_STAGE = "train"
# MLflow's error codes for a run id no run has (a server may refuse an id of another form as a bad parameter)
NO_SUCH_RUN = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def run_in_experiment(client: Any, run_id: str, experiment_id: str, *, include_deleted: bool = False) -> Any | None:
    """The run `run_id` of the experiment; None when it has none of that id, or that run is deleted (unless
    `include_deleted`; a value typed as a source may be anything). A store that does not answer raises, as any other
    request would."""
    from mlflow.exceptions import MlflowException

    if not tags.is_run_id(run_id):
        return None
    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        if error.error_code in NO_SUCH_RUN:
            return None
        raise
    if run.info.experiment_id != experiment_id:
        return None
    return run if include_deleted or run.info.lifecycle_stage == "active" else None


def training_components(client: Any, trial: Any, *, include_deleted: bool = False) -> list[Any]:
    """The trial's Training components: its own, then the one it reused if that one is still there, in the trial's
    experiment (deleted since, or a tag edited by hand: the trial then has no model, and `best` looks further).

    Args:
        include_deleted: deleted ones too, which restoring would bring back (the restore hint's question).
    """
    from mlflow.entities import ViewType

    own = client.search_runs(
        [trial.info.experiment_id],
        filter_string=tags.component_filter(trial.info.run_id, TRAIN_STAGE),
        run_view_type=ViewType.ALL if include_deleted else ViewType.ACTIVE_ONLY,
    )
    reused = reused_training_id(trial)
    linked = (
        run_in_experiment(client, reused, trial.info.experiment_id, include_deleted=include_deleted) if reused else None
    )
    return [*own, linked] if linked else list(own)


def reused_training_id(trial: Any) -> str | None:
    """The run id of the Training component the trial reused (its tag), whether that run is still in the store or not;
    None when it trained itself."""
    return tags.shared_components(trial.data.tags).get(TRAIN_STAGE)


def training_component_ids(client: Any, trial: Any) -> list[str]:
    """The run ids of the trial's Training components that are in the store (`training_components`)."""
    return [run.info.run_id for run in training_components(client, trial)]
