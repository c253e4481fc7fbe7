"""The post's XGBoost churn classifier: binary:logistic, validation AUC per boosting round."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import xgboost as xgb

from mlexp.tasks.churn_incentives.config import XGBoostChurn

MODEL_FILE = "model.json"  # XGBoost's own JSON format: loading it runs no code, unlike a pickle


def booster_params(model: XGBoostChurn, seed: int) -> dict[str, object]:
    params: dict[str, object] = {
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "max_depth": model.max_depth,
        "eta": model.eta,
        "gamma": model.gamma,
        "min_child_weight": model.min_child_weight,
        "subsample": model.subsample,
        "seed": seed,
    }
    if model.nthread > 0:
        params["nthread"] = model.nthread
    return params


def train(
    model: XGBoostChurn,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    feature_names: list[str],
    seed: int,
    on_round: Callable[[int, float, float], None],
) -> xgb.Booster:
    """Fit `num_round` trees; call on_round(round, train AUC, validation AUC) for each, from 1."""
    dtrain = xgb.DMatrix(train[0], label=train[1], feature_names=feature_names)
    dvalidation = xgb.DMatrix(validation[0], label=validation[1], feature_names=feature_names)
    history: dict[str, dict[str, list[float]]] = {}
    booster = xgb.train(
        booster_params(model, seed),
        dtrain,
        num_boost_round=model.num_round,
        evals=[(dtrain, "train"), (dvalidation, "validation")],
        evals_result=history,
        verbose_eval=False,
    )
    for number, (train_auc, validation_auc) in enumerate(
        zip(history["train"]["auc"], history["validation"]["auc"]), start=1
    ):
        on_round(number, train_auc, validation_auc)
    return booster


def predict(booster: xgb.Booster, features: np.ndarray, feature_names: list[str]) -> np.ndarray:
    """Churn probability of each row."""
    return np.asarray(booster.predict(xgb.DMatrix(features, feature_names=feature_names)), dtype=np.float64)


def save(booster: xgb.Booster, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MODEL_FILE
    partial = folder / f"{MODEL_FILE}.partial.json"
    booster.save_model(str(partial))
    partial.replace(path)
    return path


def load(folder: Path, nthread: int = 0) -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(str(folder / MODEL_FILE))
    if nthread > 0:
        booster.set_param({"nthread": nthread})
    return booster
