"""The rules across recommendation's config keys (the task's `constraints`), and the predicates its stages check
again.

Their own module, not the package's `__init__` (nor config.py, the schemas and their help): a stage's DVC
dependencies are the modules it imports, and a range or a help text edited there must not re-run the stages.
"""

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlexp.config.constraints import Constraint, leave_a_training_share, shown_value
from mlexp.data import personalize_schema
from mlexp.errors import DataError, did_you_mean

# Personalize's floor before training (mlexp.data.personalize_datasets.MIN_USERS and MIN_INTERACTIONS, not imported:
# it loads pandas)
MIN_USERS = 25
MIN_INTERACTIONS = 1000
# a generated user signing up late may get no visit: at 1,750 interactions, 83 of 400 seeds leave fewer than 25 of 25
# users with one, 13 of 2,000 of 27, none of 2,000 of 30 (more interactions only help)
MIN_GENERATED_USERS = 30
# the generator makes a visit per 1.75 interactions asked, each a click (mlexp.data.pulselive_videos: a meant click,
# 3 in 4, adds a watch); how many watches follow depends on the seed and the catalogue (with one video, a fifth
# fewer), so only the clicks are sure to reach Personalize's floor
INTERACTIONS_PER_VISIT = 2 - 0.25
MIN_GENERATED_INTERACTIONS = math.ceil(MIN_INTERACTIONS * INTERACTIONS_PER_VISIT)  # 1750
# dataset.source's values these rules read (config.Source, not imported: see above)
FILES = "files"
PULSELIVE = "pulselive"
MOVIELENS = "movielens"
# the option of conf/dataset/ each source is, as a fix names it
OPTIONS = {PULSELIVE: "pulselive_videos", MOVIELENS: "movielens_100k", FILES: "personalize_csv"}
# the event types of the data each source writes (pulselive_videos.generate, movielens.personalize_frames); yours
# are known only once read
EVENT_TYPES = {PULSELIVE: ("click", "watch"), MOVIELENS: ("rating", "watch")}
# the event types whose events carry an EVENT_VALUE, which solution.event_value_threshold compares (a click has none)
VALUED_EVENT_TYPES = {PULSELIVE: ("watch",), MOVIELENS: ("rating", "watch")}
# features.<side> names fields of this dataset type's schema
SIDES = {"users": "Users", "items": "Items", "interactions": "Interactions"}


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


def threshold_has_values(source: str, event_type: str | None, event_value_threshold: float | None) -> bool:
    """Whether the event type a threshold filters has values to compare (yours are checked once read)."""
    valued = VALUED_EVENT_TYPES.get(source)
    return (
        event_value_threshold is None or valued is None or event_type not in EVENT_TYPES[source] or event_type in valued
    )


def choose_a_valued_type(type_key: str, threshold_key: str) -> Callable[[str, str, float], str]:
    """The fix of `threshold_key` set beside `type_key` naming events that carry no value."""

    def fix(source: str, event_type: str, _threshold: float) -> str:
        valued = VALUED_EVENT_TYPES[source]
        return (
            f"{event_type} events carry no EVENT_VALUE, so the threshold would keep none: set {threshold_key}=null, "
            f"or {type_key}={' or '.join(valued)}"
        )

    return fix


def files_have_a_path(source: str, path: str | None) -> bool:
    return source != FILES or path is not None


def path_is_read(source: str, path: str | None, _params_file: str | None) -> bool:
    """dataset=personalize_csv needs dataset.path; the other datasets read none, so one given them is ignored."""
    return files_have_a_path(source, path) and (source == FILES or path in (None, ""))


def give_or_drop_the_path(source: str, _path: str | None, params_file: str | None) -> str:
    """The fix in the words of where the dataset came from: a params file's keys under DVC (the file's
    dataset.source wins over a dataset= option on the command line), the option otherwise."""
    if source == FILES:
        if params_file:
            return f"set recommendation.dataset.path: <folder with interactions.csv> in {params_file}"
        return "give dataset.path=<folder with interactions.csv and interactions.schema.json>"
    read_by = f"dataset.path is read only by it (dataset={OPTIONS.get(source, source)} reads no path)"
    if params_file:
        return (
            f"{read_by}: in {params_file} set recommendation.dataset.source: {FILES} (`dvc exp run -S "
            f"recommendation.dataset.source={FILES}`) and recommendation.dataset.relevant_event_type and "
            "relevant_min_value for your data (null: every test interaction counts), or set "
            "recommendation.dataset.path: null"
        )
    return f"{read_by}: add dataset=personalize_csv, or leave dataset.path out"


def platform_can_be_generated(source: str, n_users: int, n_videos: int) -> bool:
    """Whether the generated platform has videos to watch and enough users to pass Personalize's floor."""
    return source != PULSELIVE or (n_users >= MIN_GENERATED_USERS and n_videos >= 1)


def generates_the_floor(source: str, n_interactions: int) -> bool:
    """Whether the generated platform is sure to write Personalize's 1,000 interactions, whatever the seed."""
    return source != PULSELIVE or int(n_interactions / INTERACTIONS_PER_VISIT) >= MIN_INTERACTIONS


def event_type_is_in_the_data(source: str, event_type: str | None) -> bool:
    """Whether an event type a setting names is one of the data's (yours are checked once read)."""
    return event_type is None or source not in EVENT_TYPES or event_type in EVENT_TYPES[source]


def choose_an_event_type(key: str) -> Callable[[str, str], str]:
    """The fix of `key` naming an event type the data lacks: the closest one, and each the data has."""

    def fix(source: str, event_type: str) -> str:
        types = list(EVENT_TYPES[source])
        return (
            f"{did_you_mean(str(event_type), types)}dataset={OPTIONS[source]} has {' and '.join(types)} events: choose "
            f"one, or set {key}=null"
        )

    return fix


def context_and_outcomes(schema: personalize_schema.Schema) -> tuple[list[str], list[str]]:
    """An Interactions schema's metadata fields split into context, known before the event (categorical: device,
    location, source), and its outcomes (a number such as WATCH_SECONDS), which the service never has when it is
    asked. EVENT_VALUE, an outcome too, is a reserved field, never a metadata one."""
    fields = schema.metadata_fields
    outcomes = [f for f in fields if not schema.field(f).categorical]
    return [f for f in fields if f not in outcomes], outcomes


def feature_problem(side: str, names: list[str] | None, schema: personalize_schema.Schema | None) -> str | None:
    """What is wrong with features.<side> (`names`; null: every field) against the dataset's schema of that side;
    None when each name is a field the recipes can use."""
    available = schema.metadata_fields if schema else []
    outcomes: list[str] = []
    if schema is not None and side == "interactions":
        available, outcomes = context_and_outcomes(schema)
    # MovieLens' Interactions have no context fields: the dataset is there, with nothing to choose
    choices = ", ".join(available) or ("(none)" if schema is not None else f"(none: no {SIDES[side]} dataset)")
    for name in [str(n) for n in names or []]:
        if side == "interactions" and name == "EVENT_VALUE" and schema is not None and name in schema.names:
            return (
                "features.interactions: 'EVENT_VALUE' is the event's outcome, what training keeps events by "
                "(solution.event_value_threshold) and a hit is counted by (dataset.relevant_min_value), not a "
                "feature the service has when asked; to train on the events that reach a value, set "
                "solution.event_type=<type> solution.event_value_threshold=<value> instead; as context choose "
                f"among: {choices}"
            )
        if name in outcomes:
            return (
                f"features.{side}: {name!r} is an outcome of the event (known only after it), not context the "
                f"service has when asked; choose among: {choices}"
            )
        if schema is not None and name in schema.names and name not in available:
            return (
                f"features.{side}: {name!r} is a field Personalize reads on its own (an ID, a time or a reserved "
                f"keyword), not metadata to choose; choose among: {choices}"
            )
        if name not in available:
            return (
                f"features.{side}: {name!r} is not a metadata field of the {SIDES[side]} schema; "
                f"{did_you_mean(name, available)}choose among: {choices}"
            )
    return None


def schemas_of(root: Path | None) -> Path:
    """conf/recommendation_schemas of the project at `root` (the repository's when it has none, or no project)."""
    project = root / "conf" / "recommendation_schemas" if root is not None else None
    if project is not None and project.is_dir():
        return project
    return Path(__file__).resolve().parents[4] / "conf" / "recommendation_schemas"


def known_schemas(source: str, folder: Path) -> dict[str, personalize_schema.Schema] | None:
    """The schemas of the data a source writes, by dataset type; None for yours (known only once read) or when
    they cannot be read here (the prepare stage reports that)."""
    if source not in EVENT_TYPES:
        return None
    files = tuple(folder / f"{source}_{side}.json" for side in SIDES)
    # read again once edited: a process may check several configs (a sweep's jobs, the Python API)
    return _read_schemas(files, tuple(_modified(file) for file in files))


def _modified(file: Path) -> int | None:
    try:
        return file.stat().st_mtime_ns
    except OSError:
        return None


@functools.cache
def _read_schemas(
    files: tuple[Path, ...], _versions: tuple[int | None, ...]
) -> dict[str, personalize_schema.Schema] | None:
    try:
        return {kind: personalize_schema.load(file, kind) for file, kind in zip(files, SIDES.values())}
    except (DataError, OSError):
        return None


def first_feature_problem(source: str, root: str, *sides: list[str] | None) -> str | None:
    """The first problem of features.users, .items and .interactions (`sides`) with the data `source` writes,
    against the schemas the prepare stage reads: the project's at paths.root (`root`)."""
    schemas = known_schemas(source, schemas_of(Path(root)))
    if schemas is None:
        return None
    problems = (feature_problem(side, names, schemas[kind]) for (side, kind), names in zip(SIDES.items(), sides))
    return next((problem for problem in problems if problem), None)


Names = list[str] | None  # features.<side>: null is every field


def features_are_fields(source: str, users: Names, items: Names, interactions: Names, root: str) -> bool:
    return first_feature_problem(source, root, users, items, interactions) is None


def name_fields_of_the_data(source: str, users: Names, items: Names, interactions: Names, root: str) -> str:
    return first_feature_problem(source, root, users, items, interactions) or ""


@dataclass(frozen=True)
class RuleWithContext(Constraint):
    """A rule whose last key is no value to change but where it looks (paths.root: the schemas) or where the values
    came from (params_file: the fix names the file's keys): its refusal shows the other keys."""

    def shown(self, values: Sequence[Any]) -> str:
        return ", ".join(f"{key}={shown_value(value)}" for key, value in zip(self.keys[:-1], values[:-1]))


def raise_the_platform(_source: str, n_users: int, n_videos: int) -> str:
    """The generated platform rule's fix: it names only the sizes that are too small."""
    few_users = n_users < MIN_GENERATED_USERS
    raises = [f"dataset.n_users to {MIN_GENERATED_USERS} or more (default 2000)"] if few_users else []
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
    RuleWithContext(
        ("dataset.source", "dataset.path", "params_file"),
        path_is_read,
        "dataset=personalize_csv reads your datasets from dataset.path",
        give_or_drop_the_path,
    ),
    Constraint(
        ("dataset.source", "dataset.n_users", "dataset.n_videos"),
        platform_can_be_generated,
        f"the generated platform needs at least {MIN_GENERATED_USERS} users (Personalize's floor is {MIN_USERS} users "
        f"with interactions, and below {MIN_GENERATED_USERS} some seeds leave a late sign-up without a visit) and a "
        "video",
        raise_the_platform,
    ),
    Constraint(
        ("dataset.source", "dataset.n_interactions"),
        generates_the_floor,
        f"the generated platform must write Personalize's floor of {MIN_INTERACTIONS} interactions, which "
        f"dataset.n_interactions guarantees from {MIN_GENERATED_INTERACTIONS} on whatever the seed (a visit per 1.75 "
        "asked, each a click, most followed by a watch)",
        f"raise dataset.n_interactions to {MIN_GENERATED_INTERACTIONS} or more (default 100000)",
    ),
    Constraint(
        ("dataset.source", "dataset.relevant_event_type"),
        event_type_is_in_the_data,
        "dataset.relevant_event_type must be an event type of the data (a hit is a test interaction of that type)",
        choose_an_event_type("dataset.relevant_event_type"),
    ),
    Constraint(
        ("dataset.source", "solution.event_type"),
        event_type_is_in_the_data,
        "solution.event_type (CreateSolution's eventType: train on that type only) must be an event type of the data",
        choose_an_event_type("solution.event_type"),
    ),
    Constraint(
        ("dataset.source", "solution.event_type", "solution.event_value_threshold"),
        threshold_has_values,
        "solution.event_value_threshold keeps the events of solution.event_type whose EVENT_VALUE reaches it",
        choose_a_valued_type("solution.event_type", "solution.event_value_threshold"),
    ),
    Constraint(
        ("dataset.source", "dataset.relevant_event_type", "dataset.relevant_min_value"),
        threshold_has_values,
        "a hit is a test interaction of dataset.relevant_event_type whose EVENT_VALUE reaches "
        "dataset.relevant_min_value",
        choose_a_valued_type("dataset.relevant_event_type", "dataset.relevant_min_value"),
    ),
    RuleWithContext(
        ("dataset.source", "features.users", "features.items", "features.interactions", "paths.root"),
        features_are_fields,
        "features.users, .items and .interactions name metadata fields of the dataset's schemas "
        "(conf/recommendation_schemas)",
        name_fields_of_the_data,
    ),
)
