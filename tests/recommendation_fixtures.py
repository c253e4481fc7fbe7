"""The saved recommendation model the service and registered-model tests share: a metadata model fitted on a tiny
generated platform with context fields, and the histories the train stage saves with it, plus rows of items the
model's catalogue no longer lists (retired since training); and a models folder registered and loaded back as the
registry does it.

A plain module, imported by each test file that needs it, not conftest.py: the other areas' tests never fit it."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from omegaconf import OmegaConf

from mlexp.data import pulselive_videos
from mlexp.serving import pyfunc_model
from mlexp.tasks.recommendation import interactions, metadata_hybrid, recipes, registered_model
from mlexp.tasks.recommendation.catalog import Catalog
from mlexp.tasks.recommendation.config import Hybrid

SOLUTION = OmegaConf.create(
    {"event_type": None, "event_value_threshold": None, "history_days": None, "recency_half_life_days": 7}
)
# context fields make the latest listed interaction matter, not only the items
FIELDS = {"users": [], "items": ["CATEGORY"], "interactions": ["DEVICE", "LOCATION"]}
KEEP = ["USER_ID", "ITEM_ID", "TIMESTAMP", "weight", "EVENT_TYPE", "EVENT_VALUE", "DEVICE", "LOCATION"]
# a user whose saved history holds retired items only
GONE = "user_gone"


def retired(user: str, item: str, timestamp: int, device: str) -> dict[str, object]:
    """A history row of an item the model's catalogue no longer lists."""
    return {"USER_ID": user, "ITEM_ID": item, "TIMESTAMP": timestamp, "weight": 0.5, "EVENT_TYPE": "watch",
            "EVENT_VALUE": 0.77, "DEVICE": device, "LOCATION": "br"}  # fmt: skip


def saved_model(folder: Path) -> pd.DataFrame:
    """A metadata model fitted and saved in `folder`; returns the histories the train stage would save with it
    (not written: each test adds its retired rows first)."""
    frames, _ = pulselive_videos.generate(n_users=60, n_videos=40, n_interactions=1500, seed=7)
    rows = interactions.for_training(frames["Interactions"], SOLUTION, int(frames["Interactions"]["TIMESTAMP"].max()))
    catalog = Catalog.build(rows, frames["Users"], frames["Items"])
    model, _ = metadata_hybrid.fit(rows, catalog, FIELDS, Hybrid(epochs=1, batch_size=256), 1)
    recipes.save(model, folder, FIELDS, SOLUTION)
    return rows.sort_values("TIMESTAMP", kind="stable").groupby("USER_ID").tail(50)[KEEP]


def gone_rows() -> pd.DataFrame:
    """GONE's history: two retired items, the earliest rows of all."""
    return pd.DataFrame([retired(GONE, f"video_retired_{n}", n, "tv") for n in (1, 2)])


def latest_user(history: pd.DataFrame) -> tuple[str, str, int]:
    """The user of the histories' latest row, a device other than that of their latest row, and the latest time:
    a retired row with that device after it changes the context only if it is wrongly read."""
    user = str(history["USER_ID"].iloc[-1])
    last_device = history.loc[history["USER_ID"] == user, "DEVICE"].iloc[-1]
    other_device = next(d for d in history["DEVICE"].unique() if d != last_device)
    return user, other_device, int(history["TIMESTAMP"].max())


def registered(folder: Path, staging: Path):
    """The models folder saved as the registry saves it (predicting its input example), loaded back."""
    cfg = OmegaConf.create({"paths": {"models": str(folder)}, "task": {"name": "recommendation"}})
    pyfunc_model.save(registered_model.pyfunc_model(cfg, staging / "staging"), staging / "mlflow_model")
    return mlflow.pyfunc.load_model(str(staging / "mlflow_model"))
