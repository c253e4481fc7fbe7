"""Offline metrics of a recommendation period, named as Personalize names its solution metrics.

For each user with a relevant interaction in the period: the model ranks every item published by
the period's end except those the user already interacted with; precision_at_K, recall_at_K,
normalized_discounted_cumulative_gain_at_K (binary relevance), mean_reciprocal_rank_at_25 and
coverage (share of the catalogue recommended to anyone), and the same for cold users (no interaction
before the period) and cold items (recall of relevant items nobody interacted with before the period).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from mlexp.errors import DataError
from mlexp.tasks.recommendation.catalog import Catalog, UserState, served_states
from mlexp.tasks.recommendation.ranking import top_items

MRR_K = 25
BATCH = 256


class Recommender(Protocol):
    catalog: Catalog

    def scores(self, states: list[UserState]) -> np.ndarray: ...


def _ndcg(hits: np.ndarray, n_relevant: int) -> float:
    discounts = 1 / np.log2(np.arange(2, len(hits) + 2))
    ideal = discounts[: min(n_relevant, len(hits))].sum()
    return float((hits * discounts).sum() / ideal) if ideal else 0.0


def _user_metrics(ranked: np.ndarray, relevant: set[int], ks: list[int], cold_items: set[int]) -> dict[str, float]:
    hits = np.array([i in relevant for i in ranked], dtype=float)
    out: dict[str, float] = {}
    for k in ks:
        found = hits[:k].sum()
        out[f"precision_at_{k}"] = found / k
        out[f"recall_at_{k}"] = found / len(relevant)
        out[f"normalized_discounted_cumulative_gain_at_{k}"] = _ndcg(hits[:k], len(relevant))
    first = np.nonzero(hits[:MRR_K])[0]
    out[f"mean_reciprocal_rank_at_{MRR_K}"] = 1 / (first[0] + 1) if len(first) else 0.0
    cold_relevant = relevant & cold_items
    if cold_relevant:
        out[f"cold_items_recall_at_{MRR_K}"] = len(cold_relevant & set(ranked[:MRR_K].tolist())) / len(cold_relevant)
    return out


def evaluate(
    model: Recommender,
    history: pd.DataFrame,
    seen: pd.DataFrame,
    relevant: pd.DataFrame,
    period_end: int,
    ks: list[int],
    context_fields: list[str],
    rule: str = "every interaction",
) -> dict[str, float]:
    """The period's metrics. `history`: what the model may use (filtered, weighted); `seen`: every earlier event."""
    catalog = model.catalog
    depth = max(max(ks), MRR_K)
    seen_items = seen.groupby("USER_ID")["ITEM_ID"].agg(set).to_dict()
    known_items = {catalog.item_index[i] for i in seen["ITEM_ID"].unique() if i in catalog.item_index}
    cold_items = set(range(len(catalog.item_ids))) - known_items
    wanted: dict[str, set[int]] = {}
    for user, items in relevant.groupby("USER_ID")["ITEM_ID"]:
        fresh = {catalog.item_index[i] for i in set(items) - seen_items.get(user, set()) if i in catalog.item_index}
        if fresh:
            wanted[str(user)] = fresh
    users = sorted(wanted)
    if not users:
        raise DataError(
            f"no user has a relevant interaction with an item new to them in the period (relevance rule: {rule}); "
            "relax dataset.relevant_event_type / relevant_min_value or use a longer period"
        )
    available = catalog.available(period_end)
    rows: list[dict[str, float]] = []
    cold_rows: list[dict[str, float]] = []
    recommended: set[int] = set()
    alike = getattr(model, "ranks_every_user_alike", False)
    # once: grouping the whole history per batch cost minutes at a million interactions; not at all for a model
    # that ranks every user alike
    known = {} if alike else served_states(catalog, history, context_fields)
    for start in range(0, len(users), BATCH):
        batch = users[start : start + BATCH]
        batch_states = [known.get(u, UserState(u)) for u in batch]
        scores = model.scores(batch_states).astype("float64")
        scores[:, ~available] = -np.inf
        for row, user in enumerate(batch):
            for item in seen_items.get(user, ()):
                scores[row, catalog.item_index[item]] = -np.inf
            ranked = top_items(scores[row], depth)
            recommended.update(ranked.tolist())
            metrics = _user_metrics(ranked, wanted[user], ks, cold_items)
            rows.append(metrics)
            if user not in seen_items:
                cold_rows.append(metrics)
    out = _means(rows, "")
    out.update({k: v for k, v in _means(cold_rows, "cold_users_").items() if not k.startswith("cold_users_cold_")})
    out["coverage"] = len(recommended) / max(int(available.sum()), 1)
    out["users_evaluated"] = float(len(rows))
    out["cold_users_evaluated"] = float(len(cold_rows))
    return out


def _means(rows: list[dict[str, float]], prefix: str) -> dict[str, float]:
    names = sorted({name for row in rows for name in row})
    return {f"{prefix}{name}": float(np.mean([row[name] for row in rows if name in row])) for name in names}


def favourite_share(
    model: Recommender,
    history: pd.DataFrame,
    users: list[str],
    period_end: int,
    k: int = 10,
    user_field: str = "FAVOURITE_PLAYER",
    item_field: str = "PLAYERS",
) -> dict[str, float]:
    """A ground-truth check of cold users on the generated platform, where a user's favourite player is the
    strongest term of the known utility: the share of each user's top k that features their favourite (the
    users dataset's `user_field`, within the items' `|`-separated `item_field`), beside chance (the share of
    the items available at `period_end` that feature it). `users`: the cold users; `history` is what the model
    may use (none of theirs, by definition). Empty when the datasets have no such fields or no user is given."""
    catalog = model.catalog
    if item_field not in catalog.items or not users:
        return {}
    favourites = {u: catalog.user_metadata(u).get(user_field) for u in users}
    users = [u for u in users if isinstance(favourites[u], str)]
    if not users:
        return {}
    players = [set(str(v).split("|")) if isinstance(v, str) else set() for v in catalog.items[item_field]]
    available = catalog.available(period_end)
    shares, chances = [], []
    known = served_states(catalog, history, [])
    for start in range(0, len(users), BATCH):
        batch = users[start : start + BATCH]
        scores = model.scores([known.get(u, UserState(u)) for u in batch]).astype("float64")
        scores[:, ~available] = -np.inf
        for row, user in enumerate(batch):
            features = np.array([favourites[user] in p for p in players])
            top = top_items(scores[row], k)
            shares.append(features[top].mean() if top.size else 0.0)
            chances.append(features[available].mean())
    return {
        f"cold_users_favourite_share_at_{k}": float(np.mean(shares)),
        f"cold_users_favourite_chance_at_{k}": float(np.mean(chances)),
        "cold_users_favourite_evaluated": float(len(users)),
    }
