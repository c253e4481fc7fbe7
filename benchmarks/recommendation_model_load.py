"""Recommendation model load: what `deploy=local` spends reading a saved model before it serves (at start, and again
on each hot reload of a new champion), with each user's saved history turned into their state in one pass, against
the per-user reference (each user's rows filtered against the catalog apart, as the service did before).

The model is the demo's: `mlexp task=recommendation` at its default size (2,000 users, 1,500 videos, 100,000
interactions; 64,165 saved history rows of 1,927 users), trained by the task's own prepare and train stages.
Both sides run `LiveRecommendations.from_folder` on that folder (recipe, catalog, histories, example event, event
replay); the reference swaps in the per-user states. Runs alternate; medians are printed with their ratio, for the
whole load and for the states alone. Both sides must build the same states and give the same recommendations.

    .venv/bin/python benchmarks/recommendation_model_load.py
    .venv/bin/python benchmarks/recommendation_model_load.py --recipe metadata_hybrid   # histories with context
    .venv/bin/python benchmarks/recommendation_model_load.py --repeats 5 --interactions 20000   # a quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from hydra import compose, initialize_config_dir  # noqa: E402

from mlexp.config import make_composable  # noqa: E402
from mlexp.tasks.recommendation import live_recommendations, recipes, stages  # noqa: E402
from mlexp.tasks.recommendation.catalog import Catalog, UserState, served_states  # noqa: E402
from mlexp.tasks.recommendation.event_store import EventStore  # noqa: E402
from mlexp.tasks.recommendation.live_recommendations import LiveRecommendations  # noqa: E402

GOAL_RATIO = 5.0
GOAL_LOAD_S = 0.5


class NoTracker:
    """The stages' tracker calls, recording nothing."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def per_user_states(catalog: Catalog, histories: pd.DataFrame, context_fields: list[str]) -> dict[str, UserState]:
    """The reference: each user's rows filtered against the catalog on their own."""
    users = {}
    index = catalog.item_index
    for user, group in histories.groupby("USER_ID", sort=False):
        known = group[group["ITEM_ID"].isin(index)]
        last = known.iloc[-1] if len(known) else None
        context = {f: last[f] for f in context_fields if last is not None and f in known}
        weights = known["weight"].astype(float).tolist()
        users[str(user)] = UserState(str(user), [index[i] for i in known["ITEM_ID"]], weights, context)
    return users


def demo_model(root: Path, recipe: str | None, n_interactions: int | None) -> Path:
    """The models folder of the demo trial's prepare and train stages, written under `root`."""
    make_composable()
    overrides = ["task=recommendation", f"paths.root={root}"]
    if recipe:
        overrides.append(f"model.recipe={recipe}")
        # the load reads the weights whatever they learned: one epoch of the metadata model is enough
        overrides.append("model.metadata_hybrid.epochs=1")
    if n_interactions:
        overrides.append(f"dataset.n_interactions={n_interactions}")
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    stages.prepare(cfg, NoTracker())
    stages.train(cfg, NoTracker())
    return Path(cfg.paths.models)


def load_with(states: Callable, folder: Path, store: EventStore) -> tuple[LiveRecommendations, float]:
    """The service's model load with `states` building the users' states; returns it and its seconds."""
    shipped = live_recommendations.served_states
    live_recommendations.served_states = states
    try:
        started = time.perf_counter()
        live = LiveRecommendations.from_folder(folder, store)
        return live, time.perf_counter() - started
    finally:
        live_recommendations.served_states = shipped


def same_states(ours: dict[str, UserState], reference: dict[str, UserState]) -> bool:
    """The same users in the same order with the same histories, weights and context (compared as text: NaN)."""
    if list(ours) != list(reference):
        return False
    return all(
        (a.history, a.weights, {k: str(v) for k, v in a.context.items()})
        == (b.history, b.weights, {k: str(v) for k, v in b.context.items()})
        for a, b in zip(ours.values(), reference.values())
    )


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg()) + " (1, 5, 15 min)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    recipes_by_name = ["popularity", "item_similarity", "user_personalization", "metadata_hybrid"]
    parser.add_argument("--recipe", choices=recipes_by_name, help="default: the task's (user_personalization)")
    parser.add_argument("--interactions", type=int, help="default: the demo's 100,000")
    args = parser.parse_args()
    print(f"load average before start: {load_average()} ({os.cpu_count()} CPUs); other work skews the figures")
    with tempfile.TemporaryDirectory(prefix="mlexp-bench-recommendation-load-") as scratch:
        folder = demo_model(Path(scratch), args.recipe, args.interactions)
        histories = pd.read_parquet(folder / recipes.HISTORY_FILE)
        store = EventStore(str(Path(scratch) / "events.sqlite"))
        loads: dict[str, list[float]] = {"reference": [], "one pass": []}
        states: dict[str, list[float]] = {"reference": [], "one pass": []}
        for _ in range(args.repeats):
            reference, seconds = load_with(per_user_states, folder, store)
            loads["reference"].append(seconds)
            live, seconds = load_with(served_states, folder, store)
            loads["one pass"].append(seconds)
            fields = live.context_fields
            for name, build in (("reference", per_user_states), ("one pass", served_states)):
                started = time.perf_counter()
                build(live.model.catalog, histories, fields)
                states[name].append(time.perf_counter() - started)
        store.close()
    users = list(live.users)
    same = same_states(live.users, reference.users) and all(
        live.recommend(user, 25)[0] == reference.recommend(user, 25)[0] for user in users[:: max(1, len(users) // 50)]
    )  # fmt: skip
    print(f"model: {live.model.recipe}, {len(histories):,} saved history rows of {len(users):,} users, "
          f"{len(live.model.catalog.item_ids):,} items, context fields {fields or 'none'}")  # fmt: skip
    print(f"same states and recommendations on both sides: {same}")
    medians = {name: statistics.median(values) for name, values in loads.items()}
    for name, values in loads.items():
        print(f"{name:9s} load: median {medians[name] * 1000:7.1f} ms of {len(values)} "
              f"(min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f}); "
              f"states alone {statistics.median(states[name]) * 1000:.1f} ms")  # fmt: skip
    ratio = medians["reference"] / medians["one pass"]
    states_ratio = statistics.median(states["reference"]) / statistics.median(states["one pass"])
    print(f"load average at the end: {load_average()}")
    met = ratio >= GOAL_RATIO and medians["one pass"] < GOAL_LOAD_S
    print(f"ratio: {ratio:.1f}x the whole load, {states_ratio:.1f}x the states alone "
          f"(goal >= {GOAL_RATIO:g}x and load < {GOAL_LOAD_S:g} s): GOAL {'MET' if met else 'MISSED'}")  # fmt: skip
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
