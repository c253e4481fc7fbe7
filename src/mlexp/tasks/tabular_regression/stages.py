"""The abalone workflow of the SageMaker Experiments post: Pre-processing, Training, Evaluation."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from mlexp.data import abalone
from mlexp.data.sources import expand
from mlexp.errors import DataError
from mlexp.tasks.tabular_regression import features
from mlexp.tasks.tabular_regression.config import MLPRegressor
from mlexp.tracking import Tracker


def _model_config(cfg: DictConfig) -> MLPRegressor:
    return MLPRegressor(**OmegaConf.to_container(cfg.model, resolve=True))  # type: ignore[arg-type]


def _read(path: Path) -> pd.DataFrame:
    """One Parquet file as pandas reads it; pd.read_parquet would import pyarrow.dataset (a tenth of a second)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).read().to_pandas()


def _processed(cfg: DictConfig, name: str) -> Path:
    path = Path(cfg.paths.data) / name
    if not path.exists():
        raise DataError(f"{path} is missing: run the prepare stage first (mlexp task={cfg.task.name} stage=prepare)")
    return path


def prepare(cfg: DictConfig, tracker: Tracker) -> None:
    """Split, one-hot encode Sex and scale (fitted on train only); write the processed data."""
    sources = expand(cfg.dataset.path, abalone.SUFFIXES) if cfg.dataset.path else [abalone.packaged_copy()]
    frame = abalone.load(cfg.dataset.path, cfg.dataset.n_rows, cfg.seed)
    if cfg.dataset.n_rows is not None and cfg.dataset.n_rows > len(frame):  # the param says more than was used
        print(f"notice: dataset.n_rows={cfg.dataset.n_rows}, and the data has {len(frame)} rows: all are used")
    split = cfg.preprocessing.train_test_split
    train, test = features.split(frame, split, cfg.seed)
    if train.empty or test.empty:
        empty = "training" if train.empty else "test"
        raise DataError(
            f"preprocessing.train_test_split={split} of {len(frame)} rows leaves the {empty} set empty; give more "
            "rows (dataset.n_rows, or a larger dataset.path) or a split nearer 0.5"
        )
    preprocessors = features.Preprocessors.fit(train)

    out = Path(cfg.paths.data)
    out.mkdir(parents=True, exist_ok=True)
    preprocessors.transform(train).to_parquet(out / "train.parquet", index=False)
    preprocessors.transform(test).to_parquet(out / "test.parquet", index=False)
    preprocessors.save(out / "preprocessors.json")

    tracker.log_parameters({"train_test_split": cfg.preprocessing.train_test_split, "rows": len(frame)})
    for source in sources:
        tracker.log_input("raw data" if len(sources) == 1 else f"raw data: {source.name}", "text/csv", source)
    tracker.log_output("preprocessed data", "application/x-parquet", out / "train.parquet")
    tracker.log_artifact(out / "preprocessors.json", name="preprocessors", media_type="application/json")
    tracker.log_metrics({"rows_train": len(train), "rows_test": len(test)})


def train(cfg: DictConfig, tracker: Tracker) -> None:
    """Fit the MLP; log the training loss of every epoch as the step metric `train_loss`."""
    from mlexp.tasks.tabular_regression import network  # MXNet: ~2 s a process that only prepares need not pay

    model = _model_config(cfg)
    train_path = _processed(cfg, "train.parquet")
    x, y = features.arrays(_read(train_path))
    tracker.log_parameters(OmegaConf.to_container(cfg.model, resolve=True))  # type: ignore[arg-type]
    tracker.log_input("preprocessed data", "application/x-parquet", train_path)

    losses: list[tuple[int, float]] = []

    def on_epoch(epoch: int, loss: float) -> None:
        losses.append((epoch, loss))
        tracker.log_metric("train_loss", loss, step=epoch)

    net = network.train(model, x, y, cfg.seed, on_epoch)
    if not np.isfinite(losses[-1][1]):
        raise ValueError(f"training diverged (train_loss={losses[-1][1]}); lower model.learning_rate")
    folder = network.save(net, model, Path(cfg.paths.models))
    tracker.log_metric("final_train_loss", losses[-1][1])
    tracker.log_output("model", "application/x-mxnet-params", folder / "model.params")
    tracker.log_artifact(folder / "model.params", name="model")
    tracker.log_artifact(folder / "model.json", name="model")

    plots = Path(cfg.paths.reports) / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    with (plots / "train_loss.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "train_loss"])
        writer.writerows(losses)


def evaluate(cfg: DictConfig, tracker: Tracker) -> None:
    """Score the held-out split: `test_msle` (the objective) and `test_mae` in rings."""
    from mlexp.charts import predicted_vs_actual
    from mlexp.tasks.tabular_regression import network

    test_path = _processed(cfg, "test.parquet")
    x, y = features.arrays(_read(test_path))
    models = Path(cfg.paths.models)
    if not (models / "model.params").exists():
        raise DataError(f"{models}/model.params is missing: run the train stage first")
    predicted = network.predict(network.load(models), x)
    clipped = np.maximum(predicted, 0.0)
    tracker.log_input("test data", "application/x-parquet", test_path)
    tracker.log_input("model", "application/x-mxnet-params", models / "model.params")
    msle, mae = float(np.mean((np.log1p(clipped) - np.log1p(y)) ** 2)), float(np.mean(np.abs(predicted - y)))
    tracker.log_metric("test_msle", msle)
    tracker.log_metric("test_mae", mae)

    plots = Path(cfg.paths.reports) / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"actual": y, "predicted": predicted}).to_csv(plots / "predictions.csv", index=False)
    chart = predicted_vs_actual(
        y, predicted, plots / "predicted_vs_actual.png", scored_title(len(y), msle, mae), "rings"
    )
    tracker.log_artifact(chart, name="plots", media_type="image/png")


def scored_title(rows: int, msle: float, mae: float) -> str:
    """The predicted-vs-actual title: the split it plots and that split's scores, so the chart reads alone."""
    return f"Abalone rings: test split ({rows:,} rows)\nMSLE {msle:.4f}, MAE {mae:.2f} rings"
