"""The churn-incentives workflow: Pre-processing, Training, Evaluation, Incentive analysis."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TypeVar

import numpy as np
from omegaconf import DictConfig, OmegaConf
from sklearn import metrics

from mlexp.data import telecom_churn
from mlexp.data.sources import expand
from mlexp.errors import DataError
from mlexp.tasks.churn_incentives import classifier, customers, features
from mlexp.tasks.churn_incentives.config import ChurnFeatures, Optimizer, XGBoostChurn
from mlexp.tracking import Tracker

Settings = TypeVar("Settings")


def settings(node: DictConfig, schema: type[Settings]) -> Settings:
    """A config node as its dataclass (enums included), whether it came from conf/ or params.yaml."""
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), node))  # type: ignore[return-value]


def _plots(cfg: DictConfig) -> Path:
    folder = Path(cfg.paths.reports) / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def prepare(cfg: DictConfig, tracker: Tracker) -> None:
    """Load churn.txt rows (adding each customer's total spend), split them stratified, write the CSVs."""
    options = settings(cfg.preprocessing, ChurnFeatures)
    sources = expand(cfg.dataset.path, telecom_churn.SUFFIXES) if cfg.dataset.path else [telecom_churn.packaged_file()]
    frame = telecom_churn.load(cfg.dataset.path, cfg.dataset.n_rows, cfg.seed)
    parts = features.split(frame, options.validation_fraction, options.test_fraction, cfg.seed)
    encoding = features.Encoding.fit(parts["train"], options.categorical_columns, options.drop_columns)

    out = Path(cfg.paths.data)
    out.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        customers.write_csv(part, customers.split_path(cfg, name))
    encoding.save(out / customers.ENCODING_FILE)

    tracker.log_parameters(
        {"validation_fraction": options.validation_fraction, "test_fraction": options.test_fraction, "rows": len(frame)}
    )
    for source in sources:
        tracker.log_input("raw data" if len(sources) == 1 else f"raw data: {source.name}", "text/csv", source)
    for name in parts:
        tracker.log_output(f"{name} split", "text/csv", customers.split_path(cfg, name))
    tracker.log_artifact(out / customers.ENCODING_FILE, name="preprocessors", media_type="application/json")
    tracker.log_metrics({f"rows_{name}": len(part) for name, part in parts.items()})
    tracker.log_metric("churn_rate", float(frame[telecom_churn.LABEL].mean()))


def train(cfg: DictConfig, tracker: Tracker) -> None:
    """Fit XGBoost on the training split; log train and validation AUC of every round (`val_auc`)."""
    model = settings(cfg.model, XGBoostChurn)
    encoding = customers.encoding(cfg)
    splits = {name: customers.read_split(cfg, name) for name in ("train", "validation")}
    data = {name: (encoding.transform(frame), features.labels(frame)) for name, frame in splits.items()}
    tracker.log_parameters({**classifier.booster_params(model, cfg.seed), "num_round": model.num_round})
    tracker.log_input("train split", "text/csv", customers.split_path(cfg, "train"))
    tracker.log_input("validation split", "text/csv", customers.split_path(cfg, "validation"))

    rounds: list[tuple[int, float, float]] = []

    def on_round(number: int, train_auc: float, validation_auc: float) -> None:
        rounds.append((number, train_auc, validation_auc))
        tracker.log_metrics({"train_auc": train_auc, "val_auc": validation_auc}, step=number)

    booster = classifier.train(model, data["train"], data["validation"], encoding.feature_names, cfg.seed, on_round)
    path = classifier.save(booster, Path(cfg.paths.models))
    tracker.log_output("model", "application/json", path)
    tracker.log_artifact(path, name="model")
    with (_plots(cfg) / "val_auc.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["round", "train_auc", "val_auc"])
        writer.writerows(rounds)


def evaluate(cfg: DictConfig, tracker: Tracker) -> None:
    """Score the test split: `auc`, accuracy, precision, recall, the ROC curve and the confusion matrices at
    model.decision_threshold (the post's 0.5) and at the cost-optimal cutoff the incentive analysis prints
    (chosen on the validation split)."""
    from mlexp.tasks.churn_incentives import charts, cutoff  # matplotlib: only the stages that draw import it

    model = settings(cfg.model, XGBoostChurn)
    threshold = model.decision_threshold
    scored = customers.scored(cfg, "test", model.nthread)
    churned, probability = scored.churned, scored.churn_probability
    if churned.all() or not churned.any():
        raise DataError(f"the test split has {int(churned.sum())} churners of {len(scored)}: AUC needs both classes")
    predicted = probability > threshold
    counts = metrics.confusion_matrix(churned, predicted, labels=[False, True])
    tracker.log_input("test split", "text/csv", customers.split_path(cfg, "test"))
    tracker.log_input("validation split", "text/csv", customers.split_path(cfg, "validation"))
    tracker.log_input("model", "application/json", Path(cfg.paths.models) / classifier.MODEL_FILE)
    auc = float(metrics.roc_auc_score(churned, probability))
    tracker.log_metrics(
        {
            "auc": auc,
            "accuracy": metrics.accuracy_score(churned, predicted),
            "precision": metrics.precision_score(churned, predicted, zero_division=0),
            "recall": metrics.recall_score(churned, predicted, zero_division=0),
            **{f"test_{name}": int(n) for name, n in zip(("tn", "fp", "fn", "tp"), counts.ravel())},
        }
    )
    fpr, tpr, _ = metrics.roc_curve(churned, probability)
    plots = _plots(cfg)
    np.savetxt(plots / "roc.csv", np.c_[fpr, tpr], delimiter=",", header="fpr,tpr", comments="", fmt="%.6f")
    program = model.incentives
    costs = cutoff.CostModel(program.cost_fn, program.value_tn, program.incentive)
    validation = customers.scored(cfg, "validation", model.nthread)
    chosen_on = (validation.churned, validation.churn_probability)
    cheapest = cutoff.analyse(
        churned, probability, scored.spend, costs, program.n_cutoffs, chosen_on=chosen_on
    ).min_cost_cutoff
    matrices = [
        charts.Matrix(counts, threshold, "model.decision_threshold"),
        charts.Matrix(
            metrics.confusion_matrix(churned, probability > cheapest, labels=[False, True]),
            cheapest,
            "cost-optimal on validation",
        ),
    ]
    for chart in (
        charts.roc_curve(fpr, tpr, auc, plots / "roc.png"),
        charts.confusion_matrices(matrices, plots / "confusion_matrix.png"),
    ):
        tracker.log_artifact(chart, name="plots", media_type="image/png")


def incentives(cfg: DictConfig, tracker: Tracker) -> None:
    """The post's incentive analysis: cost-based cutoff, budget, optimal program vs uniform vs none."""
    from mlexp.tasks.churn_incentives import incentive_analysis  # its charts import matplotlib

    incentive_analysis.run(cfg, tracker, settings(cfg.model, XGBoostChurn), settings(cfg.optimizer, Optimizer))
