"""The human review page in a real headless chromium: sign in, review three items with keys and the mouse, skip one,
import a Label Studio export for the last, then check the stored decisions, the JSONL export and a screenshot."""

from __future__ import annotations

import json

from mlexp.tasks.text_classification.service.records import FeedbackRecord, utc_now
from mlexp.tasks.text_classification.service.reviewers import add_reviewer
from mlexp.tasks.text_classification.service.store import export_reviews
from text_classification_service_setup import CLASSIFIER, shared_model, start_service

ITEMS = [
    ("implicit", "Sachin is Indian Cricketer.", "Sci/Tech", 0.44),
    ("explicit", "Oil prices climb as markets rally", "World", 0.62),
    ("batch-api", "A gamer spends $26,500 on a virtual island", "Sports", 0.48),
    ("batch-folder", "Mars rover sends new pictures", "Sci/Tech", 0.41),
]


def test_reviewer_signs_in_and_reviews_three_items(browser, tmp_path, tmp_path_factory):
    model = shared_model(tmp_path_factory)
    service = start_service(model, tmp_path / "feedback.sqlite", tmp_path / "keys.sqlite")
    try:
        add_reviewer(service.store, "alice", "correct horse")
        now = utc_now()
        ids = service.store.add([FeedbackRecord(s, CLASSIFIER, t, p, c, now) for s, t, p, c in ITEMS])
        page = browser.new_page(viewport={"width": 1000, "height": 760})
        page.goto(service.url + "/review")
        # a wrong password is refused on the page
        page.fill("#name", "alice")
        page.fill("#password", "wrong password")
        page.click("#signin-button")
        page.wait_for_selector("#signin-error:has-text('wrong password')")

        page.fill("#password", "correct horse")
        page.press("#password", "Enter")
        page.wait_for_selector("#text:has-text('Sachin is Indian Cricketer.')")
        assert page.inner_text("#progress") == "Reviewed 0 · 4 pending · 0 by you"
        assert page.inner_text("#predicted") == "Sci/Tech" and page.inner_text("#confidence") == "0.44"
        assert page.inner_text("#source") == "implicit"

        page.keyboard.press("2")  # keyboard: pick the second label, Sports
        page.wait_for_selector("#text:has-text('Oil prices climb')")
        page.keyboard.press("a")  # keyboard: approve the model's label
        page.wait_for_selector("#text:has-text('A gamer spends')")
        page.keyboard.press("s")  # skip: it goes to the back of the queue
        page.wait_for_selector("#text:has-text('Mars rover')")
        page.click("#labels button[data-label='Sci/Tech']")  # mouse: pick a label
        page.wait_for_selector("#progress:has-text('Reviewed 3 · 1 pending · 3 by you')")
        page.wait_for_selector("#text:has-text('A gamer spends')")  # the skipped item comes back last
        page.screenshot(path=str(tmp_path / "review_page.png"), full_page=True)

        # the last item is annotated in Label Studio; the page says what the import stored and what it skipped
        choice = [{"type": "choices", "value": {"choices": ["Business"]}}]
        export = tmp_path / "label-studio-export.json"
        tasks = [
            {"data": {"feedback_id": ids[2]}, "annotations": [{"result": choice, "completed_by": 7}]},
            {"data": {"feedback_id": ids[2]}, "annotations": []},
            {"data": {"feedback_id": ids[2]}, "annotations": [{"was_cancelled": True, "result": []}]},
        ]
        # an export of which nothing can be stored is an error on the page, as the CLI's exit 1 (it read "0 stored")
        export.write_text(json.dumps(tasks[1:]))
        assert _imported(page, export, "#import-result.error") == (
            "label-studio-export.json: no annotation to store among its 2 task(s): 1 have no annotation, 1 were "
            "cancelled (skipped); annotate the tasks in Label Studio (a choice of the labeling config's), then "
            "Export → JSON or JSON_MIN again"
        )
        # a UTF-16 file: the page sends its bytes (file.text() made it a JSON error) and shows the CLI's line
        export.write_bytes(json.dumps(tasks).encode("utf-16"))
        assert _imported(page, export, "#import-result.error:has-text('UTF-16')") == (
            "label-studio-export.json: line 1: expected UTF-8 text, found the byte 0xff: the file is UTF-16; re-save "
            "it as UTF-8, e.g. `iconv -f utf-16 -t utf-8 in.json > out.json`, or export it again from Label Studio "
            "(Export → JSON or JSON_MIN)"
        )
        export.write_text(json.dumps(tasks))
        assert _imported(page, export, "#import-result:not(.error):has-text('Label Studio import')") == (
            "Label Studio import: 1 decision(s) stored; skipped 2 of 3 task(s): 1 have no annotation, 1 were "
            "cancelled (skipped)"
        )
        page.wait_for_selector("#empty:has-text('Nothing to review')")  # the imported item left the queue
        assert page.inner_text("#progress") == "Reviewed 4 · 0 pending · 3 by you"
        page.close()
    finally:
        service.stop()

    assert (tmp_path / "review_page.png").stat().st_size > 10_000
    from mlexp.tasks.text_classification.service.store import FeedbackStore

    with FeedbackStore(tmp_path / "feedback.sqlite") as store:
        decisions = {d.feedback_id: d for d in store.decisions()}
        assert {i: (d.reviewer, d.final_label) for i, d in decisions.items()} == {
            ids[0]: ("alice", "Sports"),
            ids[1]: ("alice", "World"),
            ids[3]: ("alice", "Sci/Tech"),
            ids[2]: ("label-studio-user-7", "Business"),
        }
        output = store.a2i_output(ids[0])
        assert output["humanAnswers"][0]["workerId"] == "alice"
        assert output["inputContent"]["predictedClass"] == "Sci/Tech"
        export_reviews(store, tmp_path / "reviews.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "reviews.jsonl").read_text().splitlines()]
    assert [(x["text"], x["predicted_class"], x["final_label"], x["source"]) for x in lines] == [
        ("Sachin is Indian Cricketer.", "Sci/Tech", "Sports", "implicit"),
        ("Oil prices climb as markets rally", "World", "World", "explicit"),
        ("A gamer spends $26,500 on a virtual island", "Sports", "Business", "batch-api"),
        ("Mars rover sends new pictures", "Sci/Tech", "Sci/Tech", "batch-folder"),
    ]


def _imported(page, export, shown: str) -> str:
    """What the page says after importing the Label Studio `export` through its file input, once `shown` matches."""
    page.set_input_files("#ls-import", str(export))
    page.wait_for_selector(shown)
    return page.inner_text("#import-result")
