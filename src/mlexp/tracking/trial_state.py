"""What a later process needs to know of a trial an earlier process recorded, read from the store in one place.

A DVC stage that continues the trial of the stages before it asks for this; the tracking writer
reads it (MLflow is loaded there), so the stage's own process never imports MLflow to decide.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mlexp.tracking import tags

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class TrialState:
    """A trial run as the store holds it when a later process (a DVC stage after the first) would continue it."""

    name: str
    status: str
    experiment_id: str  # the run's experiment
    in_experiment: bool  # the run's experiment is the active one its name now designates (not renamed, re-made)
    components: dict[str, str]  # each stage recorded in the trial, and its component's status
    metrics: dict[str, float]  # the trial run's metrics (latest values)
    reused: tuple[str, ...] = ()  # the stages it reuses instead of running (a partial `dvc repro` kept them)

    def to_reply(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> TrialState:
        return cls(
            str(reply["name"]),
            str(reply["status"]),
            str(reply["experiment_id"]),
            bool(reply["in_experiment"]),
            {str(k): str(v) for k, v in reply["components"].items()},
            {str(k): float(v) for k, v in reply["metrics"].items()},
            tuple(str(stage) for stage in reply.get("reused", ())),
        )


def read_trial_state(client: MlflowClient, run_id: str, experiment_name: str) -> TrialState | None:
    """Trial run `run_id` and its components as the store holds them; None when the store has no such run."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        return None
    experiment = client.get_experiment_by_name(experiment_name)
    in_experiment = (
        experiment is not None
        and experiment.lifecycle_stage == "active"
        and experiment.experiment_id == run.info.experiment_id
    )
    children = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.`{tags.MLFLOW_PARENT_RUN_ID}` = '{run_id}'"
    )
    return TrialState(
        name=str(run.info.run_name),
        status=str(run.info.status),
        experiment_id=str(run.info.experiment_id),
        in_experiment=in_experiment,
        components={child.data.tags.get(tags.STAGE, ""): str(child.info.status) for child in children},
        metrics={k: float(v) for k, v in run.data.metrics.items()},
        reused=tuple(
            key.removeprefix(tags.REUSED_PREFIX)
            for key, value in run.data.tags.items()
            if key.startswith(tags.REUSED_PREFIX) and value
        ),
    )
