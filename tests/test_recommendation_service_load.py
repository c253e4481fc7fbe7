"""The recommendation service's model load: every user's state built from the saved histories in one pass gives the
answers a straightforward per-user reading gives (items the catalog no longer lists left out)."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from mlexp.serving.http import start_in_thread
from mlexp.tasks.recommendation import recipes, service
from mlexp.tasks.recommendation.catalog import Catalog, UserState
from mlexp.tasks.recommendation.event_store import EventStore
from mlexp.tasks.recommendation.service_examples import example_requests
from recommendation_fixtures import FIELDS, GONE, gone_rows, latest_user, retired, saved_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A metadata model saved with histories as the train stage writes them, plus rows of retired items: a user whose
    only rows are retired (first in the file) and a user whose latest row is retired. Returns (folder, histories)."""
    folder = tmp_path_factory.mktemp("model")
    history = saved_model(folder)
    mixed, other_device, end = latest_user(history)
    middle = len(history) // 2
    history = pd.concat(
        [gone_rows(), history.iloc[:middle], pd.DataFrame([retired(mixed, "video_retired_1", end, other_device)]),
         history.iloc[middle:], pd.DataFrame([retired(mixed, "video_retired_3", end + 1, other_device)])],
        ignore_index=True,
    )  # fmt: skip
    history.to_parquet(folder / recipes.HISTORY_FILE, index=False)
    return folder, history


def expected_state(catalog: Catalog, history: pd.DataFrame, user: str) -> UserState:
    """The user's state read the straightforward way: their rows, those of listed items, the latest one's context."""
    listed = list(catalog.item_ids)
    rows = history[history["USER_ID"] == user]
    rows = rows[np.array([item in listed for item in rows["ITEM_ID"]], dtype=bool)]
    context = {f: rows[f].iloc[-1] for f in FIELDS["interactions"]} if len(rows) else {}
    return UserState(user, [listed.index(i) for i in rows["ITEM_ID"]], [float(w) for w in rows["weight"]], context)


def expected_answer(model, history: pd.DataFrame, user: str) -> dict[str, object]:
    """Every item the user has not had, best first, with its score; cold when no listed item is in their history."""
    state = expected_state(model.catalog, history, user)
    scores = model.scores([state])[0].astype("float64")
    # the whole catalogue, so that no cut-off falls between equal scores
    ranked = sorted((i for i in range(len(scores)) if i not in state.history), key=lambda i: -scores[i])
    items = [{"itemId": str(model.catalog.item_ids[i]), "score": float(scores[i])} for i in ranked]
    return {"itemList": items, "coldStart": not state.history}


def get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.loads(answer.read())


def test_the_service_answers_as_a_per_user_reading_of_the_saved_histories(saved, tmp_path):
    folder, history = saved
    cfg = OmegaConf.create(
        {
            "deploy": {"host": "127.0.0.1", "port": 0, "require_api_key": False, "keys_db": str(tmp_path / "k.db")},
            "service": {"default_results": 10, "max_results": 500},
        }
    )
    app = service.build_app(cfg, folder, EventStore(str(tmp_path / "events.sqlite")))
    live = app.state.slot.current
    model = live.model
    mixed = str(history["USER_ID"].iloc[-1])
    plain = next(u for u in history["USER_ID"].drop_duplicates() if u not in (GONE, mixed))
    # the users a saved history lists, in its order, those with only retired items included
    assert list(live.users) == [str(u) for u in history["USER_ID"].drop_duplicates()]
    for user in (GONE, mixed, plain):
        assert live.users[user] == expected_state(model.catalog, history, user), user
    # the retired row is the latest: the context is that of the latest row the catalog still lists
    assert live.users[mixed].context["DEVICE"] != history["DEVICE"].iloc[-1]
    running = start_in_thread(app)
    try:
        n = len(model.catalog.item_ids)
        for user in (GONE, mixed, plain, "user_never_seen"):
            answer = get(f"{running.url}/recommendations?userId={user}&numResults={n}")
            assert {k: answer[k] for k in ("itemList", "coldStart")} == expected_answer(model, history, user), user
    finally:
        running.stop()
    # the example the service prints: the first user of the histories, the first item, the latest event's type with
    # the latest value seen for that type
    post, _ = example_requests(live)
    event_type = history["EVENT_TYPE"].iloc[-1]
    value = history.loc[history["EVENT_TYPE"] == event_type, "EVENT_VALUE"].dropna().iloc[-1]
    event = {"itemId": str(model.catalog.item_ids[0]), "eventType": event_type, "eventValue": value}
    assert json.loads(post.removeprefix("POST /events ")) == {
        "userId": GONE, "sessionId": "s1", "eventList": [event]
    }  # fmt: skip
