"""The registered recommender (the MLflow pyfunc that `mlflow models serve` and a SageMaker endpoint run) answers as
the deploy=local service does, also when the saved histories hold items the catalogue no longer lists."""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd
import pytest
from omegaconf import OmegaConf

from mlexp.data import pulselive_videos
from mlexp.serving import pyfunc_model
from mlexp.tasks.recommendation import interactions, metadata_hybrid, recipes, registered_model, service
from mlexp.tasks.recommendation.catalog import Catalog
from mlexp.tasks.recommendation.config import Hybrid
from mlexp.tasks.recommendation.event_store import EventStore

SOLUTION = OmegaConf.create(
    {"event_type": None, "event_value_threshold": None, "history_days": None, "recency_half_life_days": 7}
)
# context fields make the latest listed interaction matter, not only the items
FIELDS = {"users": [], "items": ["CATEGORY"], "interactions": ["DEVICE", "LOCATION"]}
KEEP = ["USER_ID", "ITEM_ID", "TIMESTAMP", "weight", "EVENT_TYPE", "EVENT_VALUE", "DEVICE", "LOCATION"]


def retired(user: str, item: str, timestamp: int, device: str) -> dict[str, object]:
    """A history row of an item the model's catalogue no longer lists."""
    return {"USER_ID": user, "ITEM_ID": item, "TIMESTAMP": timestamp, "weight": 0.5, "EVENT_TYPE": "watch",
            "EVENT_VALUE": 0.77, "DEVICE": device, "LOCATION": "br"}  # fmt: skip


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple:
    """A trial's models folder whose histories hold retired items: "user_gone" has only those (and comes first, so
    it is in the input example the registry predicts before registering), the last user's latest row is one.
    Returns (models folder, histories, mixed user)."""
    folder = tmp_path_factory.mktemp("models")
    frames, _ = pulselive_videos.generate(n_users=60, n_videos=40, n_interactions=1500, seed=7)
    rows = interactions.for_training(frames["Interactions"], SOLUTION, int(frames["Interactions"]["TIMESTAMP"].max()))
    catalog = Catalog.build(rows, frames["Users"], frames["Items"])
    model, _ = metadata_hybrid.fit(rows, catalog, FIELDS, Hybrid(epochs=1, batch_size=256), 1)
    recipes.save(model, folder, FIELDS, SOLUTION)
    history = rows.sort_values("TIMESTAMP", kind="stable").groupby("USER_ID").tail(50)[KEEP]
    mixed = str(history["USER_ID"].iloc[-1])
    last_device = history.loc[history["USER_ID"] == mixed, "DEVICE"].iloc[-1]
    other_device = next(d for d in history["DEVICE"].unique() if d != last_device)
    end = int(history["TIMESTAMP"].max())
    gone = pd.DataFrame([retired("user_gone", f"video_retired_{n}", n, "tv") for n in (1, 2)])
    history = pd.concat([gone, history, pd.DataFrame([retired(mixed, "video_retired_3", end + 1, other_device)])],
                        ignore_index=True)  # fmt: skip
    history.to_parquet(folder / recipes.HISTORY_FILE, index=False)
    return folder, history, mixed


def test_the_registered_model_answers_as_the_local_service_for_users_with_retired_items(models, tmp_path):
    folder, history, mixed = models
    cfg = OmegaConf.create({"paths": {"models": str(folder)}, "task": {"name": "recommendation"}})
    # saving predicts the input example, user_gone first: before, a KeyError on video_retired_1 (a 500 over HTTP)
    pyfunc_model.save(registered_model.pyfunc_model(cfg, tmp_path / "staging"), tmp_path / "mlflow_model")
    registered = mlflow.pyfunc.load_model(str(tmp_path / "mlflow_model"))
    live = service.LiveRecommendations.from_folder(folder, EventStore(str(tmp_path / "events.sqlite")))
    try:
        plain = next(u for u in history["USER_ID"].drop_duplicates() if u not in ("user_gone", mixed))
        users = ["user_gone", mixed, plain, "user_never_seen"]
        n = 10
        answer = registered.predict(pd.DataFrame({"userId": users, "numResults": [n] * len(users)}))
        assert answer["userId"].tolist() == users
        for user, items in zip(users, answer["itemList"]):
            served, _ = live.recommend(user, n)
            assert items.split("|") == [item["itemId"] for item in served], user
    finally:
        live.store.close()
    # the context is that of the latest listed row, not the retired one's device, as the service reads it
    assert live.users[mixed].context["DEVICE"] != history["DEVICE"].iloc[-1]
