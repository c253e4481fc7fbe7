"""The post's two-hidden-layer regressor, in MXNet Gluon, trained with Adam on MSLE."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from tqdm import tqdm

from mlexp.tasks.tabular_regression.config import MLPRegressor


def build(model: MLPRegressor) -> gluon.nn.HybridSequential:
    net = gluon.nn.HybridSequential()
    # Keras' kernel_initializer='normal' in the post: N(0, 0.05)
    init = mx.init.Normal(0.05)
    net.add(
        gluon.nn.Dense(model.l1_size, activation=str(_value(model.l1_activation)), weight_initializer=init),
        gluon.nn.Dense(model.l2_size, activation=str(_value(model.l2_activation)), weight_initializer=init),
        gluon.nn.Dense(1, weight_initializer=init),
    )
    return net


def _value(activation: object) -> object:
    return getattr(activation, "value", activation)


def msle(pred: mx.nd.NDArray, target: mx.nd.NDArray) -> mx.nd.NDArray:
    """Mean squared logarithmic error per sample, clipped at 0 like Keras' MSLE."""
    eps = 1e-7
    log_pred = mx.nd.log(mx.nd.maximum(pred.reshape((-1,)), eps) + 1.0)
    log_true = mx.nd.log(mx.nd.maximum(target.reshape((-1,)), eps) + 1.0)
    return (log_pred - log_true) ** 2


def train(
    model: MLPRegressor,
    features: np.ndarray,
    target: np.ndarray,
    seed: int,
    on_epoch: Callable[[int, float], None],
) -> gluon.nn.HybridSequential:
    """Fit the network; call on_epoch(epoch, mean train loss) after each epoch."""
    mx.random.seed(seed)
    net = build(model)
    net.initialize(ctx=mx.cpu())
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": model.learning_rate})
    dataset = gluon.data.ArrayDataset(features, target)
    loader = gluon.data.DataLoader(dataset, batch_size=model.batch_size, shuffle=True, last_batch="keep")
    for epoch in tqdm(range(1, model.epochs + 1), desc="Training", unit="epoch", leave=False, disable=None):
        total, count = 0.0, 0
        for x, y in loader:
            with autograd.record():
                loss = msle(net(x), y)
            loss.backward()
            trainer.step(x.shape[0])
            total += float(loss.sum().asscalar())
            count += x.shape[0]
        on_epoch(epoch, total / count)
    return net


def predict(net: gluon.nn.HybridSequential, features: np.ndarray) -> np.ndarray:
    return np.asarray(net(mx.nd.array(features)).asnumpy()).reshape(-1)


def save(net: gluon.nn.HybridSequential, model: MLPRegressor, folder: Path) -> Path:
    """Write weights and the architecture needed to rebuild the network."""
    folder.mkdir(parents=True, exist_ok=True)
    net.save_parameters(str(folder / "model.params"))
    architecture = {k: str(_value(v)) if k.endswith("activation") else v for k, v in vars(model).items()}
    (folder / "model.json").write_text(json.dumps(architecture, indent=2))
    return folder


def load(folder: Path) -> gluon.nn.HybridSequential:
    architecture = json.loads((folder / "model.json").read_text())
    net = build(MLPRegressor(**architecture))
    net.load_parameters(str(folder / "model.params"), ctx=mx.cpu())
    net.hybridize()
    return net
