"""The requests the recommendation service prints on start: what a client sends it, in the served data's words."""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from mlexp.tasks.recommendation.live_recommendations import LiveRecommendations

# the event type of a model saved before its histories kept EVENT_TYPE (and of data without one)
DEFAULT_EVENT_TYPE = "watch"


@dataclass(frozen=True)
class ExampleEvent:
    """An event like those the model trained on: its type, and a value of that type seen in the training data."""

    event_type: str
    value: float | None  # None: no EVENT_VALUE to send (the data has none for that type)


def example_event(histories: pd.DataFrame, solution: dict[str, Any]) -> ExampleEvent:
    """The solution's event type (else the latest training event's) with the latest value seen for that type.

    The value comes from the data, not a constant: 0.9 is a fraction watched on the generated platform but a
    rating below anything a MovieLens filter at 4 keeps; the solution's own filters kept every training value, so
    one of them passes. A model saved before its histories kept EVENT_VALUE sends the threshold it filters by."""
    event_type = solution.get("event_type")
    rows = histories
    if "EVENT_TYPE" in rows:
        if event_type is None and len(rows):
            event_type = str(rows["EVENT_TYPE"].iloc[-1])
        rows = rows[rows["EVENT_TYPE"] == event_type]
    values = rows["EVENT_VALUE"].dropna() if "EVENT_VALUE" in rows else pd.Series(dtype="float64")
    value = float(values.iloc[-1]) if len(values) else solution.get("event_value_threshold")
    return ExampleEvent(str(event_type or DEFAULT_EVENT_TYPE), None if value is None else float(value))


def example_requests(live: LiveRecommendations) -> list[str]:
    """The curl examples the service prints, with a user and an item of the model it serves (a MovieLens model
    knows no `user_000001`), and an event of its training data's type and value."""
    user = next(iter(live.users), "user_1")
    item = str(live.model.catalog.item_ids[0])
    example = live.example_event
    event: dict[str, Any] = {"itemId": item, "eventType": example.event_type}
    if example.value is not None:
        event["eventValue"] = example.value
    body = {"userId": user, "sessionId": "s1", "eventList": [event]}
    query = urllib.parse.urlencode({"userId": user, "numResults": 10})
    return [f"POST /events {json.dumps(body)}", f"GET /recommendations?{query}"]
