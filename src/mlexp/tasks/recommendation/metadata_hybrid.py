"""Metadata-aware recipe (HRNN-Coldstart analog): IDs, chosen metadata fields and recent history, in Gluon.

Training is a sampled softmax of each interaction's item against uniformly drawn items shared by the
batch; IDs are hidden at random (`id_dropout`) so that metadata alone places a user or item never seen in training. The
trained weights are exported to NumPy: recommending needs no MXNet and takes well under a millisecond.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from mlexp.tasks.recommendation.catalog import Catalog, UserState
from mlexp.tasks.recommendation.config import Hybrid
from mlexp.tasks.recommendation.tokens import UNKNOWN_ITEM, UNKNOWN_USER, Vocabulary, pad


class MetadataHybrid:
    recipe = "metadata_hybrid"

    def __init__(
        self,
        catalog: Catalog,
        vocabulary: Vocabulary,
        weights: dict[str, np.ndarray],
        history_length: int,
        history_decay: float = 1.0,
    ):
        self.catalog = catalog
        self.vocabulary = vocabulary
        self.weights = weights
        self.history_length = history_length
        self.history_decay = history_decay
        self.item_tokens = vocabulary.item_matrix(catalog.items)
        embed = weights["embed"]
        mask = (self.item_tokens > 0)[..., None]
        self.item_vectors = (embed[self.item_tokens] * mask).sum(axis=1)
        self.item_bias = (weights["bias"][self.item_tokens][..., 0] * mask[..., 0]).sum(axis=1)

    def query(self, state: UserState) -> np.ndarray:
        embed = self.weights["embed"]
        tokens = self.vocabulary.user_tokens(state.user_id, self.catalog.user_metadata(state.user_id))
        vector = embed[tokens].sum(axis=0) + embed[self.vocabulary.context_tokens(state.context)].sum(axis=0)
        if state.history:
            recent = state.history[-self.history_length :]
            # newest last: the latest event weighs 1, each older one history_decay times the next (as in training)
            weights = recency_weights(len(recent), self.history_decay)
            vector = vector + weights @ self.item_vectors[recent] / weights.sum()
        return np.asarray(vector + np.tanh(self.weights["mix_weight"] @ vector + self.weights["mix_bias"]))

    def scores(self, states: list[UserState]) -> np.ndarray:
        queries = np.stack([self.query(s) for s in states]) if states else np.zeros((0, self.item_vectors.shape[1]))
        return np.asarray(queries @ self.item_vectors.T + self.item_bias)

    def save(self, folder: Path) -> None:
        np.savez(folder / "hybrid_weights.npz", **self.weights)
        self.vocabulary.save(folder / "vocabulary.json")
        settings = {"history_length": self.history_length, "history_decay": self.history_decay}
        (folder / "hybrid.json").write_text(json.dumps(settings))

    @classmethod
    def load(cls, folder: Path, catalog: Catalog) -> MetadataHybrid:
        weights = dict(np.load(folder / "hybrid_weights.npz"))
        settings = json.loads((folder / "hybrid.json").read_text())
        vocabulary = Vocabulary.load(folder / "vocabulary.json")
        return cls(catalog, vocabulary, weights, settings["history_length"], settings.get("history_decay", 1.0))


def recency_weights(n: int, decay: float) -> np.ndarray:
    """Weights of n history items, oldest first: decay**(n-1), ..., decay, 1."""
    return np.power(float(decay), np.arange(n - 1, -1, -1, dtype="float64"))


def _training_rows(train: pd.DataFrame, catalog: Catalog, vocabulary: Vocabulary, history_length: int, decay: float):
    """Per interaction: the user's tokens, the context (the user's previous event's fields, as the service knows
    it when asked), the previous items with their recency weights, the item and the weight."""
    frame = train.sort_values(["USER_ID", "TIMESTAMP"], kind="stable").reset_index(drop=True)
    user = frame["USER_ID"].to_numpy()
    same_user = np.r_[False, user[1:] == user[:-1]]
    context_columns = []
    for name in vocabulary.fields["interactions"]:
        previous = frame[name].shift(1).where(same_user)  # the first event of a user has no context
        tokens = [vocabulary.value_tokens("interactions", name, v) for v in previous.tolist()]
        context_columns.append([vocabulary.ids(t)[:1] or [0] for t in tokens])
    context = np.array(context_columns, dtype="int32")[..., 0].T if context_columns else np.zeros((len(frame), 1))
    item = frame["ITEM_ID"].map(catalog.item_index).to_numpy()
    # a click and the watch that follows it are one choice: keep the first
    keep = ~(same_user & np.r_[False, item[1:] == item[:-1]])
    frame, item, user, context = frame[keep].reset_index(drop=True), item[keep], user[keep], context[keep]
    starts = np.r_[True, user[1:] != user[:-1]]
    position = np.arange(len(frame)) - np.maximum.accumulate(np.where(starts, np.arange(len(frame)), 0))
    history = np.full((len(frame), history_length), -1, dtype="int64")
    for back in range(1, history_length + 1):
        history[:, history_length - back] = np.where(position >= back, np.roll(item, back), -1)
    recency = np.where(history >= 0, recency_weights(history_length, decay)[None, :], 0).astype("float32")
    unique_users, user_row = np.unique(user, return_inverse=True)
    user_tokens = pad([vocabulary.user_tokens(u, catalog.user_metadata(u)) for u in unique_users])[user_row]
    weight = frame["weight"].to_numpy(dtype="float32")
    return user_tokens, context.astype("int32"), history, recency, item, weight


def fit(
    train: pd.DataFrame,
    catalog: Catalog,
    fields: dict[str, list[str]],
    settings: Hybrid,
    seed: int,
    on_epoch: Callable[[int, float, MetadataHybrid], float | None] | None = None,
    epochs: int | None = None,
) -> tuple[MetadataHybrid, int]:
    """Train; `on_epoch` returns a validation score for early stopping. Returns the best model and its epoch."""
    import mxnet as mx
    from mxnet import autograd, gluon, nd

    from mlexp.tasks.recommendation.hybrid_network import TwoTower

    frames = {"users": catalog.users, "items": catalog.items, "interactions": train}
    users_seen = sorted(train["USER_ID"].unique())
    items_seen = sorted(train["ITEM_ID"].unique())
    vocabulary = Vocabulary.build(fields, frames, users_seen, items_seen)
    user_tokens, context, history, recency, item, weight = _training_rows(
        train, catalog, vocabulary, settings.history_length, settings.history_decay
    )
    item_tokens = vocabulary.item_matrix(catalog.items)
    rng = np.random.default_rng(seed)

    mx.random.seed(seed)
    net = TwoTower(len(vocabulary.index), settings.embedding_size, settings.history_length)
    net.initialize(mx.init.Normal(0.05))
    net.zero_padding()
    net.hybridize(static_alloc=True)
    trainer = gluon.Trainer(
        net.collect_params(), "adam", {"learning_rate": settings.learning_rate, "lazy_update": True}
    )
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    best: tuple[float, int, MetadataHybrid] | None = None
    n, batch = len(item), settings.batch_size
    total_epochs = epochs or settings.epochs
    for epoch in range(1, total_epochs + 1):
        order = rng.permutation(n)
        total, count = 0.0, 0
        for start in tqdm(
            range(0, n - batch + 1 if n >= batch else 1, batch), desc=f"epoch {epoch}", leave=False, disable=None
        ):
            rows = order[start : start + batch]
            users = user_tokens[rows].copy()
            users[rng.random(len(rows)) < settings.id_dropout, 0] = UNKNOWN_USER
            positive = item_tokens[item[rows]].copy()
            positive[rng.random(len(rows)) < settings.id_dropout, 0] = UNKNOWN_ITEM
            # MXNet 1.9.1 crashes (segfault) on this graph when the logits are wider than the batch is long
            negatives = item_tokens[rng.integers(0, len(item_tokens), min(settings.negatives, len(rows) - 1))].copy()
            negatives[rng.random(len(negatives)) < settings.id_dropout, 0] = UNKNOWN_ITEM
            past = history[rows]
            past_tokens = np.where((past >= 0)[..., None], item_tokens[np.maximum(past, 0)], 0)
            with autograd.record():
                logits = net(
                    nd.array(users), nd.array(context[rows]), nd.array(past_tokens),
                    nd.array(recency[rows]), nd.array(positive), nd.array(negatives),
                )  # fmt: skip
                loss = loss_fn(logits, nd.zeros(len(rows)), nd.array(weight[rows]).reshape((-1, 1)))
            loss.backward()
            trainer.step(len(rows))
            net.zero_padding()
            total += float(loss.sum().asscalar())
            count += len(rows)
        model = MetadataHybrid(catalog, vocabulary, _export(net), settings.history_length, settings.history_decay)
        score = on_epoch(epoch, total / max(count, 1), model) if on_epoch else None
        if best is None or (score is not None and score > best[0]):
            best = (score if score is not None else 0.0, epoch, model)
        elif score is not None and epoch - best[1] >= settings.patience:
            break
        if score is None:
            best = (0.0, epoch, model)
    assert best is not None
    return best[2], best[1]


def _export(net) -> dict[str, np.ndarray]:
    return {
        "embed": net.embed.weight.data().asnumpy(),
        "bias": net.bias.weight.data().asnumpy(),
        "mix_weight": net.mix.weight.data().asnumpy(),
        "mix_bias": net.mix.bias.data().asnumpy(),
    }
