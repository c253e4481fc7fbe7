"""text_classification on malformed inputs (a non-author's probe): a holdout that is training data, texts the model
cannot read, corpus files with headers, swapped columns or out-of-range class indexes, review decisions it cannot use,
and Label Studio exports that store nothing. Each is one message naming the file, the line and the fix, or a warning
naming what was left out: never a silent drop or a misleading fix."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from conftest import TEXT_TINY, run_cli, trials_of
from mlexp.errors import DataError
from mlexp.tasks.text_classification import corpora, reviews
from mlexp.tasks.text_classification.service import label_studio, review_command
from mlexp.tasks.text_classification.service.records import FeedbackRecord
from mlexp.tasks.text_classification.service.store import FeedbackStore

TASK = "text_classification"
CLASSES = ["World", "Sports", "Business", "Sci/Tech"]
WORDS = {"World": "election minister treaty", "Sports": "goal match coach", "Business": "market shares profit"}
HOLDOUT_FIX = (
    "give dataset.holdout_path a file of documents the training data does not hold (AG News' test.csv beside its "
    "train.csv), or leave it unset to hold out preprocessing.holdout_fraction of dataset.path"
)


def _corpus(path: Path, rows: int, start: int = 0, classes: tuple[str, ...] = ("World", "Sports")) -> Path:
    """A Comprehend label,text CSV: `rows` distinct documents per class, numbered from `start`."""
    lines = [f"{c},{WORDS[c]} doc{n}" for n in range(start, start + rows) for c in classes]
    path.write_text("\n".join(lines) + "\n")
    return path


def _read(path: Path, key: str = "dataset.path") -> corpora.pd.DataFrame:
    return corpora.clean(corpora.read_user_corpus(str(path), "auto", CLASSES, key), 1000, key)


def _dataset(path: Path, holdout_path: Path) -> DictConfig:
    return OmegaConf.create({"path": str(path), "holdout_path": str(holdout_path)})


def _warnings(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line.removeprefix("mlexp: warning: ") for line in capsys.readouterr().err.splitlines()]


def test_a_holdout_that_is_training_data_is_refused_and_a_few_shared_texts_are_left_out(tmp_path, capsys):
    train = _corpus(tmp_path / "train.csv", 10)
    pool = _read(train)
    data = _dataset(train, train)
    with pytest.raises(DataError) as refused:  # the same file: accuracy 1.0 on the "held-out" truth
        corpora.unseen(pool, _read(train, "dataset.holdout_path"), data)
    assert str(refused.value) == (
        f"dataset.holdout_path={train}: {train} is a file of dataset.path={train} too: the model would be scored on "
        f"its own training documents; {HOLDOUT_FIX}"
    )
    copy = tmp_path / "copy.csv"
    copy.write_text(train.read_text())
    with pytest.raises(DataError) as refused:  # a copy of it, or mostly its documents
        corpora.unseen(pool, _read(copy, "dataset.holdout_path"), _dataset(train, copy))
    assert str(refused.value) == (
        f"dataset.holdout_path={copy}: 20 of its 20 documents are in the training data of dataset.path={train} too "
        f"({copy} lines 1, 2, 3, 4, 5 and 15 more): the model would be scored on documents it was trained on; "
        f"{HOLDOUT_FIX}"
    )
    # a few shared texts (real corpora have some): left out of the holdout, named in a warning
    test = _corpus(tmp_path / "test.csv", 10, start=100)
    test.write_text(train.read_text().splitlines()[3] + "\n" + test.read_text())
    capsys.readouterr()
    held = corpora.unseen(pool, _read(test, "dataset.holdout_path"), _dataset(train, test))
    assert len(held) == 20 and not set(held.text) & set(pool.text)
    assert _warnings(capsys) == [
        "dataset.holdout_path: left out 1 holdout documents whose text is in the training data (dataset.path) too, "
        f"so that the holdout stays unseen: {test} line 1"
    ]


def test_texts_with_nothing_the_model_reads_are_named_and_a_file_not_utf8_is_refused(tmp_path, capsys):
    train = _corpus(tmp_path / "train.csv", 10)
    lines = train.read_text().splitlines()
    for number in range(0, 20, 3):  # 7 texts of punctuation, symbols and emoji: no letter or digit of any script
        lines[number] = "World,★★★ — 🎉🎉 !!! ___ ¿?"
    lines[1] = "Sports,这是一个关于体育的新闻报道"  # Chinese is read (one word a run of letters), not left out
    train.write_text("\n".join(lines) + "\n")
    assert len(_read(train)) == 13
    assert _warnings(capsys) == [
        "dataset.path: left out 7 documents with no letter or digit once normalised (the model reads letters and "
        "digits of any script, split into words at spaces and punctuation, so Chinese or Japanese text is one word "
        f"per run of letters; punctuation, symbols and emoji alone are nothing to it): {train} lines 1, 4, 7, 10, 13 "
        "and 2 more"
    ]
    train.write_bytes(b"World,election\nSports,caf\xe9 goal\n")  # Latin-1: was read with the byte replaced
    with pytest.raises(DataError) as refused:
        _read(train)
    assert str(refused.value) == (
        f"{train}: line 2: expected UTF-8 text, found the byte 0xe9: the file is not UTF-8 (Latin-1 or Windows-1252, "
        "as Excel saves CSV?); re-save it as UTF-8, e.g. `iconv -f cp1252 -t utf-8 in.csv > out.csv`, or in Excel as "
        '"CSV UTF-8"'
    )


def test_a_header_is_skipped_with_a_warning_and_a_class_index_out_of_range_is_named_by_line(tmp_path, capsys):
    ag = tmp_path / "ag.csv"
    ag.write_text('Class Index,Title,Description\n3,"Stocks","Shares rose"\n\n2,"Cup","A goal"\n')
    assert corpora.read_user_corpus(str(ag), "auto", CLASSES).to_dict("list") == {
        "label": ["Business", "Sports"], "text": ["Stocks Shares rose", "Cup A goal"], "file": [str(ag)] * 2,
        "line": [2, 4],
    }  # fmt: skip
    comprehend = tmp_path / "labelled.csv"
    comprehend.write_text("label,text\nWorld,a treaty\n")
    assert corpora.read_user_corpus(str(comprehend), "auto", CLASSES).label.tolist() == ["World"]
    assert _warnings(capsys) == [
        f"{ag}: line 1 looks like a header (Class Index,Title,Description), skipped: the file's rows start on line 2",
        f"{comprehend}: line 1 looks like a header (label,text), skipped: the file's rows start on line 2",
    ]
    # a class index 0 (or 5) was read as a Comprehend file whose classes are 0, 1, 2, 3
    ag.write_text('1,"Vote","A treaty"\n2,"Cup","A goal"\n0,"Stocks","Shares rose"\n')
    with pytest.raises(DataError) as refused:
        corpora.read_user_corpus(str(ag), "auto", CLASSES)
    assert str(refused.value) == (
        f"{ag}: line 3: class index 0 is outside 1-4: AG News' class indexes count from 1, the i-th of "
        "dataset.ag_news_classes (World, Sports, Business, Sci/Tech); correct the row, or list every class of the file "
        "in dataset.ag_news_classes"
    )
    comprehend.write_text("text,label\na treaty,World\n")
    with pytest.raises(DataError, match=r": line 1 is the header text,label: the text comes before the label, and"):
        corpora.read_user_corpus(str(comprehend), "auto", CLASSES)


def test_swapped_columns_and_a_single_class_get_a_fix_that_works(tmp_path):
    swapped = tmp_path / "swapped.csv"
    swapped.write_text("".join(f"{WORDS[c]} doc{n},{c}\n" for n in range(400) for c in ("World", "Sports")))
    pool = _read(swapped)
    with pytest.raises(DataError) as refused:  # was one line listing every one of the 800 texts as a class
        corpora.keep_listed(pool, pool.iloc[:0], CLASSES)
    assert str(refused.value) == (
        "dataset.labels=[World, Sports, Business, Sci/Tech]: the training data has no document of class World, "
        "Sports, Business, Sci/Tech; its rows look like text,label: their last field is a class of dataset.labels in "
        f"800 of 800 rows ({swapped} lines 1, 2, 3, 4, 5 and 795 more), and Comprehend's format is label,text; swap "
        "the two columns"
    )
    one = _read(_corpus(tmp_path / "one.csv", 5, classes=("Sports",)))
    with pytest.raises(DataError) as refused:  # "list only those in dataset.labels" led to [Sports], refused too
        corpora.keep_listed(one, one.iloc[:0], CLASSES)
    assert str(refused.value) == (
        "dataset.labels=[World, Sports, Business, Sci/Tech]: the training data has no document of class World, "
        "Business, Sci/Tech; it holds documents of Sports alone, and a classifier tells two or more classes apart; "
        "give dataset.path a corpus with documents of at least two of the classes"
    )
    many = corpora.pd.DataFrame({"label": [f"topic{n:02}" for n in range(30)], "text": [f"t{n}" for n in range(30)]})
    with pytest.raises(DataError, match=r"its classes are topic00, topic01, topic02, topic03, topic04 and 25 more: "):
        corpora.keep_listed(many, many.iloc[:0], CLASSES)


def _decision(text: object = "the team won the cup", label: object = "Sports") -> str:
    return json.dumps({"time": "2026-12-02T09:01:18.735Z", "text": text, "final_label": label}) + "\n"


def test_review_decisions_that_cannot_be_used_are_named(tmp_path, capsys):
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(
        _decision() + _decision("a b", "sports") + _decision("c d", "Sprots") + _decision("e f", "Cooking")
    )
    found = reviews.read(str(unknown), CLASSES, 1000)
    assert found.rows.label.tolist() == ["Sports"] and found.unknown_label == 3
    assert _warnings(capsys) == [
        "dataset.reviews: left out 3 decisions whose final_label is not a class of dataset.labels (World, Sports, "
        "Business, Sci/Tech): sports (1; did you mean Sports?), Sprots (1; did you mean Sports?), Cooking (1); the "
        f"first at {unknown} line 2; correct the label in the file, or list the class in dataset.labels"
    ]
    for text, shown in ((None, "null"), (12345, "12345")):  # were trained on as the documents "none" and "12345"
        (tmp_path / "bad.jsonl").write_text(_decision() + _decision(text))
        with pytest.raises(DataError) as refused:
            reviews.read(str(tmp_path / "bad.jsonl"), CLASSES, 1000)
        assert str(refused.value) == (
            f"{tmp_path / 'bad.jsonl'}: line 2: text is {shown}, not a string; fix or remove the line (`mlexp review "
            "export` writes them right)"
        )
    (tmp_path / "bad.jsonl").write_bytes(b'{"text": "caf\xe9", "final_label": "World"}\n')
    with pytest.raises(DataError) as refused:  # was UnicodeDecodeError without the file's name
        reviews.read(str(tmp_path / "bad.jsonl"), CLASSES, 1000)
    assert str(refused.value) == (
        f"{tmp_path / 'bad.jsonl'}: line 1: expected UTF-8 text, found the byte 0xe9: the file is not UTF-8 (Latin-1 "
        "or Windows-1252?); re-save it as UTF-8, e.g. `iconv -f cp1252 -t utf-8 in.jsonl > out.jsonl`"
    )
    # A2I's output file in a folder: read as no reviews at all; a folder with no file (or its README) still is
    a2i = tmp_path / "a2i"
    a2i.mkdir()
    (a2i / "README.md").write_text("exports go here\n")
    assert reviews.review_files(str(a2i)) == []
    (a2i / "output.json").write_text(_decision())
    with pytest.raises(DataError) as refused:
        reviews.review_files(str(a2i))
    assert str(refused.value) == (
        f"dataset.reviews={a2i}: the folder holds no *.jsonl file, only output.json; {reviews.A2I_OUTPUT}; "
        f"{reviews.FIX}"
    )


def test_a_review_time_that_is_not_a_date_is_named_and_counts_as_oldest(tmp_path, capsys):
    # "yesterday" was taken silently as older than any dated decision
    lines = [
        {"text": "Rates cut again", "final_label": "Business", "time": "yesterday"},
        {"text": "Rates cut again", "final_label": "World", "time": "2026-12-02T10:00:00Z"},
        {"text": "Rates cut again", "final_label": "Sports"},  # no time: older than any dated decision, no warning
        {"text": "New GPU released", "final_label": "Sci/Tech", "time": "02/12/2026 10:00"},
    ]
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("".join(json.dumps(line) + "\n" for line in lines))
    second.write_text("\n" + json.dumps({"text": "a match", "final_label": "Sports", "time": 1764669678}) + "\n")
    found = reviews.read(str(tmp_path), CLASSES, 1000)
    assert dict(zip(found.rows.text, found.rows.label)) == {
        "rates cut again": "World",
        "new gpu released": "Sci/Tech",  # kept: the only decision on its text
        "a match": "Sports",
    }
    assert _warnings(capsys) == [
        f'dataset.reviews: 3 decisions with a time that is not a date ("yesterday"): {first} (lines 1, 4), {second} '
        "(line 2); each counts as older than any dated decision on its text, as one without a time does; give the "
        "time in ISO 8601 (2026-12-02T09:01:18.735Z), as `mlexp review export` writes it"
    ]


def _store_with_records(path: Path, count: int) -> list[int]:
    with FeedbackStore(path) as store:
        record = FeedbackRecord("implicit", "news-classifier-demo", "a text", "World", 0.4, "2026-12-02T09:00:00.000Z")
        return store.add([record] * count)


def test_a_label_studio_export_says_what_it_skipped_and_a_missing_one_is_exit_2(tmp_path, capsys):
    store_path = tmp_path / "fb.sqlite"
    first, second, third = _store_with_records(store_path, 3)
    choice = [{"from_name": "category", "to_name": "text", "type": "choices", "value": {"choices": ["Sports"]}}]
    annotated = {"data": {"feedback_id": first}, "annotations": [{"result": choice, "completed_by": 1}]}
    unannotated = {"data": {"feedback_id": second}, "annotations": []}
    cancelled = {"data": {"feedback_id": third}, "annotations": [{"was_cancelled": True, "result": []}]}
    export = tmp_path / "export.json"
    export.write_text(json.dumps([annotated, unannotated, cancelled]))
    with FeedbackStore(store_path) as store:
        assert label_studio.import_annotations(store, export, CLASSES) == 1
        assert _warnings(capsys) == [
            f"{export}: skipped 2 of its 3 task(s): 1 have no annotation, 1 were cancelled (skipped)"
        ]
        export.write_text(json.dumps([unannotated, cancelled]))
        with pytest.raises(DataError) as refused:  # was "0 Label Studio annotation(s) stored", exit 0
            label_studio.import_annotations(store, export, CLASSES)
        assert str(refused.value) == (
            f"{export}: no annotation to store among its 2 task(s): 1 have no annotation, 1 were cancelled (skipped); "
            "annotate the tasks in Label Studio (a choice of the labeling config's), then Export → JSON or JSON_MIN "
            "again"
        )
        # a task without feedback_id whose result lacks its type was skipped as not annotated; it is named now
        export.write_text(
            json.dumps([{"data": {"text": "hi"}, "annotations": [{"result": [{"value": choice[0]["value"]}]}]}])
        )
        with pytest.raises(DataError, match=r": task 1 has no data.feedback_id; import tasks exported by mlexp$"):
            label_studio.import_annotations(store, export, CLASSES)
    missing = tmp_path / "missing.json"  # README: an input path that is not there is exit 2
    assert (
        review_command.main(["--store", str(store_path), "label-studio-import", str(missing), "--labels", "A,B"]) == 2
    )
    assert capsys.readouterr().err == (
        f"mlexp: error: cannot read {missing}: no such file; give the path of a Label Studio export (Export → JSON or "
        "JSON_MIN)\n"
    )


@pytest.mark.parametrize("kind", ["holdout-is-training-file", "reviews-not-utf8"])
def test_a_trial_on_bad_inputs_fails_in_one_line_and_is_marked_failed(tmp_project_with_store, kind):
    project = tmp_project_with_store
    train = _corpus(project / "train.csv", 30)
    if kind == "holdout-is-training-file":
        args, stage = (f"dataset.holdout_path={train}",), "corpus"
        expected = (
            f"dataset.holdout_path={train}: {train} is a file of dataset.path={train} too: the model would be scored "
            f"on its own training documents; {HOLDOUT_FIX}"
        )
    else:
        (project / "reviews.jsonl").write_bytes(b'{"text": "caf\xe9 goal", "final_label": "Sports"}\n')
        args, stage = (f"dataset.reviews={project / 'reviews.jsonl'}",), "prepare"
        expected = (
            f"{project / 'reviews.jsonl'}: line 1: expected UTF-8 text, found the byte 0xe9: the file is not UTF-8 "
            "(Latin-1 or Windows-1252?); re-save it as UTF-8, e.g. `iconv -f cp1252 -t utf-8 in.jsonl > out.jsonl`"
        )
    done = run_cli(
        project,
        f"task={TASK}",
        f"dataset.path={train}",
        "dataset.labels=[World,Sports]",
        *TEXT_TINY,
        *args,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mlexp: error: stage '{stage}' failed: "), done.stderr
    assert lines[0].removeprefix(f"mlexp: error: stage '{stage}' failed: ").split(" (trial ")[0] == expected
    [trial] = trials_of(project, experiment=TASK)
    assert trial.status == "FAILED"


LS_EXPORT_AGAIN = "or export it again from Label Studio (Export → JSON or JSON_MIN)"


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (
            lambda text: text.encode("utf-16"),  # Notepad's "Unicode", PowerShell's Out-File
            "line 1: expected UTF-8 text, found the byte 0xff: the file is UTF-16; re-save it as UTF-8, e.g. "
            f"`iconv -f utf-16 -t utf-8 in.json > out.json`, {LS_EXPORT_AGAIN}",
        ),
        (
            lambda text: text.replace("Sports", "Sports caf\xe9").encode("latin-1"),
            "line 1: expected UTF-8 text, found the byte 0xe9: the file is not UTF-8 (Latin-1 or Windows-1252?); "
            f"re-save it as UTF-8, e.g. `iconv -f cp1252 -t utf-8 in.json > out.json`, {LS_EXPORT_AGAIN}",
        ),
    ],
    ids=["utf-16", "latin-1"],
)
def test_a_label_studio_export_that_is_not_utf8_is_one_line_naming_the_fix(tmp_project, encoded, expected):
    # was "<file>: not a Label Studio JSON export ('utf-8' codec can't decode byte 0xff in position 0: ...)"
    export = tmp_project / "export.json"
    choice = [{"type": "choices", "value": {"choices": ["Sports"]}}]
    export.write_bytes(encoded(json.dumps([{"data": {"feedback_id": 1}, "annotations": [{"result": choice}]}])))
    FeedbackStore(tmp_project / review_command.DEFAULT_STORE).close()  # the service made it
    done = run_cli(tmp_project, "review", "label-studio-import", str(export), "--labels", "World,Sports", check=False)
    assert done.returncode == 1 and done.stderr == f"mlexp: error: {export}: {expected}\n", done.stderr


def test_a_binary_label_studio_import_names_the_file_to_export_again(tmp_project):
    """A zip of the export given by mistake: the fix said "point the dataset at the text file", and no dataset is
    involved in an import."""
    export = tmp_project / "project-1-at-2026-12-06.zip"
    with zipfile.ZipFile(export, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export.json", json.dumps([{"data": {"feedback_id": 1}, "annotations": []}]))
    FeedbackStore(tmp_project / review_command.DEFAULT_STORE).close()  # the service made it
    done = run_cli(tmp_project, "review", "label-studio-import", str(export), "--labels", "World,Sports", check=False)
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        f"mlexp: error: {export}: line 1: expected UTF-8 text, found a NUL byte: the file is binary, not the JSON "
        "Label Studio exports; export the annotations again from Label Studio as JSON (Export → JSON or JSON_MIN) "
        f"and import that file in place of {export}\n"
    )
