"""Recipes by name: fit one on a solution's interactions, save it, load it back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from mlexp.data.personalize_schema import Schema
from mlexp.errors import ConfigError, DataError
from mlexp.tasks.recommendation import metadata_hybrid
from mlexp.tasks.recommendation.catalog import Catalog
from mlexp.tasks.recommendation.config import ALS, Hybrid
from mlexp.tasks.recommendation.item_similarity import ItemSimilarity
from mlexp.tasks.recommendation.popularity import Popularity
from mlexp.tasks.recommendation.user_personalization import UserPersonalization

SIDES = {"users": "Users", "items": "Items", "interactions": "Interactions"}
# which recipes read metadata: the others train on interactions alone, as in Personalize
USES_METADATA = {"metadata_hybrid"}
# each known user's latest training interactions, saved with the model: where the service starts them from
HISTORY_FILE = "histories.parquet"
# CreateSolution's event filters, saved with the model so the service applies them to recorded events too
EVENT_FILTERS = ("event_type", "event_value_threshold")


def chosen_fields(features: DictConfig, schemas: dict[str, Schema]) -> dict[str, list[str]]:
    """features.users/items/interactions checked against the schemas; null means every metadata field."""
    out: dict[str, list[str]] = {}
    for side, dataset_type in SIDES.items():
        schema = schemas.get(dataset_type)
        available = schema.metadata_fields if schema else []
        outcomes: list[str] = []
        if dataset_type == "Interactions" and schema is not None:
            # context is what is known before the event (device, location, source: categorical); a number such
            # as WATCH_SECONDS is the event's outcome, which the service never has when it is asked
            outcomes = [f for f in available if f == "EVENT_VALUE" or not schema.field(f).categorical]
            available = [f for f in available if f not in outcomes]
        wanted = features[side]
        names = list(available) if wanted is None else list(wanted)
        for name in names:
            if name in outcomes:
                raise ConfigError(
                    f"features.{side}: {name!r} is an outcome of the event (known only after it), not context "
                    f"the service has when asked; choose among: {', '.join(available) or '(none)'}"
                )
            if name not in available:
                raise ConfigError(
                    f"features.{side}: {name!r} is not a metadata field of the {dataset_type} schema; "
                    f"choose among: {', '.join(available) or '(none: no ' + dataset_type + ' dataset)'}"
                )
        out[side] = names
    return out


def threads(cfg: DictConfig) -> int:
    """Library threads from compute.num_threads (0: one, the fastest on a shared two-core machine)."""
    return int(cfg.compute.num_threads) or 1


def fit(
    cfg: DictConfig, train: pd.DataFrame, catalog: Catalog, fields: dict[str, list[str]], on_epoch=None, epochs=None
):
    """Fit `model.recipe`; returns (model, epochs trained) — epochs only matter to the metadata model."""
    recipe = str(getattr(cfg.model.recipe, "value", cfg.model.recipe))
    if recipe == "popularity":
        return Popularity.fit(train, catalog), 1
    if recipe == "item_similarity":
        return ItemSimilarity.fit(train, catalog, cfg.model.similar_items), 1
    if recipe == "user_personalization":
        als = ALS(**cfg.model.user_personalization)
        return UserPersonalization.fit(train, catalog, als, cfg.seed, threads(cfg)), als.iterations
    return metadata_hybrid.fit(train, catalog, fields, Hybrid(**cfg.model.metadata_hybrid), cfg.seed, on_epoch, epochs)


def save(model: Any, folder: Path, fields: dict[str, list[str]], solution: Any = None) -> None:
    """The model, its catalog and recipe.json (recipe, features, the solution's event filters)."""
    folder.mkdir(parents=True, exist_ok=True)
    model.catalog.save(folder)
    model.save(folder)
    filters = {key: None if solution is None else solution.get(key) for key in EVENT_FILTERS}
    (folder / "recipe.json").write_text(
        json.dumps({"recipe": model.recipe, "features": fields, "solution": filters}, indent=2)
    )


def load(folder: Path) -> Any:
    """A saved model of any recipe."""
    if not (folder / "recipe.json").exists():
        raise DataError(f"{folder}/recipe.json is missing: run the train stage first")
    recipe = json.loads((folder / "recipe.json").read_text())["recipe"]
    catalog = Catalog.load(folder)
    if recipe == "metadata_hybrid":
        return metadata_hybrid.MetadataHybrid.load(folder, catalog)
    if recipe == "popularity":
        return Popularity.load(folder, catalog)
    if recipe == "item_similarity":
        return ItemSimilarity.load(folder, catalog)
    return UserPersonalization.load(folder, catalog)
