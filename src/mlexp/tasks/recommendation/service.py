"""deploy=local: PutEvents (`POST /events`) and GetRecommendations (`GET /recommendations`) on the serving layer.

This module answers what a request must hold and how the app is put together; what a user is recommended is
`live_recommendations`, which model is served is `served_model`.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlexp.serving import http
from mlexp.serving.http import (
    ModelSlot,
    ServiceError,
    ServiceSettings,
    create_app,
    json_response,
    open_api_keys,
    read_json,
)
from mlexp.tasks.recommendation.event_store import EventStore
from mlexp.tasks.recommendation.live_recommendations import LiveRecommendations
from mlexp.tasks.recommendation.served_model import model_slot
from mlexp.tasks.recommendation.service_examples import example_requests


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
