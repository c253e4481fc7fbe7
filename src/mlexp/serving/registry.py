"""`deploy=registry`: register the trial's model as an MLflow Model with a pyfunc flavour.

Each task with a predictive model has a module `<task package>.registered_model` whose
`pyfunc_model(cfg, staging)` says what the model is made of (its PythonModel class, files,
input example and signature). The registry saves it as an MLflow Model folder, logs it as an
MLflow 3 LoggedModel of the trial's Deployment component (source run, parameters, headline
metrics), and registers it as a new version `models:/<name>/<version>` whose tags carry the
objective. The alias (default `champion`) moves to it only when it beats the holder (champion.py),
so `mlflow.pyfunc.load_model("models:/<name>@champion")` and `mlflow models serve` always get the
best model so far. A failed trial never reaches this stage, so its model is never registered.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import tempfile
import time
from pathlib import Path
from types import ModuleType

from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric
from mlflow.models import Model
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS
from omegaconf import DictConfig, OmegaConf

from mlexp import tasks
from mlexp.config.params import flatten
from mlexp.config.schema import objective_direction
from mlexp.errors import DataError
from mlexp.serving import champion, pyfunc_model
from mlexp.serving.registered_name import registered_name
from mlexp.tracking import Tracker, TrackingStore
from mlexp.tracking import tags as run_tags

MODULE = "registered_model"


def _model_module(cfg: DictConfig) -> ModuleType:
    task = tasks.get(cfg.task.name)
    task.check_registrable()
    return importlib.import_module(task.model_module)


def metrics_of_trial(tracker: Tracker) -> dict[str, float]:
    """The metrics the trial's run holds now: its components' last values, the objective among them."""
    assert tracker.trial_run_id is not None
    return dict(tracker.client.get_run(tracker.trial_run_id).data.metrics)


def deploy_trial(cfg: DictConfig, tracker: Tracker) -> None:
    """deploy=registry from a task's own deploy stage: register this trial's model, ranked by its metrics."""
    deploy(cfg, tracker, metrics_of_trial(tracker))


def deploy(cfg: DictConfig, tracker: Tracker, trial_metrics: dict[str, float]) -> None:
    """Register this trial's model as a new version; move the alias to it if its objective is better."""
    module = _model_module(cfg)
    metric = cfg.task.objective.metric
    value = trial_metrics.get(metric, math.nan)
    if math.isnan(value):
        raise DataError(f"the trial has no {metric} to rank its model by: run the evaluate stage first")
    client = tracker.client
    trial = client.get_run(tracker.trial_run_id or tracker.run_id)
    name, alias_name = registered_name(cfg)
    about = {
        run_tags.TASK: cfg.task.name,
        "mlexp.trial_run_id": trial.info.run_id,
        "mlexp.trial_name": str(trial.info.run_name),
        champion.OBJECTIVE: metric,
        champion.DIRECTION: objective_direction(cfg),
        champion.OBJECTIVE_VALUE: repr(float(value)),
        **{k: v for k, v in trial.data.tags.items() if k in (run_tags.SWEEP_ID, "mlexp.sweep_name")},
    }
    model_id = _log_model(cfg, tracker, module, str(trial.info.run_name), about)
    headline = [metric, *cfg.task.headline_metrics]
    _link_metrics(client, tracker.run_id, model_id, {k: trial_metrics[k] for k in headline if k in trial_metrics})

    uri = TrackingStore.resolve(cfg.tracking.uri, Path(cfg.paths.root)).uri
    alias = champion.Alias(client, uri, name, alias_name, metric, objective_direction(cfg))
    version, holder = alias.register(f"models:/{model_id}", tracker.run_id, {**about, metric: str(value)}, model_id)
    client.set_logged_model_tags(
        model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([{"name": name, "version": version.version}])}
    )

    promoted = holder is not None and holder.version == int(version.version)
    tracker.log_parameters({"model_name": name, "alias": alias_name})
    tracker.log_output("registered model", "mlflow/model-version", f"models:/{name}/{version.version}")
    tracker.set_tags(
        {
            "mlexp.model_version": version.version,
            "mlexp.logged_model_id": model_id,
            "mlexp.promoted": str(promoted).lower(),
        }
    )
    print(_where(name, alias_name, int(version.version), holder, metric, value), flush=True)


def _log_model(cfg: DictConfig, tracker: Tracker, module: ModuleType, trial_name: str, about: dict[str, str]) -> str:
    """Save the task's pyfunc model and log it as a LoggedModel of the Deployment component; returns its id."""
    client = tracker.client
    component = client.get_run(tracker.run_id)
    settings = OmegaConf.to_container(cfg.model, resolve=True, enum_to_str=True)
    logged = client.create_logged_model(
        component.info.experiment_id,
        name=trial_name,
        source_run_id=tracker.run_id,
        tags=about,
        params={key: str(value) for key, value in flatten(settings).items()},
        model_type=cfg.task.name,
    )
    try:
        client.log_outputs(tracker.run_id, [LoggedModelOutput(logged.model_id, step=0)])
        with tempfile.TemporaryDirectory(prefix="mlexp-model-") as folder, pyfunc_model.quiet_mlflow():
            model = module.pyfunc_model(cfg, Path(folder) / "staging")
            saved = Path(folder) / "model"
            description = Model(
                artifact_path=logged.artifact_location,
                model_uuid=logged.model_id,
                run_id=tracker.run_id,
                model_id=logged.model_id,
                metadata={"mlexp.task": cfg.task.name, "mlexp.python_model": model.python_model.__qualname__},
            )
            pyfunc_model.save(model, saved, description)
            client.log_model_artifacts(logged.model_id, str(saved))
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return str(logged.model_id)


def _link_metrics(client: MlflowClient, run_id: str, model_id: str, metrics: dict[str, float]) -> None:
    """The trial's headline metrics on the LoggedModel, so MLflow's model views show them."""
    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, 0, model_id=model_id) for k, v in metrics.items() if math.isfinite(v)]
    if batch:
        client.log_batch(run_id, metrics=batch)


def _where(name: str, alias: str, version: int, holder: champion.Standing | None, metric: str, value: float) -> str:
    """The line telling where the model is: the alias it took, or the version that kept it."""
    if holder is not None and holder.version == version:
        return f"registered models:/{name}@{alias} (version {version}, {metric} {value:.6g})"
    kept = f"version {holder.version} with {metric} {holder.value:.6g}" if holder is not None else "nobody"
    return f"registered models:/{name}/{version} ({metric} {value:.6g}); {alias} stays {kept}"
