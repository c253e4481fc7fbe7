"""Item-to-item similarity recipe (SIMS analog): cosine similarity of items' co-occurrence in users' histories,
recency-weighted when the solution asks for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mlexp.tasks.recommendation import popularity
from mlexp.tasks.recommendation.catalog import Catalog, UserState
from mlexp.tasks.recommendation.ranking import top_items

# the latest item of a history counts most: each step back weighs this much less
HISTORY_DECAY = 0.8
# popularity breaks ties and answers users without history
POPULARITY_WEIGHT = 1e-3


def user_items(train: pd.DataFrame, catalog: Catalog) -> sp.csr_matrix:
    """Users × items matrix of summed weights."""
    users, user_index = np.unique(train["USER_ID"].to_numpy(), return_inverse=True)
    items = train["ITEM_ID"].map(catalog.item_index).to_numpy()
    shape = (len(users), len(catalog.item_ids))
    return sp.csr_matrix((train["weight"].to_numpy(dtype="float32"), (user_index, items)), shape=shape)


def _top_per_row(matrix: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """Each row's `keep` largest values, ties in catalogue order (ranking.top_items): co-occurrence counts tie
    often at the cut (563 of MovieLens-100K's 1,682 items at 100 neighbours), and which neighbour survives must not
    depend on a sort's internals."""
    matrix.sort_indices()  # a row's position order is then its catalogue order, the order top_items breaks ties in
    rows, cols, vals = [], [], []
    for row in range(matrix.shape[0]):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        if end == start:
            continue
        data, index = matrix.data[start:end], matrix.indices[start:end]
        best = top_items(data, keep)
        rows.append(np.full(len(best), row))
        cols.append(index[best])
        vals.append(data[best])
    if not rows:
        return sp.csr_matrix(matrix.shape, dtype="float32")
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=matrix.shape)


class ItemSimilarity:
    recipe = "item_similarity"

    def __init__(self, catalog: Catalog, similarity: sp.csr_matrix, popularity_: np.ndarray) -> None:
        self.catalog = catalog
        self.similarity = similarity.tocsr()
        self.popularity = popularity_

    @classmethod
    def fit(cls, train: pd.DataFrame, catalog: Catalog, similar_items: int) -> ItemSimilarity:
        """Cosine of items' columns in users × items, where a (user, item) pair counts its latest interaction's
        weight: 1 for every pair without recency weighting (plain co-occurrence), so with
        `solution.recency_half_life_days` a pair of items watched together recently counts more than an old one."""
        pairs = train.groupby(["USER_ID", "ITEM_ID"], sort=False)["weight"].max().reset_index()
        weighted = user_items(pairs, catalog)
        co = (weighted.T @ weighted).tocsr().astype("float32")
        degree = np.sqrt(np.asarray(co.diagonal()).ravel()) + 1e-9
        co.setdiag(0)
        co.eliminate_zeros()
        cosine = sp.diags(1 / degree) @ co @ sp.diags(1 / degree)
        counts = popularity.counts(train, catalog)
        return cls(catalog, _top_per_row(cosine.tocsr(), similar_items), counts / max(counts.max(), 1.0))

    def scores(self, states: list[UserState]) -> np.ndarray:
        out = np.tile(POPULARITY_WEIGHT * self.popularity, (len(states), 1))
        for row, state in enumerate(states):
            if not state.history:
                continue
            recent = state.history[-50:]
            decay = HISTORY_DECAY ** np.arange(len(recent))[::-1]
            out[row] += np.asarray(self.similarity[recent].T @ decay).ravel()
        return out

    def save(self, folder: Path) -> None:
        sp.save_npz(folder / "similarity.npz", self.similarity)
        np.save(folder / "popularity.npy", self.popularity)

    @classmethod
    def load(cls, folder: Path, catalog: Catalog) -> ItemSimilarity:
        return cls(catalog, sp.load_npz(folder / "similarity.npz"), np.load(folder / "popularity.npy"))
