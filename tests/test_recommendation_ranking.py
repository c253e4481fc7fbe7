"""One ranking of items by score: ties across the cut-off go to the lower catalogue index, so the deploy=local
service, the registered model (`mlflow models serve`, SageMaker) and the evaluation rank tied scores alike."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from mlexp.serving.http import start_in_thread
from mlexp.tasks.recommendation import evaluation, recipes, service
from mlexp.tasks.recommendation.catalog import Catalog
from mlexp.tasks.recommendation.event_store import EventStore
from mlexp.tasks.recommendation.popularity import Popularity
from mlexp.tasks.recommendation.ranking import top_items
from recommendation_fixtures import registered

ITEMS = [f"item_{i:02d}" for i in range(40)]
FAN, CROWD, COLD = "fan", "crowd", "newcomer"


def tied_interactions() -> pd.DataFrame:
    """item_00 three times, every other item once, so all items but the first tie at any cut-off. FAN has item_00
    and item_05, CROWD every other item."""
    pairs = [(FAN, "item_00"), ("a", "item_00"), ("b", "item_00")]
    pairs += [(FAN if item == "item_05" else CROWD, item) for item in ITEMS[1:]]
    frame = pd.DataFrame(pairs, columns=["USER_ID", "ITEM_ID"])
    return frame.assign(TIMESTAMP=range(len(frame)), weight=1.0)


@pytest.fixture(scope="module")
def tied(tmp_path_factory):
    """A popularity model of tied_interactions saved with them as its users' histories, and the deploy=local
    service over it. Yields (models folder, service url)."""
    folder = tmp_path_factory.mktemp("models")
    frame = tied_interactions()
    recipes.save(Popularity.fit(frame, Catalog.build(frame, None, None)), folder, {"interactions": []})
    frame.to_parquet(folder / recipes.HISTORY_FILE, index=False)
    cfg = OmegaConf.create(
        {
            "deploy": {"host": "127.0.0.1", "port": 0, "require_api_key": False, "keys_db": str(folder / "k.db")},
            "service": {"default_results": 10, "max_results": 500},
        }
    )
    running = start_in_thread(service.build_app(cfg, folder, EventStore(str(folder.parent / "events.sqlite"))))
    try:
        yield folder, running.url
    finally:
        running.stop()


def served(url: str, user: str, n: int) -> list[str]:
    with urllib.request.urlopen(f"{url}/recommendations?userId={user}&numResults={n}", timeout=30) as answer:
        return [item["itemId"] for item in json.loads(answer.read())["itemList"]]


def test_the_service_and_the_registered_model_break_ties_at_the_cut_off_alike(tied, tmp_path):
    folder, url = tied
    model = registered(folder, tmp_path)
    expected = {
        (COLD, 5): ITEMS[:5],
        (COLD, 12): ITEMS[:12],
        (FAN, 5): ["item_01", "item_02", "item_03", "item_04", "item_06"],
        (CROWD, 3): ["item_00", "item_05"],  # all the catalogue has left for them
    }
    for (user, n), items in expected.items():
        answer = model.predict(pd.DataFrame({"userId": [user], "numResults": [n]}))
        # before, the service kept whichever tied items argpartition left in front: item_00, item_26, item_28, ...
        assert served(url, user, n) == answer["itemList"][0].split("|") == items, (user, n)


def test_the_evaluation_scores_the_list_the_service_serves(tied):
    folder, url = tied
    history = tied_interactions()
    relevant = pd.DataFrame({"USER_ID": COLD, "ITEM_ID": served(url, COLD, 10)})
    metrics = evaluation.evaluate(recipes.load(folder), history, history, relevant, 10**9, [10], [])
    # before, the evaluation's top 10 held other tied items than the service's
    assert metrics["precision_at_10"] == metrics["normalized_discounted_cumulative_gain_at_10"] == 1.0


def test_ties_go_to_the_lower_index_and_excluded_items_never_come():
    rng = np.random.default_rng(0)
    for _ in range(200):
        scores = rng.poisson(3, 300).astype(float)  # about 20 items share each count: ties at every cut-off
        scores[rng.random(300) < 0.2] = -np.inf
        n = int(rng.integers(1, 400))
        finite = [i for i in range(300) if np.isfinite(scores[i])]
        assert top_items(scores, n).tolist() == sorted(finite, key=lambda i: (-scores[i], i))[:n]


def test_a_catalogue_smaller_than_the_ranking_depth_is_ranked_whole():
    scores = np.array([0.1, -np.inf, 0.7, 0.3])
    assert top_items(scores, 25).tolist() == [2, 3, 0]
    assert top_items(scores, 2).tolist() == [2, 3]
    assert top_items(np.full(3, -np.inf), 5).tolist() == []


def test_counts_rank_as_scores_do():
    counts = np.array([3, 7, 7, 0], dtype=np.uint8)  # negated in place, unsigned counts would wrap
    assert top_items(counts, 3).tolist() == [1, 2, 0]
    assert counts.tolist() == [3, 7, 7, 0]  # the caller's array is left as it was
