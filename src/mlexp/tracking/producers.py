"""The trial component that made a stage's outputs, found in the store by the digest it recorded of them.

A component of a DVC stage run carries `mlexp.outputs_digest`. Several components may carry the same digest
(a deterministic stage run again); the one whose trial ran with the params dvc.lock records for the stage is
the producer, the first of them if more than one did. Never the latest run by time alone: a trial that
merely ran last proves nothing about the files in the workspace.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from mlexp.tracking import tags

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

CANDIDATES = 100  # components with one stage's digest: more means a stage run that often with identical outputs


@dataclass(frozen=True)
class Wanted:
    """What a kept stage's producer must have recorded: its outputs' digest, and the params its trial ran with."""

    stage: str
    outputs_digest: str
    params: dict[str, Any]  # the trial's param name -> the value dvc.lock records
    curves: list[str] = field(default_factory=list)  # metrics whose every step the trial keeps (task.curves)


@dataclass(frozen=True)
class Producer:
    """The component run that made a stage's outputs, with its trial, its metrics (latest values) and the whole
    history of those that are curves, as (step, value)."""

    run_id: str
    name: str
    trial_id: str
    trial_name: str
    metrics: dict[str, float]
    histories: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def to_reply(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> Producer:
        metrics = {str(k): float(v) for k, v in reply["metrics"].items()}
        histories = {str(k): [(int(step), float(v)) for step, v in points] for k, points in reply["histories"].items()}
        names = (str(reply["run_id"]), str(reply["name"]), str(reply["trial_id"]), str(reply["trial_name"]))
        return cls(*names, metrics, histories)


def read_producers(client: MlflowClient, experiment_name: str, wanted: list[Wanted]) -> dict[str, Producer]:
    """The producer of each wanted stage's outputs in the experiment, by stage; a stage with none is left out."""
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return {}
    found: dict[str, Producer] = {}
    trials: dict[str, Run] = {}
    for want in wanted:
        query = (
            f"tags.`{tags.OUTPUTS_DIGEST}` = '{want.outputs_digest}' and tags.`{tags.STAGE}` = '{want.stage}' "
            "and attributes.status = 'FINISHED'"
        )
        runs = client.search_runs(
            [experiment.experiment_id], query, max_results=CANDIDATES, order_by=["attributes.start_time ASC"]
        )
        for run in runs:
            parent = run.data.tags.get(tags.MLFLOW_PARENT_RUN_ID, "")
            if parent and parent not in trials:
                trials[parent] = client.get_run(parent)
            trial = trials.get(parent)
            if trial is None or trial.info.lifecycle_stage != "active":  # a deleted trial is no source to show
                continue
            if agrees(trial.data.params, want.params):
                found[want.stage] = _producer(client, run, trial, want.curves)
                break
    return found


def _producer(client: MlflowClient, run: Run, trial: Run, curves: list[str]) -> Producer:
    histories = {}
    for name in (c for c in curves if c in run.data.metrics):
        points = sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: (m.step, m.timestamp))
        histories[name] = [(int(m.step), float(m.value)) for m in points]
    metrics = {k: float(v) for k, v in run.data.metrics.items()}
    return Producer(
        run.info.run_id, str(run.info.run_name), trial.info.run_id, str(trial.info.run_name), metrics, histories
    )


def agrees(logged: dict[str, str], values: dict[str, Any]) -> bool:
    """Whether a trial's params (text, as MLflow keeps them) hold these values; a param it lacks disagrees."""
    for key, value in values.items():
        text = logged.get(key)
        if text is None:
            return False
        if text == str(value):
            continue
        try:
            if yaml.safe_load(text) == value:  # the same value written otherwise (24 and 24.0)
                continue
        except yaml.YAMLError:
            pass
        return False
    return True
