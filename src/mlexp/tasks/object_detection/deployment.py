"""`deploy=local`: serve a trained detector on the framework's serving layer until Ctrl-C (or deploy.max_seconds).

deploy.source picks the model: `champion` (the registry alias; reloaded when it moves), `trial`
(this trial's), `best` (the experiment's best finished trial by the objective, what the post's
`tuner.deploy` does) or a trial run id.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from starlette.applications import Starlette

from mlexp.config.schema import objective_direction
from mlexp.errors import DataError
from mlexp.serving import http
from mlexp.serving.http import ModelSlot, ServiceSettings, champion_from_config, create_app, open_api_keys
from mlexp.serving.registered_name import registered_name
from mlexp.serving.trained_components import run_in_experiment, training_component_ids
from mlexp.serving.trial_names import no_trained_trial
from mlexp.tasks.object_detection.config import DetectionAugmentation
from mlexp.tasks.object_detection.endpoint import FootballDetector, routes
from mlexp.tracking import Tracker, tags

NAME = "object_detection"


def _experiment_id(client: Any, cfg: DictConfig) -> str:
    name = cfg.tracking.experiment_name or cfg.task.name
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        raise DataError(f"no experiment {name!r} in the tracking store: run `mlexp task={cfg.task.name}` first")
    return str(experiment.experiment_id)


def _download_model(client: Any, experiment_id: str, trial_id: str, into: Path) -> Path | None:
    """The model of the experiment's trial `trial_id`, downloaded; None if no trial there has that id or a model."""
    trial = run_in_experiment(client, trial_id, experiment_id)
    return None if trial is None else _download_trial_model(client, trial, into)


def _download_trial_model(client: Any, trial: Any, into: Path) -> Path | None:
    """The `model/` artifacts of the trial's Training component (its own, or one it reused), downloaded; None if it
    has none."""
    for component in training_component_ids(client, trial):
        if any(a.path == "model/model.params" for a in client.list_artifacts(component, "model")):
            return Path(client.download_artifacts(component, "model", str(into)))
    return None


def _best_trial(client: Any, experiment_id: str, cfg: DictConfig, into: Path) -> tuple[Path, str]:
    metric = cfg.task.objective.metric
    order = "DESC" if objective_direction(cfg) == "maximize" else "ASC"
    trials = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{tags.KIND}` = 'trial' and attributes.status = 'FINISHED' and metrics.`{metric}` >= 0",
        order_by=[f"metrics.`{metric}` {order}"],
        max_results=50,
    )
    for trial in trials:
        folder = _download_trial_model(client, trial, into)
        if folder is not None:
            return folder, f"best trial {trial.info.run_name} ({metric} = {trial.data.metrics[metric]:.4f})"
    raise DataError(f"no finished trial with {metric} and a saved model in the experiment: train one first")


def model_folder(cfg: DictConfig, tracker: Tracker, source: str, into: Path) -> tuple[Path, str]:
    """Where the trial model to serve is (source trial, best or a run id), and a description of it."""
    if source == "trial":
        folder = Path(cfg.paths.models)
        if not (folder / "model.params").exists():
            raise DataError(
                f"{folder}/model.params is missing: train in the same run (mlexp task={cfg.task.name} deploy=local "
                "deploy.source=trial), or serve deploy.source=best|champion|<trial run id>"
            )
        return folder, f"this trial's model ({folder})"
    experiment_id = _experiment_id(tracker.client, cfg)
    if source == "best":
        return _best_trial(tracker.client, experiment_id, cfg, into)
    downloaded = _download_model(tracker.client, experiment_id, source, into)
    if downloaded is None:
        raise DataError(no_trained_trial(tracker.client, source, NAME, experiment_id))
    return downloaded, f"trial {source}"


def _champion_detector() -> Callable[[str], FootballDetector]:
    """champion_loader's `load_model` (called in the trial's store): the registered pyfunc model's detector (its own
    normalisation and threshold)."""
    from mlexp.serving.pyfunc_model import quiet_mlflow

    def load(model_uri: str) -> FootballDetector:
        import mlflow.pyfunc

        with quiet_mlflow():
            model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
        detector = getattr(model, "detector", None)
        if not isinstance(detector, FootballDetector):
            raise DataError(f"{model_uri} is not a football detector; register one with deploy=registry")
        return detector

    return load


def model_slot(
    cfg: DictConfig, tracker: Tracker, augmentation: DetectionAugmentation
) -> tuple[ModelSlot, Callable[[], str] | None, str]:
    """The served detector in a ModelSlot, the probe that reloads it (champion only) and a description."""
    source = str(cfg.deploy.source)
    if source == "champion":
        load, probe = champion_from_config(cfg, load_model=_champion_detector())
        name, alias = registered_name(cfg)
        slot = ModelSlot(load)
        return slot, probe, f"registered model {name} v{slot.version} @{alias} (reloaded when the alias moves)"
    with tempfile.TemporaryDirectory() as downloads:  # the network is read into memory
        folder, description = model_folder(cfg, tracker, source, Path(downloads))
        detector = FootballDetector(folder, augmentation, float(cfg.model.score_threshold))
    return ModelSlot(lambda: (detector, source)), None, description


def build_app(slot: ModelSlot, settings: ServiceSettings, probe: Callable[[], str] | None = None) -> Starlette:
    """POST /invocations (and the layer's GET /ping) over the detector in `slot`; with a probe, hot reload."""
    shutdown: tuple[Callable[[], None], ...] = ()
    if probe is not None:
        slot.start_polling(probe, settings.reload_interval_s)
        shutdown = (slot.stop_polling,)
    return create_app(NAME, routes(slot, settings), settings, api_keys=open_api_keys(settings), on_shutdown=shutdown)


def serve(cfg: DictConfig, tracker: Tracker, augmentation: DetectionAugmentation) -> None:
    """Serve the detector deploy.source names on deploy.host:port until stopped."""
    settings = ServiceSettings.from_config(cfg.deploy)
    slot, probe, description = model_slot(cfg, tracker, augmentation)
    app = build_app(slot, settings, probe)
    tracker.log_parameters({"network": slot.current.architecture["network"], "source": settings.source})
    where = f"http://{settings.host}:{settings.port}" if settings.port else "<service URL>"
    key = ' -H "x-api-key: $MLEXP_API_KEY"' if settings.require_api_key else ""
    print(f"  the image itself: curl -s{key} -H 'Content-Type: image/jpeg' --data-binary @frame.jpg "
          f"{where}/invocations", flush=True)  # fmt: skip
    http.serve(
        cfg,
        tracker,
        app,
        description=description,
        endpoints=['POST /invocations {"image": "<base64 of a JPEG or PNG>", "score_threshold": 0.3}'],
    )
