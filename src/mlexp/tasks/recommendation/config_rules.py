"""The rules across recommendation's config keys (the task's `constraints`), and the predicates its stages check
again.

Their own module, not the package's `__init__` (nor config.py, the schemas and their help): a stage's DVC
dependencies are the modules it imports, and a range or a help text edited there must not re-run the stages.
"""

import re

from mlexp.config.constraints import Constraint, leave_a_training_share

# Personalize's floor before training (mlexp.data.personalize_datasets.MIN_USERS, not imported: it loads pandas)
MIN_USERS = 25
# dataset.source's values these rules read (config.Source, not imported: see above)
FILES = "files"
PULSELIVE = "pulselive"


def objective_k(metric: str) -> int | None:
    """The k of an objective such as val_normalized_discounted_cumulative_gain_at_10 (None: no k)."""
    found = re.search(r"_at_(\d+)$", metric)
    return int(found.group(1)) if found else None


def ks_hold_objective_k(ks: list[int], metric: str) -> bool:
    """Whether the ks the metrics are computed at include the objective's own k."""
    k = objective_k(metric)
    return k is None or k in [int(v) for v in ks]


def ks_with(ks: list[int], k: int) -> str:
    """The model.ks to suggest: `ks` with `k`, sorted, less those below 1 (a rule of its own refuses them)."""
    return f"model.ks=[{','.join(str(v) for v in sorted({*(int(v) for v in ks if int(v) >= 1), k}))}]"


def add_objective_k(ks: list[int], metric: str) -> str:
    """The fix of a model.ks without the objective's k."""
    k = objective_k(metric)
    assert k is not None  # an objective without a k holds the rule
    dropped = " (and drop the ks below 1)" if not ks_at_least_one(ks) else ""
    return f"add it{dropped}: {ks_with(ks, k)}"


def ks_at_least_one(ks: list[int]) -> bool:
    return all(int(v) >= 1 for v in ks)


def threshold_has_event_type(event_value_threshold: float | None, event_type: str | None) -> bool:
    """CreateSolution's rule: an event value threshold applies to one event type."""
    return event_value_threshold is None or event_type is not None


def files_have_a_path(source: str, path: str | None) -> bool:
    return source != FILES or path is not None


def platform_can_be_generated(source: str, n_users: int, n_videos: int) -> bool:
    """Whether the generated platform has videos to watch and enough users to pass Personalize's floor."""
    return source != PULSELIVE or (n_users >= MIN_USERS and n_videos >= 1)


def raise_the_platform(_source: str, n_users: int, n_videos: int) -> str:
    """The generated platform rule's fix: it names only the sizes that are too small."""
    raises = [f"dataset.n_users to {MIN_USERS} or more (default 2000)"] if n_users < MIN_USERS else []
    raises += ["dataset.n_videos to 1 or more (default 1500)"] if n_videos < 1 else []
    return f"raise {' and '.join(raises)}"


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
        add_objective_k,
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
        raise_the_platform,
    ),
)
