"""Task `recommendation`: Amazon Personalize-style datasets, recipes and metadata selection, with real-time events."""

import re

from mlexp.config.bounds import above, at_least, between
from mlexp.config.constraints import Constraint, leave_a_training_share
from mlexp.tasks import Plot, StageSpec, Task, register
from mlexp.tasks.recommendation import config  # noqa: F401  (registers the schemas)
from mlexp.tasks.recommendation.config import Source

# Personalize's floor before training (mlexp.data.personalize_datasets.MIN_USERS, not imported: it loads pandas)
MIN_USERS = 25


def objective_k(metric: str) -> int | None:
    """The k of an objective such as val_normalized_discounted_cumulative_gain_at_10 (None: no k)."""
    found = re.search(r"_at_(\d+)$", metric)
    return int(found.group(1)) if found else None


def ks_hold_objective_k(ks: list[int], metric: str) -> bool:
    """Whether the ks the metrics are computed at include the objective's own k."""
    k = objective_k(metric)
    return k is None or k in [int(v) for v in ks]


def ks_at_least_one(ks: list[int]) -> bool:
    return all(int(v) >= 1 for v in ks)


def threshold_has_event_type(event_value_threshold: float | None, event_type: str | None) -> bool:
    """CreateSolution's rule: an event value threshold applies to one event type."""
    return event_value_threshold is None or event_type is not None


def files_have_a_path(source: str, path: str | None) -> bool:
    return source != Source.files.value or path is not None


def platform_can_be_generated(source: str, n_users: int, n_videos: int) -> bool:
    """Whether the generated platform has videos to watch and enough users to pass Personalize's floor."""
    return source != Source.pulselive.value or (n_users >= MIN_USERS and n_videos >= 1)


CONSTRAINTS = (
    Constraint(
        ("preprocessing.validation_fraction", "preprocessing.test_fraction"),
        leave_a_training_share,
        "preprocessing.validation_fraction + preprocessing.test_fraction must be below 1, to leave a training period",
        "lower one of them (defaults 0.1 + 0.1)",
    ),
    Constraint(
        ("solution.event_value_threshold", "solution.event_type"),
        threshold_has_event_type,
        "an event value threshold needs solution.event_type (CreateSolution accepts an eventType, an eventType with "
        "an eventValueThreshold, or neither)",
        "add solution.event_type=<type>, or set solution.event_value_threshold=null",
    ),
    Constraint(
        ("model.ks", "task.objective.metric"),
        ks_hold_objective_k,
        "model.ks must hold the k of the objective metric (its _at_<k>), which is computed at those ks only",
        lambda ks, metric: f"add it: model.ks=[{','.join(str(v) for v in sorted({*ks, objective_k(metric)}))}]",
    ),
    Constraint(("model.ks",), ks_at_least_one, "each k of model.ks must be at least 1", "drop the others"),
    Constraint(
        ("service.default_results", "service.max_results"),
        lambda default, most: default <= most,
        "service.default_results (numResults when a request gives none) must not be above service.max_results, "
        "or every such request is refused",
        "lower service.default_results or raise service.max_results",
    ),
    Constraint(
        ("dataset.source", "dataset.path"),
        files_have_a_path,
        "dataset=personalize_csv reads your datasets from dataset.path",
        "give dataset.path=<folder with interactions.csv and interactions.schema.json>",
    ),
    Constraint(
        ("dataset.source", "dataset.n_users", "dataset.n_videos"),
        platform_can_be_generated,
        f"the generated platform needs at least {MIN_USERS} users (Personalize's floor) and a video",
        f"raise dataset.n_users to {MIN_USERS} or more and dataset.n_videos to 1 or more (defaults 2000, 1500)",
    ),
)

TASK = register(
    Task(
        "recommendation",
        f"{__name__}.stages",
        (
            # the generator and MovieLens conversion write the Personalize CSVs + schemas under {data}/personalize
            # the Avro schema files are read and validated here: editing one reruns the stage
            StageSpec(
                "prepare",
                reads=("conf/recommendation_schemas",),
                params=("seed", "dataset", "preprocessing", "solution"),
                outs=("{data}",),
            ),
            StageSpec(
                "train",
                reads=("{data}",),
                params=(
                    "seed",
                    "model",
                    "solution",
                    "features",
                    "dataset.relevant_event_type",
                    "dataset.relevant_min_value",
                    "compute.num_threads",
                ),
                outs=("{models}",),
            ),  # fmt: skip
            StageSpec(
                "evaluate",
                reads=("{data}", "{models}"),
                params=("model.ks", "solution", "dataset.relevant_event_type", "dataset.relevant_min_value"),
                metrics=("{reports}/metrics.json",),
                plots=(
                    Plot("{reports}/plots/metrics_at_k.csv", x="k", y="normalized_discounted_cumulative_gain"),
                    "{reports}/plots/metrics_at_k.png",
                ),
            ),
            # serves on loopback (deploy=local) or registers the model: run by mlexp, not a DVC stage
            "deploy",
        ),
        uses_mxnet=False,
        bounds={
            # sizes of the generated platform (dataset.source=pulselive); 0 is the other sources' value, unused there
            "dataset.n_users": at_least(0),
            "dataset.n_videos": at_least(0),
            "dataset.n_interactions": at_least(0),
            # the last shares of the interactions by time (the prepare stage checks that they leave a training period)
            "preprocessing.validation_fraction": between(0, 1, open_low=True, open_high=True),
            "preprocessing.test_fraction": between(0, 1, open_low=True, open_high=True),
            "solution.history_days": above(0),  # null: all; 0 keeps no training interaction
            "solution.recency_half_life_days": at_least(0),  # null or 0: every interaction counts 1
            "model.similar_items": at_least(1),
            "model.user_personalization.factors": at_least(1),
            "model.user_personalization.iterations": at_least(1),
            "model.user_personalization.regularization": at_least(0),
            "model.user_personalization.alpha": above(0),  # confidence 1 + alpha * weight: 0 ranks by popularity
            "model.metadata_hybrid.embedding_size": at_least(1),
            "model.metadata_hybrid.epochs": at_least(1),
            # each row's sampled softmax takes at most batch_size - 1 negatives: a batch of 1 has none
            "model.metadata_hybrid.batch_size": at_least(2),
            "model.metadata_hybrid.learning_rate": above(0),
            "model.metadata_hybrid.history_length": at_least(1),
            # each older history item weighs this times the next newer one: 1 a plain mean, 0 the latest alone
            "model.metadata_hybrid.history_decay": between(0, 1),
            "model.metadata_hybrid.id_dropout": between(0, 1),  # a probability (1: metadata alone)
            "model.metadata_hybrid.negatives": at_least(1),
            "model.metadata_hybrid.patience": at_least(1),
            # GetRecommendations' numResults: 1 to max_results
            "service.default_results": at_least(1),
            "service.max_results": at_least(1),
        },
        constraints=CONSTRAINTS,
    )
)
