"""Popularity-count recipe (aws-popularity-count): every user gets the most interacted-with items."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mlexp.tasks.recommendation.catalog import Catalog, UserState


def counts(train: pd.DataFrame, catalog: Catalog) -> np.ndarray:
    """Each catalog item's weighted interaction count."""
    index = train["ITEM_ID"].map(catalog.item_index).to_numpy()
    return np.bincount(index, weights=train["weight"].to_numpy(), minlength=len(catalog.item_ids)).astype("float32")


class Popularity:
    recipe = "popularity"
    ranks_every_user_alike = True  # its scores ignore the user's state: an evaluation builds none

    def __init__(self, catalog: Catalog, popularity: np.ndarray) -> None:
        self.catalog = catalog
        self.popularity = popularity

    @classmethod
    def fit(cls, train: pd.DataFrame, catalog: Catalog) -> Popularity:
        return cls(catalog, counts(train, catalog))

    def scores(self, states: list[UserState]) -> np.ndarray:
        return np.tile(self.popularity, (len(states), 1))

    def save(self, folder: Path) -> None:
        (folder / "popularity.json").write_text(json.dumps(self.popularity.tolist()))

    @classmethod
    def load(cls, folder: Path, catalog: Catalog) -> Popularity:
        return cls(catalog, np.array(json.loads((folder / "popularity.json").read_text()), dtype="float32"))
