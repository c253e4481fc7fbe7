"""The component runs that may hold a trial's trained model: its own Training component, or the one it reused.

A trial of a partial `dvc repro` whose train stage DVC kept trained nothing itself: it names the component that
trained the kept model (`mlexp.shared_component.train`, mlexp.reused_stages), as SageMaker Experiments' shared trial
components. Serving such a trial by its run id, or as the best trial, must look there too.
"""

from __future__ import annotations

from typing import Any

from mlexp.serving.trial_names import NO_SUCH_RUN
from mlexp.tracking import tags

TRAIN_STAGE = "train"


def run_in_experiment(client: Any, run_id: str, experiment_id: str) -> Any | None:
    """The run `run_id` of the experiment; None when it has none of that id, or that run is deleted (a value typed as
    a source may be anything). A store that does not answer raises, as any other request would."""
    from mlflow.exceptions import MlflowException

    if not tags.is_run_id(run_id):
        return None
    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        if error.error_code in NO_SUCH_RUN:
            return None
        raise
    return run if run.info.experiment_id == experiment_id and run.info.lifecycle_stage == "active" else None


def training_component_ids(client: Any, trial: Any) -> list[str]:
    """The run ids of the trial's Training components: its own, then the one it reused if that one is still there
    (deleted since, or a tag edited by hand: the trial then has no model, and `best` looks further)."""
    own = client.search_runs(
        [trial.info.experiment_id],
        filter_string=tags.component_filter(trial.info.run_id, TRAIN_STAGE),
    )
    reused = tags.shared_components(trial.data.tags).get(TRAIN_STAGE)
    linked = reused is not None and run_in_experiment(client, reused, trial.info.experiment_id) is not None
    return [run.info.run_id for run in own] + ([reused] if linked else [])
