"""The users and items a solution knows, their metadata, and the state a recommendation is asked for."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class UserState:
    """What a recommendation is computed from: the user, the items of their history (oldest first), its context."""

    user_id: str
    history: list[int] = field(default_factory=list)  # item indices in the catalog
    weights: list[float] = field(default_factory=list)
    context: dict[str, object] = field(default_factory=dict)  # the latest event's contextual fields


@dataclass
class Catalog:
    """Items (every one that may be recommended) and users, with their metadata frames in index order."""

    item_ids: np.ndarray
    items: pd.DataFrame  # ITEM_ID + metadata, one row per item_ids entry
    users: pd.DataFrame  # USER_ID + metadata of the users the users dataset lists
    item_created: np.ndarray | None = None  # CREATION_TIMESTAMP per item, when the items dataset has one

    def __post_init__(self) -> None:
        self.item_index = {item: i for i, item in enumerate(self.item_ids)}
        self.user_records = {r["USER_ID"]: r for r in self.users.to_dict("records")} if len(self.users) else {}

    @classmethod
    def build(cls, interactions: pd.DataFrame, users: pd.DataFrame | None, items: pd.DataFrame | None) -> Catalog:
        listed = [] if items is None else list(items["ITEM_ID"])
        item_ids = np.array(sorted(set(listed) | set(interactions["ITEM_ID"])), dtype=object)
        frame = pd.DataFrame({"ITEM_ID": item_ids})
        if items is not None:
            frame = frame.merge(items, on="ITEM_ID", how="left")
        created = None
        if "CREATION_TIMESTAMP" in frame:
            first_seen = interactions.groupby("ITEM_ID")["TIMESTAMP"].min()
            filled = frame["CREATION_TIMESTAMP"].astype("float64").fillna(frame["ITEM_ID"].map(first_seen))
            created = filled.fillna(0).to_numpy(dtype="int64")
        user_frame = users if users is not None else pd.DataFrame({"USER_ID": []})
        return cls(item_ids, frame, user_frame.reset_index(drop=True), created)

    def available(self, at: int) -> np.ndarray:
        """Which items exist at time `at` (published by then); every item when there is no creation time."""
        if self.item_created is None:
            return np.ones(len(self.item_ids), dtype=bool)
        return np.asarray(self.item_created <= at)

    def user_metadata(self, user_id: str) -> dict[str, object]:
        """The users dataset's fields of `user_id` (none for a user it does not list)."""
        return self.user_records.get(user_id, {})

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.items.to_parquet(folder / "catalog_items.parquet", index=False)
        self.users.to_parquet(folder / "catalog_users.parquet", index=False)
        created = None if self.item_created is None else self.item_created.tolist()
        (folder / "catalog.json").write_text(json.dumps({"item_created": created}))

    @classmethod
    def load(cls, folder: Path) -> Catalog:
        items = pd.read_parquet(folder / "catalog_items.parquet")
        created = json.loads((folder / "catalog.json").read_text())["item_created"]
        return cls(
            items["ITEM_ID"].to_numpy(dtype=object),
            items,
            pd.read_parquet(folder / "catalog_users.parquet"),
            None if created is None else np.array(created, dtype="int64"),
        )


def served_states(catalog: Catalog, histories: pd.DataFrame, context_fields: list[str]) -> dict[str, UserState]:
    """Each user's state from their past interactions (filtered and weighted, with a `weight` column): the histories
    saved with a model (the service, the registered model) or the history an evaluation scores from, in the order the
    users first appear.

    Items the catalog no longer lists are left out (a user left with none is known, with an empty history); the
    context is the latest kept interaction's fields. One pass over all rows: filtering each user's rows apart took
    1.9 s of the service's start (and of each hot reload) at the demo size, 1,927 users."""
    codes, users = pd.factorize(histories["USER_ID"])  # first-seen order, as groupby(sort=False); a missing id: -1
    kept = histories["ITEM_ID"].isin(catalog.item_index).to_numpy() & (codes >= 0)
    rows = np.flatnonzero(kept)[np.argsort(codes[kept], kind="stable")]  # each user's kept rows together, in order
    counts = np.bincount(codes[kept], minlength=len(users))
    ends = np.cumsum(counts)
    items = [catalog.item_index[i] for i in histories["ITEM_ID"].to_numpy()[rows]]
    weights = histories["weight"].iloc[rows].astype(float).tolist()
    # each user's latest kept row; a user with none points at a neighbour's, which is never read
    last_rows = rows[ends - 1] if len(rows) else rows
    latest = {f: histories[f].iloc[last_rows].tolist() for f in context_fields if f in histories}
    out: dict[str, UserState] = {}
    for n, (user, end, count) in enumerate(zip(users, ends.tolist(), counts.tolist())):
        context = {f: values[n] for f, values in latest.items()} if count else {}
        out[str(user)] = UserState(str(user), items[end - count : end], weights[end - count : end], context)
    return out
