"""`deploy=local`: serve a trained detector on loopback until Ctrl-C (or model.serving.max_seconds).

The model is this trial's (`model.serving.source=trial`), the experiment's best finished trial
by the objective (`best`, what the post's `tuner.deploy` does), or a given trial run id.
"""

from __future__ import annotations

import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from mlexp.config.schema import objective_direction
from mlexp.errors import ConfigError, DataError
from mlexp.tasks.object_detection.config import DetectionAugmentation, Detector
from mlexp.tasks.object_detection.endpoint import FootballDetector, make_server
from mlexp.tracking import Tracker, tags


def _experiment_id(client: Any, cfg: DictConfig) -> str:
    name = cfg.tracking.experiment_name or cfg.task.name
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        raise DataError(f"no experiment {name!r} in the tracking store: run `mlexp task={cfg.task.name}` first")
    return str(experiment.experiment_id)


def _download_model(client: Any, experiment_id: str, trial_id: str, into: Path) -> Path | None:
    """The `model/` artifacts of the trial's Training component, downloaded; None if it has none."""
    components = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{tags.MLFLOW_PARENT_RUN_ID}` = '{trial_id}' and tags.`{tags.STAGE}` = 'train'",
    )
    for component in components:
        if any(a.path == "model/model.params" for a in client.list_artifacts(component.info.run_id, "model")):
            return Path(client.download_artifacts(component.info.run_id, "model", str(into)))
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
        folder = _download_model(client, experiment_id, trial.info.run_id, into)
        if folder is not None:
            return folder, f"best trial {trial.info.run_name} ({metric} = {trial.data.metrics[metric]:.4f})"
    raise DataError(f"no finished trial with {metric} and a saved model in the experiment: train one first")


def model_folder(cfg: DictConfig, tracker: Tracker, into: Path) -> tuple[Path, str]:
    """Where the model to serve is, and a description of it."""
    source = cfg.model.serving.source
    if source == "trial":
        folder = Path(cfg.paths.models)
        if not (folder / "model.params").exists():
            raise DataError(
                f"{folder}/model.params is missing: run the train stage, or serve model.serving.source=best"
            )
        return folder, f"this trial's model ({folder})"
    experiment_id = _experiment_id(tracker.client, cfg)
    if source == "best":
        return _best_trial(tracker.client, experiment_id, cfg, into)
    downloaded = _download_model(tracker.client, experiment_id, source, into)
    if downloaded is None:
        raise DataError(f"model.serving.source={source}: no trial run with a trained model has this id")
    return downloaded, f"trial {source}"


def serve(cfg: DictConfig, tracker: Tracker, augmentation: DetectionAugmentation, model: Detector) -> None:
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ConfigError(
            "deploy=local serves one model and would stop the sweep; after the sweep run "
            f"`mlexp task={cfg.task.name} stage=deploy deploy=local model.serving.source=best`"
        )
    settings = model.serving
    with tempfile.TemporaryDirectory() as downloads:
        folder, origin = model_folder(cfg, tracker, Path(downloads))
        detector = FootballDetector(folder, augmentation, model.score_threshold)
    server = make_server(detector, settings.host, settings.port, settings.max_request_bytes)
    url = f"http://{settings.host}:{server.server_port}/invocations"
    tracker.log_parameters({"endpoint": url, "served_model": origin, "network": detector.architecture["network"]})
    print(f"endpoint: POST {url}  serving {origin}; Ctrl-C stops it", flush=True)
    print(f"  curl -s -X POST -H 'Content-Type: image/jpeg' --data-binary @frame.jpg {url}", flush=True)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        stop.wait(settings.max_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
        signal.signal(signal.SIGTERM, previous)
    tracker.log_metric("requests_served", detector.served)
    print(f"endpoint stopped after {detector.served} request(s)", flush=True)
