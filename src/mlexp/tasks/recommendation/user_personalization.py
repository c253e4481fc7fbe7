"""User-personalization recipe: implicit ALS matrix factorisation (Hu, Koren & Volinsky 2008) with `implicit`.

A user's factors are solved from their history at recommendation time (the ALS user step), so events
recorded a moment ago move the next recommendation without retraining; a user without history gets
the popularity ranking.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mlexp.tasks.recommendation import item_similarity, popularity
from mlexp.tasks.recommendation.catalog import Catalog, UserState
from mlexp.tasks.recommendation.config import ALS


class UserPersonalization:
    recipe = "user_personalization"

    def __init__(self, catalog: Catalog, item_factors: np.ndarray, popularity_: np.ndarray, settings: dict) -> None:
        self.catalog = catalog
        self.item_factors = item_factors.astype("float64")
        self.popularity = popularity_
        self.settings = settings
        self.gram = self.item_factors.T @ self.item_factors

    @classmethod
    def fit(cls, train: pd.DataFrame, catalog: Catalog, als: ALS, seed: int, threads: int) -> UserPersonalization:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        matrix = item_similarity.user_items(train, catalog)
        matrix.data = (als.alpha * matrix.data).astype("float32")
        # implicit's own threads do the work; BLAS threads inside them thrash. Limiting BLAS before the model is
        # built is what implicit asks for (it warns about a multi-threaded OpenBLAS when constructed otherwise).
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=als.factors,
                regularization=als.regularization,
                iterations=als.iterations,
                num_threads=threads,
                random_state=seed,
                calculate_training_loss=False,
            )
            model.fit(matrix, show_progress=False)
        counts = popularity.counts(train, catalog)
        settings = {"alpha": als.alpha, "regularization": als.regularization}
        return cls(catalog, np.asarray(model.item_factors), counts / max(counts.max(), 1.0), settings)

    def user_factors(self, state: UserState) -> np.ndarray:
        """ALS's user step: (YᵀY + Yᵀ(Cᵤ − I)Y + λI)⁻¹ YᵀCᵤpᵤ from the history's confidences."""
        items = np.array(state.history)
        confidence = np.bincount(items, weights=np.array(state.weights) * self.settings["alpha"])
        touched = np.nonzero(confidence)[0]
        y = self.item_factors[touched]
        c = confidence[touched]
        a = self.gram + (y.T * c) @ y + self.settings["regularization"] * np.eye(y.shape[1])
        return np.asarray(np.linalg.solve(a, (y.T * (1 + c)).sum(axis=1)))

    def scores(self, states: list[UserState]) -> np.ndarray:
        out = np.tile(1e-3 * self.popularity, (len(states), 1))
        for row, state in enumerate(states):
            if state.history:
                out[row] += self.item_factors @ self.user_factors(state)
        return out

    def save(self, folder: Path) -> None:
        np.save(folder / "item_factors.npy", self.item_factors)
        np.save(folder / "popularity.npy", self.popularity)
        (folder / "als.json").write_text(json.dumps(self.settings))

    @classmethod
    def load(cls, folder: Path, catalog: Catalog) -> UserPersonalization:
        settings = json.loads((folder / "als.json").read_text())
        return cls(catalog, np.load(folder / "item_factors.npy"), np.load(folder / "popularity.npy"), settings)
