"""What the serving layer costs per request: a trivial JSON endpoint through `create_app` (key check + durable usage
counting, deadline, size limit, JSON errors) against the same endpoint in a bare Starlette app.

Each app runs in its own uvicorn process (one worker, as `deploy=local` runs it); the load comes from this process:
`--clients` keep-alive connections on loopback, first in a closed loop (each sends its next request when the last
is answered: the capacity, req/s) and then at an offered `--rate` (open loop: the latency a client sees at that
load, counted from each request's due time). In a closed loop latency is only clients / throughput (Little's law:
64 clients at 1,000 req/s wait 64 ms whatever the server), so p50/p99 targets are read from the open loop.
Prints req/s, p50 and p99 for both apps and the ratios, and the in-process cost of one request through each app.
Target for the text-classification service: >= 500 req/s, p50 < 10 ms, p99 < 50 ms on 2 cores.

    python benchmarks/serving_overhead.py                    # 64 clients, 10 s per app and load
    python benchmarks/serving_overhead.py --seconds 2        # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NAMES = {"bare": "bare Starlette", "layer": "create_app (key check + usage count)"}
BODY = json.dumps({"classifier": "news", "sentence": "The home team scored twice in the second half."}).encode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_app(kind: str, keys_db: Path):
    """The trivial endpoint, bare or through the serving layer."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from mlexp.serving.http import ApiKeys, ServiceSettings, create_app, json_response, read_json

    if kind == "bare":

        async def bare(request: Request) -> Response:
            body = await request.json()
            return JSONResponse({"class": "Sports", "score": 0.93, "sentence": len(body["sentence"])})

        app = Starlette(routes=[Route("/classify", bare, methods=["POST"])])
    else:

        async def layered(request: Request) -> Response:
            body = await read_json(request, {"classifier": str, "sentence": str})
            return json_response({"class": "Sports", "score": 0.93, "sentence": len(body["sentence"])})

        settings = ServiceSettings(keys_db=keys_db)
        app = create_app(
            "benchmark", [Route("/classify", layered, methods=["POST"])], settings, api_keys=ApiKeys(keys_db)
        )
    return app


def run_server(kind: str, port: int, keys_db: Path) -> None:
    """Serve the app in this (child) process as deploy=local does: one uvicorn process."""
    import uvicorn

    uvicorn.run(build_app(kind, keys_db), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def in_process_cost(kind: str, key: str, keys_db: Path, requests: int = 5000) -> float:
    """CPU microseconds per request calling the ASGI app directly (no sockets, no HTTP parsing): the layer's own
    cost; CPU time, not wall time, so other processes on the machine do not count."""
    app = build_app(kind, keys_db)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/classify",
        "raw_path": b"/classify",
        "query_string": b"",
        "root_path": "",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
        "headers": [(b"content-length", str(len(BODY)).encode()), (b"x-api-key", key.encode())],
    }
    statuses: list[int] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def run() -> float:
        for _ in range(200):  # warm-up
            await app(dict(scope), receive, send)
        started = time.process_time()
        for _ in range(requests):
            await app(dict(scope), receive, send)
        return (time.process_time() - started) / requests * 1e6

    cost = asyncio.run(run())
    if set(statuses) != {200}:
        raise RuntimeError(f"the {kind} app answered {sorted(set(statuses))}")
    return cost


@dataclass(frozen=True)
class Load:
    """`clients` keep-alive connections for `seconds`; closed loop (rate None: next request when answered) or an
    offered `rate` in req/s spread over the clients, latency counted from each request's scheduled time."""

    clients: int
    seconds: float
    max_requests: int
    rate: float | None = None


async def _client(port: int, key: str, load: Load, number: int, budget: list[int], latencies: list[float]) -> int:
    """One keep-alive connection; returns its count of non-200 answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nx-api-key: {key}\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    ).encode()
    errors = sent = 0
    begin = time.perf_counter()
    deadline = begin + load.seconds
    while budget[0] > 0:
        if load.rate is None:
            scheduled = time.perf_counter()
        else:  # open loop: request i of client c is due at (i * clients + c) / rate
            scheduled = begin + (sent * load.clients + number) / load.rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        if scheduled >= deadline:
            break
        budget[0] -= 1
        sent += 1
        writer.write(head + BODY)
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - scheduled)
        errors += status_line.split()[1] != b"200"
    writer.close()
    return errors


async def _run(port: int, key: str, load: Load) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    budget = [load.max_requests]
    started = time.perf_counter()
    errors = await asyncio.gather(*(_client(port, key, load, c, budget, latencies) for c in range(load.clients)))
    return latencies, sum(errors), time.perf_counter() - started


def _wait_until_up(port: int, kind: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # the bare app has no /ping: a 404 means it answers
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} server did not start") from None
            time.sleep(0.1)


def measure(kind: str, loads: list[Load], folder: Path) -> list[dict[str, float]]:
    """Start the app's server process, warm it up, then run each load against it."""
    keys_db = folder / f"{kind}-keys.sqlite"
    key = ""
    if kind == "layer":
        from mlexp.serving.http import ApiKeys

        key = ApiKeys(keys_db).create("benchmark", limit=10**9)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port), "--keys-db", str(keys_db)]
    )
    results = []
    try:
        _wait_until_up(port, kind)
        asyncio.run(_run(port, key, Load(loads[0].clients, 1.0, loads[0].max_requests)))  # warm-up
        for load in loads:
            latencies, errors, elapsed = asyncio.run(_run(port, key, load))
            ms = np.array(latencies) * 1000
            results.append(
                {
                    "requests": len(ms),
                    "errors": errors,
                    "req_per_s": len(ms) / elapsed,
                    "p50_ms": float(np.percentile(ms, 50)),
                    "p99_ms": float(np.percentile(ms, 99)),
                }
            )
    finally:
        server.terminate()
        server.wait(30)
    return results


def _print_table(title: str, results: dict[str, dict[str, float]]) -> None:
    print(title)
    print(f"  {'app':<38}{'requests':>10}{'errors':>8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for kind, r in results.items():
        print(
            f"  {NAMES[kind]:<38}{r['requests']:>10.0f}{r['errors']:>8.0f}{r['req_per_s']:>10.0f}"
            f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
        )
    bare, layer = results["bare"], results["layer"]
    print(
        f"  ratio: layer/bare throughput {layer['req_per_s'] / bare['req_per_s']:.2f}, "
        f"p50 {layer['p50_ms'] / bare['p50_ms']:.2f}, p99 {layer['p99_ms'] / bare['p99_ms']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0, help="per app and load")
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="per app and load")
    parser.add_argument("--rate", type=float, default=500.0, help="offered req/s of the latency measurement")
    parser.add_argument("--serve", choices=("bare", "layer"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--keys-db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        run_server(args.serve, args.port, args.keys_db)
        return
    saturate = Load(args.clients, args.seconds, args.max_requests)
    offered = Load(args.clients, args.seconds, args.max_requests, rate=args.rate)
    with tempfile.TemporaryDirectory() as folder:
        measured = {kind: measure(kind, [saturate, offered], Path(folder)) for kind in ("bare", "layer")}
        from mlexp.serving.http import ApiKeys

        key = ApiKeys(Path(folder) / "in-process.sqlite").create("benchmark", limit=10**9)
        costs = {kind: in_process_cost(kind, key, Path(folder) / "in-process.sqlite") for kind in ("bare", "layer")}
    print(f"loopback, one uvicorn process per app, {args.clients} keep-alive clients, {args.seconds:g} s per run")
    _print_table("closed loop (each client sends when answered): capacity", {k: v[0] for k, v in measured.items()})
    _print_table(
        f"open loop at {args.rate:g} req/s offered: latency from each request's due time",
        {k: v[1] for k, v in measured.items()},
    )
    print(
        f"in-process CPU per request: bare {costs['bare']:.0f} us, layer {costs['layer']:.0f} us "
        f"(the layer adds {costs['layer'] - costs['bare']:.0f} us, including the committed SQLite usage count)"
    )
    capacity, latency = measured["layer"]
    met = capacity["req_per_s"] >= 500 and latency["p50_ms"] < 10 and latency["p99_ms"] < 50
    met = met and capacity["errors"] + latency["errors"] == 0
    print(f"goal through the layer: >= 500 req/s; at {args.rate:g} req/s p50 < 10 ms, p99 < 50 ms; 0 errors")
    print("GOAL MET" if met else "GOAL MISSED")


if __name__ == "__main__":
    main()
