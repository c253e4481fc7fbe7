"""Schemas of the abalone dataset, its preprocessing and the Gluon MLP."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from hydra.core.config_store import ConfigStore


class Activation(str, Enum):
    # the activations Gluon's Dense layer accepts by name
    relu = "relu"
    tanh = "tanh"
    sigmoid = "sigmoid"
    softrelu = "softrelu"
    softsign = "softsign"


@dataclass
class AbaloneDataset:
    # a UCI abalone.data CSV (with or without header); null: the packaged copy
    path: str | None = None
    # a seeded sample of this many rows; null: all 4,177
    n_rows: int | None = None


@dataclass
class AbalonePreprocessing:
    train_test_split: float = 0.8


@dataclass
class MLPRegressor:
    l1_size: int = 32
    l1_activation: Activation = Activation.relu
    l2_size: int = 16
    l2_activation: Activation = Activation.relu
    learning_rate: float = 0.01
    batch_size: int = 64
    epochs: int = 30


store = ConfigStore.instance()
store.store(group="schema/dataset", name="abalone", node=AbaloneDataset)
store.store(group="schema/preprocessing", name="abalone", node=AbalonePreprocessing)
store.store(group="schema/model", name="mlp_regressor", node=MLPRegressor)
