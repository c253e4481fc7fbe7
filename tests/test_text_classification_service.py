"""The text_classification service over real HTTP: /classify with implicit feedback, /feedback and batch files,
bad input, usage plans, the watched folder, review decisions, the JSONL and Label Studio exports, the review CLI,
hot reload across a promotion, and the feedback store on a real PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from mlexp.serving.http import ApiKeys, ModelSlot
from mlexp.tasks.text_classification.classifier import TextClassifier
from mlexp.tasks.text_classification.service import label_studio
from mlexp.tasks.text_classification.service import store as store_module
from mlexp.tasks.text_classification.service.batch_files import WatchedFolder
from mlexp.tasks.text_classification.service.classify_api import Classifier
from mlexp.tasks.text_classification.service.config import ServiceConfig
from mlexp.tasks.text_classification.service.records import FeedbackRecord, utc_after, utc_now
from mlexp.tasks.text_classification.service.review_command import main as review_main
from mlexp.tasks.text_classification.service.store import FeedbackStore, export_reviews
from postgres_server import create_database, postgres_server, require_pgserver
from text_classification_service_setup import CLASSIFIER, LABELS, shared_model, start_service, train_model

SENTENCES = [
    "MS Dhoni retires and a billion people had mixed feelings.",
    "Sachin is Indian Cricketer.",
    "US music firms take legal action against 754 computer users alleged to illegally swap music online.",
    "A gamer spends $26,500 on a virtual island that exists only in a PC role-playing game.",
    "the hockey playoffs game last night went to overtime",
    "new graphics card driver for windows",
    "the president signed the bill in congress",
    "selling my old bike, best offer",
]


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_model(tmp_path_factory)


@pytest.fixture
def service(model_folder: Path, tmp_path: Path):
    running = start_service(model_folder, tmp_path / "feedback.sqlite", tmp_path / "keys.sqlite")
    yield running
    running.stop()


def post(service, path: str, body, key: str | None = "default", **headers: str) -> requests.Response:
    if key == "default":
        key = service.key
    if key is not None:
        headers["x-api-key"] = key
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return requests.post(service.url + path, data=data, headers={"Content-Type": "application/json", **headers})


def test_classify_answers_like_the_post_and_queues_low_confidence_predictions(service, model_folder):
    model = TextClassifier.load(model_folder)
    expected = {s: model.predict_one(s) for s in SENTENCES}
    low = [s for s, (_, score) in expected.items() if score < 0.5]
    assert low and len(low) < len(SENTENCES), "the sentences must straddle the threshold"

    for sentence in SENTENCES:
        answer = post(service, "/classify", {"classifier": CLASSIFIER, "sentence": sentence})
        assert answer.status_code == 200, answer.text
        assert set(answer.json()) == {"class", "score"}
        assert answer.json()["class"] == expected[sentence][0]
        assert answer.json()["score"] == pytest.approx(expected[sentence][1])

    queued = service.store.pending(limit=100)
    assert [item.record.text for item in queued] == low
    assert {item.record.source for item in queued} == {"implicit"}
    assert all(item.record.score < 0.5 and item.record.classifier == CLASSIFIER for item in queued)


def test_bad_input_and_usage_plan(service, model_folder, tmp_path):
    good = {"classifier": CLASSIFIER, "sentence": "Sachin is Indian Cricketer."}
    assert post(service, "/classify", good, key=None).status_code == 401
    assert post(service, "/classify", good, key="not-a-key").status_code == 401
    assert post(service, "/classify", b"{not json").status_code == 422
    missing = post(service, "/classify", {"classifier": CLASSIFIER})
    assert missing.status_code == 422 and "sentence" in missing.json()["error"]
    assert post(service, "/classify", {"classifier": CLASSIFIER, "sentence": "  "}).status_code == 422
    unknown = post(service, "/classify", {"classifier": "other-classifier", "sentence": "hello"})
    assert unknown.status_code == 404 and CLASSIFIER in unknown.json()["error"]
    assert post(service, "/feedback", {"classifier": "other-classifier", "sentence": "x"}).status_code == 404
    huge = {"classifier": CLASSIFIER, "sentence": "word " * 300_000}  # 1.5 MB over the 1 MiB limit
    assert post(service, "/classify", huge).status_code == 413

    # the post's usage plan is 2,000 a month; a plan of 2 shows the 429 without 2,000 requests
    small = start_service(model_folder, tmp_path / "small.sqlite", tmp_path / "small-keys.sqlite", limit=2)
    try:
        assert [post(small, "/classify", good).status_code for _ in range(3)] == [200, 200, 429]
        refused = post(small, "/classify", good)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    finally:
        small.stop()


def test_a_key_created_without_options_gets_the_posts_plan_of_2000_requests_a_month(tmp_path, capsys):
    from mlexp.serving.http.json_api import ServiceError
    from mlexp.serving.http.keys_command import main as keys_main

    db = tmp_path / "keys.sqlite"
    assert keys_main(["--db", str(db), "create", "app"]) == 0
    token = capsys.readouterr().out.splitlines()[-1]
    keys = ApiKeys(db)
    try:
        [record] = keys.list()
        assert (record.limit, record.period, record.plan) == (2000, "month", "2000 requests per month")
        for _ in range(2000):
            keys.check(token)
        with pytest.raises(ServiceError) as refused:
            keys.check(token)
        assert refused.value.status == 429 and keys.usage("app") == 2000
    finally:
        keys.close()


def test_explicit_feedback_and_batch_files_share_one_record_format(service):
    disliked = post(service, "/feedback", {"classifier": CLASSIFIER, "sentence": "Sachin is Indian Cricketer."})
    assert disliked.status_code == 200 and disliked.json()["queued_for_review"] is True
    liked = {"classifier": CLASSIFIER, "sentence": "the hockey game", "feedback": "like", "class": "Sports"}
    liked["score"] = 0.9
    assert post(service, "/feedback", liked).json()["queued_for_review"] is False
    bad_verdict = post(service, "/feedback", {"classifier": CLASSIFIER, "sentence": "x", "feedback": "meh"})
    assert bad_verdict.status_code == 422
    # the prediction a client says it saw is checked: a class of this service and a probability, or nothing stored
    sentence = {"classifier": CLASSIFIER, "sentence": "refused feedback"}
    wrong = [
        ({"class": "Weather", "score": 0.5}, "'class'"),
        ({"score": 0.3}, "'class'"),
        ({"class": "Sports", "score": 1.5}, "'score'"),
        ({"class": "Sports", "score": -0.1}, "'score'"),
        ({"class": "Sports", "score": True}, "'score'"),
        ({"class": "Sports"}, "'score'"),
    ]
    for shown, field in wrong:
        refused = post(service, "/feedback", {**sentence, **shown})
        assert refused.status_code == 422 and field in refused.json()["error"], shown
    alone = post(service, "/feedback", {**sentence, "class": "Sports"}).json()["error"]
    assert alone == (
        "field 'class' comes with 'score' (the prediction the user saw): send both, or neither for the model's "
        "current prediction"
    )

    # the post's batch file, uploaded through the API
    batch = {"classifier": CLASSIFIER, "sentences": SENTENCES[2:4]}
    uploaded = post(service, "/feedback/batch", batch)
    assert uploaded.status_code == 200 and uploaded.json()["stored"] == 2
    assert post(service, "/feedback/batch", {"classifier": CLASSIFIER, "sentences": [1, 2]}).status_code == 422

    records = {item.record.text: item.record for item in service.store.feedback()}
    assert "refused feedback" not in records
    assert records["the hockey game"].feedback == "like" and records["the hockey game"].predicted_class == "Sports"
    assert records["Sachin is Indian Cricketer."].source == "explicit"
    assert {records[s].source for s in SENTENCES[2:4]} == {"batch-api"}
    assert set(vars(records[SENTENCES[2]])) == {
        "source", "classifier", "text", "predicted_class", "score", "time", "feedback"
    }  # fmt: skip
    # liked predictions are kept but not sent to review
    assert [i.record.text for i in service.store.pending()] == ["Sachin is Indian Cricketer.", *SENTENCES[2:4]]


def test_watched_folder_ingests_each_batch_file_once(model_folder, tmp_path):
    slot = ModelSlot(lambda: (TextClassifier.load(model_folder), "v1"))
    with FeedbackStore(tmp_path / "feedback.sqlite") as store:
        service = Classifier(slot, store, ServiceConfig(classifier=CLASSIFIER))
        inbox = tmp_path / "inbox"
        watcher = WatchedFolder(inbox, service.ingest_folder_batch, max_sentences=10, interval_s=0.05)
        (inbox / "survey.json").write_text(json.dumps({"classifier": CLASSIFIER, "sentences": SENTENCES[:3]}))
        (inbox / "other.json").write_text(json.dumps({"classifier": "someone-else", "sentences": ["x"]}))
        (inbox / "broken.json").write_text("{")
        (inbox / "half-written.json.part").write_text("{")
        watcher.start()
        _wait_for(lambda: len(list((inbox / "processed").iterdir())) >= 1, 60)
        watcher.stop()
        assert [p.name.split("-", 1)[1] for p in (inbox / "processed").iterdir()] == ["survey.json"]
        failed = sorted(p.name.split("-", 1)[1] for p in (inbox / "failed").iterdir())
        assert failed == ["broken.json", "broken.json.error.txt", "other.json", "other.json.error.txt"]
        (other_error,) = (inbox / "failed").glob("*-other.json.error.txt")
        assert "someone-else" in other_error.read_text()
        assert (inbox / "half-written.json.part").exists()
        watcher.scan()  # again: nothing left to ingest
        # a second upload with the same name (the next day's survey) is ingested and kept beside the first
        (inbox / "survey.json").write_text(json.dumps({"classifier": CLASSIFIER, "sentences": SENTENCES[5:6]}))
        assert watcher.scan() == 1
        kept = sorted((inbox / "processed").glob("*-survey.json"))
        assert [json.loads(p.read_text())["sentences"] for p in kept] == [SENTENCES[:3], SENTENCES[5:6]]
        assert [(i.record.source, i.record.text) for i in store.feedback()] == [
            ("batch-folder", s) for s in [*SENTENCES[:3], SENTENCES[5]]
        ]


def _three_records(store: FeedbackStore) -> list[int]:
    now = utc_now()
    return store.add(
        [
            FeedbackRecord("implicit", CLASSIFIER, "Sachin is Indian Cricketer.", "Sci/Tech", 0.44, now),
            FeedbackRecord("explicit", CLASSIFIER, "Rates rise again", "World", 0.81, now, "dislike"),
            FeedbackRecord("batch-folder", CLASSIFIER, "New GPU ships", "Sci/Tech", 0.7, now),
        ]
    )


def test_decisions_are_a2i_outputs_and_export_as_jsonl(tmp_path):
    with FeedbackStore(tmp_path / "feedback.sqlite") as store:
        first, second, third = _three_records(store)
        store.skip(first, "alice")
        assert [item.id for item in store.pending("alice")] == [second, third, first]
        store.decide(first, "alice", "Sports")
        store.decide(second, "bob", "World")
        output = store.a2i_output(first)
        answer = output["humanAnswers"][0]
        assert answer["workerId"] == "alice" and answer["answerContent"]["category"]["label"] == "Sports"
        assert answer["answerContent"]["approved"] is False and answer["submissionTime"].endswith("Z")
        assert output["inputContent"]["predictedClass"] == "Sci/Tech"
        assert output["inputContent"]["confidenceScore"] == 0.44
        assert store.a2i_output(second)["humanAnswers"][0]["answerContent"]["approved"] is True
        assert store.progress("alice") == {"pending": 1, "reviewed": 2, "reviewed_by_you": 1}

        count = export_reviews(store, tmp_path / "reviews" / "reviews.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "reviews" / "reviews.jsonl").read_text().splitlines()]
    assert count == 2 and len(lines) == 2
    assert lines[0] == {
        "reviewer": "alice",
        "time": lines[0]["time"],
        "text": "Sachin is Indian Cricketer.",
        "classifier": CLASSIFIER,
        "predicted_class": "Sci/Tech",
        "score": 0.44,
        "final_label": "Sports",
        "source": "implicit",
    }


def test_label_studio_tasks_out_and_annotations_back(tmp_path):
    with FeedbackStore(tmp_path / "feedback.sqlite") as store:
        first, second, third = _three_records(store)
        tasks_file, config_file = label_studio.write_export(store, tmp_path / "ls", LABELS)
        tasks = json.loads(tasks_file.read_text())
        assert [t["data"]["feedback_id"] for t in tasks] == [first, second, third]
        prediction = tasks[0]["predictions"][0]["result"][0]
        assert prediction == {
            "from_name": "category", "to_name": "text", "type": "choices", "value": {"choices": ["Sci/Tech"]}
        }  # fmt: skip
        view = ElementTree.fromstring(config_file.read_text())
        assert view.find("Text").attrib == {"name": "text", "value": "$text"}
        assert [c.attrib["value"] for c in view.find("Choices")] == LABELS

        # Label Studio's JSON export (its docs' "Label Studio JSON format of annotated tasks"): the task as imported
        # plus id/created_at/updated_at/project and annotations; a task annotated twice (the later one listed
        # first), a cancelled (skipped) annotation, a task not annotated
        exported = [
            _exported_task(tasks[0], 1, [_annotation("Sports", 7, "2026-12-02T09:00:01.123456Z", 1001, 1),
                                         _annotation("World", 8, "2026-12-02T08:59:00.000000Z", 1000, 1)]),
            _exported_task(tasks[1], 2, [{**_annotation("Business", 7, "2026-12-02T09:00:00Z", 1002, 2),
                                          "was_cancelled": True, "result": []}]),
            _exported_task(tasks[2], 3, []),
        ]  # fmt: skip
        (tmp_path / "export.json").write_text(json.dumps(exported))
        assert label_studio.import_annotations(store, tmp_path / "export.json", LABELS) == 1
        # JSON_MIN (its docs: only the from_name values and the data): one flat item per annotation, the task's data
        # fields at the top, the single choice under the control's name; the later annotation is listed first
        json_min = [
            _json_min_item(tasks[2], "Business", annotator=3, annotation_id=1004, when="2026-12-02T09:05:00.500000Z"),
            _json_min_item(tasks[2], "World", annotator=4, annotation_id=1003, when="2026-12-02T09:04:00.000000Z"),
        ]
        (tmp_path / "min.json").write_text(json.dumps(json_min))
        assert label_studio.import_annotations(store, tmp_path / "min.json", LABELS) == 1
        decisions = {d.feedback_id: d for d in store.decisions()}
        assert decisions[first].final_label == "Sports" and decisions[first].reviewer == "label-studio-user-7"
        assert decisions[first].time == "2026-12-02T09:00:01.123Z" and decisions[first].channel == "label-studio"
        assert decisions[third].reviewer == "label-studio-user-3" and decisions[third].final_label == "Business"
        assert decisions[third].time == "2026-12-02T09:05:00.500Z"
        assert second not in decisions

        (tmp_path / "bad.json").write_text(json.dumps([{**json_min[0], "category": "Weather"}]))
        with pytest.raises(Exception, match="Weather"):
            label_studio.import_annotations(store, tmp_path / "bad.json", LABELS)


def _exported_task(task: dict, task_id: int, annotations: list[dict]) -> dict:
    """A task of Label Studio's JSON export, as its docs show one."""
    when = "2026-12-02T08:00:00.000000Z"
    return {"id": task_id, **task, "created_at": when, "updated_at": when, "project": 83, "annotations": annotations}


def _annotation(label: str, user: int, when: str, annotation_id: int = 1001, task: int = 1) -> dict:
    result = {"id": "Dx_aB91ISN", "from_name": "category", "to_name": "text", "type": "choices", "origin": "manual"}
    return {
        "id": annotation_id,
        "result": [{**result, "value": {"choices": [label]}}],
        "was_cancelled": False,
        "ground_truth": False,
        "created_at": when,
        "updated_at": when,
        "lead_time": 4.288,
        "result_count": 0,
        "task": task,
        "completed_by": user,
    }


def _json_min_item(task: dict, label: str, *, annotator: int, annotation_id: int, when: str) -> dict:
    """One item of Label Studio's JSON_MIN export: task data, the choice under from_name, annotation metadata."""
    return {
        **task["data"],
        "id": task["data"]["feedback_id"] + 100,
        "category": label,
        "annotator": annotator,
        "annotation_id": annotation_id,
        "created_at": when,
        "updated_at": when,
        "lead_time": 3.1,
    }


def test_review_cli_manages_reviewers_and_exports(tmp_path, capsys):
    store = tmp_path / "feedback.sqlite"
    env = {**os.environ, "MLEXP_REVIEWER_PASSWORD": "correct horse"}
    added = subprocess.run(
        [sys.executable, "-m", "mlexp.tasks.text_classification.service", "--store", str(store), "add", "alice"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr
    with FeedbackStore(store) as opened:
        assert opened.reviewers() == ["alice"]
        assert "correct horse" not in (opened.reviewer_hash("alice") or "")
        first, _, _ = _three_records(opened)
        opened.decide(first, "alice", "Sports")
    assert review_main(["--store", str(store), "export", "--out", str(tmp_path / "r.jsonl")]) == 0
    assert json.loads((tmp_path / "r.jsonl").read_text())["final_label"] == "Sports"
    assert review_main(["--store", str(store), "label-studio-export", "--out", str(tmp_path / "ls")]) == 0
    assert len(json.loads((tmp_path / "ls" / "tasks.json").read_text())) == 2
    # a short password is refused with one line
    os.environ["MLEXP_REVIEWER_PASSWORD"] = "short"
    try:
        assert review_main(["--store", str(store), "add", "bob"]) == 1
    finally:
        del os.environ["MLEXP_REVIEWER_PASSWORD"]
    assert "at least 8 characters" in capsys.readouterr().err


def test_review_cli_takes_store_before_or_after_the_command(tmp_path, monkeypatch, capsys):
    """The README's "`--store` for another store" reads as `mlexp review export --store S`: that was "unrecognized
    arguments"; both places name the store, and the one after the command is not overwritten by the default."""
    monkeypatch.setenv("MLEXP_ROOT", str(tmp_path))  # the configured store would be <root>/serving/...
    store = tmp_path / "other" / "feedback.sqlite"
    store.parent.mkdir()
    with FeedbackStore(store) as opened:
        first, _, _ = _three_records(opened)
        opened.decide(first, "alice", "Sports")
    after, before = tmp_path / "after.jsonl", tmp_path / "before.jsonl"
    assert review_main(["export", "--store", str(store), "--out", str(after)]) == 0
    assert review_main(["--store", str(store), "export", "--out", str(before)]) == 0
    assert json.loads(after.read_text())["final_label"] == json.loads(before.read_text())["final_label"] == "Sports"
    assert review_main(["list", "--store", str(store)]) == 0
    assert "no reviewers yet" in capsys.readouterr().out
    assert not (tmp_path / "serving").exists()


def test_review_cli_names_a_file_it_cannot_read_or_write(tmp_path, capsys):
    """A missing import file (exit 2, as the README has an input path that is not there) or an unwritable --out
    (exit 1): one error line naming the file and the fix."""
    store = str(tmp_path / "feedback.sqlite")
    missing = tmp_path / "nowhere" / "export.json"
    assert review_main(["--store", store, "label-studio-import", str(missing), "--labels", "World,Sports"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"cannot read {missing}: no such file; give the path of a Label Studio export" in err, err
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "reviews.jsonl"  # a path under a regular file cannot be created, even by root
    FeedbackStore(store).close()  # a --store that is not there is refused before --out is looked at
    assert review_main(["--store", store, "export", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"cannot write {blocker}: a file is where a folder must be; choose a writable --out" in err, err


def test_review_cli_reads_the_store_and_labels_from_the_config(tmp_project, monkeypatch, capsys):
    """Without --store/--labels the CLI uses service.store and dataset.labels from conf/, as deploy=local does."""
    monkeypatch.setenv("MLEXP_ROOT", str(tmp_project))
    monkeypatch.setenv("MLEXP_REVIEWER_PASSWORD", "correct horse")
    service_yaml = tmp_project / "conf" / "service" / "text_classification.yaml"
    service_yaml.write_text(service_yaml.read_text().replace("store: null", "store: ${paths.root}/team/feedback.db"))
    dataset_yaml = tmp_project / "conf" / "dataset" / "newsgroups_news.yaml"
    labels = "labels: [World, Sports, Business, Sci/Tech"
    dataset_yaml.write_text(dataset_yaml.read_text().replace(labels + "]", labels + ", Health]"))
    assert review_main(["add", "alice"]) == 0
    with FeedbackStore(tmp_project / "team" / "feedback.db") as store:
        assert store.reviewers() == ["alice"]
        _three_records(store)
    assert not (tmp_project / "serving").exists()
    assert review_main(["label-studio-export", "--out", str(tmp_project / "ls")]) == 0
    view = ElementTree.fromstring((tmp_project / "ls" / "labeling_config.xml").read_text())
    assert [c.attrib["value"] for c in view.find("Choices")] == [*LABELS, "Health"]
    health = [_json_min_item(t, "Health", annotator=1, annotation_id=1, when="2026-12-02T09:00:00Z")
              for t in json.loads((tmp_project / "ls" / "tasks.json").read_text())[:1]]  # fmt: skip
    (tmp_project / "min.json").write_text(json.dumps(health))
    assert review_main(["label-studio-import", str(tmp_project / "min.json")]) == 0
    # a PostgreSQL URL in the config is what the CLI connects to (here: nothing listens, so one error line names it)
    service_yaml.write_text(
        service_yaml.read_text().replace("${paths.root}/team/feedback.db", "postgresql://r@127.0.0.1:9/x")
    )
    capsys.readouterr()
    assert review_main(["list"]) == 2
    assert "service.store=postgresql://r@127.0.0.1:9/x: cannot connect" in capsys.readouterr().err


def test_the_service_reloads_a_promoted_champion_without_failing_a_request(model_folder, tmp_path, monkeypatch):
    """A load loop runs while the registry alias `champion` moves to a new version: the service's ModelSlot (polled
    with the task's champion probe, as run_service does) swaps the model and no request fails."""
    from mlflow.tracking import MlflowClient
    from omegaconf import OmegaConf

    from mlexp.tasks.text_classification.served_model import load_served_model, served_model_probe

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the registry resolves models:/<id> sources in this store
    client = MlflowClient(uri, registry_uri=uri)
    experiment = client.create_experiment("text_classification", (tmp_path / "artifacts").as_uri())
    challenger = train_model(tmp_path / "challenger", n_rows=200, seed=1)
    client.create_registered_model("text_classification")
    for number, folder in enumerate((model_folder, challenger)):
        # as deploy=registry logs it: a LoggedModel whose artifacts/ folder holds the classifier
        staged = tmp_path / f"staged{number}"
        shutil.copytree(folder, staged / "artifacts")
        run = client.create_run(experiment).info.run_id
        logged = client.create_logged_model(experiment, source_run_id=run)
        client.log_model_artifacts(logged.model_id, str(staged))
        client.create_model_version("text_classification", f"models:/{logged.model_id}", run, model_id=logged.model_id)
    client.set_registered_model_alias("text_classification", "champion", "1")
    cfg = OmegaConf.create(
        {"task": {"name": "text_classification"}, "tracking": {"uri": uri}, "paths": {"root": str(tmp_path)}}
    )
    # a sentence the two versions score differently: the answers show which model served them
    sentence = "the president signed the bill"
    v1_score = TextClassifier.load(model_folder).predict_one(sentence)[1]
    v2_score = TextClassifier.load(challenger).predict_one(sentence)[1]
    assert abs(v1_score - v2_score) > 0.01, (v1_score, v2_score)
    slot = ModelSlot(lambda: load_served_model(cfg, "champion"))
    assert slot.version == "text_classification v1"
    service = start_service(model_folder, tmp_path / "feedback.sqlite", None, slot=slot)
    slot.start_polling(served_model_probe(cfg, "champion"), 0.1)
    statuses: list[int] = []
    answers: list[tuple[float, float]] = []  # (time answered, score)
    failures: list[str] = []  # requests that raised (a dropped connection, a timeout, a body that is not JSON)
    stop = threading.Event()

    def load_loop() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    answer = session.post(
                        service.url + "/classify", json={"classifier": CLASSIFIER, "sentence": sentence}, timeout=60
                    )
                    statuses.append(answer.status_code)
                    if answer.status_code == 200:
                        answers.append((time.monotonic(), answer.json()["score"]))
                except Exception as error:  # noqa: BLE001 -- any error is a failed request, counted below
                    failures.append(repr(error))

    clients = [threading.Thread(target=load_loop) for _ in range(4)]
    try:
        for client_thread in clients:
            client_thread.start()
        _wait_for(lambda: len(statuses) > 5)  # requests before the swap (counted, not timed: machines are busy)
        before = len(statuses)
        client.set_registered_model_alias("text_classification", "champion", "2")  # the promotion
        _wait_for(lambda: slot.version == "text_classification v2", 60)
        swapped = time.monotonic()
        _wait_for(lambda: sum(answered > swapped + 0.1 for answered, _ in answers) > 5)  # and after it
    finally:
        stop.set()
        for client_thread in clients:
            client_thread.join()
        slot.stop_polling()
        service.stop()
    assert slot.version == "text_classification v2"
    assert before > 5 and len(statuses) > before + 5, "requests must run before, during and after the swap"
    assert failures == []
    assert set(statuses) == {200}
    # answers before the promotion came from v1; every answer sent after the swap (plus a request's time) from v2
    assert [score for _, score in answers[:5]] == pytest.approx([v1_score] * 5)
    after = [score for answered, score in answers if answered > swapped + 0.1]
    assert len(after) > 5 and after == pytest.approx([v2_score] * len(after))


def test_a_missing_pgserver_fails_the_postgresql_test_in_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setitem(sys.modules, "pgserver", None)  # `import pgserver` raises ImportError
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL tests cannot run: pgserver"):
        require_pgserver()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL tests skipped"):
        require_pgserver()


def test_feedback_store_on_postgresql(model_folder, tmp_path, tmp_project, monkeypatch):
    require_pgserver()
    with postgres_server(tmp_path / "pg") as server:
        url = create_database(server, "feedback")
        service = start_service(model_folder, url, tmp_path / "keys.sqlite")
        try:
            results: list[requests.Response] = []
            texts = [f"feedback number {i} about the hockey game" for i in range(40)]

            def send(text: str) -> None:
                results.append(post(service, "/feedback", {"classifier": CLASSIFIER, "sentence": text}))

            threads = [threading.Thread(target=send, args=(t,)) for t in texts]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(r.status_code for r in results) == [200] * 40
        finally:
            service.stop()
        with FeedbackStore(url) as store:
            assert sorted(i.record.text for i in store.feedback()) == sorted(texts)
            first = store.pending()[0]
            store.decide(first.id, "alice", "Sports")
            assert export_reviews(store, tmp_path / "pg.jsonl") == 1
            assert store.progress("alice") == {"pending": 39, "reviewed": 1, "reviewed_by_you": 1}
            held = store.lease_next("bob", 5, 60.0)[0].id  # the review lease's SQL on PostgreSQL
            assert held not in [item.id for item in store.pending("carol", limit=50)]
        # the review CLI manages the reviewers of the PostgreSQL store named by service.store in the config
        monkeypatch.setenv("MLEXP_ROOT", str(tmp_project))
        monkeypatch.setenv("MLEXP_REVIEWER_PASSWORD", "correct horse")
        service_yaml = tmp_project / "conf" / "service" / "text_classification.yaml"
        service_yaml.write_text(service_yaml.read_text().replace("store: null", f"store: {url}"))
        assert review_main(["add", "carol"]) == 0
        with FeedbackStore(url) as store:
            assert store.reviewers() == ["carol"]


def test_review_api_needs_a_signed_in_reviewer(service):
    from mlexp.tasks.text_classification.service.reviewers import add_reviewer

    add_reviewer(service.store, "alice", "correct horse")
    (first,) = service.store.add(
        [FeedbackRecord("implicit", CLASSIFIER, "Sachin is Indian Cricketer.", "Sci/Tech", 0.4, utc_now())]
    )
    assert requests.get(service.url + "/review").status_code == 200  # the page itself is public
    assert requests.get(service.url + "/review/api/queue").status_code == 401
    forged = requests.get(service.url + "/review/api/queue", cookies={"mlexp_review": "eyJyZXZpZXdlciI6ImV2ZSJ9.x.y"})
    assert forged.status_code == 401
    with requests.Session() as browser:
        wrong = browser.post(service.url + "/review/api/login", json={"name": "alice", "password": "guess"})
        assert wrong.status_code == 401 and "mlexp_review" not in browser.cookies
        assert browser.post(service.url + "/review/api/login", json={"name": "alice", "password": "correct horse"}).ok
        queue = browser.get(service.url + "/review/api/queue").json()
        assert queue["labels"] == LABELS and [i["id"] for i in queue["items"]] == [first]
        refused = browser.post(service.url + "/review/api/decide", json={"id": first, "label": "Weather"})
        assert refused.status_code == 422
        decided = browser.post(service.url + "/review/api/decide", json={"id": first, "label": "Sports"}).json()
        assert decided["progress"] == {"pending": 0, "reviewed": 1, "reviewed_by_you": 1}
        assert decided["decision"]["humanAnswers"][0]["workerId"] == "alice"
        lines = browser.get(service.url + "/review/api/reviews.jsonl").text.splitlines()
        assert json.loads(lines[0])["final_label"] == "Sports"
        # a reviewer's session is not an API key
        assert (
            browser.post(service.url + "/classify", json={"classifier": CLASSIFIER, "sentence": "x"}).status_code == 401
        )
        # `mlexp review remove alice` ends her session at once, though her signed cookie has hours left
        assert review_main(["--store", service.store.db.location, "remove", "alice"]) == 0
        for path in ("/review/api/queue", "/review/api/reviews.jsonl", "/review/api/label-studio/tasks.json"):
            ended = browser.get(service.url + path)
            assert ended.status_code == 401 and "no longer" in ended.json()["error"], path
        assert browser.post(service.url + "/review/api/skip", json={"id": first}).status_code == 401


def test_deploy_local_serves_through_the_real_cli(model_folder, tmp_project):
    """`mlexp task=text_classification stage=deploy deploy=local`: the stage starts the service, which answers,
    stores implicit feedback, ingests the watched folder, serves the review page and stops on SIGTERM."""
    from conftest import cli_env

    key = ApiKeys(tmp_project / "serving" / "keys.sqlite").create("app1")
    command = [sys.executable, "-m", "mlexp.cli", "task=text_classification", "stage=deploy", "deploy=local"]
    command += ["deploy.source=trial", f"paths.models={model_folder}", "deploy.port=0", "deploy.max_seconds=120"]
    command += ["service.watch_interval_s=0.1", "service.threshold=0.99"]
    server = subprocess.Popen(
        command, cwd=tmp_project, env=cli_env(tmp_project), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert server.stdout is not None
        lines = []
        while not any(line.startswith("service: http://") for line in lines):
            line = server.stdout.readline()
            assert line, "the service exited before it started:\n" + "".join(lines)
            lines.append(line)
        url = lines[-1].split()[1]
        body = {"classifier": CLASSIFIER, "sentence": "the hockey playoffs game last night"}
        answer = requests.post(url + "/classify", json=body, headers={"x-api-key": key})
        assert answer.status_code == 200 and answer.json()["class"] == "Sports"
        inbox = tmp_project / "serving" / "text_classification_inbox"
        (inbox / "survey.json").write_text(json.dumps({"classifier": CLASSIFIER, "sentences": SENTENCES[:2]}))
        _wait_for(lambda: bool(list((inbox / "processed").glob("*-survey.json"))), 60)
        assert requests.get(url + "/review").status_code == 200
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0
    finally:
        if server.poll() is None:
            server.kill()
    with FeedbackStore(tmp_project / "serving" / "text_classification_feedback.sqlite") as store:
        sources = [item.record.source for item in store.feedback()]
    # threshold 0.99: the confident answer was still queued, as was each line of the dropped file
    assert sources == ["implicit", "batch-folder", "batch-folder"]


def _signed_in(service, name: str) -> requests.Session:
    from mlexp.tasks.text_classification.service.reviewers import add_reviewer

    add_reviewer(service.store, name, "correct horse")
    session = requests.Session()
    assert session.post(service.url + "/review/api/login", json={"name": name, "password": "correct horse"}).ok
    return session


def test_an_item_shown_to_one_reviewer_is_not_shown_to_another(service, monkeypatch):
    first, second, third = _three_records(service.store)
    with _signed_in(service, "alice") as alice, _signed_in(service, "bob") as bob:
        assert alice.get(service.url + "/review/api/queue").json()["items"][0]["id"] == first
        bobs = [item["id"] for item in bob.get(service.url + "/review/api/queue").json()["items"]]
        assert bobs == [second, third]  # alice is looking at the first item
        assert [i["id"] for i in alice.get(service.url + "/review/api/queue").json()["items"]] == [first, third]
        # alice decides: her next item is the third (bob holds the second); a skip gives an item back at once
        after = alice.post(service.url + "/review/api/decide", json={"id": first, "label": "Sports"}).json()
        assert [i["id"] for i in after["items"]] == [third]
        skipped = alice.post(service.url + "/review/api/skip", json={"id": third}).json()
        assert [i["id"] for i in skipped["items"]] == [third]  # still hers to see, at the back, but not held
        assert [i["id"] for i in bob.get(service.url + "/review/api/queue").json()["items"]] == [second, third]
    # a lease ends by itself: a reviewer who walked away blocks an item only for service.review_lease_minutes
    assert [i.id for i in service.store.lease_next("carol", 20, 60)] == [third]  # bob still holds the second
    assert service.store.pending("dave") == []
    # the store's clock moved past the 60 s lease (a real 0.3 s lease could end before a busy machine looked)
    monkeypatch.setattr(store_module, "utc_now", lambda: utc_after(61))
    assert [i.id for i in service.store.pending("dave")] == [third]


def test_label_studio_annotations_import_through_the_review_page(service):
    first, second, _ = _three_records(service.store)
    tasks = label_studio.export_tasks(service.store)
    json_min = [
        _json_min_item(tasks[0], "Sports", annotator=2, annotation_id=11, when="2026-12-02T09:10:00.000000Z"),
        _json_min_item(tasks[1], "Business", annotator=2, annotation_id=12, when="2026-12-02T09:11:00.000000Z"),
    ]
    assert requests.post(service.url + "/review/api/label-studio/import", json=json_min).status_code == 401
    with _signed_in(service, "alice") as alice:
        bad = alice.post(service.url + "/review/api/label-studio/import", json=[{**json_min[0], "category": "Weather"}])
        assert bad.status_code == 422 and "Weather" in bad.json()["error"]
        assert alice.post(service.url + "/review/api/label-studio/import", data=b"[{").status_code == 422
        assert service.store.decisions() == []  # a refused file stores nothing
        # the counts `mlexp review label-studio-import` prints: the answer was {"imported": 2} alone
        unannotated = {k: v for k, v in json_min[1].items() if k != "category"}
        imported = alice.post(service.url + "/review/api/label-studio/import", json=[*json_min, unannotated])
        assert imported.status_code == 200
        assert imported.json() == {
            "imported": 2,
            "tasks": 3,
            "skipped": 1,
            "skipped_by_reason": {label_studio.NOT_ANNOTATED: 1},
        }
    decisions = {d.feedback_id: d for d in service.store.decisions()}
    assert {i: (d.final_label, d.reviewer, d.channel) for i, d in decisions.items()} == {
        first: ("Sports", "label-studio-user-2", "label-studio"),
        second: ("Business", "label-studio-user-2", "label-studio"),
    }


def test_a_label_studio_import_that_stores_nothing_is_a_422_with_the_cli_line(service, tmp_path, monkeypatch, capsys):
    """Every task skipped, or a file that is not UTF-8: the page's import answers 422 with the line `mlexp review
    label-studio-import` prints (it answered 200 with "imported": 0, and Python's codec message)."""
    _three_records(service.store)
    tasks = label_studio.export_tasks(service.store)
    cancelled = {**_annotation("World", 7, "2026-12-02T09:00:00Z"), "was_cancelled": True, "result": []}
    skipped = [_exported_task(tasks[0], 1, []), _exported_task(tasks[1], 2, [cancelled])]
    monkeypatch.chdir(tmp_path)  # the CLI is given the file by the name the page sends
    url = service.url + "/review/api/label-studio/import"
    with _signed_in(service, "alice") as alice:
        for body in (json.dumps(skipped).encode(), json.dumps(skipped).encode("utf-16"), b'[{"category": "\xe9"}]'):
            Path("export.json").write_bytes(body)
            command = ["--store", service.store.db.location, "label-studio-import", "export.json"]
            assert review_main([*command, "--labels", ",".join(LABELS)]) == 1
            cli_line = capsys.readouterr().err.removeprefix("mlexp: error: ").removesuffix("\n")
            answer = alice.post(url, params={"file": "export.json"}, data=body)
            assert answer.status_code == 422 and answer.json()["error"] == cli_line, answer.text
        Path("export.json").write_bytes(json.dumps(skipped).encode())
        answer = alice.post(url, params={"file": "export.json"}, data=Path("export.json").read_bytes())
        assert answer.json() == {
            "error": "export.json: no annotation to store among its 2 task(s): 1 have no annotation, 1 were cancelled "
            "(skipped); annotate the tasks in Label Studio (a choice of the labeling config's), then Export → JSON or "
            "JSON_MIN again",
            "imported": 0,
            "tasks": 2,
            "skipped": 2,
            "skipped_by_reason": {label_studio.NOT_ANNOTATED: 1, label_studio.CANCELLED: 1},
        }
        assert alice.post(url, json=[]).json()["error"].startswith("the export: it holds no task; annotate")
    assert service.store.decisions() == []


def test_a_store_that_cannot_connect_leaves_no_model_poller_running(model_folder, tmp_path):
    """run_service registers the poller's stop before the store connects: a failed connect stops the poller too."""
    from omegaconf import OmegaConf

    from mlexp.errors import ConfigError
    from mlexp.tasks.text_classification.service.run import run_service

    cfg = OmegaConf.create(
        {
            "task": {"name": "text_classification"},
            "paths": {"root": str(tmp_path), "models": str(model_folder)},
            "deploy": {"source": "trial", "reload_interval_s": 0.05, "keys_db": str(tmp_path / "keys.sqlite")},
            "service": {"store": "postgresql://nobody@127.0.0.1:9/feedback"},
        }
    )

    def pollers() -> int:
        return sum(thread.name == "mlexp-model-reload" and thread.is_alive() for thread in threading.enumerate())

    before = pollers()
    with pytest.raises(ConfigError, match="cannot connect"):
        run_service(cfg, tracker=None)  # fails before anything is logged
    assert pollers() == before


def _wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    """Until `condition()` holds, at most `seconds` (the assertions after it say what did not happen)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
