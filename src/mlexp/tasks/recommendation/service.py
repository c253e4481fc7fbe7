"""deploy=local: PutEvents (`POST /events`) and GetRecommendations (`GET /recommendations`) on the serving layer.

A user's state is their training history (saved with the model) plus every event recorded since,
kept in memory and written through to the event store before the request returns, so the next
recommendation reflects an event at once. Unknown users get cold-start recommendations: the
metadata model from their events alone (or the popularity ranking for the other recipes).
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlexp.errors import DataError
from mlexp.serving import http
from mlexp.serving.http import (
    ModelSlot,
    ServiceError,
    ServiceSettings,
    champion_from_config,
    create_app,
    json_response,
    open_api_keys,
    read_json,
)
from mlexp.serving.pyfunc_model import quiet_mlflow
from mlexp.tasks.recommendation import recipes
from mlexp.tasks.recommendation.catalog import UserState, served_states
from mlexp.tasks.recommendation.event_store import EventStore
from mlexp.tasks.recommendation.service_examples import example_event, example_requests
from mlexp.tracking import tags

# a recorded event's weight: what the CreateSolution filters would have kept counts fully
EVENT_WEIGHT = 1.0


class LiveRecommendations:
    """The model, each user's history and the event store behind the two endpoints."""

    def __init__(
        self,
        model: Any,
        histories: pd.DataFrame,
        store: EventStore,
        context_fields: list[str],
        solution: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.store = store
        self.context_fields = context_fields
        self.solution = solution or {}
        self.example_event = example_event(histories, self.solution)
        self.lock = threading.Lock()
        self.users: dict[str, UserState] = served_states(model.catalog, histories, context_fields)
        for user, item, event_type, value, _, properties in store.all_events():
            self._apply(user, item, event_type, value, properties)

    @classmethod
    def from_folder(cls, folder: Path, store: EventStore) -> LiveRecommendations:
        """The saved model in `folder` (recipe.json, catalog, weights, histories) over the events in `store`."""
        model = recipes.load(folder)
        saved = recipes.serving_inputs(folder)
        return cls(model, saved.histories, store, saved.context_fields, saved.solution)

    def kept(self, event_type: str, value: float | None) -> bool:
        """Whether the solution's CreateSolution filters keep this event (as training kept its interactions)."""
        wanted, threshold = self.solution.get("event_type"), self.solution.get("event_value_threshold")
        if wanted is not None and event_type != wanted:
            return False
        return threshold is None or (value is not None and float(value) >= float(threshold))

    def _apply(self, user: str, item: str, event_type: str, value: float | None, properties: dict[str, Any]) -> None:
        state = self.users.setdefault(user, UserState(user))
        # the context is the user's latest event whatever its type; only kept events join the history
        state.context.update({k: v for k, v in properties.items() if k in self.context_fields})
        index = self.model.catalog.item_index.get(item)
        if index is not None and self.kept(event_type, value):
            state.history.append(index)
            state.weights.append(EVENT_WEIGHT)

    def record(self, user: str, session: str, events: list[dict[str, Any]]) -> None:
        self.store.record(user, session, events)  # durable first: a crash never loses an acknowledged event
        with self.lock:
            for event in events:
                self._apply(
                    user, event["itemId"], event["eventType"], event.get("eventValue"), event.get("properties") or {}
                )

    def recommend(self, user: str, n: int) -> tuple[list[dict[str, Any]], bool]:
        with self.lock:
            known = self.users.get(user)
            state = UserState(user) if known is None else UserState(user, list(known.history), list(known.weights),
                                                                     dict(known.context))  # fmt: skip
        scores = self.model.scores([state])[0].astype("float64")
        scores[list(set(state.history))] = -np.inf
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        ranked = top[np.argsort(-scores[top], kind="stable")]
        items = self.model.catalog.item_ids
        cold = known is None or not state.history
        return [{"itemId": str(items[i]), "score": float(scores[i])} for i in ranked if np.isfinite(scores[i])], cold


def _finite_number(value: Any) -> bool:
    """A JSON number a float column holds: not true/false, not 1e400 (inf) nor an integer beyond a double."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _event_list(body: dict[str, Any]) -> list[dict[str, Any]]:
    for name, whose in (("userId", "user"), ("sessionId", "session")):
        if not body[name]:
            raise ServiceError(422, f"field '{name}' is empty; send the {whose}'s id")
    events = body["eventList"]
    if not events:
        raise ServiceError(422, "field 'eventList' is empty: send at least one event")
    now = time.time()
    out = []
    for position, event in enumerate(events):
        where = f"eventList[{position}]"
        if not isinstance(event, dict):
            raise ServiceError(422, f"field '{where}' must be an object")
        for name in ("itemId", "eventType"):
            if not isinstance(event.get(name), str) or not event[name]:
                raise ServiceError(422, f"field '{where}.{name}' is missing or not a string")
        value = event.get("eventValue")
        if value is not None and not _finite_number(value):
            raise ServiceError(422, f"field '{where}.eventValue' must be a finite number")
        sent = event.get("sentAt", now)
        if not _finite_number(sent):
            raise ServiceError(422, f"field '{where}.sentAt' must be a finite number (seconds since 1970)")
        properties = event.get("properties", {})
        if not isinstance(properties, dict):
            raise ServiceError(422, f"field '{where}.properties' must be an object")
        out.append({**event, "sentAt": sent, "properties": properties})
    return out


def routes(slot: ModelSlot, default_results: int, max_results: int) -> list[Route]:
    async def events(request: Request) -> Response:
        body = await read_json(request, {"userId": str, "sessionId": str, "eventList": list})
        recorded = _event_list(body)
        slot.current.record(body["userId"], body["sessionId"], recorded)
        return json_response({"recorded": len(recorded)})

    async def recommendations(request: Request) -> Response:
        user = request.query_params.get("userId")
        if not user:
            raise ServiceError(422, "query parameter 'userId' is missing")
        raw = request.query_params.get("numResults", str(default_results))
        if not raw.isdecimal() or not 1 <= int(raw) <= max_results:  # isdigit() takes '²', which int() refuses
            raise ServiceError(422, f"query parameter 'numResults' must be an integer from 1 to {max_results}")
        items, cold = slot.current.recommend(user, int(raw))
        return json_response({"itemList": items, "recommendationId": f"RID-{uuid.uuid4()}", "coldStart": cold})

    return [Route("/events", events, methods=["POST"]), Route("/recommendations", recommendations, methods=["GET"])]


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
    """The model of the trial `trial_id` (its Training component's `model` artifacts)."""
    what = f"deploy.source={trial_id}"
    try:
        experiment = tracker.client.get_run(trial_id).info.experiment_id
        components = tracker.client.search_runs(
            [experiment],
            filter_string=f"tags.`{tags.MLFLOW_PARENT_RUN_ID}` = '{trial_id}' and tags.`{tags.STAGE}` = 'train'",
        )
    except MlflowException as error:
        raise DataError(
            f"{what}: no trial has this run id ({error.message.splitlines()[0]}); use deploy.source=best, champion, "
            "trial or the run id of a finished recommendation trial"
        ) from None
    if not components:
        raise DataError(f"{what}: this run has no Training component; give the run id of a trained trial")
    run_id = components[0].info.run_id
    return _download(what, lambda: tracker.client.download_artifacts(run_id, "model", str(into)))


def best_trial(cfg: DictConfig, tracker: Any) -> str:
    """The run id of the experiment's best finished trial by the task's objective."""
    metric, direction = cfg.task.objective.metric, cfg.task.objective.direction
    experiment = tracker.client.get_run(tracker.trial_run_id).info.experiment_id
    found = tracker.client.search_runs(
        [experiment],
        filter_string=f"tags.`{tags.KIND}` = 'trial' and attributes.status = 'FINISHED'",
        order_by=[f"metrics.`{metric}` {'DESC' if direction == 'maximize' else 'ASC'}"],
        max_results=100,
    )
    scored = [run for run in found if metric in run.data.metrics]
    if not scored:
        raise DataError(
            f"deploy.source=best: no finished {cfg.task.name} trial has {metric}; train one first "
            f"(mlexp task={cfg.task.name})"
        )
    return str(scored[0].info.run_id)


def model_slot(cfg: DictConfig, tracker: Any, store: EventStore) -> tuple[ModelSlot, Callable[[], str] | None, str]:
    """The served model in a ModelSlot, the probe that reloads it (champion only) and a description."""
    source = str(cfg.deploy.source)
    if source == "champion":

        def load_model(uri: str) -> LiveRecommendations:
            with tempfile.TemporaryDirectory() as scratch:  # everything is read into memory
                folder = _download(f"deploy.source=champion ({uri})", lambda: _artifacts(uri, scratch))
                return LiveRecommendations.from_folder(folder, store)

        load, probe = champion_from_config(cfg, load_model=load_model)
        name, alias = cfg.deploy.get("model_name") or cfg.task.name, cfg.deploy.get("alias") or "champion"
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
    label = f"trial {trial_id}" + (" (the best by the objective)" if source == "best" else "")
    return ModelSlot(lambda: (live, trial_id)), None, label


def _artifacts(uri: str, into: str) -> str:
    import mlflow.artifacts

    return str(mlflow.artifacts.download_artifacts(uri, dst_path=into))


def events_url(cfg: DictConfig) -> str:
    return cfg.service.events_url or str(Path(cfg.paths.root) / "serving" / "recommendation_events.sqlite")


def create_service(cfg: DictConfig, slot: ModelSlot, store: EventStore, probe: Callable[[], str] | None = None):
    """The Starlette app over the model in `slot`; with a probe, the slot reloads when the probe's label changes."""
    settings = ServiceSettings.from_config(cfg.deploy)
    shutdown: tuple[Callable[[], None], ...] = (store.close,)
    if probe is not None:
        slot.start_polling(probe, settings.reload_interval_s)
        shutdown = (slot.stop_polling, store.close)
    app = create_app(
        "recommendation",
        routes(slot, cfg.service.default_results, cfg.service.max_results),
        settings,
        api_keys=open_api_keys(settings),
        on_shutdown=shutdown,
    )
    app.state.slot = slot
    return app


def build_app(cfg: DictConfig, folder: Path, store: EventStore):
    """The Starlette app of the service over the saved model in `folder`."""
    live = LiveRecommendations.from_folder(folder, store)
    return create_service(cfg, ModelSlot(lambda: (live, str(folder))), store)


def serve(cfg: DictConfig, tracker: Any) -> None:
    store = EventStore(events_url(cfg))
    try:
        slot, probe, description = model_slot(cfg, tracker, store)
    except BaseException:
        store.close()
        raise
    app = create_service(cfg, slot, store, probe)
    http.serve(
        cfg,
        tracker,
        app,
        description=f"{slot.current.model.recipe} recommendations from {description}",
        endpoints=example_requests(slot.current),
    )
