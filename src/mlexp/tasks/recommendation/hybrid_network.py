"""The metadata-aware network in MXNet Gluon: a user tower and an item tower over one token embedding.

An item's vector is the sum of its ID's and metadata values' embeddings; a user's is the sum of their
ID's and metadata's, the recency-weighted mean vector of the items they interacted with last (the session memory that
lets a new user's first clicks place them, as HRNN-Coldstart does) and the event's context, then a
residual tanh layer. Score = user · item + the item tokens' biases.
"""

from __future__ import annotations

from typing import Any

from mxnet import gluon


class TwoTower(gluon.HybridBlock):
    def __init__(self, vocabulary_size: int, embedding_size: int, history_length: int) -> None:
        super().__init__()
        self.history_length = history_length
        with self.name_scope():
            # row-sparse gradients: a step updates only the rows its batch touched (with Adam's lazy update),
            # not the whole table, whose size grows with the number of users
            self.embed = gluon.nn.Embedding(vocabulary_size, embedding_size, sparse_grad=True)
            self.bias = gluon.nn.Embedding(vocabulary_size, 1, sparse_grad=True)
            self.mix = gluon.nn.Dense(embedding_size, activation="tanh", flatten=False)

    # token 0 pads: its rows are kept at zero (`zero_padding` after every step), so plain sums need no mask,
    # and MXNet's CPU broadcast-multiply of a mask was three quarters of a step's time
    # the sum over a row's tokens as a batched matrix product (ones · embeddings): MXNet's CPU `sum` over an
    # inner axis is three times slower. `linalg.gemm2` would do it in one call but crashes MXNet 1.9.1 when
    # two of its inputs in one graph have the same shape; batch_dot on 3-D tensors does not.
    def _tower(self, F: Any, tokens: Any) -> Any:
        """(rows, L) tokens -> (rows, d): each row's summed embeddings."""
        ones = F.expand_dims(F.ones_like(tokens), axis=1)
        return F.reshape(F.batch_dot(ones, self.embed(tokens)), shape=(0, -1))

    def _bias(self, F: Any, tokens: Any) -> Any:
        return F.sum(F.squeeze(self.bias(tokens), axis=-1), axis=-1)

    def zero_padding(self) -> None:
        """Reset the padding token's embedding and bias to zero (after each optimiser step)."""
        for parameter in (self.embed.weight, self.bias.weight):
            parameter.data()[0] = 0

    def hybrid_forward(
        self, F: Any, user: Any, context: Any, history: Any, history_mask: Any, positive: Any, negatives: Any
    ) -> Any:
        """Logits of each row's positive item (column 0) and of the shared sampled negatives (columns 1..S)."""
        # padded history slots are all-padding items: zero vectors, so the sum over slots needs no mask either
        # history_mask holds each slot's recency weight (0 for an empty slot): a weighted mean, newest counting most,
        # as a batched matrix product (weights · item vectors) for the reason given above
        per_item = self._tower(F, F.reshape(history, shape=(-3, 0)))  # (B·H, d)
        per_item = F.reshape(per_item, shape=(-4, -1, self.history_length, 0))  # (B, H, d)
        pooled = F.reshape(F.batch_dot(F.expand_dims(history_mask, axis=1), per_item), shape=(0, -1))
        pooled = F.broadcast_div(pooled, F.expand_dims(F.sum(history_mask, axis=1) + 1e-6, axis=-1))
        query = self._tower(F, user) + pooled + self._tower(F, context)
        query = query + self.mix(query)
        # one positive per row and negatives shared by the batch: cost linear in the batch size
        own = F.sum(query * self._tower(F, positive), axis=1, keepdims=True) + F.expand_dims(self._bias(F, positive), 1)
        shared = F.dot(query, self._tower(F, negatives), transpose_b=True)
        return F.concat(own, F.broadcast_add(shared, F.expand_dims(self._bias(F, negatives), axis=0)), dim=1)
