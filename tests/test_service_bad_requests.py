"""Bad input to the services and their CLI clients: one clear 4xx JSON error (or one `mlexp: error:` line), never a
500, a traceback or stored state left broken. Real servers on loopback, as the services' own tests run them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from mlexp.serving.http import ApiKeys, ModelSlot, ServiceError, start_in_thread
from mlexp.serving.http.json_api import parse_json_object
from mlexp.tasks.recommendation import service as recommendation
from mlexp.tasks.recommendation.event_store import EventStore
from mlexp.tasks.recommendation.live_recommendations import LiveRecommendations
from mlexp.tasks.text_classification.service import review_command
from mlexp.tasks.text_classification.service.reviewers import add_reviewer
from mlexp.tasks.text_classification.service.store import FeedbackStore
from text_classification_service_setup import CLASSIFIER, shared_model, start_service

LONE_SURROGATE = b'"\\ud800 stocks fell"'  # JSON's spelling of an unpaired UTF-16 surrogate


def _call(
    url: str,
    body: bytes | dict | list | None = None,
    key: str | None = None,
    cookie: str | None = None,
    content_type: str = "application/json",
):
    """(status, decoded JSON answer, Set-Cookie) of one request; POST when there is a body."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    request.add_header("Content-Type", content_type)
    if key:
        request.add_header("x-api-key", key)
    if cookie:
        request.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read()), answer.headers.get("Set-Cookie")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), None


def test_a_lone_surrogate_is_named_in_a_422():
    body = b'{"classifier": "c", "notes": {"x": [' + LONE_SURROGATE + b"]}}"
    with pytest.raises(ServiceError) as refused:
        parse_json_object(body, {"classifier": str})
    assert refused.value.status == 422 and "'notes.x[0]'" in refused.value.message
    # a surrogate pair is valid Unicode (an emoji) and passes
    assert parse_json_object(b'{"a": "\\ud83d\\ude00"}', {"a": str}) == {"a": "\U0001f600"}
    # an escaped backslash before `u` is text, not an escape
    assert parse_json_object(b'{"a": "\\\\ud800"}', {"a": str}) == {"a": "\\ud800"}
    # a surrogate as raw bytes, or a body in UTF-16 (json.loads would take both): not UTF-8
    for raw in ('{"a": "x\ud800"}'.encode("utf-8", "surrogatepass"), '{"a": "x"}'.encode("utf-16")):
        with pytest.raises(ServiceError, match="the body is not UTF-8 text"):
            parse_json_object(raw, {"a": str})
    # NUL: valid JSON, valid UTF-8, refused by a PostgreSQL text column (psycopg2: "cannot contain NUL")
    with pytest.raises(ServiceError, match=r"^field 'notes\[1\]' holds a NUL character"):
        parse_json_object(b'{"classifier": "c", "notes": ["ok", "a\\u0000b"]}', {"classifier": str})
    with pytest.raises(ServiceError, match="nest too deeply"):  # under the size limit, past Python's recursion
        parse_json_object(b'{"a": ' + b"[" * 100_000, {"a": str})
    with pytest.raises(ServiceError, match="'\\\\udc00k \\(a key\\)'"):
        parse_json_object(b'{"a": "x", "\\udc00k": 1}', {"a": str})


@pytest.fixture(scope="module")
def text_service(tmp_path_factory):
    """The text_classification service, every prediction queued for review (threshold 1), a reviewer signed in."""
    folder = tmp_path_factory.mktemp("bad-requests")
    service = start_service(shared_model(tmp_path_factory), folder / "feedback.sqlite", folder / "keys.sqlite",
                            threshold=1.0)  # fmt: skip
    add_reviewer(service.store, "alice", "password123")
    status, _, cookie = _call(f"{service.url}/review/api/login", {"name": "alice", "password": "password123"})
    assert status == 200 and cookie
    service.cookie = cookie.split(";")[0]  # type: ignore[attr-defined]
    yield service
    service.stop()


def test_classify_and_feedback_refuse_a_lone_surrogate(text_service):
    url, key = text_service.url, text_service.key
    classify = b'{"classifier": "' + CLASSIFIER.encode() + b'", "sentence": ' + LONE_SURROGATE + b"}"
    status, answer, _ = _call(f"{url}/classify", classify, key)
    assert status == 422 and "'sentence'" in answer["error"] and "surrogate" in answer["error"]
    batch = b'{"classifier": "' + CLASSIFIER.encode() + b'", "sentences": ["fine", ' + LONE_SURROGATE + b"]}"
    status, answer, _ = _call(f"{url}/feedback/batch", batch, key)
    assert status == 422 and "'sentences[1]'" in answer["error"]
    status, answer, _ = _call(f"{url}/classify", {"classifier": CLASSIFIER, "sentence": "Stocks rallied."}, key)
    assert status == 200 and set(answer) == {"class", "score"}


def test_feedback_in_the_charset_its_content_type_names_is_stored_as_sent(text_service):
    url, key = text_service.url, text_service.key
    sent = {"classifier": CLASSIFIER, "sentence": "Zoë déçue"}
    utf8_answer = _call(f"{url}/classify", sent, key)[:2]
    for charset in ("utf-16", "latin-1"):
        body = json.dumps(sent, ensure_ascii=False).encode(charset)
        content_type = f"application/json; charset={charset}"
        assert _call(f"{url}/classify", body, key, content_type=content_type)[:2] == utf8_answer
        status, answer, _ = _call(f"{url}/feedback", body, key, content_type=content_type)
        assert status == 200 and text_service.store.get(answer["id"]).text == "Zoë déçue"
    status, answer, _ = _call(f"{url}/feedback", body, key, content_type="application/json; charset=klingon")
    assert status == 422 and answer["error"].startswith("charset 'klingon' of content type"), answer


@pytest.mark.parametrize("path", ["decide", "skip"])
@pytest.mark.parametrize("feedback_id", [2**63, 10**30])
def test_review_ids_beyond_64_bits_are_404(text_service, path, feedback_id):
    status, answer, _ = _call(f"{text_service.url}/review/api/{path}", {"id": feedback_id, "label": "World"},
                              cookie=text_service.cookie)  # fmt: skip
    assert status == 404 and answer == {"error": f"no feedback record {feedback_id} in the store"}


MALFORMED_EXPORTS: list[Any] = [
    [{"annotations": [1]}],
    [{"annotations": [{"result": [5]}]}],
    [{"annotations": [{"result": [{"type": "choices", "value": "World"}]}]}],
    [{"annotations": 3}],
]


@pytest.mark.parametrize("tasks", MALFORMED_EXPORTS)
def test_label_studio_import_of_a_malformed_export_is_422(text_service, tasks):
    status, answer, _ = _call(f"{text_service.url}/review/api/label-studio/import", tasks, cookie=text_service.cookie)
    assert status == 422 and "task 1 is not shaped like a Label Studio task" in answer["error"]


def test_label_studio_import_of_an_unknown_huge_id_is_422_and_a_bad_body_is_named(text_service):
    url, cookie = f"{text_service.url}/review/api/label-studio/import", text_service.cookie
    choice = [{"type": "choices", "value": {"choices": ["World"]}}]
    huge = [{"annotations": [{"result": choice}], "data": {"feedback_id": 10**30}}]
    status, answer, _ = _call(url, huge, cookie=cookie)
    assert status == 422 and f"no feedback record {10**30}" in answer["error"]
    status, answer, _ = _call(url, b"\xff\xfe", cookie=cookie)
    assert status == 422 and answer["error"].startswith("the export: line 1: expected UTF-8 text"), answer
    status, answer, _ = _call(url, b"[{", cookie=cookie)
    assert status == 422 and answer["error"].startswith("the export: not a Label Studio JSON export"), answer


@pytest.mark.parametrize("tasks", [MALFORMED_EXPORTS[0], [{"annotations": [{"result": [
    {"type": "choices", "value": {"choices": ["World"]}}]}], "data": {"feedback_id": 10**30}}]])  # fmt: skip
def test_review_label_studio_import_cli_prints_one_line(tmp_path, capsys, tasks):
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    store = str(tmp_path / "feedback.sqlite")
    FeedbackStore(store).close()  # a --store that is not there is refused before the export is read
    code = review_command.main(["--store", store, "label-studio-import", str(export), "--labels", "World,Sports"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("mlexp: error: "), err


def test_review_cli_refuses_empty_labels(tmp_path, capsys):
    store = str(tmp_path / "feedback.sqlite")
    FeedbackStore(store).close()
    code = review_command.main(
        ["--store", store, "label-studio-export", "--out", str(tmp_path / "ls"), "--labels", ","]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "--labels ',' holds an empty class name" in err[0], err
    assert not (tmp_path / "ls").exists()


ITEMS = [f"video_{i:03d}" for i in range(20)]


class _Model:
    """A stand-in recommender: a fixed ranking over a 20-item catalog."""

    recipe = "fixed"
    catalog = SimpleNamespace(item_index={item: i for i, item in enumerate(ITEMS)}, item_ids=np.array(ITEMS))

    def scores(self, states: list[Any]) -> np.ndarray:
        return np.tile(np.linspace(1.0, 0.0, len(ITEMS)), (len(states), 1))


@pytest.fixture
def recommendations(tmp_path):
    """The recommendation service over the stand-in model and a SQLite event store; yields (url, key, store)."""
    store = EventStore(str(tmp_path / "events.sqlite"))
    history = pd.DataFrame({"USER_ID": ["u1"], "ITEM_ID": ["video_001"], "weight": [1.0]})
    live = LiveRecommendations(_Model(), history, store, [])
    cfg = OmegaConf.create(
        {
            "deploy": {"host": "127.0.0.1", "port": 0, "keys_db": str(tmp_path / "keys.db")},
            "service": {"default_results": 10, "max_results": 500},
        }
    )
    key = ApiKeys(Path(tmp_path / "keys.db")).create("tester")
    running = start_in_thread(recommendation.create_service(cfg, ModelSlot(lambda: (live, "fixed")), store))
    try:
        yield running.url, key, store
    finally:
        running.stop()


def test_num_results_must_be_a_decimal_integer(recommendations):
    url, key, _ = recommendations
    # "²": str.isdigit() says yes, int() refuses it (a 500)
    status, answer, _ = _call(f"{url}/recommendations?userId=u1&numResults=%C2%B2", key=key)
    assert status == 422 and "'numResults' must be an integer from 1 to 500" in answer["error"]
    for fine in ("007", "%D9%A3"):  # leading zeros, an Arabic-Indic 3: decimal digits int() reads
        status, answer, _ = _call(f"{url}/recommendations?userId=u1&numResults={fine}", key=key)
        assert status == 200 and len(answer["itemList"]) in (3, 7), answer


def _events(**event: Any) -> dict[str, Any]:
    return {"userId": "u1", "sessionId": "s1", "eventList": [{"itemId": "video_002", "eventType": "watch", **event}]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (json.dumps(_events()).replace('"u1"', '"\\ud800"').encode(), "'userId'"),
        (json.dumps(_events(eventValue=1)).replace(": 1}", ": 1e400}").encode(), "eventList[0].eventValue"),
        (json.dumps(_events(sentAt=10**400)).encode(), "eventList[0].sentAt"),
        (json.dumps({**_events(), "userId": ""}).encode(), "'userId' is empty; send the user's id"),
        (json.dumps({**_events(), "sessionId": ""}).encode(), "'sessionId' is empty; send the session's id"),
        ('{"userId": "u1\ud800"}'.encode("utf-8", "surrogatepass"), "the body is not UTF-8 text"),
        (json.dumps(_events()).replace('"u1"', '"u\\u00001"').encode(), "field 'userId' holds a NUL character"),
    ],
)
def test_bad_events_are_422_and_nothing_is_stored_or_broken(recommendations, body, field):
    url, key, store = recommendations
    status, answer, _ = _call(f"{url}/events", body, key)
    assert status == 422 and field in answer["error"], answer
    assert store.all_events() == []
    # the store still takes the next event (a failed insert used to leave its transaction open: every later 500)
    assert _call(f"{url}/events", _events(eventValue=0.5), key)[:2] == (200, {"recorded": 1})
    assert len(store.all_events()) == 1


def test_events_in_utf16_are_recorded_and_a_surrogate_escape_in_them_is_still_refused(recommendations):
    url, key, store = recommendations
    utf16 = "application/json; charset=utf-16"
    events = json.dumps({**_events(), "userId": "Zoë"}, ensure_ascii=False)
    assert _call(f"{url}/events", events.encode("utf-16"), key, content_type=utf16)[:2] == (200, {"recorded": 1})
    assert [event[0] for event in store.all_events()] == ["Zoë"]
    # the escape is found in the decoded text, not in the UTF-16 bytes, where it is spelled with NUL bytes between
    escaped = events.replace('"Zoë"', '"\\ud800"').encode("utf-16")
    status, answer, _ = _call(f"{url}/events", escaped, key, content_type=utf16)
    assert status == 422 and "field 'userId' holds a lone UTF-16 surrogate" in answer["error"], answer
    assert len(store.all_events()) == 1


def test_valid_events_still_pass(recommendations):
    url, key, store = recommendations
    for event in ({"sentAt": 1_700_000_000}, {"sentAt": 1e300, "eventValue": -5}):
        assert _call(f"{url}/events", _events(**event), key)[:2] == (200, {"recorded": 1})
    assert [e[4] for e in store.all_events()] == [1_700_000_000.0, 1e300]


def test_a_label_studio_export_with_a_lone_surrogate_imports_nothing(text_service):
    url, cookie = f"{text_service.url}/review/api/label-studio/import", text_service.cookie
    for sentence in ("Stocks rallied.", "The match went to extra time."):  # queued for review: threshold 1
        sent = {"classifier": CLASSIFIER, "sentence": sentence}
        assert _call(f"{text_service.url}/classify", sent, text_service.key)[0] == 200
    pending = [item.id for item in text_service.store.pending(limit=10)]
    assert len(pending) >= 2
    choice = [{"type": "choices", "value": {"choices": ["World"]}}]
    good = {"annotations": [{"result": choice, "completed_by": "bob"}], "data": {"feedback_id": pending[0]}}
    bad = {"annotations": [{"result": choice, "completed_by": "x\ud800"}], "data": {"feedback_id": pending[1]}}
    before = text_service.store.decisions()
    status, answer, _ = _call(url, json.dumps([good, bad]).encode(), cookie=cookie)
    assert status == 422 and "task 2: field 'annotations[0].completed_by' holds a lone" in answer["error"], answer
    assert text_service.store.decisions() == before  # task 1 was not stored either
    flag = {"annotations": [{"result": choice}], "data": {"feedback_id": True}}  # true is not record 1
    status, answer, _ = _call(url, [flag], cookie=cookie)
    assert status == 422 and "has no data.feedback_id" in answer["error"]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_request_whose_events_cannot_be_stored_leaves_none_and_the_store_working(tmp_path, database):
    from mlexp.tasks.recommendation.event_store import EventStore
    from postgres_server import require_pgserver

    if database == "postgresql":
        url = require_pgserver().get_server(str(tmp_path / "pg"), cleanup_mode="stop").get_uri()
    else:
        url = str(tmp_path / "events.sqlite")
    store = EventStore(url)
    good = {"itemId": "v1", "eventType": "watch", "sentAt": 1.0}
    with pytest.raises(Exception, match="(?i)null"):  # item_id NOT NULL: the second event cannot be stored
        store.record("u1", "s1", [good, {**good, "itemId": None}])
    assert store.all_events() == []  # not the first event alone
    store.record("u1", "s1", [good])  # the store still takes requests
    assert [event[:3] for event in store.all_events()] == [("u1", "v1", "watch")]
    store.close()
