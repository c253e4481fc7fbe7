"""`deploy=local` serving the champion takes the next one the registry names without a restart (README: hot reload)."""

from __future__ import annotations

import json
import time
import urllib.request

import pandas as pd
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from conftest import seed_store
from mlexp.serving.http import start_in_thread
from mlexp.tasks.recommendation import recipes, served_model, service
from mlexp.tasks.recommendation.catalog import Catalog
from mlexp.tasks.recommendation.event_store import EventStore
from mlexp.tasks.recommendation.popularity import Popularity

MODEL = "recommendation"


def _register_popularity(client: MlflowClient, experiment: str, folder, favourite: str) -> None:
    """A popularity model whose most watched item is `favourite`, registered as the next version."""
    items = [f"item_{i:02d}" for i in range(10)]
    pairs = [(f"u{j}", favourite) for j in range(5)] + [("x", item) for item in items]
    frame = pd.DataFrame(pairs, columns=["USER_ID", "ITEM_ID"]).assign(TIMESTAMP=range(len(pairs)), weight=1.0)
    folder.mkdir()
    recipes.save(Popularity.fit(frame, Catalog.build(frame, None, None)), folder, {"interactions": []})
    frame.to_parquet(folder / recipes.HISTORY_FILE, index=False)
    run = client.create_run(experiment)
    client.log_artifacts(run.info.run_id, str(folder), "model")
    client.set_terminated(run.info.run_id)
    client.create_model_version(MODEL, f"runs:/{run.info.run_id}/model", run.info.run_id)


def test_a_new_champion_is_served_without_a_restart(tmp_path, empty_store):
    uri = f"sqlite:///{seed_store(tmp_path, empty_store)}"
    client = MlflowClient(uri, uri)
    experiment = client.create_experiment("recommendation", artifact_location=(tmp_path / "artifacts").as_uri())
    client.create_registered_model(MODEL)
    _register_popularity(client, experiment, tmp_path / "model1", "item_03")
    _register_popularity(client, experiment, tmp_path / "model2", "item_07")
    client.set_registered_model_alias(MODEL, "champion", "1")
    cfg = OmegaConf.create(
        {
            "task": {"name": "recommendation"},
            "tracking": {"uri": uri},
            "paths": {"root": str(tmp_path)},
            "deploy": {
                "source": "champion", "alias": "champion", "model_name": None, "host": "127.0.0.1", "port": 0,
                "require_api_key": False, "keys_db": str(tmp_path / "keys.db"), "reload_interval_s": 0.2,
            },
            "service": {"default_results": 3, "max_results": 50, "events_url": None},
        }
    )  # fmt: skip
    store = EventStore(str(tmp_path / "events.sqlite"))
    slot, probe, _ = served_model.model_slot(cfg, None, store)
    running = start_in_thread(service.create_service(cfg, slot, store, probe))

    def most_recommended() -> str:
        url = f"{running.url}/recommendations?userId=nobody&numResults=1"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.loads(answer.read())["itemList"][0]["itemId"]

    try:
        assert most_recommended() == "item_03"
        client.set_registered_model_alias(MODEL, "champion", "2")
        deadline = time.monotonic() + 60
        while slot.version != "2":
            assert time.monotonic() < deadline, "the service never loaded the new champion"
            time.sleep(0.1)
        assert most_recommended() == "item_07"
    finally:
        running.stop()
