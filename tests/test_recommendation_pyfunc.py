"""The registered recommender (the MLflow pyfunc that `mlflow models serve` and a SageMaker endpoint run) answers as
the deploy=local service does, also when the saved histories hold items the catalogue no longer lists."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from mlexp.tasks.recommendation import recipes, registered_model
from mlexp.tasks.recommendation.event_store import EventStore
from mlexp.tasks.recommendation.live_recommendations import LiveRecommendations
from recommendation_fixtures import GONE, gone_rows, latest_user, registered, retired, saved_model


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple:
    """A trial's models folder whose histories hold retired items: GONE has only those (and comes first, so it is in
    the input example the registry predicts before registering), the last user's latest row is one.
    Returns (models folder, histories, mixed user)."""
    folder = tmp_path_factory.mktemp("models")
    history = saved_model(folder)
    mixed, other_device, end = latest_user(history)
    latest = pd.DataFrame([retired(mixed, "video_retired_3", end + 1, other_device)])
    history = pd.concat([gone_rows(), history, latest], ignore_index=True)
    history.to_parquet(folder / recipes.HISTORY_FILE, index=False)
    return folder, history, mixed


def assert_answers_as_the_service(model, folder: Path, users: list[str], events: Path) -> LiveRecommendations:
    """Each user's top 10 from the registered model is the service's; returns the service's state."""
    live = LiveRecommendations.from_folder(folder, EventStore(str(events)))
    try:
        answer = model.predict(pd.DataFrame({"userId": users, "numResults": [10] * len(users)}))
        assert answer["userId"].tolist() == users
        for user, items in zip(users, answer["itemList"]):
            served, _ = live.recommend(user, 10)
            assert items.split("|") == [item["itemId"] for item in served], user
    finally:
        live.store.close()
    return live


def test_the_registered_model_answers_as_the_local_service_for_users_with_retired_items(models, tmp_path):
    folder, history, mixed = models
    # saving predicts the input example, GONE first: before, a KeyError on video_retired_1 (a 500 over HTTP)
    model = registered(folder, tmp_path)
    plain = next(u for u in history["USER_ID"].drop_duplicates() if u not in (GONE, mixed))
    live = assert_answers_as_the_service(model, folder, [GONE, mixed, plain, "user_never_seen"], tmp_path / "ev.db")
    # the context is that of the latest listed row, not the retired one's device, as the service reads it
    assert live.users[mixed].context["DEVICE"] != history["DEVICE"].iloc[-1]


def test_a_model_saved_without_histories_registers_and_answers_every_user_as_a_cold_one_as_the_service(
    models, tmp_path
):
    folder, history, _ = models
    bare = tmp_path / "models"
    shutil.copytree(folder, bare, ignore=shutil.ignore_patterns(recipes.HISTORY_FILE))
    # before, registering failed on the missing file (the service served such a model)
    model = registered(bare, tmp_path)
    known = str(history["USER_ID"].iloc[-1])
    live = assert_answers_as_the_service(model, bare, [known, registered_model.COLD_USER], tmp_path / "ev.db")
    assert live.users == {}
