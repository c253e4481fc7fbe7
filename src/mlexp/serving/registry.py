"""`deploy=registry`: register the trial's model in the MLflow Model Registry.

Every successful trial's model becomes a new version; the alias (default `champion`)
moves to it only when its objective beats the current holder's. A failed trial never
reaches this stage, so its model is never registered or promoted.
"""

from __future__ import annotations

import math
from pathlib import Path

from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from mlexp.errors import DataError
from mlexp.tracking import Tracker


def _better(value: float, incumbent: float | None, direction: str) -> bool:
    if incumbent is None or math.isnan(incumbent):
        return True
    return value < incumbent if direction == "minimize" else value > incumbent


def deploy(cfg: DictConfig, tracker: Tracker, trial_metrics: dict[str, float]) -> None:
    models = Path(cfg.paths.models)
    if not models.is_dir() or not any(models.iterdir()):
        raise DataError(f"{models} holds no model to register: run the train stage first")
    metric = cfg.task.objective.metric
    direction = str(getattr(cfg.task.objective.direction, "value", cfg.task.objective.direction))
    value = trial_metrics.get(metric, math.nan)
    if math.isnan(value):
        raise DataError(f"the trial has no {metric} to rank its model by: run the evaluate stage first")

    client = tracker.client
    for file in sorted(p for p in models.rglob("*") if p.is_file()):
        tracker.log_artifact(file, name="model")
    name = cfg.deploy.model_name or cfg.task.name
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description=f"models of mlexp task {cfg.task.name}")
    source = f"{client.get_run(tracker.run_id).info.artifact_uri}/model"
    version = client.create_model_version(name, source, run_id=tracker.run_id, tags={metric: str(value)})

    alias = cfg.deploy.alias
    try:
        holder = client.get_model_version_by_alias(name, alias)
        incumbent: float | None = float(holder.tags.get(metric, "nan"))
    except MlflowException:
        incumbent = None
    promoted = _better(value, incumbent, direction)
    if promoted:
        client.set_registered_model_alias(name, alias, version.version)
    tracker.log_parameters({"model_name": name, "alias": alias})
    tracker.log_output("registered model", "mlflow/model-version", f"models:/{name}/{version.version}")
    tracker.set_tags({"mlexp.model_version": version.version, "mlexp.promoted": str(promoted).lower()})
    where = f"models:/{name}@{alias}" if promoted else f"models:/{name}/{version.version} ({alias} kept: better)"
    print(f"registered {where}")
