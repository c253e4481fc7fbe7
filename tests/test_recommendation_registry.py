"""deploy=registry across datasets: a model of another dataset is neither compared with the champion nor registered
under its name (its NDCG does not compare, and the service would answer with another catalogue's items)."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import run_cli, start_cli, store_client, trials_of
from mlexp.errors import MlexpError
from mlexp.tasks.recommendation import recipes, registered_dataset
from mlexp.tasks.recommendation.catalog import Catalog
from mlexp.tasks.recommendation.event_store import EventStore
from mlexp.tasks.recommendation.live_recommendations import LiveRecommendations
from mlexp.tasks.recommendation.popularity import Popularity
from mlexp.tasks.recommendation.service_examples import example_requests

TASK = "recommendation"
TINY = ("dataset.n_users=300", "dataset.n_videos=300", "dataset.n_interactions=10000")
GENERATED = "pulselive_videos (300 users, 300 videos, 10000 interactions)"


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
    # nor does a tag of the videos alone, written before the users and interactions were part of it
    client.set_model_version_tag(TASK, "1", registered_dataset.DATASET_TAG, "pulselive_videos (300 videos)")
    assert registered_dataset.of_version(client, client.get_model_version(TASK, "1")) == GENERATED
    # and when that trial is gone, such a tag is unknown (compared with any dataset), not a mismatch refusing all
    client.delete_model_version_tag(TASK, "1", registered_dataset.TRIAL_TAG)
    assert registered_dataset.of_version(client, client.get_model_version(TASK, "1")) is None


def store_of(project):
    """The part of a trial's config that places the registration lock: beside the project's SQLite store."""
    return OmegaConf.create({"tracking": {"uri": None}, "paths": {"root": str(project)}})


def test_a_registration_waits_while_another_trial_registers(tmp_project_with_store):
    project = tmp_project_with_store
    # the test holds the lock, as a trial between its dataset check and its version's tag
    with registered_dataset.one_registration_at_a_time(store_of(project)):
        trial = start_cli(project, f"task={TASK}", *TINY, "model.recipe=popularity", "deploy=registry",
                          stderr=subprocess.STDOUT)  # fmt: skip
        printed = []
        for line in trial.stdout:  # read until it says it waits; without the lock it finishes, and stdout ends
            printed.append(line)
            if line.startswith("selection: waiting for another trial's registration to finish"):
                break
        assert printed[-1].startswith("selection: waiting"), "".join(printed)
        assert store_client(project).search_model_versions(f"name = '{TASK}'") == []
    rest, _ = trial.communicate(timeout=300)
    assert trial.returncode == 0, "".join(printed) + rest
    [version] = store_client(project).search_model_versions(f"name = '{TASK}'")
    assert version.tags[registered_dataset.DATASET_TAG] == GENERATED


def test_a_registration_that_waits_too_long_is_one_line(tmp_project_with_store, monkeypatch, capsys):
    monkeypatch.setattr(registered_dataset, "REGISTRATION_WAIT_S", 0)
    held = registered_dataset.one_registration_at_a_time(store_of(tmp_project_with_store))
    # another trial's hold: the same lock file opened again
    waiting = registered_dataset.one_registration_at_a_time(store_of(tmp_project_with_store))
    with held, pytest.raises(MlexpError, match="waited 0 minutes for another trial's registration to finish"), waiting:
        pass
    assert capsys.readouterr().out.startswith("selection: waiting for another trial's registration to finish (")


def dataset_of(root, source="pulselive", path=None, n_users=300, n_videos=300, n_interactions=10000):
    """registered_dataset.of_trial of a trial's config with these dataset settings."""
    dataset = {"source": source, "path": path, "n_users": n_users, "n_videos": n_videos,
               "n_interactions": n_interactions}  # fmt: skip
    return registered_dataset.of_trial(OmegaConf.create({"dataset": dataset, "paths": {"root": str(root)}}))


def test_a_generated_platform_of_other_sizes_is_another_dataset(tmp_path):
    # 600 users (or twice the interactions) over the same 300 videos took the alias from the 300 users' champion
    assert dataset_of(tmp_path, n_users=600) != dataset_of(tmp_path)
    assert dataset_of(tmp_path, n_interactions=20000) != dataset_of(tmp_path)
    assert dataset_of(tmp_path, n_videos=600) != dataset_of(tmp_path)
    assert dataset_of(tmp_path) == GENERATED


def test_a_folder_is_one_dataset_however_its_path_is_written(tmp_path):
    (tmp_path / "shop").mkdir()
    relative = dataset_of(tmp_path, "files", "shop/")
    assert relative == dataset_of(tmp_path, "files", str(tmp_path / "shop"))
    assert relative == "personalize_csv (shop)"
    assert dataset_of(tmp_path, "files", "/data/shop") == "personalize_csv (/data/shop)"
    # a symlink names its own path: a `latest` link moved to each new export stays one dataset
    (tmp_path / "latest").symlink_to(tmp_path / "shop")
    assert dataset_of(tmp_path, "files", "latest") == "personalize_csv (latest)"
    (tmp_path / "latest").unlink()
    (tmp_path / "shop-2").mkdir()
    (tmp_path / "latest").symlink_to(tmp_path / "shop-2")
    assert dataset_of(tmp_path, "files", "latest") == "personalize_csv (latest)"


def served(folder, frame, threshold=None):
    """The service's state over a popularity model of `frame`, saved with `frame` as its users' histories."""
    model = Popularity.fit(frame.assign(weight=1.0), Catalog.build(frame, None, None))
    frame.assign(weight=1.0).to_parquet(folder / recipes.HISTORY_FILE, index=False)
    solution = OmegaConf.create({"event_type": "watch" if threshold else None, "event_value_threshold": threshold})
    recipes.save(model, folder, {"interactions": []}, solution)
    return LiveRecommendations.from_folder(folder, EventStore(str(folder / "events.sqlite")))


def example_event_of(live):
    post, _ = example_requests(live)
    live.store.close()
    return json.loads(post.removeprefix("POST /events "))["eventList"][0]


def test_the_services_examples_name_a_user_and_an_item_of_the_model_it_serves(tmp_path):
    # a MovieLens model knows no user_000001 nor video_000010, which the examples used to name
    frame = pd.DataFrame({"USER_ID": ["196", "186"], "ITEM_ID": ["242", "302"], "EVENT_TYPE": "watch",
                          "EVENT_VALUE": [4.0, 5.0], "TIMESTAMP": [1, 2]})  # fmt: skip
    for threshold in (None, 4.0):
        live = served(tmp_path, frame, threshold)
        post, get = example_requests(live)
        body = json.loads(post.removeprefix("POST /events "))
        assert body["userId"] == "196" and body["eventList"][0]["itemId"] in {"242", "302"}
        # a rating the data holds (5.0, the latest), which the solution's filter keeps
        assert body["eventList"][0] == {
            "itemId": body["eventList"][0]["itemId"],
            "eventType": "watch",
            "eventValue": 5.0,
        }
        assert live.kept(body["eventList"][0]["eventType"], body["eventList"][0].get("eventValue"))
        live.store.close()
    assert get == "GET /recommendations?userId=196&numResults=10"


def test_the_services_example_event_is_of_the_datas_type_and_scale(tmp_path):
    # it sent eventValue 0.9 (or nothing) whatever the data: a fraction watched to a model of 1-5 ratings
    ratings = pd.DataFrame({"USER_ID": ["u1", "u2"], "ITEM_ID": ["a", "b"], "EVENT_TYPE": ["rating", "rating"],
                            "EVENT_VALUE": [3.0, 2.0], "TIMESTAMP": [1, 2]})  # fmt: skip
    assert example_event_of(served(tmp_path, ratings)) == {"itemId": "a", "eventType": "rating", "eventValue": 2.0}
    # data without EVENT_VALUE: none sent
    purchases = ratings.drop(columns="EVENT_VALUE").assign(EVENT_TYPE="purchase")
    assert example_event_of(served(tmp_path, purchases)) == {"itemId": "a", "eventType": "purchase"}
