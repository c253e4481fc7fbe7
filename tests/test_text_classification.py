"""`mlexp task=text_classification` end to end: corpus → reviews merge → training → holdout scores →
active-learning experiment → registry promotion by the holdout objective, and the served model."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from conftest import REPO, run_cli, seed_store, store_client, trials_of
from drawn_charts import Untracked, keep_figures, task_config
from mlexp.config import make_composable
from mlexp.tasks.text_classification import charts, corpora, stages
from mlexp.tasks.text_classification.classifier import TextClassifier
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


@pytest.fixture(scope="module")
def sampled_corpus(tmp_path_factory) -> tuple[str, str]:
    """The documents a TINY trial samples from 20 Newsgroups, as a user's label,text corpus (dataset.path and
    dataset.holdout_path): a stage reads these 800 in a blink, where it normalises all 14,000 messages first (2 CPU s,
    twice in a trial with active learning). The trials here read it; the packaged corpus is read here and by the DVC
    test's corpus stage."""
    folder = tmp_path_factory.mktemp("sampled_corpus")
    documents = corpora.load(task_config(TASK, *TINY))
    corpora.write_comprehend(documents.pool, folder / "train.csv")
    corpora.write_comprehend(documents.holdout, folder / "holdout.csv")
    return f"dataset.path={folder / 'train.csv'}", f"dataset.holdout_path={folder / 'holdout.csv'}"


@pytest.fixture(scope="module")
def two_trials(tmp_path_factory, empty_store, sampled_corpus):
    """Trial 1: naive Bayes, registered; trial 2: the linear model retrained with review decisions, registered."""
    project = tmp_path_factory.mktemp("text") / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    seed_store(project, empty_store)  # the store's first set-up is other tests' concern
    first = run_cli(
        project, f"task={TASK}", *TINY, *sampled_corpus, *ACTIVE, "model=tfidf_naive_bayes", "deploy=registry"
    )
    reviewed = project / "reviews.jsonl"
    decisions = [
        {
            "reviewer": "ana",
            "time": "2026-12-02T09:00:00Z",
            "text": "Quarterly profits beat forecasts, shares rose",
            "classifier": "news-classifier-demo",
            "predicted_class": "World",
            "score": 0.41,
            "final_label": "Business",
            "source": "implicit",
        },
        {
            "reviewer": "ana",
            "time": "2026-12-02T09:01:00Z",
            "text": "Selling my old bike, best offer",
            "classifier": "news-classifier-demo",
            "predicted_class": "Sports",
            "score": 0.62,
            "final_label": "Business",
            "source": "explicit",
        },
        {
            "reviewer": "ana",
            "time": "2026-12-02T09:02:00Z",
            "text": "unclear",
            "classifier": "news-classifier-demo",
            "predicted_class": "World",
            "score": 0.3,
            "final_label": None,
            "source": "implicit",
        },
    ]
    reviewed.write_text("".join(json.dumps(d) + "\n" for d in decisions))
    second = run_cli(project, f"task={TASK}", *TINY, *sampled_corpus, f"dataset.reviews={reviewed}", "deploy=registry")
    return project, first, second


def test_a_trial_records_every_stage_and_scores_the_holdout(two_trials):
    project, first, _ = two_trials
    [trial] = [t for t in trials_of(project, experiment=TASK) if t.params.get("model.smoothing") == "0.3"]
    assert trial.status == "FINISHED"
    assert trial.component_names == {
        "Data",
        "Pre-processing",
        "Training",
        "Evaluation",
        "Active learning",
        "Deployment",
    }
    assert trial.metrics["holdout_documents"] == 300 and trial.metrics["train_documents"] == 500
    assert trial.metrics["holdout_macro_f1"] > 0.6 and trial.metrics["holdout_accuracy"] > 0.8
    assert 0 <= trial.metrics["holdout_ece"] < 0.15
    assert trial.metrics["predict_one_us"] < 1000
    reports = run_folder(first) / "reports"
    metrics = json.loads((reports / "metrics.json").read_text())
    assert {"holdout_macro_f1", "f1_sci_tech", "f1_business", "al_best_label_fraction"} <= set(metrics)
    for chart in ("confusion_matrix.png", "reliability.png"):
        assert (reports / "plots" / chart).stat().st_size > 5000
    written = (run_folder(first) / "data" / "corpus" / "train.csv").read_text().splitlines()
    assert len(written) == 500 and written[0].split(",", 1)[0] in {"World", "Sports", "Business", "Sci/Tech"}


def test_the_active_learning_stage_charts_every_strategy(two_trials):
    project, first, _ = two_trials
    folder = run_folder(first) / "reports" / "active_learning"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["random_labels"] == 60 and set(summary["label_fraction"]) == {
        "least_confidence",
        "margin",
        "entropy",
    }
    assert (folder / "learning_curves.png").stat().st_size > 10000
    curves = (folder / "curves.csv").read_text().splitlines()
    assert curves[0] == "strategy,labels,accuracy,macro_f1,accuracy_min,accuracy_max" and len(curves) == 1 + 4 * 3
    # each strategy's line says how many labels it took to reach random's final accuracy, or that it did not
    for strategy, fraction in summary["label_fraction"].items():
        target = f"{strategy}: reaches random's final accuracy {summary['random_final_accuracy']:.4f}"
        if fraction is None or fraction != fraction:  # NaN: not reached in the rounds run
            assert f"{strategy}: does not reach random's final accuracy" in first.stdout
        else:
            assert f"{target} with {summary['labels_to_reach_it'][strategy]:.0f} labels" in first.stdout


def test_reliability_counts_each_bin_and_marks_the_review_threshold_with_its_share(two_trials, monkeypatch, tmp_path):
    _, first, _ = two_trials
    folder = run_folder(first)
    cfg = task_config(
        TASK, *TINY, f"paths.data={folder / 'data'}", f"paths.models={folder / 'models'}", f"paths.reports={tmp_path}",
        "service.threshold=0.7",
    )  # fmt: skip
    figures = keep_figures(monkeypatch, charts)
    stages.evaluate(cfg, Untracked())  # type: ignore[arg-type]
    holdout = corpora.read_written(folder / "data" / "corpus" / "holdout.csv")
    confidence = TextClassifier.load(folder / "models").predict_proba(holdout.text.tolist()).max(axis=1)
    reviewed = int((confidence < 0.7).sum())

    table = pd.read_csv(tmp_path / "plots" / "reliability.csv")
    assert list(table.columns) == ["bin_low", "bin_high", "count", "confidence", "accuracy"]
    assert table["count"].sum() == 300 and (table["count"] > 0).all()
    assert np.allclose(table["bin_high"] - table["bin_low"], 0.1)
    assert ((table["bin_low"] <= table["confidence"]) & (table["confidence"] <= table["bin_high"])).all()
    assert table.loc[table["bin_high"] <= 0.7 + 1e-9, "count"].sum() == reviewed  # 0.7 is a bin edge

    [ax] = figures["reliability.png"].axes
    assert [t.get_text() for t in ax.texts] == [f"n={n}" for n in table["count"]]
    labels = [line.get_label() for line in ax.lines] + [c.get_label() for c in ax.collections]
    assert "per bin" not in labels and len(set(labels)) == len(labels)
    [threshold] = [line for line in ax.lines if line.get_label().startswith("review threshold")]
    assert list(threshold.get_xdata()) == [0.7, 0.7]
    assert f"{reviewed / 300:.1%} of predictions ({reviewed} of 300) go to review" in threshold.get_label()


@pytest.mark.parametrize("repeats", [1, 2])
def test_learning_curves_mark_the_majority_class_and_where_each_strategy_reaches_the_target(
    repeats, sampled_corpus, monkeypatch, tmp_path
):
    cfg = task_config(
        TASK, *TINY, *sampled_corpus, *ACTIVE, f"active_learning.repeats={repeats}", f"paths.reports={tmp_path}"
    )
    figures = keep_figures(monkeypatch, charts)
    stages.active_learning(cfg, Untracked())  # type: ignore[arg-type]
    summary = json.loads((tmp_path / "active_learning" / "summary.json").read_text())
    documents = corpora.load(cfg)
    majority = (documents.holdout.label == documents.pool.label.value_counts().idxmax()).mean()
    assert summary["majority_class_accuracy"] == pytest.approx(majority)

    accuracy = figures["learning_curves.png"].axes[0]
    [floor] = [line for line in accuracy.lines if line.get_label().startswith("majority class")]
    assert list(floor.get_ydata()) == pytest.approx([majority] * 2)
    marks = {line.get_label(): line for line in accuracy.lines if " reaches it with " in line.get_label()}
    reached = {s: n for s, n in summary["labels_to_reach_it"].items() if n == n}
    assert set(marks) == {f"{s} reaches it with {n:.0f} labels" for s, n in reached.items()}
    for strategy, needed in reached.items():
        mark = marks[f"{strategy} reaches it with {needed:.0f} labels"]
        assert (mark.get_xdata()[0], mark.get_ydata()[0]) == pytest.approx((needed, summary["random_final_accuracy"]))
    # strategies that reach it with the same labels draw rings one inside the other, not one over the other
    assert len({mark.get_markersize() for mark in marks.values()}) == len(marks)
    # the repeats' range: one band per strategy, none for a single run
    assert len(accuracy.collections) == (4 if repeats > 1 else 0)
    curves = pd.read_csv(tmp_path / "active_learning" / "curves.csv")
    assert (curves["accuracy_min"] <= curves["accuracy"] + 1e-12).all()
    assert ((curves["accuracy_max"] > curves["accuracy_min"]).any()) == (repeats > 1)


def test_reviews_are_merged_and_the_better_model_holds_the_champion_alias(two_trials):
    project, first, second = two_trials
    assert "training set: 502 documents (2 reviewed, 0 corrections)" in second.stdout
    trials = sorted(trials_of(project, experiment=TASK), key=lambda t: t.name)
    scores = [t.metrics["holdout_macro_f1"] for t in trials]
    client = store_client(project)
    champion = client.get_model_version_by_alias(TASK, "champion")
    assert int(champion.version) == 1 + scores.index(max(scores))
    # the second trial scored the champion it competed with on the same holdout
    assert trials[1].metrics["champion_holdout_macro_f1"] == pytest.approx(scores[0])
    assert ("registered models:/text_classification@champion (version 2" in second.stdout) == (scores[1] > scores[0])


def _deploy_config(project: Path, monkeypatch) -> DictConfig:
    """The project's `deploy=local` config, as its service composes it, reading the project's own store."""
    monkeypatch.setenv("MLEXP_ROOT", str(project))
    for name in [k for k in os.environ if k.startswith("MLFLOW_")]:
        monkeypatch.delenv(name)
    make_composable()
    with initialize_config_dir(config_dir=str(project / "conf"), version_base=None):
        return compose("config", overrides=[f"task={TASK}", "deploy=local"])


def test_the_service_loads_the_champion_and_the_best_trial(two_trials, monkeypatch):
    project, _, _ = two_trials
    from mlexp.tasks.text_classification.served_model import load_served_model, served_model_probe

    cfg = _deploy_config(project, monkeypatch)
    model, label = load_served_model(cfg, "champion")
    version = store_client(project).get_model_version_by_alias(TASK, "champion").version
    assert label == f"text_classification v{version}" == served_model_probe(cfg, "champion")()
    assert model.labels == ["World", "Sports", "Business", "Sci/Tech"]
    assert model.predict_one("The goalkeeper saved a penalty in the final minute")[0] == "Sports"
    best, best_label = load_served_model(cfg, "best")
    assert best_label.startswith("trial ") and best.labels == model.labels


def test_deploy_source_a_trials_name_is_told_its_run_id(two_trials, monkeypatch):
    # deploy.source=<the name compare lists> said only "no trial run with a trained text classifier has this id"
    project, _, _ = two_trials
    from mlexp.errors import DataError
    from mlexp.tasks.text_classification.served_model import load_served_model

    cfg = _deploy_config(project, monkeypatch)
    trial = trials_of(project, experiment=TASK)[0]
    with pytest.raises(DataError) as named:
        load_served_model(cfg, trial.name)
    assert str(named.value) == (
        f"deploy.source={trial.name}: {trial.name} is a trial's name, deploy.source takes its run id: "
        f"deploy.source={trial.run_id}"
    )
    assert load_served_model(cfg, trial.run_id)[1] == f"trial {trial.name}"  # the id it names serves
    with pytest.raises(DataError, match=r"^deploy.source=nosuch: no trial run with a trained model has this id; "):
        load_served_model(cfg, "nosuch")


def test_the_active_learning_sweep_ranks_its_trials_by_the_label_fraction(monkeypatch):
    """The active-learning sweep trains no model to promote: its objective is al_best_label_fraction (minimised),
    so the sweep names a best trial; every other run keeps holdout_macro_f1."""
    from mlexp.config.schema import objective_direction

    monkeypatch.setenv("MLEXP_ROOT", str(REPO))
    make_composable()
    found = {}
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        for sweep in ("none", "text_classification_active_learning", "text_classification_models"):
            cfg = compose("config", overrides=[f"task={TASK}", f"sweep={sweep}"])
            found[sweep] = (cfg.task.objective.metric, objective_direction(cfg))
    assert found == {
        "none": ("holdout_macro_f1", "maximize"),
        "text_classification_active_learning": ("al_best_label_fraction", "minimize"),
        "text_classification_models": ("holdout_macro_f1", "maximize"),
    }


def test_a_champion_that_wins_on_this_holdout_is_not_replaced(two_trials, sampled_corpus):
    """The champion's registered figure came from another holdout (here: made 0.0); re-scored on this trial's
    holdout it beats a weak challenger, so the challenger is not registered although 0.0 is easy to beat."""
    project, _, _ = two_trials
    client = store_client(project)
    holder = client.get_model_version_by_alias(TASK, "champion")
    for tag in ("mlexp.objective_value", "holdout_macro_f1"):
        client.set_model_version_tag(TASK, holder.version, tag, "0.0")
    versions = len(client.search_model_versions(f"name = '{TASK}'"))
    weak = run_cli(
        project, f"task={TASK}", *TINY[1:], *sampled_corpus, "dataset.n_rows=60", "model=tfidf_naive_bayes",
        "deploy=registry",
    )  # fmt: skip
    assert "selection: not registered: champion text_classification v" in weak.stdout
    assert client.get_model_version_by_alias(TASK, "champion").version == holder.version
    assert len(client.search_model_versions(f"name = '{TASK}'")) == versions
    [challenger] = [t for t in trials_of(project, experiment=TASK) if t.metrics.get("train_documents") == 60]
    assert challenger.status == "FINISHED"
    assert challenger.metrics["holdout_macro_f1"] < challenger.metrics["champion_holdout_macro_f1"]


class _Registry(BaseHTTPRequestHandler):
    """A tracking server on loopback whose registry answers every request with `answer` (status, MLflow error)."""

    answer: tuple[int, str] = (404, "RESOURCE_DOES_NOT_EXIST")

    def do_GET(self) -> None:
        status, code = self.answer
        body = json.dumps({"error_code": code, "message": code}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("answer", "no_champion"), [((404, "RESOURCE_DOES_NOT_EXIST"), True), ((403, "PERMISSION_DENIED"), False)]
)
def test_selection_takes_only_a_missing_entry_for_no_champion_yet(tmp_path, capsys, answer, no_champion):
    """A registry that refuses or fails is no verdict: taken for 'no champion yet', the trial would register its
    model as the champion over one it never compared with."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "holdout.csv").write_text("label,text\nSports,cricket\n")
    handler = type("Registry", (_Registry,), {"answer": answer})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    tracker = SimpleNamespace(client=MlflowClient(tracking_uri=uri, registry_uri=uri))
    cfg = task_config(TASK, f"paths.data={tmp_path}")
    try:
        if no_champion:
            assert stages.champion_keeps_the_alias(cfg, tracker, 0.9) is False  # type: ignore[arg-type]
            assert "selection: no champion yet" in capsys.readouterr().out
        else:
            with pytest.raises(MlflowException, match="PERMISSION_DENIED"):
                stages.champion_keeps_the_alias(cfg, tracker, 0.9)  # type: ignore[arg-type]
            assert "no champion yet" not in capsys.readouterr().out
    finally:
        server.shutdown()


def test_the_first_local_deploy_of_a_fresh_project_waits_for_the_store(tmp_project):
    """On a fresh project the service's registry look-up must not race the tracker's set-up of mlflow.db: the
    command fails only because there is no champion yet, with the one-line fix, not with a schema migration error.
    (The check before the trial now answers first; this keeps the deploy stage's own answer from regressing if it
    goes.)"""
    done = run_cli(tmp_project, f"task={TASK}", "stage=deploy", "deploy=local", "deploy.port=0", check=False)
    assert done.returncode != 0
    assert "has no alias 'champion'" in done.stderr and "deploy.source=trial|best" in done.stderr
    assert "migration" not in done.stderr and "OperationalError" not in done.stderr


def test_a_stage_run_alone_says_where_its_reports_are_and_where_to_look_next(tmp_project, sampled_corpus):
    # it ended with only "stage active_learning done."
    done = run_cli(tmp_project, f"task={TASK}", "stage=active_learning", *TINY, *sampled_corpus, *ACTIVE)
    lines = done.stdout.splitlines()
    closing = next(i for i, line in enumerate(lines) if line.startswith("stage active_learning done."))
    where = re.fullmatch(r"stage active_learning done\.  \(reports: (.+)\)", lines[closing])
    assert where, lines[closing:]
    folder = Path(where[1])
    assert folder.name == "active_learning" and (folder / "learning_curves.png").is_file()
    assert lines[closing + 1] == f"  compare trials:  mlexp compare task={TASK}"
    assert any(line.startswith("MLflow UI: ") for line in lines[closing + 2 :]), done.stdout


@pytest.mark.slow
def test_dvc_repro_retrains_on_new_review_decisions(tmp_path, empty_store):
    """A JSONL file of decisions in reviews/text_classification/ makes `dvc repro` rerun prepare (not corpus), and
    train.csv then holds the reviewed texts with the reviewers' labels (a git + DVC copy of the project)."""
    import yaml

    from dvc_copy import copy_project, dvc

    sizes = {TASK: {"dataset.n_rows": 200, "dataset.n_holdout": 100}}
    repo = copy_project(tmp_path / "repo", sizes)
    seed_store(repo, empty_store)
    target = "pipelines/text_classification/dvc.yaml:prepare"
    dvc(repo, "repro", target)
    train_csv = repo / "data" / TASK / "train.csv"
    assert len(train_csv.read_text().splitlines()) == 200
    decisions = [
        {"reviewer": "ana", "time": "2026-12-02T09:00:00Z", "text": "Cricket World Cup final tonight",
         "final_label": "Sports", "predicted_class": "World", "score": 0.41, "source": "implicit"},
        {"reviewer": "ana", "time": "2026-12-02T09:01:00Z", "text": "Shares rose after the quarterly profits",
         "final_label": "Business", "predicted_class": "Sci/Tech", "score": 0.38, "source": "explicit"},
    ]  # fmt: skip
    (repo / "reviews" / TASK / "reviews.jsonl").write_text("".join(json.dumps(d) + "\n" for d in decisions))
    # the reviews are all that changed since the first repro: so it left both stages up to date (no status call of
    # its own, a second of dvc start-up), and the new file alone makes prepare stale
    status = yaml.safe_load(dvc(repo, "status", "--json", target).stdout)
    assert status == {target: [{"changed deps": {"reviews/text_classification": "modified"}}]}, status
    again = dvc(repo, "repro", target)
    assert "Running stage 'pipelines/text_classification/dvc.yaml:prepare'" in again.stdout, again.stdout
    assert "Running stage 'pipelines/text_classification/dvc.yaml:corpus'" not in again.stdout
    assert "202 documents (2 reviewed" in again.stdout
    rows = train_csv.read_text().splitlines()
    assert len(rows) == 202
    assert "Sports,cricket world cup final tonight" in rows
    assert "Business,shares rose after the quarterly profits" in rows


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_the_active_learning_sweep_runs_one_trial_per_round_size(tmp_project, sampled_corpus):
    """The README's `mlexp -m task=text_classification sweep=text_classification_active_learning`, tiny."""
    # what is checked is one finished trial per round size with its al_* metrics and columns, not how well the
    # learner learns: one round each, word n-grams alone and few SGD epochs save 3 CPU s of fitting
    done = run_cli(tmp_project, "-m", f"task={TASK}", "sweep=text_classification_active_learning", *TINY,
                   *sampled_corpus, "active_learning.rounds=1", "active_learning.repeats=1", "active_learning.epochs=5",
                   "model.char_ngrams=[0,0]")  # fmt: skip
    trials = trials_of(tmp_project, experiment=TASK)
    assert sorted(t.params["active_learning.labels_per_round"] for t in trials) == ["20", "40", "80"]
    assert all(t.status == "FINISHED" and "al_best_label_fraction" in t.metrics for t in trials)
    # the comparison table's columns are metrics its trials log (a whole trial's holdout scores were 8 empty ones)
    header = next(line for line in done.stdout.splitlines() if line.startswith("#  trial"))
    shown = header.split()[header.split().index("active_learning.labels_per_round") + 1 :]
    assert shown[:3] == ["al_best_label_fraction", "al_random_final_accuracy", "al_random_labels"], header
    assert all(metric in trial.metrics for metric in shown for trial in trials), header
