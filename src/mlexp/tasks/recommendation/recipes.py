"""Recipes by name: fit one on a solution's interactions, save it, load it back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from mlexp.data.personalize_schema import Schema
from mlexp.errors import ConfigError, DataError
from mlexp.tasks.recommendation import metadata_hybrid
from mlexp.tasks.recommendation.catalog import Catalog
from mlexp.tasks.recommendation.config import ALS, Hybrid
from mlexp.tasks.recommendation.feature_rules import SIDES, context_and_outcomes, feature_problem
from mlexp.tasks.recommendation.item_similarity import ItemSimilarity
from mlexp.tasks.recommendation.popularity import Popularity
from mlexp.tasks.recommendation.user_personalization import UserPersonalization

# which recipes read metadata: the others train on interactions alone, as in Personalize
USES_METADATA = {"metadata_hybrid"}
# each known user's latest training interactions, saved with the model: where the service starts them from
HISTORY_FILE = "histories.parquet"
# CreateSolution's event filters, saved with the model so the service applies them to recorded events too
EVENT_FILTERS = ("event_type", "event_value_threshold")


def chosen_fields(features: DictConfig, schemas: dict[str, Schema]) -> dict[str, list[str]]:
    """features.users/items/interactions checked against the schemas; null means every field it may name."""
    out: dict[str, list[str]] = {}
    for side, dataset_type in SIDES.items():
        schema, wanted = schemas.get(dataset_type), features[side]
        problem = feature_problem(side, wanted, schema)
        if problem:
            raise ConfigError(problem)
        out[side] = _every_field(side, schema) if wanted is None else [str(name) for name in wanted]
    return out


def _every_field(side: str, schema: Schema | None) -> list[str]:
    """What features.<side>=null means: every metadata field; on interactions, every context field."""
    if schema is None:
        return []
    return context_and_outcomes(schema)[0] if side == "interactions" else schema.metadata_fields


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


def settings(folder: Path) -> dict[str, Any]:
    """The saved model's recipe.json: its recipe, features and the solution's event filters."""
    return dict(json.loads((folder / "recipe.json").read_text()))


@dataclass(frozen=True)
class ServingInputs:
    """What the deploy=local service and the registered model read beside the model itself."""

    context_fields: list[str]  # features.interactions: the fields of a user's latest event a recommendation uses
    solution: dict[str, Any]  # the event filters recorded events must pass to join a history
    histories: pd.DataFrame  # each known user's latest training interactions (HISTORY_FILE)


def serving_inputs(folder: Path) -> ServingInputs:
    """The saved model's context fields, event filters and users' histories; a model saved without histories
    serves every user as a cold one."""
    saved = settings(folder)
    history = folder / HISTORY_FILE
    empty = pd.DataFrame({"USER_ID": [], "ITEM_ID": [], "weight": []})
    histories = pd.read_parquet(history) if history.exists() else empty
    return ServingInputs(saved["features"]["interactions"], saved.get("solution") or {}, histories)


def load(folder: Path) -> Any:
    """A saved model of any recipe."""
    if not (folder / "recipe.json").exists():
        raise DataError(f"{folder}/recipe.json is missing: run the train stage first")
    recipe = settings(folder)["recipe"]
    catalog = Catalog.load(folder)
    if recipe == "metadata_hybrid":
        return metadata_hybrid.MetadataHybrid.load(folder, catalog)
    if recipe == "popularity":
        return Popularity.load(folder, catalog)
    if recipe == "item_similarity":
        return ItemSimilarity.load(folder, catalog)
    return UserPersonalization.load(folder, catalog)
