"""Whether features.users, .items and .interactions name metadata fields of the dataset's schemas, the ones the
recipes can use (not an ID, a reserved field, nor an outcome the service is never asked with).

Their own module, not the package's `__init__` (nor config.py, the schemas and their help): a stage's DVC
dependencies are the modules it imports, and a range or a help text edited there must not re-run the stages.
"""

import functools
from pathlib import Path

from mlexp.data import personalize_schema
from mlexp.errors import DataError, did_you_mean
from mlexp.tasks.recommendation.dataset_rules import EVENT_TYPES

# features.<side> names fields of this dataset type's schema
SIDES = {"users": "Users", "items": "Items", "interactions": "Interactions"}

Names = list[str] | None  # features.<side>: null is every field


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


def features_are_fields(source: str, users: Names, items: Names, interactions: Names, root: str) -> bool:
    return first_feature_problem(source, root, users, items, interactions) is None


def name_fields_of_the_data(source: str, users: Names, items: Names, interactions: Names, root: str) -> str:
    return first_feature_problem(source, root, users, items, interactions) or ""
