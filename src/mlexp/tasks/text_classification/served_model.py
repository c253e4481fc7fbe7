"""The model the service answers with: this trial's, the registry champion, the best trial, or a given trial.

`load_served_model(cfg, source)` returns the fast TextClassifier (not the pyfunc wrapper) and a
label naming what was loaded; `served_model_probe(cfg, source)` returns a function giving the
label the source would load now (a few store searches), so the service reloads only when the
champion alias moved, or another trial became the best.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from mlexp.config.schema import objective_direction
from mlexp.errors import DataError
from mlexp.serving.registered_name import registered_name
from mlexp.serving.trained_components import run_in_experiment, training_component_ids
from mlexp.serving.trial_names import no_trained_trial
from mlexp.tasks.text_classification.classifier import ABOUT_FILE, TextClassifier
from mlexp.tracking import TrackingStore, tags

# the Training component logs the model folder under this artifact path
MODEL_ARTIFACTS = "model"
# where an MLflow Model folder keeps the files its PythonModel loads
MODEL_FOLDER = "artifacts"


def model_name(cfg: DictConfig) -> str:
    """The registered model: deploy.model_name when set, else the task name."""
    return registered_name(cfg)[0]


def alias(cfg: DictConfig) -> str:
    return registered_name(cfg)[1]


def tracking_uri(cfg: DictConfig) -> str:
    return TrackingStore.resolve(cfg.tracking.uri, Path(cfg.paths.root)).uri


def _client(cfg: DictConfig) -> Any:
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(cfg)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def load_version(cfg: DictConfig, version: str) -> TextClassifier:
    """The classifier of version `version` of the task's registered model."""
    return _load_registered(cfg)(f"models:/{model_name(cfg)}/{version}")


def _load_registered(cfg: DictConfig) -> Callable[[str], TextClassifier]:
    """champion_loader's `load_model`: the classifier of `models:/<name>/<version>`."""

    def load(uri: str) -> TextClassifier:
        import mlflow.artifacts

        from mlexp.serving.pyfunc_model import quiet_mlflow

        name, version = uri.removeprefix("models:/").rsplit("/", 1)
        # created at load time, when the trial's tracker has set the store up (a second set-up races it)
        client = _client(cfg)
        registered = client.get_model_version(name, version)
        # only the classifier's folder (artifacts/ of the MLflow Model), not the model's copy of mlexp's code
        model_id = registered.model_id or str(registered.source).removeprefix("models:/")
        location = client.get_logged_model(model_id).artifact_location.rstrip("/")
        with tempfile.TemporaryDirectory(prefix="mlexp-served-") as folder, quiet_mlflow():
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{location}/{MODEL_FOLDER}", dst_path=folder, tracking_uri=tracking_uri(cfg)
            )
            return _load_folder(Path(path), uri)

    return load


def _load_folder(downloaded: Path, what: str) -> TextClassifier:
    found = sorted(downloaded.rglob(ABOUT_FILE))
    if not found:
        raise DataError(f"{what} holds no text classifier ({ABOUT_FILE}); train it with this version of mlexp")
    return TextClassifier.load(found[0].parent)


def champion_source(cfg: DictConfig) -> tuple[Callable[[], tuple[TextClassifier, str]], Callable[[], str]]:
    """(load, probe) of the registry champion through the serving layer's lookup, labelled "<name> v<version>"."""
    from mlexp.serving.http import champion_from_config

    load_registered, probe_version = champion_from_config(cfg, load_model=_load_registered(cfg))

    def load() -> tuple[TextClassifier, str]:
        try:
            model, version = load_registered()
        except DataError as error:
            raise DataError(f"{error}, or serve deploy.source=trial|best|<trial run id>") from None
        return model, champion_label(cfg, version)

    return load, lambda: champion_label(cfg, probe_version())


def champion_label(cfg: DictConfig, version: str) -> str:
    return f"{model_name(cfg)} v{version}"


def _experiment_id(cfg: DictConfig, client: Any) -> str:
    name = cfg.tracking.experiment_name or cfg.task.name
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        raise DataError(f"no experiment {name!r} in the tracking store: run `mlexp task={cfg.task.name}` first")
    return str(experiment.experiment_id)


def _model_component(client: Any, trial: Any, with_classifier: set[str] | None = None) -> str | None:
    """The Training component (the trial's own, or one it reused) that logged its classifier; None when none did.
    `with_classifier`: components already seen to hold one, not listed again (a listing that found none is not
    kept: an artifact folder not mounted yet lists empty)."""
    seen = set() if with_classifier is None else with_classifier
    for component in training_component_ids(client, trial):
        if component in seen or ABOUT_FILE in {
            Path(a.path).name for a in client.list_artifacts(component, MODEL_ARTIFACTS)
        }:
            seen.add(component)
            return component
    return None


def _model_of(client: Any, trial: Any) -> TextClassifier | None:
    """The classifier the trial's Training component logged; None when it has none."""
    from mlexp.serving.pyfunc_model import quiet_mlflow

    component = _model_component(client, trial)
    if component is None:
        return None
    with tempfile.TemporaryDirectory(prefix="mlexp-served-") as folder, quiet_mlflow():
        path = client.download_artifacts(component, MODEL_ARTIFACTS, folder)
        return _load_folder(Path(path), f"trial {trial.info.run_id}")


def _best_trials(cfg: DictConfig, client: Any, experiment_id: str) -> list[Any]:
    metric = cfg.task.objective.metric
    order = "DESC" if objective_direction(cfg) == "maximize" else "ASC"
    return list(
        client.search_runs(
            [experiment_id],
            filter_string=(
                f"tags.`{tags.KIND}` = 'trial' and attributes.status = 'FINISHED' and metrics.`{metric}` >= 0"
            ),
            order_by=[f"metrics.`{metric}` {order}"],
            max_results=50,
        )
    )


def load_served_model(cfg: DictConfig, source: str) -> tuple[TextClassifier, str]:
    """The classifier `source` names (trial | champion | best | <trial run id>) and a label of what it is."""
    if source == "trial":
        folder = Path(cfg.paths.models)
        return TextClassifier.load(folder), f"trial {folder}"
    if source == "champion":
        load, _ = champion_source(cfg)
        return load()
    client = _client(cfg)
    experiment_id = _experiment_id(cfg, client)
    if source == "best":
        for trial in _best_trials(cfg, client, experiment_id):
            model = _model_of(client, trial)
            if model is not None:
                return model, f"trial {trial.info.run_name}"
        raise DataError(f"no finished trial with {cfg.task.objective.metric} and a saved model: train one first")
    trial = run_in_experiment(client, source, experiment_id)
    model = None if trial is None else _model_of(client, trial)
    if trial is None or model is None:
        raise DataError(no_trained_trial(client, source, cfg.task.name, experiment_id))
    return model, f"trial {trial.info.run_name}"


def served_model_probe(cfg: DictConfig, source: str) -> Callable[[], str]:
    """A function returning the label `load_served_model(cfg, source)` would return now: for `best`, a search of
    the store and one or two more per trial it looks at (the artifact store is not asked again about a component
    seen to hold a classifier)."""
    if source == "champion":
        return champion_source(cfg)[1]
    if source == "best":
        client = _client(cfg)
        experiment_id = _experiment_id(cfg, client)

        with_classifier: set[str] = set()

        def best() -> str:
            # the trial load_served_model would serve: the best with a model (naming a better one without any
            # reloaded the same model at every poll)
            trials = _best_trials(cfg, client, experiment_id)
            served = next((t for t in trials if _model_component(client, t, with_classifier) is not None), None)
            return f"trial {served.info.run_name}" if served is not None else ""

        return best
    label = (
        f"trial {Path(cfg.paths.models)}"
        if source == "trial"
        else f"trial {_client(cfg).get_run(source).info.run_name}"
    )
    return lambda: label
