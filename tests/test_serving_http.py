"""The deploy=local serving layer on a real uvicorn server on loopback: JSON errors, limits, API keys, usage plans."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlexp.serving.http import (
    ApiKeys,
    ServiceError,
    ServiceSettings,
    check_image_pixels,
    create_app,
    json_response,
    keys_command,
    read_json,
    start_in_thread,
)
from mlexp.serving.http.usage_period import seconds_to_end, utc_now

SETTINGS = ServiceSettings(max_request_bytes=1000, request_timeout_s=0.5, max_pixels=1_000_000)


async def classify(request: Request) -> Response:
    body = await read_json(request, {"sentence": str, "weight": float})
    if body["sentence"] == "unknown classifier":
        raise ServiceError(404, "no classifier 'x'")
    scores = np.array([0.25, np.nan, np.inf], dtype=np.float32)
    return json_response({"key": request.state.api_key.name, "scores": scores, "top": np.float32(-np.inf)})


async def fail(request: Request) -> Response:
    raise RuntimeError("a bug in a handler")


# the slow handlers run until the test releases them (at most 30 s): whether the 504 came before they finished is
# observed, not timed
RELEASE_SLOW = threading.Event()
SLOW_FINISHED = threading.Event()


async def slow(request: Request) -> Response:
    deadline = time.monotonic() + 30
    while not RELEASE_SLOW.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    SLOW_FINISHED.set()
    return json_response({"late": True})


def slow_sync(request: Request) -> Response:
    RELEASE_SLOW.wait(30)  # a sync handler runs in a thread that cannot be interrupted
    SLOW_FINISHED.set()
    return json_response({"late": True})


async def image(request: Request) -> Response:
    size = await read_json(request, {"width": int, "height": int})
    check_image_pixels(size["width"], size["height"], SETTINGS)
    return json_response({"pixels": size["width"] * size["height"]})


async def echo(request: Request) -> Response:
    return json_response(await read_json(request, {"text": str}))


async def public_page(request: Request) -> Response:
    return json_response({"page": request.url.path})


ROUTES = [
    Route("/classify", classify, methods=["POST"]),
    Route("/fail", fail),
    Route("/slow", slow),
    Route("/slow_sync", slow_sync),
    Route("/image", image, methods=["POST"]),
    Route("/echo", echo, methods=["POST"]),
    Route("/review/{page}", public_page),
]


@pytest.fixture(scope="module")
def keys_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serving") / "keys.sqlite"


@pytest.fixture(scope="module")
def service(keys_db: Path):
    keys = ApiKeys(keys_db)
    app = create_app("demo", ROUTES, SETTINGS, api_keys=keys, public_paths=("/ping", "/review/"))
    running = start_in_thread(app)
    yield running
    running.stop()
    keys.close()


@pytest.fixture(scope="module")
def key(keys_db: Path) -> str:
    return ApiKeys(keys_db).create("alice", limit=10_000)


def call(
    url: str, method: str = "GET", body: Any = None, key: str | None = None, content_type: str | None = None
) -> tuple[int, dict, Any]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    headers = {"x-api-key": key} if key else {}
    if content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def raw_request(port: int, head: str, body: bytes = b"") -> tuple[int, dict]:
    """Send bytes as written (no Content-Length added), return status and JSON body."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


def test_ping_is_public_and_names_the_service(service):
    assert call(service.url + "/ping")[::2] == (200, {"status": "healthy", "service": "demo"})
    assert call(service.url + "/review/queue")[::2] == (200, {"page": "/review/queue"})


def test_responses_are_standard_json_without_nan_or_infinity(service, key):
    status, headers, body = call(service.url + "/classify", "POST", {"sentence": "hi", "weight": 1}, key)
    assert status == 200 and headers["content-type"] == "application/json"
    assert body == {"key": "alice", "scores": [0.25, None, None], "top": None}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "the body is not valid JSON"),
        (b"[1, 2]", "the body must be a JSON object, got array"),
        (b'{"weight": 1}', "field 'sentence' is missing"),
        (b'{"sentence": 3, "weight": 1}', "field 'sentence' must be a string, got number"),
        (b'{"sentence": "a", "weight": true}', "field 'weight' must be a number, got true/false"),
        (b'{"sentence": "a", "weight": NaN}', "NaN is not a JSON value"),
    ],
)
def test_bad_bodies_get_422_naming_the_problem(service, key, body, error):
    status, _, answer = call(service.url + "/classify", "POST", body, key)
    assert status == 422 and error in answer["error"]


ACCENTED = {"text": "Zoë déçue"}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps(ACCENTED, ensure_ascii=False).encode("utf-16"), "application/json; charset=utf-16"),
        (json.dumps(ACCENTED, ensure_ascii=False).encode("latin-1"), 'application/json; Charset="ISO-8859-1"'),
        (json.dumps(ACCENTED, ensure_ascii=False).encode("utf-8-sig"), "application/json"),  # BOM dropped
        (json.dumps(ACCENTED, ensure_ascii=False).encode(), 'application/json; charset=""'),  # names none: UTF-8
    ],
    ids=["utf-16", "latin-1", "utf-8 with BOM", "empty charset"],
)
def test_a_body_is_read_in_the_charset_its_content_type_names(service, key, body, content_type):
    assert call(service.url + "/echo", "POST", body, key, content_type)[::2] == (200, ACCENTED)


FIX = "send JSON encoded as UTF-8, or name the body's charset in its content type (application/json; charset=latin-1)"


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (b'{"text": "x"}', "application/json; charset=klingon",
         "charset 'klingon' of content type 'application/json; charset=klingon' is not a known text encoding; " + FIX),
        (json.dumps(ACCENTED, ensure_ascii=False).encode("latin-1"), "application/json; charset=UTF-8",
         "the body is not UTF-8 text as its content type says ('utf-8' codec can't decode byte 0xeb in position 12: "
         "invalid continuation byte); " + FIX),
        (b'{"text": "+2AA-"}', "application/json; charset=utf-7",  # UTF-7's spelling of a lone surrogate
         "the body is not utf-7 text as its content type says (it decodes to a lone UTF-16 surrogate, which no store "
         "takes); " + FIX),
    ],
    ids=["unknown charset", "not text in its charset", "lone surrogate"],
)  # fmt: skip
def test_an_unknown_charset_or_a_body_not_in_it_gets_422_naming_the_charset(service, key, body, content_type, error):
    assert call(service.url + "/echo", "POST", body, key, content_type)[::2] == (422, {"error": error})


def test_unknown_paths_methods_and_handler_errors_are_json(service, key):
    assert call(service.url + "/nowhere", key=key)[::2] == (404, {"error": "no such path: /nowhere"})
    status, headers, answer = call(service.url + "/classify", key=key)
    assert (status, headers["allow"]) == (405, "POST") and "use POST" in answer["error"]
    assert call(service.url + "/classify", "POST", {"sentence": "unknown classifier", "weight": 0}, key)[::2] == (
        404,
        {"error": "no classifier 'x'"},
    )


def test_unexpected_exception_is_a_json_500_with_the_traceback_logged(service, key, caplog):
    with caplog.at_level("ERROR", logger="mlexp.serving"):
        assert call(service.url + "/fail", key=key)[::2] == (500, {"error": "internal error: RuntimeError"})
    assert any("a bug in a handler" in record.exc_text for record in caplog.records if record.exc_text)
    assert call(service.url + "/ping")[0] == 200  # the server lives on


@pytest.mark.parametrize("path", ["/slow", "/slow_sync"])
def test_slow_request_gets_504_after_the_deadline(service, key, path):
    RELEASE_SLOW.clear()
    SLOW_FINISHED.clear()
    try:
        started = time.perf_counter()
        status, _, answer = call(service.url + path, key=key)
        waited = time.perf_counter() - started
        # the 504 reached the client while the handler still ran: it did not wait for the handler
        assert not SLOW_FINISHED.is_set()
    finally:
        RELEASE_SLOW.set()
    assert status == 504 and "longer than 0.5 s" in answer["error"]
    assert waited >= 0.5  # not before the deadline


def test_body_limits_413_by_length_and_while_reading_chunks_411_without_length(service, key):
    status, _, answer = call(service.url + "/classify", "POST", b"x" * 1001, key)
    assert status == 413 and "limit of 1000 bytes" in answer["error"]
    head = f"POST /classify HTTP/1.1\r\nHost: t\r\nx-api-key: {key}\r\nConnection: close\r\n"
    chunk = b'{"sentence": "' + b"a" * 600 + b'", '
    chunked = b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2 + b"0\r\n\r\n"
    status, answer = raw_request(service.port, head + "Transfer-Encoding: chunked\r\n", chunked)
    assert status == 413 and "bytes read so far" in answer["error"]
    small = b'{"sentence": "a", "weight": 2.5}'
    status, answer = raw_request(
        service.port, head + "Transfer-Encoding: chunked\r\n", b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small)
    )
    assert status == 200 and answer["key"] == "alice"
    assert raw_request(service.port, head) == (411, {"error": "send a Content-Length header (or a chunked body)"})


def test_decoded_image_over_max_pixels_gets_413(service, key):
    assert call(service.url + "/image", "POST", {"width": 1000, "height": 1000}, key)[::2] == (
        200,
        {"pixels": 1_000_000},
    )
    status, _, answer = call(service.url + "/image", "POST", {"width": 1001, "height": 1000}, key)
    assert status == 413 and "deploy.max_pixels" in answer["error"]


def test_missing_unknown_and_revoked_keys_get_401(service, keys_db):
    assert call(service.url + "/classify", "POST", {"sentence": "a", "weight": 1})[0] == 401
    assert call(service.url + "/classify", "POST", {"sentence": "a", "weight": 1}, "not-a-key")[::2] == (
        401,
        {"error": "unknown API key"},
    )
    token = ApiKeys(keys_db).create("bob")
    assert call(service.url + "/classify", "POST", {"sentence": "a", "weight": 1}, token)[0] == 200
    ApiKeys(keys_db).revoke("bob")
    assert call(service.url + "/classify", "POST", {"sentence": "a", "weight": 1}, token)[::2] == (
        401,
        {"error": "this API key was revoked"},
    )


def test_concurrent_requests_over_a_plan_let_exactly_the_limit_through(keys_db):
    """40 requests at once through two services sharing one key store, plan of 7 → exactly 7 answered."""
    keys_a, keys_b = ApiKeys(keys_db), ApiKeys(keys_db)
    token = keys_a.create("carol", limit=7, period="month")
    services = [start_in_thread(create_app("demo", ROUTES, SETTINGS, api_keys=k)) for k in (keys_a, keys_b)]
    try:
        urls = [f"{services[i % 2].url}/classify" for i in range(40)]
        with ThreadPoolExecutor(40) as pool:
            answers = list(pool.map(lambda u: call(u, "POST", {"sentence": "a", "weight": 1}, token), urls))
    finally:
        for running in services:
            running.stop()
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [200] * 7 + [429] * 33
    retry_after = {int(headers["retry-after"]) for status, headers, _ in answers if status == 429}
    assert all(abs(value - seconds_to_end("month", utc_now())) < 30 for value in retry_after)
    assert keys_a.usage("carol") == 7


def test_day_plan_retry_after_is_within_the_day(service, keys_db):
    token = ApiKeys(keys_db).create("dave", limit=1, period="day")
    assert call(service.url + "/classify", "POST", {"sentence": "a", "weight": 1}, token)[0] == 200
    status, headers, answer = call(service.url + "/classify", "POST", {"sentence": "a", "weight": 1}, token)
    assert status == 429 and 0 < int(headers["retry-after"]) <= 86_400
    assert "1 requests per day" in answer["error"]


def test_keys_command_creates_lists_and_revokes_keys_stored_only_hashed(service, keys_db, capsys):
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlexp.serving.http.keys_command",
            "--db",
            str(keys_db),
            "create",
            "erin",
            "--limit",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    for _ in range(3):
        assert call(service.url + "/classify", "POST", {"sentence": "a", "weight": 1}, token)[0] == 200
    assert call(service.url + "/classify", "POST", {"sentence": "a", "weight": 1}, token)[0] == 429
    capsys.readouterr()
    assert keys_command.main(["--db", str(keys_db), "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert any(line.split()[0] == "erin" and "3 requests per month" in line and "used 3" in line for line in listed)
    stored = b"".join(p.read_bytes() for p in keys_db.parent.glob("keys.sqlite*"))
    assert token.encode() not in stored and hashlib.sha256(token.encode()).hexdigest().encode() in stored
    assert keys_command.main(["--db", str(keys_db), "create", "erin"]) == 2
    assert "key 'erin' exists" in capsys.readouterr().err
    assert keys_command.main(["--db", str(keys_db), "revoke", "erin"]) == 0
    assert call(service.url + "/classify", "POST", {"sentence": "a", "weight": 1}, token)[0] == 401
    assert keys_command.main(["--db", str(keys_db), "list"]) == 0
    assert "revoked" in capsys.readouterr().out


def test_a_port_in_use_is_a_clear_error(service):
    from mlexp.errors import ConfigError

    with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{service.port}.*deploy.port"):
        start_in_thread(create_app("demo", [], SETTINGS, api_keys=None), port=service.port)


class StampHeader:
    """A task's own middleware: stamps the responses it sees."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        async def stamped(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-stamp", b"task")]
            await send(message)

        await self.app(scope, receive, stamped)


def test_a_tasks_middleware_runs_inside_the_key_check(keys_db, key):
    from starlette.middleware import Middleware

    app = create_app("demo", ROUTES, SETTINGS, api_keys=ApiKeys(keys_db), middleware=[Middleware(StampHeader)])
    running = start_in_thread(app)
    try:
        status, headers, _ = call(running.url + "/classify", "POST", {"sentence": "a", "weight": 1}, key)
        assert (status, headers.get("x-stamp")) == (200, "task")
        status, headers, _ = call(running.url + "/classify", "POST", {"sentence": "a", "weight": 1})
        assert (status, headers.get("x-stamp")) == (401, None)
    finally:
        running.stop()


def test_keys_command_finds_the_store_from_conf(tmp_project, monkeypatch, capsys):
    monkeypatch.setenv("MLEXP_ROOT", str(tmp_project))
    assert keys_command.main(["create", "frank", "--period", "day", "--limit", "5"]) == 0
    assert keys_command.main(["list"]) == 0
    assert "frank" in capsys.readouterr().out
    assert [r.plan for r in ApiKeys(tmp_project / "serving" / "keys.sqlite").list()] == ["5 requests per day"]


def test_keys_list_and_revoke_do_not_create_a_missing_store(tmp_path, capsys):
    db = tmp_path / "srv" / "keys.sqlite"
    # `mlexp keys list` said "no keys in ..." and left an empty 20 KB database there
    assert keys_command.main(["--db", str(db), "list"]) == 0
    assert f"no keys in {db}" in capsys.readouterr().out
    assert not (tmp_path / "srv").exists()
    assert keys_command.main(["--db", str(db), "revoke", "erin"]) == 2
    assert not (tmp_path / "srv").exists()
    assert f"no key store at {db}" in capsys.readouterr().err


SERVICE_SCRIPT = """
import sys, time
from pathlib import Path
from mlexp.serving.http import ApiKeys, ServiceSettings, create_app, start_in_thread
running = start_in_thread(create_app("demo", [], ServiceSettings(), api_keys=ApiKeys(Path(sys.argv[1]))))
print(running.port, flush=True)
time.sleep(600)
"""


def test_every_answered_request_is_still_counted_after_the_server_is_killed(tmp_path):
    keys_db = tmp_path / "keys.sqlite"
    token = ApiKeys(keys_db).create("grace", limit=1000)
    server = subprocess.Popen([sys.executable, "-c", SERVICE_SCRIPT, str(keys_db)], stdout=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{int(server.stdout.readline())}/anything"
        answered = [call(url, key=token)[0] for _ in range(25)]
    finally:
        server.kill()  # SIGKILL: nothing is flushed on the way out
        server.wait(10)
    assert answered == [404] * 25  # counted, then routed: an unknown path still spends the plan
    assert ApiKeys(keys_db).usage("grace") == 25
