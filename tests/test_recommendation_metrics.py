"""Personalize's offline metrics by hand, the settings checks, outcome fields, and the service's event filters."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import REPO
from mlexp.data import personalize_schema
from mlexp.errors import ConfigError, DataError
from mlexp.tasks.recommendation import evaluation, interactions, recipes
from mlexp.tasks.recommendation.catalog import Catalog
from mlexp.tasks.recommendation.event_store import EventStore
from mlexp.tasks.recommendation.live_recommendations import LiveRecommendations
from mlexp.tasks.recommendation.popularity import Popularity

SCHEMAS = REPO / "conf" / "recommendation_schemas"


def test_per_user_metrics_match_a_hand_computation():
    # ranking 3, 1, 4, 0, 2; relevant items 1 (rank 2) and 2 (rank 5, never seen before: a cold item)
    metrics = evaluation._user_metrics(pd.Series([3, 1, 4, 0, 2]).to_numpy(), {1, 2}, [2, 5], {2})
    one_third = 1 / math.log2(3)  # the discount of rank 2
    assert metrics["precision_at_2"] == 0.5 and metrics["recall_at_2"] == 0.5
    # DCG@2 = 1/log2(3); ideal DCG@2 with two relevant items = 1 + 1/log2(3)
    assert metrics["normalized_discounted_cumulative_gain_at_2"] == pytest.approx(one_third / (1 + one_third))
    assert metrics["precision_at_5"] == 0.4 and metrics["recall_at_5"] == 1.0
    # DCG@5 = 1/log2(3) + 1/log2(6)
    assert metrics["normalized_discounted_cumulative_gain_at_5"] == pytest.approx(
        (one_third + 1 / math.log2(6)) / (1 + one_third)
    )
    assert metrics["mean_reciprocal_rank_at_25"] == 0.5 and metrics["cold_items_recall_at_25"] == 1.0
    # one relevant item at rank 1: a perfect NDCG whatever k is
    assert evaluation._ndcg(pd.Series([1.0, 0.0, 0.0]).to_numpy(), 1) == 1.0
    assert evaluation._ndcg(pd.Series([0.0, 0.0]).to_numpy(), 3) == 0.0


def _cfg(**changes):
    cfg = OmegaConf.create(
        {
            "task": {"objective": {"metric": "val_normalized_discounted_cumulative_gain_at_10"}},
            "model": {"ks": [5, 10, 25]},
            "dataset": {"relevant_event_type": "watch", "relevant_min_value": 0.5},
            "solution": {"event_type": None, "event_value_threshold": None},
        }
    )
    for key, value in changes.items():
        OmegaConf.update(cfg, key, value)
    return cfg


FRAME = pd.DataFrame({"USER_ID": ["u"] * 2, "ITEM_ID": ["a", "b"], "EVENT_TYPE": ["click", "watch"],
                      "EVENT_VALUE": [None, 0.9], "TIMESTAMP": [1, 2]})  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model.ks": [5, 25]}, r"model.ks=\[5, 25\] lacks 10, the k of the objective .*model.ks=\[5,10,25\]"),
        ({"dataset.relevant_event_type": "play"}, "relevant_event_type='play' is not an event type.*click, watch"),
    ],
)
def test_bad_ks_or_relevance_settings_are_one_line_config_errors(change, message):
    interactions.check_settings(_cfg(), FRAME)
    with pytest.raises(ConfigError, match=message):
        interactions.check_settings(_cfg(**change), FRAME)


def test_a_min_value_or_threshold_needs_event_values():
    without = FRAME.drop(columns=["EVENT_VALUE"])
    with pytest.raises(ConfigError, match="dataset.relevant_min_value=0.5 needs an EVENT_VALUE field"):
        interactions.check_settings(_cfg(), without)
    cfg = _cfg(**{"dataset.relevant_min_value": None, "solution.event_type": "watch"})
    cfg.solution.event_value_threshold = 0.3
    with pytest.raises(ConfigError, match="solution.event_value_threshold=0.3 needs an EVENT_VALUE field"):
        interactions.check_settings(cfg, without)


def test_no_relevant_interaction_names_the_rule():
    rule = OmegaConf.create({"relevant_event_type": "watch", "relevant_min_value": 0.95})
    with pytest.raises(DataError, match=r"rule EVENT_TYPE = watch and EVENT_VALUE >= 0.95"):
        interactions.relevant(FRAME, rule)
    catalog = Catalog.build(FRAME, None, None)
    model = Popularity.fit(FRAME.assign(weight=1.0), catalog)
    # the only relevant interaction is of an item the user already had: nobody to evaluate
    with pytest.raises(DataError, match="no user has a relevant interaction.*relevance rule: EVENT_TYPE = watch"):
        evaluation.evaluate(model, FRAME.assign(weight=1.0), FRAME, FRAME.iloc[1:], 3, [10], [], "EVENT_TYPE = watch")


def test_outcome_fields_are_not_context():
    schemas = {"Interactions": personalize_schema.load(SCHEMAS / "pulselive_interactions.json", "Interactions")}
    every = OmegaConf.create({"users": [], "items": [], "interactions": None})
    # WATCH_SECONDS is known only once the video was watched: never context, even under "every field"
    assert recipes.chosen_fields(every, schemas)["interactions"] == ["CLICK_SOURCE", "DEVICE", "LOCATION"]
    every.interactions = ["WATCH_SECONDS"]
    with pytest.raises(ConfigError, match="'WATCH_SECONDS' is an outcome of the event"):
        recipes.chosen_fields(every, schemas)


def test_recorded_events_pass_the_solutions_filters(tmp_path):
    frame = pd.DataFrame({"USER_ID": ["u", "v"] * 3, "ITEM_ID": ["a", "b", "c", "d", "e", "f"],
                          "EVENT_TYPE": "watch", "EVENT_VALUE": 0.9, "TIMESTAMP": range(6)})  # fmt: skip
    catalog = Catalog.build(frame, None, None)
    solution = OmegaConf.create({"event_type": "watch", "event_value_threshold": 0.5})
    recipes.save(Popularity.fit(frame.assign(weight=1.0), catalog), tmp_path, {"interactions": []}, solution)
    assert json.loads((tmp_path / "recipe.json").read_text())["solution"] == dict(solution)
    store = EventStore(str(tmp_path / "events.sqlite"))
    events = [
        {"itemId": "a", "eventType": "click", "sentAt": 1.0},  # another type: CreateSolution dropped these
        {"itemId": "b", "eventType": "watch", "eventValue": 0.2, "sentAt": 2.0},  # below the threshold
        {"itemId": "c", "eventType": "watch", "sentAt": 3.0},  # no value: below any threshold
        {"itemId": "d", "eventType": "watch", "eventValue": 0.8, "sentAt": 4.0},
    ]
    live = LiveRecommendations.from_folder(tmp_path, store)
    live.record("new", "s", events)
    assert [catalog.item_ids[i] for i in live.users["new"].history] == ["d"]
    # the same when the events are replayed from the store at start-up
    again = LiveRecommendations.from_folder(tmp_path, store)
    assert [catalog.item_ids[i] for i in again.users["new"].history] == ["d"]
    store.close()
