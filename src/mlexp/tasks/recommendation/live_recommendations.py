"""What the deploy=local service answers a user now: the model over each user's history and every event since.

A user's state is their training history (saved with the model) plus every event recorded since,
kept in memory and written through to the event store before the request returns, so the next
recommendation reflects an event at once. Unknown users get cold-start recommendations: the
metadata model from their events alone (or the popularity ranking for the other recipes).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlexp.tasks.recommendation import recipes
from mlexp.tasks.recommendation.catalog import UserState, served_states
from mlexp.tasks.recommendation.event_store import EventStore
from mlexp.tasks.recommendation.ranking import top_items
from mlexp.tasks.recommendation.service_examples import example_event

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
        items = self.model.catalog.item_ids
        cold = known is None or not state.history
        return [{"itemId": str(items[i]), "score": float(scores[i])} for i in top_items(scores, n)], cold
