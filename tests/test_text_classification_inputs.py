"""What text_classification says of inputs that hold nothing: a review path that names no file, a corpus file
without a row; and the columns its active-learning sweep's comparison table shows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from conftest import REPO, TEXT_TINY, run_cli, trials_of
from mlexp.config import make_composable
from mlexp.errors import DataError
from mlexp.tasks.text_classification import corpora, reviews
from mlexp.tasks.text_classification.config_rules import REVIEWS

TASK = "text_classification"
CLASSES = ["World", "Sports", "Business", "Sci/Tech"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root for relative paths (the default review folder is one), without a reviews/ folder yet."""
    monkeypatch.setenv("MLEXP_ROOT", str(tmp_path))
    return tmp_path


def test_only_the_default_review_folder_may_be_missing(project):
    assert not (project / REVIEWS).exists()
    # nothing reviewed yet: the default folder (however spelt) and null are no reviews
    for default in (REVIEWS, f"{REVIEWS}/", f"./{REVIEWS}", str(project / REVIEWS), None, ""):
        assert reviews.review_files(default) == [], default
    # a path the user gave that names nothing: one line naming it and the fix, not a training set without reviews
    with pytest.raises(DataError, match=r"^dataset.reviews=/tmp/x/none.jsonl: no such file or folder; give the review"):
        reviews.review_files("/tmp/x/none.jsonl")
    with pytest.raises(DataError, match=r"^dataset.reviews=reviews/other: no such file or folder \(/.*/other\)"):
        reviews.review_files("reviews/other")
    with pytest.raises(DataError, match=r"^dataset.reviews=reviews/\*.jsonl matches no file; .*dataset.reviews=null"):
        reviews.review_files("reviews/*.jsonl")
    # a folder that exists holds the decisions exported so far: none yet is no reviews, as for the default
    (project / "reviews" / "other").mkdir(parents=True)
    assert reviews.review_files("reviews/other") == []
    export = project / "reviews" / "other" / "a.jsonl"
    export.write_text('{"text": "rates cut", "final_label": "Business"}\n')
    assert reviews.review_files("reviews/other") == reviews.review_files("reviews/*/*.jsonl") == [export]
    assert reviews.read("reviews/other/a.jsonl", CLASSES, 100).rows.label.tolist() == ["Business"]


def test_a_corpus_file_without_a_row_is_named_not_blamed_on_the_classes(project):
    (project / "empty.csv").write_bytes(b"")
    with pytest.raises(DataError, match=r"^dataset.path=empty.csv: /.*/empty.csv has no rows; give dataset.path a CSV"):
        corpora.read_user_corpus("empty.csv", "auto", CLASSES)
    with pytest.raises(DataError, match=r"^dataset.holdout_path=/.*/empty.csv has no rows; give dataset.holdout_path"):
        corpora.read_user_corpus(str(project / "empty.csv"), "auto", CLASSES, "dataset.holdout_path")
    with pytest.raises(DataError, match=r"^dataset.holdout_path=test.csv does not exist; give a file, a folder or a"):
        corpora.read_user_corpus("test.csv", "auto", CLASSES, "dataset.holdout_path")
    (project / "parts").mkdir()
    for name in ("a.csv", "b.csv"):
        (project / "parts" / name).write_text("\n\n")  # blank lines only: no row either
    with pytest.raises(DataError, match=r"^dataset.path=parts: its 2 files \(a.csv, b.csv\) have no rows"):
        corpora.read_user_corpus("parts", "comprehend", CLASSES)
    # one empty file beside a file with rows is not the corpus' problem
    (project / "parts" / "c.csv").write_text("Business,rates cut again\n")
    assert corpora.read_user_corpus("parts", "auto", CLASSES).label.tolist() == ["Business"]


def test_a_line_of_spaces_is_blank_and_a_quoted_empty_value_is_a_row(project):
    # a line an editor shows empty (spaces or a tab left on it) was a row of one field: this AG News file was read as
    # Comprehend's format and refused at line 2 ("expected label,text")
    (project / "ag.csv").write_text('1,rates,cut again\n \t\n2,"goal,\nlate",won\n  \n3,"shares",up\n')
    corpus = corpora.read_user_corpus("ag.csv", "auto", CLASSES)
    assert corpus[["label", "text", "line"]].to_numpy().tolist() == [
        ["World", "rates cut again", 1],
        ["Sports", "goal,\nlate won", 3],
        ["Business", "shares up", 6],
    ]
    (project / "comprehend.csv").write_text('Business,rates cut\n""\n')
    with pytest.raises(DataError, match=r"comprehend.csv: line 2: expected label,text \(Comprehend's multi-class"):
        corpora.read_user_corpus("comprehend.csv", "auto", CLASSES)


def test_a_quote_left_open_in_a_large_file_names_its_line(project):
    # the quote opened on line 3 reads on to the end of the file, past the csv reader's limit: an unexplained
    # csv.Error "field larger than field limit (131072)"
    rows = [f"{1 + n % 4},title {n},{'word ' * 15}" for n in range(2000)]
    rows[2] = rows[2].replace(",word", ',"word', 1)
    (project / "ag.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError) as refused:
        corpora.read_user_corpus("ag.csv", "auto", CLASSES)
    assert str(refused.value) == (
        f"{project / 'ag.csv'}: line 3: a value runs past 131,072 characters, the most Python's csv reader takes: "
        "close a quote left open there, or shorten the value"
    )


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_a_trial_on_inputs_that_hold_nothing_fails_with_one_line_naming_them(tmp_project, tmp_path):
    """The walkthrough's two commands: each failed silently or with the wrong message; now one line: reviews that
    are not there before the trial opens (tests/test_input_paths.py), a corpus without rows with the trial FAILED."""
    missing = tmp_path / "x" / "none.jsonl"
    done = run_cli(tmp_project, f"task={TASK}", "dataset.n_rows=300", "dataset.n_holdout=200",
                   f"dataset.reviews={missing}", check=False)  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stdout + done.stderr
    assert lines[0].startswith(f"mlexp: error: dataset.reviews={missing}: no such file or folder ({missing});")
    assert "training set:" not in done.stdout  # nothing was trained without the reviews
    (tmp_project / "empty.csv").write_bytes(b"")
    done = run_cli(tmp_project, f"task={TASK}", "dataset.path=empty.csv", check=False)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stdout + done.stderr
    assert lines[0].startswith(f"mlexp: error: stage 'corpus' failed: dataset.path=empty.csv: {tmp_project}/empty.csv")
    assert "has no rows" in lines[0] and "no document of class" not in lines[0]
    assert [t.status for t in trials_of(tmp_project, experiment=TASK)] == ["FAILED"]


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_a_corpus_of_product_codes_trains_and_keeps_its_leading_zeros(tmp_project):
    """A text column of digits alone, which pandas would read as numbers (007 as 7): text is text, so the trial
    trains on it, and every stored split (what train and evaluate read) holds the codes as written."""
    rows = [f"World,00{n:03d}" for n in range(120)] + [f"Sports,9{n:04d}" for n in range(120)]
    (tmp_project / "codes.csv").write_text("\n".join(rows) + "\n")
    data = tmp_project / "data"
    run_cli(tmp_project, f"task={TASK}", "dataset.path=codes.csv", "dataset.labels=[World,Sports]",
            f"paths.data={data}", *TEXT_TINY)  # fmt: skip
    assert [t.status for t in trials_of(tmp_project, experiment=TASK)] == ["FINISHED"]
    written = set(rows)
    for split in ("corpus/train.csv", "corpus/holdout.csv", "train.csv"):
        stored = pd.read_csv(data / split, header=None, dtype=str, keep_default_na=False)
        assert len(stored) and {f"{label},{text}" for label, text in stored.itertuples(index=False)} <= written


def test_the_active_learning_sweep_shows_the_metrics_its_trials_log(monkeypatch):
    """Its trials run the active_learning stage alone: a whole trial's headline metrics (holdout scores, F1 per
    class, reviews) would be 8 empty columns of its comparison table; it shows the experiment's al_* metrics."""
    monkeypatch.setenv("MLEXP_ROOT", str(REPO))
    make_composable()
    found = {}
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        for overrides in (
            ["sweep=none"],
            ["sweep=text_classification_models"],
            ["sweep=text_classification_active_learning"],
            ["sweep=text_classification_active_learning", "active_learning.strategies=[random,margin]"],
        ):
            cfg = compose("config", overrides=[f"task={TASK}", *overrides])
            found[" ".join(overrides)] = list(cfg.task.headline_metrics)
    trial = ["holdout_accuracy", "holdout_ece", "f1_world", "f1_sports", "f1_business", "f1_sci_tech",
             "train_documents", "reviews_merged", "predict_one_us", "al_best_label_fraction"]  # fmt: skip
    assert found == {
        "sweep=none": trial,
        "sweep=text_classification_models": trial,
        "sweep=text_classification_active_learning": [
            "al_random_final_accuracy",
            "al_random_labels",
            "al_least_confidence_label_fraction",
            "al_margin_label_fraction",
            "al_entropy_label_fraction",
        ],
        "sweep=text_classification_active_learning active_learning.strategies=[random,margin]": [
            "al_random_final_accuracy",
            "al_random_labels",
            "al_margin_label_fraction",
        ],
    }
