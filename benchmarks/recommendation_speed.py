"""Recommendation targets: ALS train and one metadata-model epoch on generated interactions, /recommendations
latency under a bounded loopback load, event-to-recommendation delay, and MovieLens-100K NDCG@10 per recipe.

    .venv/bin/python benchmarks/recommendation_speed.py                 # 1,000,000 interactions (the target)
    .venv/bin/python benchmarks/recommendation_speed.py --interactions 50000 --skip-movielens   # a quick look

Ratios are against the popularity count fitted in the same run on the same data.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mlexp.data import movielens, pulselive_videos  # noqa: E402
from mlexp.serving.http import ApiKeys, start_in_thread  # noqa: E402
from mlexp.tasks.recommendation import evaluation, interactions, metadata_hybrid, recipes, service  # noqa: E402
from mlexp.tasks.recommendation.catalog import Catalog  # noqa: E402
from mlexp.tasks.recommendation.config import ALS, Hybrid  # noqa: E402
from mlexp.tasks.recommendation.event_store import EventStore  # noqa: E402
from mlexp.tasks.recommendation.popularity import Popularity  # noqa: E402
from mlexp.tasks.recommendation.user_personalization import UserPersonalization  # noqa: E402

SOLUTION = OmegaConf.create(
    {"event_type": None, "event_value_threshold": None, "history_days": None, "recency_half_life_days": None}
)
SIGNAL = {
    "users": ["FAVOURITE_PLAYER", "AGE_GROUP"],
    "items": ["PLAYERS", "CATEGORY", "SUB_CATEGORY"],
    "interactions": [],
}


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def training_speed(n_interactions: int, threads: int):
    frames, _ = pulselive_videos.generate(
        n_interactions // 20, max(2000, n_interactions // 200), n_interactions, seed=1
    )
    frame = frames["Interactions"]
    catalog = Catalog.build(frame, frames["Users"], frames["Items"])
    rows = interactions.for_training(frame, SOLUTION, int(frame["TIMESTAMP"].max()))
    _, popularity_s = timed(Popularity.fit, rows, catalog)
    _, als_s = timed(UserPersonalization.fit, rows, catalog, ALS(), 1, threads)
    print(f"{len(rows):,} interactions, {len(catalog.item_ids):,} items, {frame['USER_ID'].nunique():,} users")
    print(f"ALS train ({ALS().iterations} iterations, {threads} threads): {als_s:.1f} s  (target < 60 s; "
          f"{als_s / popularity_s:.0f}x the popularity count's {popularity_s:.2f} s)")  # fmt: skip
    marks: dict[str, float] = {}
    build_rows = metadata_hybrid._training_rows

    def timed_rows(*args, **kwargs):
        # the vocabulary is built before the rows: everything up to here is setup, not the epoch
        result = build_rows(*args, **kwargs)
        marks["rows_built"] = time.perf_counter()
        return result

    def on_epoch(epoch, loss, model):
        marks.setdefault("epoch_done", time.perf_counter())
        return None

    metadata_hybrid._training_rows = timed_rows
    try:
        started = time.perf_counter()
        metadata_hybrid.fit(rows, catalog, SIGNAL, Hybrid(epochs=1), 1, on_epoch)
    finally:
        metadata_hybrid._training_rows = build_rows
    setup, epoch = marks["rows_built"] - started, marks["epoch_done"] - marks["rows_built"]
    print(f"metadata model: one epoch {epoch:.1f} s (default batch {Hybrid().batch_size}; target < 60 s; "
          f"{epoch / popularity_s:.0f}x the popularity count), plus {setup:.1f} s once for vocabulary "
          "and rows")  # fmt: skip


def serving_latency(requests: int, clients: int) -> None:
    frames, _ = pulselive_videos.generate(5000, 3000, 200_000, seed=2)
    frame = frames["Interactions"]
    catalog = Catalog.build(frame, frames["Users"], frames["Items"])
    rows = interactions.for_training(frame, SOLUTION, int(frame["TIMESTAMP"].max()))
    model, _ = metadata_hybrid.fit(rows, catalog, SIGNAL, Hybrid(epochs=1), 1)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "model"
        recipes.save(model, folder, SIGNAL)
        rows.groupby("USER_ID").tail(50).to_parquet(folder / recipes.HISTORY_FILE, index=False)
        # as served: every request carries an API key the service checks and counts against its usage plan
        keys_db = Path(scratch) / "keys.sqlite"
        key = ApiKeys(keys_db).create("benchmark", limit=10_000_000, period="day")
        headers = {"x-api-key": key}
        deploy = {"host": "127.0.0.1", "port": 0, "require_api_key": True, "keys_db": str(keys_db)}
        cfg = OmegaConf.create({"deploy": deploy, "service": {"default_results": 25, "max_results": 500}})
        app = service.build_app(cfg, folder, EventStore(str(Path(scratch) / "events.sqlite")))
        running = start_in_thread(app)
        users = list(frame["USER_ID"].unique()[:500])
        latencies: list[float] = []
        lock = threading.Lock()

        def client(worker: int) -> None:
            for n in range(requests // clients):
                url = f"{running.url}/recommendations?userId={users[(worker * 7919 + n) % len(users)]}&numResults=25"
                started = time.perf_counter()
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as answer:
                    answer.read()
                with lock:
                    latencies.append(time.perf_counter() - started)

        workers = [threading.Thread(target=client, args=(w,)) for w in range(clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        latencies.sort()
        p50, p99 = latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000
        print(f"/recommendations with an API key, {len(latencies)} requests, {clients} clients, 3,000 items: "
              f"p50 {p50:.2f} ms "
              f"(target < 5), p99 {p99:.2f} ms (target < 25)")  # fmt: skip
        item = catalog.item_ids[10]
        delays = []
        for n in range(20):
            body = json.dumps(
                {"userId": f"fresh_{n}", "sessionId": "s", "eventList": [{"itemId": item, "eventType": "watch"}]}
            )
            started = time.perf_counter()
            request = urllib.request.Request(f"{running.url}/events", data=body.encode(), method="POST",
                                             headers={"Content-Type": "application/json", **headers})  # fmt: skip
            urllib.request.urlopen(request).read()
            asked = urllib.request.Request(
                f"{running.url}/recommendations?userId=fresh_{n}&numResults=10", headers=headers
            )
            with urllib.request.urlopen(asked) as answer:
                reflected = json.loads(answer.read())["coldStart"] is False
            delays.append((time.perf_counter() - started) * 1000)
            assert reflected
        print(f"event reflected in the next recommendation: median {statistics.median(delays):.1f} ms, "
              f"max {max(delays):.1f} ms (target < 100)")  # fmt: skip
        running.stop()


def movielens_ndcg(threads: int) -> None:
    frames = movielens.personalize_frames()
    frame = interactions.time_split(frames["Interactions"], 0.1, 0.1)
    catalog = Catalog.build(frame, frames["Users"], frames["Items"])
    history = frame[frame["split"] != "test"]
    cut = int(frame.loc[frame["split"] == "test", "TIMESTAMP"].min())
    rows = interactions.for_training(history, SOLUTION, cut)
    relevant = frame[frame["split"] == "test"]
    fields = {"users": ["AGE", "GENDER", "OCCUPATION"], "items": ["GENRES", "RELEASE_YEAR"], "interactions": []}
    cfg = OmegaConf.create({"seed": 1, "compute": {"num_threads": threads},
                            "model": {"recipe": "", "similar_items": 100, "user_personalization": dict(ALS().__dict__),
                                      "metadata_hybrid": dict(Hybrid(epochs=5).__dict__)}})  # fmt: skip
    print("MovieLens-100K, global time split (last 10% of ratings = test), NDCG@10 on the test period:")
    for recipe in ("popularity", "item_similarity", "user_personalization", "metadata_hybrid"):
        cfg.model.recipe = recipe
        (model, _), seconds = timed(recipes.fit, cfg, rows, catalog, fields)
        scores = evaluation.evaluate(model, rows, history, relevant, int(frame["TIMESTAMP"].max()), [10], [])
        print(f"  {recipe:22s} NDCG@10 {scores['normalized_discounted_cumulative_gain_at_10']:.4f}  "
              f"precision@10 {scores['precision_at_10']:.4f}  ({seconds:.1f} s)")  # fmt: skip
    print("  published figures for this exact split: none found (see docs/tasks/recommendation.md)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--skip-movielens", action="store_true")
    args = parser.parse_args()
    training_speed(args.interactions, args.threads)
    serving_latency(args.requests, args.clients)
    if not args.skip_movielens:
        movielens_ndcg(args.threads)


if __name__ == "__main__":
    main()
