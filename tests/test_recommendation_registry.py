"""deploy=registry across datasets: a model of another dataset is neither compared with the champion nor registered
under its name (its NDCG does not compare, and the service would answer with another catalogue's items)."""

from __future__ import annotations

import json

import pandas as pd
from omegaconf import OmegaConf

from conftest import run_cli, store_client, trials_of
from mlexp.tasks.recommendation import recipes, registered_dataset, service
from mlexp.tasks.recommendation.catalog import Catalog
from mlexp.tasks.recommendation.event_store import EventStore
from mlexp.tasks.recommendation.popularity import Popularity

TASK = "recommendation"
TINY = ("dataset.n_users=300", "dataset.n_videos=300", "dataset.n_interactions=10000")
GENERATED = "pulselive_videos (300 videos)"


def test_a_model_of_another_dataset_does_not_take_the_champions_place(tmp_project_with_store):
    project = tmp_project_with_store
    run_cli(project, f"task={TASK}", *TINY, "model.recipe=popularity", "deploy=registry")
    # MovieLens' popularity scores far higher NDCG@10 (0.30 against 0.02): before, it became the champion
    done = run_cli(project, f"task={TASK}", "dataset=movielens_100k", "model.recipe=popularity", "deploy=registry")
    assert (
        "selection: not registered: this model learnt movielens_100k, champion recommendation v1 learnt "
        f"{GENERATED}, so their scores do not compare (and the service would answer with another catalogue's "
        "items); register it under a name of its own: deploy.model_name=recommendation_movielens_100k\n"
    ) in done.stdout
    client = store_client(project)
    [version] = client.search_model_versions("name = 'recommendation'")
    assert str(client.get_model_version_by_alias(TASK, "champion").version) == str(version.version) == "1"
    assert version.tags[registered_dataset.DATASET_TAG] == GENERATED
    movielens = next(t for t in trials_of(project, TASK) if t.params["dataset.source"] == "movielens")
    assert movielens.status == "FINISHED"
    deployment = client.get_run(movielens.components["Deployment"])
    assert deployment.data.tags["mlexp.promoted"] == "false"
    assert deployment.data.tags[registered_dataset.DATASET_TAG] == "movielens_100k"
    # a version registered before the tag existed: its trial's parameters tell its dataset
    client.delete_model_version_tag(TASK, "1", registered_dataset.DATASET_TAG)
    assert registered_dataset.of_version(client, client.get_model_version(TASK, "1")) == GENERATED


def test_a_folder_is_one_dataset_however_its_path_is_written(tmp_path):
    relative = registered_dataset.catalogue("files", "shop/", 0, str(tmp_path))
    assert relative == registered_dataset.catalogue("files", str(tmp_path / "shop"), 0, str(tmp_path))
    assert relative == "personalize_csv (shop)"
    assert registered_dataset.catalogue("files", "/data/shop", 0, str(tmp_path)) == "personalize_csv (/data/shop)"


def test_the_services_examples_name_a_user_and_an_item_of_the_model_it_serves(tmp_path):
    # a MovieLens model knows no user_000001 nor video_000010, which the examples used to name
    frame = pd.DataFrame({"USER_ID": ["196", "186"], "ITEM_ID": ["242", "302"], "EVENT_TYPE": "watch",
                          "EVENT_VALUE": 4.0, "TIMESTAMP": [1, 2]})  # fmt: skip
    model = Popularity.fit(frame.assign(weight=1.0), Catalog.build(frame, None, None))
    frame.assign(weight=1.0).to_parquet(tmp_path / recipes.HISTORY_FILE, index=False)
    # the value: none unless the solution filters by one, then the threshold (0.9 sent to a model of 1-5 ratings
    # at 4 was dropped by its filter)
    for threshold, event_value in ((None, {}), (4.0, {"eventValue": 4.0})):
        solution = OmegaConf.create({"event_type": "watch", "event_value_threshold": threshold})
        recipes.save(model, tmp_path, {"interactions": []}, solution)
        store = EventStore(str(tmp_path / "events.sqlite"))
        live = service.LiveRecommendations.from_folder(tmp_path, store)
        post, get = service.example_requests(live)
        body = json.loads(post.removeprefix("POST /events "))
        assert body["userId"] == "196" and body["eventList"][0]["itemId"] in {"242", "302"}
        assert body["eventList"][0] == {"itemId": body["eventList"][0]["itemId"], "eventType": "watch", **event_value}
        assert live.kept(body["eventList"][0]["eventType"], body["eventList"][0].get("eventValue"))
        store.close()
    assert get == "GET /recommendations?userId=196&numResults=10"
