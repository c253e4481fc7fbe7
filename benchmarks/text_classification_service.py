"""The text_classification service under load on loopback: POST /classify alone, then with feedback writes mixed in,
against GET /ping through the same serving layer (the baseline: key check + usage count, no model, no store).

The service runs in its own uvicorn process (one worker, as `deploy=local` runs it) with the task's real model
with the task's default settings (conf/model/tfidf_linear.yaml: TF-IDF + SGD linear SVM + sigmoid calibration;
conf/preprocessing/news_snippets.yaml: max_chars) fitted on 20 Newsgroups, the SQLite feedback store (WAL,
synchronous=FULL), and API keys required as in production (every request but /ping sends `x-api-key`, which is
checked and counted against its usage plan). The load comes from this process: `--clients` keep-alive connections.

Two load shapes, both reported:
- paced ("64 users"): the clients together offer `--rate` requests/s on a fixed schedule; latency counts from each
  request's scheduled time, so a stalled server cannot hide queueing (no coordinated omission). The targets are
  judged here: achieved >= 500 req/s, p50 < 10 ms, p99 < 50 ms, 0 errors.
- saturated: each client sends its next request as soon as the last is answered: the maximum throughput. With 64
  requests always in flight latency is 64 / throughput (Little's law), so its p50 says how long the queue is, not
  how fast a request is served.

    python benchmarks/text_classification_service.py                 # 64 clients, 20 s per phase
    python benchmarks/text_classification_service.py --seconds 3     # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

CLASSIFIER = "news-classifier-demo"
NEWSGROUPS = {
    "comp.": "Sci/Tech",
    "sci.": "Sci/Tech",
    "rec.sport.": "Sports",
    "talk.politics.": "World",
    "misc.forsale": "Business",
}
LABELS = ["World", "Sports", "Business", "Sci/Tech"]
# share of requests that are POST /feedback in the mixed phase
FEEDBACK_SHARE = 0.2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def default_model_settings() -> dict:
    """The task's default model settings, read from conf/ as `mlexp task=text_classification` uses them."""
    from omegaconf import OmegaConf

    from mlexp.paths import project_root

    conf = project_root() / "conf"
    model = OmegaConf.to_container(OmegaConf.load(conf / "model" / "tfidf_linear.yaml"), resolve=True)
    preprocessing = OmegaConf.load(conf / "preprocessing" / "news_snippets.yaml")
    assert isinstance(model, dict)
    model.pop("defaults", None)
    return {**model, "max_chars": int(preprocessing.max_chars)}


def prepare(folder: Path, n_rows: int) -> tuple[Path, list[str]]:
    """Fit and save the model; return it with held-out sentences (first 200 characters of test documents)."""
    from mlexp.tasks.text_classification.classifier import TextClassifier
    from mlexp.tasks.text_classification.corpora import clean, read_newsgroups, sample

    train = sample(clean(read_newsgroups("train", NEWSGROUPS), 1000), n_rows, 0)
    settings = default_model_settings()
    started = time.perf_counter()
    model = TextClassifier.fit(list(train.text), list(train.label), settings, LABELS, 0)
    print(
        f"model: learner {settings['learner']}, fitted on {len(train)} documents in "
        f"{time.perf_counter() - started:.1f} s, {model.n_features} features"
    )
    test = sample(clean(read_newsgroups("test", NEWSGROUPS), 200), 2000, 1)
    return model.save(folder / "model"), [t for t in test.text if len(t) > 20]


def run_server(model: Path, store: Path, keys_db: Path, port: int) -> None:
    """The service as deploy=local builds it, in this (child) process."""
    import uvicorn

    from mlexp.serving.http import ApiKeys, ModelSlot, ServiceSettings
    from mlexp.tasks.text_classification.classifier import TextClassifier
    from mlexp.tasks.text_classification.service.app import build_app
    from mlexp.tasks.text_classification.service.classify_api import Classifier
    from mlexp.tasks.text_classification.service.config import ServiceConfig
    from mlexp.tasks.text_classification.service.store import FeedbackStore

    slot = ModelSlot(lambda: (TextClassifier.load(model), "benchmark"))
    service = Classifier(slot, FeedbackStore(store), ServiceConfig(classifier=CLASSIFIER, store=str(store)))
    # production settings: every API call needs a valid key, checked and counted in the key store
    app = build_app(service, ServiceSettings(keys_db=keys_db, require_api_key=True), ApiKeys(keys_db))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _requests(sentences: list[str], key: str, mix: str) -> list[bytes]:
    """Pre-built raw HTTP requests for one phase."""
    rng = random.Random(7)
    built = []
    for sentence in sentences:
        if mix == "ping":
            path, body = "/ping", b""
        elif mix == "mixed" and rng.random() < FEEDBACK_SHARE:
            path, body = "/feedback", json.dumps({"classifier": CLASSIFIER, "sentence": sentence}).encode()
        else:
            path, body = "/classify", json.dumps({"classifier": CLASSIFIER, "sentence": sentence}).encode()
        method = "GET" if mix == "ping" else "POST"
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {key}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        built.append((head + "\r\n").encode() + body)
    return built


async def _client(port, requests, first, step, deadline, interval, latencies, statuses) -> None:
    """One keep-alive connection: paced (interval > 0: request i is due at start + i * interval) or saturated."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    index, start = first, time.perf_counter()
    sent = 0
    while True:
        due = start + sent * interval if interval else time.perf_counter()
        if due >= deadline:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        writer.write(requests[index % len(requests)])
        index += step
        sent += 1
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - due)
        statuses.append(int(status_line.split()[1]) if status_line else 0)
    writer.close()


async def _load(port: int, requests: list[bytes], clients: int, seconds: float, rate: float | None):
    latencies: list[float] = []
    statuses: list[int] = []
    interval = clients / rate if rate else 0.0
    started = time.perf_counter()
    deadline = started + seconds
    tasks = []
    for number in range(clients):
        # paced clients start staggered so the offered load is smooth, not 64 requests at once
        offset = number * interval / clients if interval else 0.0
        tasks.append(
            _client(port, requests, number, clients, deadline, interval, latencies, statuses)
            if not offset
            else _delayed(offset, _client(port, requests, number, clients, deadline, interval, latencies, statuses))
        )
    await asyncio.gather(*tasks)
    return latencies, statuses, time.perf_counter() - started


async def _delayed(seconds: float, coroutine):
    await asyncio.sleep(seconds)
    return await coroutine


def summary(latencies: list[float], statuses: list[int], elapsed: float) -> dict[str, float]:
    ms = np.array(latencies) * 1000
    return {
        "requests": len(ms),
        "errors": sum(s != 200 for s in statuses),
        "req_per_s": len(ms) / elapsed,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=600.0, help="offered load of the paced runs, requests/s")
    parser.add_argument("--train-rows", type=int, default=4000)
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        model, store, keys_db, port = args.serve
        run_server(Path(model), Path(store), Path(keys_db), int(port))
        return
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        model, sentences = prepare(folder, args.train_rows)
        from mlexp.serving.http import ApiKeys

        keys_db, store = folder / "keys.sqlite", folder / "feedback.sqlite"
        key = ApiKeys(keys_db).create("benchmark", limit=10**9)
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(model), str(store), str(keys_db), str(port)]
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/review", timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("the service did not start") from None
                    time.sleep(0.1)
            results = {}
            for mix in ("ping", "classify", "mixed"):
                requests = _requests(sentences, key, mix)
                asyncio.run(_load(port, requests, args.clients, min(1.0, args.seconds), None))  # warm-up
                for shape, rate in (("paced", args.rate), ("saturated", None)):
                    results[(mix, shape)] = summary(
                        *asyncio.run(_load(port, requests, args.clients, args.seconds, rate))
                    )
        finally:
            server.terminate()
            server.wait(30)
        from mlexp.tasks.text_classification.service.store import FeedbackStore

        key_store = ApiKeys(keys_db)
        counted = key_store.usage("benchmark")
        key_store.close()

        with FeedbackStore(store) as opened:
            sources: dict[str, int] = {}
            for item in opened.feedback():
                sources[item.record.source] = sources.get(item.record.source, 0) + 1
    print(
        f"{args.clients} clients, {args.seconds:g} s per run, paced at {args.rate:g} req/s offered; one uvicorn process"
    )
    print(f"{'phase':<46}{'requests':>9}{'errors':>7}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}")
    names = {
        "ping": "GET /ping (baseline: serving layer only)",
        "classify": "POST /classify",
        "mixed": f"/classify + {FEEDBACK_SHARE:.0%} POST /feedback",
    }
    for (mix, shape), r in results.items():
        print(
            f"{names[mix] + ', ' + shape:<46}{r['requests']:>9.0f}{r['errors']:>7.0f}{r['req_per_s']:>8.0f}"
            f"{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}"
        )
    print(f"feedback records written during the runs: {sources} (implicit = /classify scored below 0.5)")
    print(f"API key checks counted against the benchmark key's usage plan: {counted}")
    ping = results[("ping", "saturated")]
    for mix in ("classify", "mixed"):
        saturated = results[(mix, "saturated")]
        print(
            f"ratio {mix}/ping saturated: throughput {saturated['req_per_s'] / ping['req_per_s']:.2f}, "
            f"p50 {saturated['p50_ms'] / ping['p50_ms']:.2f}"
        )
    for mix in ("classify", "mixed"):
        r = results[(mix, "paced")]
        checks = {
            ">= 500 req/s": r["req_per_s"] >= 500,
            "p50 < 10 ms": r["p50_ms"] < 10,
            "p99 < 50 ms": r["p99_ms"] < 50,
            "0 errors": r["errors"] == 0,
        }
        missed = [name for name, ok in checks.items() if not ok]
        print(f"{names[mix]}: {'GOAL MET' if not missed else 'GOAL MISSED: ' + ', '.join(missed)}")


if __name__ == "__main__":
    main()
