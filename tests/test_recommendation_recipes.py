"""The recipes beside the metadata model: item-to-item similarity and ALS (the default) end to end as trials on
MovieLens-100K, recency in item similarity, ALS's serve-time user step, and cold users against the generator's truth.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import REPO, run_cli, seed_store, store_client, trials_of
from mlexp.data import pulselive_videos
from mlexp.tasks.recommendation import evaluation, interactions, metadata_hybrid
from mlexp.tasks.recommendation.catalog import Catalog, UserState
from mlexp.tasks.recommendation.config import ALS, Hybrid
from mlexp.tasks.recommendation.item_similarity import ItemSimilarity
from mlexp.tasks.recommendation.popularity import Popularity
from mlexp.tasks.recommendation.user_personalization import UserPersonalization
from run_folders import run_folder

TASK = "recommendation"
NDCG = "normalized_discounted_cumulative_gain_at_10"
SOLUTION = OmegaConf.create(
    {"event_type": None, "event_value_threshold": None, "history_days": None, "recency_half_life_days": None}
)


@pytest.fixture(scope="module")
def movielens_trials(tmp_path_factory, empty_store):
    """One trial per interactions-only recipe on MovieLens-100K (the real data; the global time split)."""
    import shutil

    project = tmp_path_factory.mktemp("recipes") / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    seed_store(project, empty_store)  # the store's first set-up is other tests' concern
    done = {
        recipe: run_cli(project, f"task={TASK}", "dataset=movielens_100k", f"model.recipe={recipe}")
        for recipe in ("popularity", "item_similarity", "user_personalization")
    }
    return project, done


def test_item_similarity_and_als_trials_beat_the_popularity_count_on_movielens(movielens_trials):
    project, done = movielens_trials
    trials = {t.params["model.recipe"]: t for t in trials_of(project, experiment=TASK)}
    assert set(trials) == set(done) and all(t.status == "FINISHED" for t in trials.values())
    test = {recipe: trials[recipe].metrics[NDCG] for recipe in done}
    print(test)
    # the held-out test period: each personalised recipe ranks better than the same count for everyone
    assert test["item_similarity"] > test["popularity"] + 0.01, test
    assert test["user_personalization"] > test["popularity"] + 0.005, test
    assert 0.2 < test["popularity"] < 0.4  # MovieLens' last 10% of ratings: a sane baseline, not an empty split
    # each personalised trial's own baseline is the popularity trial's figure: its charts' grey line is that bar
    for recipe in ("item_similarity", "user_personalization"):
        assert trials[recipe].metrics[f"popularity_{NDCG}"] == pytest.approx(test["popularity"])
    assert f"popularity_{NDCG}" not in trials["popularity"].metrics
    for recipe, process in done.items():
        metrics = json.loads((run_folder(process) / "reports" / "metrics.json").read_text())
        assert metrics[NDCG] == pytest.approx(test[recipe])
        saved = json.loads((run_folder(process) / "models" / "recipe.json").read_text())
        assert saved["recipe"] == recipe
    # implicit's OpenBLAS warning is avoided (the BLAS pool is limited before the model is built), not printed
    assert "OpenBLAS" not in done["user_personalization"].stderr + done["user_personalization"].stdout


def test_the_readmes_movielens_metadata_trial_learns_from_demographics_and_genres(tmp_path, empty_store):
    """README's `dataset=movielens_100k features=movielens_metadata model.recipe=metadata_hybrid`, as printed: the
    published 0.3226 rests on it."""
    import shutil

    project = tmp_path / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    seed_store(project, empty_store)  # the store's first set-up is other tests' concern
    done = run_cli(
        project, f"task={TASK}", "dataset=movielens_100k", "features=movielens_metadata", "model.recipe=metadata_hybrid"
    )
    (trial,) = trials_of(project, experiment=TASK)
    assert trial.status == "FINISHED"
    # what Training fed the model, not only what the config asked for: an interactions-only fit logs "-" here
    training = store_client(project).get_run(trial.components["Training"]).data.params
    assert (training["features_users"], training["features_items"]) == ("AGE,GENDER,OCCUPATION", "GENRES,RELEASE_YEAR")
    saved = json.loads((run_folder(done) / "models" / "recipe.json").read_text())
    assert saved["recipe"] == "metadata_hybrid"
    assert saved["features"] == {"users": ["AGE", "GENDER", "OCCUPATION"], "items": ["GENRES", "RELEASE_YEAR"],
                                 "interactions": []}  # fmt: skip
    # README's figure for this command (deterministic at 1 or 2 threads), and above the popularity count's bar
    assert trial.metrics[NDCG] == pytest.approx(0.3226, abs=0.002)
    assert trial.metrics[NDCG] > trial.metrics[f"popularity_{NDCG}"] + 0.02


def _history(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["USER_ID", "ITEM_ID", "TIMESTAMP"])


def test_item_similarity_counts_recent_co_occurrence_more_under_recency_weighting():
    # item a is watched with b by two users long ago and with c by two users lately
    day = interactions.DAY
    frame = _history(
        [("u1", "a", 0), ("u1", "b", 1), ("u2", "a", 2), ("u2", "b", 3),
         ("u3", "a", 100 * day), ("u3", "c", 100 * day + 1), ("u4", "a", 100 * day + 2), ("u4", "c", 100 * day + 3)]
    )  # fmt: skip
    catalog = Catalog.build(frame, None, None)
    a, b, c = (catalog.item_index[i] for i in "abc")
    cut = 101 * day
    plain = ItemSimilarity.fit(interactions.for_training(frame, SOLUTION, cut), catalog, 10).similarity
    assert plain[a, b] == pytest.approx(plain[a, c])  # plain co-occurrence: two users each
    weighted_solution = OmegaConf.merge(SOLUTION, {"recency_half_life_days": 14})
    weighted = ItemSimilarity.fit(interactions.for_training(frame, weighted_solution, cut), catalog, 10).similarity
    assert weighted[a, c] > 2 * weighted[a, b]
    ranked = ItemSimilarity(catalog, weighted, np.zeros(3)).scores([UserState("new", [a], [1.0])])[0]
    assert ranked[c] > ranked[b]


def test_item_similarity_keeps_tied_neighbours_in_catalogue_order_and_builds_the_same_model_twice():
    # item a is watched with each of 20 items by one user apiece: its cosine with every one of them is the same, so
    # which 5 survive the cut is the tie-break alone (NumPy's unstable argsort kept b00 and b14-b17)
    frame = _history([(f"u{i:02d}", item, 2 * i + j) for i in range(20) for j, item in enumerate(("a", f"b{i:02d}"))])
    catalog = Catalog.build(frame, None, None)
    rows = interactions.for_training(frame, SOLUTION, 100)
    first, again = (ItemSimilarity.fit(rows, catalog, 5) for _ in range(2))
    neighbours = first.similarity[catalog.item_index["a"]]
    assert len(set(neighbours.data)) == 1  # a tie across the cut
    assert sorted(catalog.item_ids[neighbours.indices]) == ["b00", "b01", "b02", "b03", "b04"]
    assert np.array_equal(first.similarity.toarray(), again.similarity.toarray())
    assert np.array_equal(first.popularity, again.popularity)


def test_als_places_a_user_from_history_given_at_serving_time():
    frames, _ = pulselive_videos.generate(n_users=300, n_videos=250, n_interactions=8000, seed=3)
    frame = frames["Interactions"]
    catalog = Catalog.build(frame, frames["Users"], frames["Items"])
    rows = interactions.for_training(frame, SOLUTION, int(frame["TIMESTAMP"].max()))
    model = UserPersonalization.fit(rows, catalog, ALS(iterations=10), seed=1, threads=1)
    # the users' histories as the service holds them: ALS's user step from them ranks what they went on to
    # choose above what they never touched, far better than the popularity order does
    per_user = rows.groupby("USER_ID")["ITEM_ID"].agg(list)
    users = [u for u, items in per_user.items() if len(items) >= 20][:40]
    hits, popular_hits = [], []
    for user in users:
        items = [catalog.item_index[i] for i in per_user[user]]
        held_out, shown = items[-5:], items[:-5]
        scores = model.scores([UserState(user, shown, [1.0] * len(shown))])[0]
        scores[shown] = -np.inf
        top = set(np.argsort(-scores)[:25].tolist())
        popular = model.popularity.copy()
        popular[shown] = -np.inf
        hits.append(len(top & set(held_out)))
        popular_hits.append(len(set(np.argsort(-popular)[:25].tolist()) & set(held_out)))
    assert np.mean(hits) > 1.3 * np.mean(popular_hits), (np.mean(hits), np.mean(popular_hits))
    # no history: the popularity order
    empty = model.scores([UserState("nobody")])[0]
    assert np.argmax(empty) == np.argmax(model.popularity)


def test_cold_users_top_ten_features_their_favourite_player_well_above_chance():
    """The generator's truth: a user's favourite player is the strongest term of their utility. Users who never
    interacted before the period are placed by their metadata (FAVOURITE_PLAYER ↔ PLAYERS): their top 10 features
    that player several times more often than chance. The popularity count, blind to metadata, stays at chance."""
    fields = {"users": ["FAVOURITE_PLAYER", "AGE_GROUP"], "items": ["PLAYERS", "CATEGORY", "SUB_CATEGORY"],
              "interactions": []}  # fmt: skip
    for seed in (1, 2):
        frames, _ = pulselive_videos.generate(n_users=800, n_videos=250, n_interactions=7000, seed=seed)
        frame = interactions.time_split(frames["Interactions"], 0.15, 0.1)
        catalog = Catalog.build(frame, frames["Users"], frames["Items"])
        train = frame[frame["split"] == "train"]
        rows = interactions.for_training(train, SOLUTION, int(frame.loc[frame["split"] != "train", "TIMESTAMP"].min()))
        cold = sorted(set(frame["USER_ID"]) - set(train["USER_ID"]))
        end = int(frame["TIMESTAMP"].max())
        hybrid, _ = metadata_hybrid.fit(rows, catalog, fields, Hybrid(epochs=5, batch_size=256), seed)
        placed = evaluation.favourite_share(hybrid, rows, cold, end)
        blind = evaluation.favourite_share(Popularity.fit(rows, catalog), rows, cold, end)
        print(seed, placed, blind)
        assert placed["cold_users_favourite_evaluated"] >= 50
        chance = placed["cold_users_favourite_chance_at_10"]
        assert 0.03 < chance < 0.12  # about one player of the 30 per video's 1-3 featured
        assert placed["cold_users_favourite_share_at_10"] > 2.5 * chance, placed
        assert blind["cold_users_favourite_share_at_10"] < 1.5 * chance, blind
    # datasets without these fields (MovieLens, your own files): no such figure rather than a wrong one
    no_players = Catalog(catalog.item_ids, catalog.items.drop(columns=["PLAYERS"]), catalog.users)
    assert evaluation.favourite_share(Popularity(no_players, np.zeros(len(catalog.item_ids))), rows, cold, end) == {}


def test_your_own_personalize_csvs_train_and_the_registered_model_answers(tmp_path, empty_store):
    """`dataset=personalize_csv dataset.path=<folder>` (the README's own-data path) and the registered MLflow model."""
    import shutil

    import mlflow

    from mlexp.data import movielens

    project = tmp_path / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    seed_store(project, empty_store)  # the store's first set-up is other tests' concern
    movielens.write_personalize(project / "my_datasets", REPO / "conf" / "recommendation_schemas")
    run_cli(project, f"task={TASK}", "dataset=personalize_csv", "dataset.path=my_datasets", "model.recipe=popularity",
            "deploy=registry")  # fmt: skip
    (trial,) = trials_of(project, experiment=TASK)
    assert trial.status == "FINISHED" and 0.2 < trial.metrics[NDCG] < 0.4  # the same data as MovieLens' own loader

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    try:
        model = mlflow.pyfunc.load_model("models:/recommendation@champion")
    finally:  # MLflow keeps the URI in the environment: later tests' commands would get it
        mlflow.set_tracking_uri(None)
    answer = model.predict(pd.DataFrame({"userId": ["1", "no_such_user"], "numResults": [5, 3]}))
    assert answer["userId"].tolist() == ["1", "no_such_user"]
    lists = [items.split("|") for items in answer["itemList"]]  # item IDs joined by "|", as the signature says
    assert [len(items) for items in lists] == [5, 3] and all(len(set(items)) == len(items) for items in lists)
