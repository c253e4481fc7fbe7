"""The model deploy=local serves (deploy.source): the registry champion, this trial's, the best trial or a given one.

The champion is reloaded when its alias moves; the others are read once, at start.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from mlexp.errors import DataError
from mlexp.serving.http import ModelSlot, champion_from_config
from mlexp.serving.pyfunc_model import quiet_mlflow
from mlexp.serving.registered_name import registered_name
from mlexp.serving.trained_components import NO_SUCH_RUN, training_component_ids
from mlexp.serving.trial_names import no_trained_trial
from mlexp.tasks.recommendation.event_store import EventStore
from mlexp.tasks.recommendation.live_recommendations import LiveRecommendations
from mlexp.tracking import tags
from mlexp.tracking.store import store_failure


def _download(what: str, download: Callable[[], str]) -> Path:
    """A downloaded model folder (the one holding recipe.json); MLflow errors become one DataError line."""
    try:
        with quiet_mlflow():
            local = Path(download())
    except MlflowException as error:
        raise DataError(f"{what}: {error.message.splitlines()[0]}") from None
    found = next(local.rglob("recipe.json"), None)
    if found is None:
        raise DataError(f"{what}: the downloaded model has no recipe.json (not a recommendation model)")
    return found.parent


def _trial_folder(cfg: DictConfig, tracker: Any, trial_id: str, into: Path) -> Path:
    """The model of the trial `trial_id` (the `model` artifacts of its Training component, or of one it reused)."""
    what = f"deploy.source={trial_id}"
    try:
        trial = tracker.client.get_run(trial_id)
        # a deleted trial is not served, as detection's and text's are not (the line says how to restore it)
        if trial.info.lifecycle_stage == "deleted":
            raise DataError(no_trained_trial(tracker.client, trial_id, cfg.task.name))
        components = training_component_ids(tracker.client, trial)
    except MlflowException as error:
        if error.error_code in NO_SUCH_RUN:
            raise DataError(no_trained_trial(tracker.client, trial_id, cfg.task.name)) from None
        raise DataError(f"{what}: {store_failure(error, str(tracker.client.tracking_uri))}") from None
    if not components:
        raise DataError(
            f"{what}: this run has no Training component (its own, or one it reused that is still in the store); "
            "give the run id of a trained trial"
        )
    run_id = components[0]
    return _download(what, lambda: tracker.client.download_artifacts(run_id, "model", str(into)))


def best_trial(cfg: DictConfig, tracker: Any) -> str:
    """The run id of the experiment's best finished trial by the task's objective among those that learnt the
    config's dataset: a model of another catalogue would answer with its item IDs (registered_dataset)."""
    from mlexp.tasks.recommendation import registered_dataset

    metric, direction = cfg.task.objective.metric, cfg.task.objective.direction
    experiment = tracker.client.get_run(tracker.trial_run_id).info.experiment_id
    found = tracker.client.search_runs(
        [experiment],
        filter_string=f"tags.`{tags.KIND}` = 'trial' and attributes.status = 'FINISHED'",
        order_by=[f"metrics.`{metric}` {'DESC' if direction == 'maximize' else 'ASC'}"],
        max_results=1000,
    )
    scored = [run for run in found if metric in run.data.metrics]
    ours, root = registered_dataset.of_trial(cfg), str(cfg.paths.root)
    learnt = {run.info.run_id: registered_dataset.of_run(run, root) for run in scored}
    same = [run for run in scored if learnt[run.info.run_id] == ours]
    if not same:
        best = scored[0].info.run_id if scored else None
        other = "" if best is None else f" (the best scored trial, {best}, learnt {learnt[best]})"
        raise DataError(
            f"deploy.source=best: no finished {cfg.task.name} trial that learnt {ours} has {metric}{other}; train one "
            f"first (mlexp task={cfg.task.name} with this dataset), or give the dataset settings of the trials you "
            "mean (dataset=, its sizes or dataset.path)"
        )
    # as detection's and text's best: a trial without a model (its reused Training component deleted since) is passed
    trained = next((run for run in same if training_component_ids(tracker.client, run)), None)
    if trained is None:
        raise DataError(
            f"deploy.source=best: no finished {cfg.task.name} trial that learnt {ours} has a trained model (a "
            f"Training component of its own, or one it reused that is still in the store); train one first"
        )
    return str(trained.info.run_id)


def model_slot(cfg: DictConfig, tracker: Any, store: EventStore) -> tuple[ModelSlot, Callable[[], str] | None, str]:
    """The served model in a ModelSlot, the probe that reloads it (champion only) and a description."""
    source = str(cfg.deploy.source)
    if source == "champion":

        def load_model(uri: str) -> LiveRecommendations:
            with tempfile.TemporaryDirectory() as scratch:  # everything is read into memory
                folder = _download(f"deploy.source=champion ({uri})", lambda: _artifacts(uri, scratch))
                return LiveRecommendations.from_folder(folder, store)

        load, probe = champion_from_config(cfg, load_model=load_model)
        name, alias = registered_name(cfg)
        return ModelSlot(load), probe, f"registered model {name} @{alias} (reloaded when the alias moves)"
    if source == "trial":
        folder = Path(cfg.paths.models)
        if not (folder / "recipe.json").exists():
            raise DataError(
                f"deploy.source=trial: {folder}/recipe.json is missing; train in the same run "
                f"(mlexp task={cfg.task.name} deploy=local deploy.source=trial)"
            )
        live = LiveRecommendations.from_folder(folder, store)
        return ModelSlot(lambda: (live, str(folder))), None, f"this trial's model ({folder})"
    trial_id = best_trial(cfg, tracker) if source == "best" else source
    with tempfile.TemporaryDirectory() as scratch:
        live = LiveRecommendations.from_folder(_trial_folder(cfg, tracker, trial_id, Path(scratch)), store)
    if source == "best":
        from mlexp.tasks.recommendation import registered_dataset

        label = f"trial {trial_id} (the best by {cfg.task.objective.metric} on {registered_dataset.of_trial(cfg)})"
    else:
        label = f"trial {trial_id}"
    return ModelSlot(lambda: (live, trial_id)), None, label


def _artifacts(uri: str, into: str) -> str:
    import mlflow.artifacts

    return str(mlflow.artifacts.download_artifacts(uri, dst_path=into))
