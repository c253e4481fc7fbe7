"""Personalize's three datasets as CSV files with their Avro schemas, read and checked like an import job.

A dataset folder holds `interactions.csv` (required), `users.csv` and `items.csv` (optional), each
beside `<name>.schema.json`. The CSV header must name exactly the schema's fields; values must
parse as the field's type; a field that is not nullable must have a value in every row; and, as
Personalize requires before training, at least 1,000 interactions from at least 25 users.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlexp.data import personalize_csv, personalize_schema
from mlexp.data.personalize_schema import REQUIRED, Field, Schema, SchemaError
from mlexp.errors import first_few

MIN_INTERACTIONS = 1000
MIN_USERS = 25
FILES = {"Interactions": "interactions", "Users": "users", "Items": "items"}
# Personalize's separator of the values of a multi-valued categorical field ("p3|p17")
MULTI_VALUE_SEPARATOR = "|"
# Personalize's times are Unix epoch seconds; 1e11 s is the year 5138, while now in milliseconds is above 1.7e12
EPOCH_SECONDS = ("TIMESTAMP", "CREATION_TIMESTAMP")
MAX_EPOCH_SECONDS = 1e11
INTEGER_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


@dataclass
class PersonalizeDatasets:
    """A dataset group: interactions, and users and items when present, typed as their schemas say."""

    interactions: pd.DataFrame
    users: pd.DataFrame | None
    items: pd.DataFrame | None
    schemas: dict[str, Schema]


def _where(bad: pd.Series, lines: personalize_csv.FileLines, raw: pd.Series | None = None) -> str:
    """`on line 5` or `on lines 5, 7, 9, 11, 12 and 3 more`, then the first values when `raw` is given."""
    at = np.flatnonzero(bad.to_numpy())
    where = first_few(lines[at[: personalize_csv.SHOWN]], at.size)
    shown = [repr(str(raw.iloc[i])[:30]) for i in at[: personalize_csv.SHOWN]] if raw is not None else []
    return f"on line{'s' if at.size > 1 else ''} {where} (the header is line 1)" + (
        f": {', '.join(shown)}" if shown else ""
    )


def _value_rules(field: Field, values: pd.Series, given: pd.Series) -> list[tuple[pd.Series, str, str]]:
    """(rows breaking it, the rule, its fix) for each rule a numeric value of `field` keeps, in the order checked."""
    whole = field.type in INTEGER_RANGE
    unparsed = values.isna() | ~np.isfinite(values.fillna(0)) | (values % 1 != 0 if whole else False)
    rules = [
        (
            given & unparsed,
            f"must be {field.type} ({'a whole' if whole else 'a finite'} number)",
            "correct the value, or declare the field a string in its schema",
        )
    ]
    if field.name in EPOCH_SECONDS:
        rules.append(
            (
                given & (values >= MAX_EPOCH_SECONDS),
                f"is Unix epoch time in seconds, below {MAX_EPOCH_SECONDS:,.0f} (the year 5138)",
                "if it is in milliseconds, divide it by 1000",
            )
        )
    if field.name == "TIMESTAMP":
        rules.append(
            (
                given & (values < 0),
                "is Unix epoch time in seconds: an interaction is not before 1970",
                "correct the value or remove the row",
            )
        )
    if field.type in INTEGER_RANGE:
        low, high = INTEGER_RANGE[field.type]
        outside = (values < float(low)) | (values >= float(high) + 1)  # as floats: 2**63 - 1 is no float64
        fix = "declare the field long in its schema" if field.type == "int" else "correct the value"
        rules.append((given & outside, f"must be {field.type}, from {low} to {high}", fix))
    return rules


def _typed(frame: pd.DataFrame, lines: personalize_csv.FileLines, schema: Schema, source: Path) -> pd.DataFrame:
    header = list(frame.columns)
    missing = [name for name in schema.names if name not in header]
    extra = [name for name in header if name not in schema.names]
    if missing or extra:
        parts = [f"field {m!r}: in the schema but not a column" for m in missing]
        parts += [f"column {e!r}: not a field of the schema" for e in extra]
        raise SchemaError(f"{source}: " + "; ".join(parts))
    out = pd.DataFrame(index=frame.index)
    for field in schema.fields:
        column = frame[field.name]
        empty = column.str.strip() == ""
        if empty.any() and not field.nullable:
            raise SchemaError(f"{source}: field {field.name!r} is not nullable but is empty {_where(empty, lines)}")
        if field.type == "string":
            out[field.name] = column.where(~empty, None).astype(object)
            continue
        if field.type == "boolean":
            lowered = column.str.strip().str.lower()
            converted: pd.Series = lowered.isin(["true", "1"]).where(~empty, None)
            rules = [(~empty & ~lowered.isin(["true", "false", "1", "0"]), "must be boolean", "write true or false")]
        else:
            converted = pd.to_numeric(column.where(~empty, None), errors="coerce")
            rules = _value_rules(field, converted, ~empty)
        for bad, rule, fix in rules:
            if bad.any():
                raise SchemaError(
                    f"{source}: field {field.name!r} {rule}; not so {_where(bad, lines, column)}"
                    + (f"; {fix}" if fix else "")
                )
        out[field.name] = converted.astype("Int64") if field.type in ("int", "long") else converted
    return out


def _check_unique(frame: pd.DataFrame, lines: personalize_csv.FileLines, dataset_type: str, source: Path) -> None:
    """Users and items are one row each, as Personalize keys them by their ID."""
    key = next(iter(REQUIRED[dataset_type]))
    repeated = frame[key].duplicated(keep=False).to_numpy()
    if not repeated.any():
        return
    at: dict[str, list[str]] = {}
    for value, line in zip(frame[key].to_numpy()[repeated], lines[repeated], strict=True):
        at.setdefault(value, []).append(str(line))
    shown = [f"{value!r} on lines {', '.join(where)}" for value, where in list(at.items())[: personalize_csv.SHOWN]]
    more = f" and {len(at) - len(shown)} more" if len(at) > len(shown) else ""
    raise SchemaError(
        f"{source}: {key} must be unique (one row per {dataset_type[:-1].lower()}), and "
        f"{len(at)} {'is' if len(at) == 1 else 'are'} repeated: {'; '.join(shown)}{more} (the header is line 1); "
        f"keep one row per {key}"
    )


def read_dataset(folder: Path, dataset_type: str) -> tuple[pd.DataFrame, Schema] | None:
    """One dataset of `folder`, typed by its validated schema; None when an optional one is absent."""
    name = FILES[dataset_type]
    csv_path, schema_path = folder / f"{name}.csv", folder / f"{name}.schema.json"
    if not csv_path.exists():
        if dataset_type == "Interactions":
            raise SchemaError(f"{csv_path}: the Interactions dataset is required (USER_ID, ITEM_ID, TIMESTAMP)")
        return None
    schema = personalize_schema.load(schema_path, dataset_type)
    frame, lines = personalize_csv.read(csv_path, schema.names)
    typed = _typed(frame, lines, schema, csv_path)
    if dataset_type != "Interactions":
        _check_unique(typed, lines, dataset_type, csv_path)
    return typed, schema


def check_minimum(interactions: pd.DataFrame, source: str) -> None:
    """Personalize's floor for training: 1,000 interactions from 25 users."""
    users = interactions["USER_ID"].nunique()
    if len(interactions) < MIN_INTERACTIONS or users < MIN_USERS:
        raise SchemaError(
            f"{source}: {len(interactions)} interactions from {users} users; Personalize needs at least "
            f"{MIN_INTERACTIONS} interactions from at least {MIN_USERS} users: add interactions"
        )


def load(folder: Path) -> PersonalizeDatasets:
    """Read and check a dataset folder (see the module docstring)."""
    if not folder.is_dir():
        raise SchemaError(f"{folder}: not a folder of Personalize CSVs (interactions.csv + interactions.schema.json)")
    loaded = {kind: read_dataset(folder, kind) for kind in FILES}
    interactions_loaded = loaded["Interactions"]
    assert interactions_loaded is not None
    check_minimum(interactions_loaded[0], str(folder / "interactions.csv"))
    schemas = {kind: pair[1] for kind, pair in loaded.items() if pair is not None}
    users, items = loaded["Users"], loaded["Items"]
    return PersonalizeDatasets(
        interactions_loaded[0], users[0] if users else None, items[0] if items else None, schemas
    )


def write(folder: Path, frames: dict[str, pd.DataFrame], schema_folder: Path, prefix: str) -> None:
    """Write `frames` (keyed by dataset type) as Personalize CSVs beside copies of `<prefix>_<name>.json` schemas."""
    folder.mkdir(parents=True, exist_ok=True)
    for kind, frame in frames.items():
        name = FILES[kind]
        source = schema_folder / f"{prefix}_{name}.json"
        schema = personalize_schema.load(source, kind)
        unknown = [field for field in schema.names if field not in frame]
        if unknown:  # a project's copy of the schema renamed or added a field the generator cannot fill
            raise SchemaError(
                f"{source}: the {prefix} data mlexp generates has no field {first_few(unknown)} (it writes "
                f"{', '.join(frame.columns)}); keep the generator's fields in this schema, or give your own data "
                "with dataset=personalize_csv dataset.path=<folder>"
            )
        frame[schema.names].to_csv(folder / f"{name}.csv", index=False)
        shutil.copyfile(source, folder / f"{name}.schema.json")


def schema_document(path: Path) -> dict:
    """A schema file's JSON, for writers that derive one."""
    return dict(json.loads(path.read_text()))
