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

import pandas as pd

from mlexp.data import personalize_schema
from mlexp.data.personalize_schema import Schema, SchemaError

MIN_INTERACTIONS = 1000
MIN_USERS = 25
FILES = {"Interactions": "interactions", "Users": "users", "Items": "items"}
# Personalize's separator of the values of a multi-valued categorical field ("p3|p17")
MULTI_VALUE_SEPARATOR = "|"


@dataclass
class PersonalizeDatasets:
    """A dataset group: interactions, and users and items when present, typed as their schemas say."""

    interactions: pd.DataFrame
    users: pd.DataFrame | None
    items: pd.DataFrame | None
    schemas: dict[str, Schema]


def _rows(bad: pd.Series) -> tuple[str, bool]:
    """The CSV rows (header = row 1) where `bad` holds, as `5`, `5, 7` or `5, 7, 9, 11, 12 and 3 more`, and whether
    there are several (the message's verb agrees)."""
    lines = [str(i + 2) for i in bad.index[bad]]
    shown = ", ".join(lines[:5]) + (f" and {len(lines) - 5} more" if len(lines) > 5 else "")
    return shown, len(lines) > 1


def _typed(frame: pd.DataFrame, schema: Schema, source: Path) -> pd.DataFrame:
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
        empty = column.isna() | (column.astype(str).str.strip() == "")
        if empty.any() and not field.nullable:
            rows, several = _rows(empty)
            raise SchemaError(
                f"{source}: field {field.name!r} is not nullable but is empty in {'rows' if several else 'row'} {rows}"
            )
        if field.type == "string":
            out[field.name] = column.where(~empty, None).astype(object)
            continue
        if field.type == "boolean":
            lowered = column.astype(str).str.strip().str.lower()
            bad = ~empty & ~lowered.isin(["true", "false", "1", "0"])
            converted: pd.Series = lowered.isin(["true", "1"]).where(~empty, None)
        else:
            converted = pd.to_numeric(column.where(~empty, None), errors="coerce")
            bad = ~empty & converted.isna()
            if field.type in ("int", "long"):
                bad |= ~empty & converted.notna() & (converted % 1 != 0)
        if bad.any():
            rows, several = _rows(bad)
            raise SchemaError(
                f"{source}: field {field.name!r} must be {field.type}; "
                + (f"rows {rows} are not" if several else f"row {rows} is not")
            )
        out[field.name] = converted.astype("Int64") if field.type in ("int", "long") else converted
    return out


def read_dataset(folder: Path, dataset_type: str) -> tuple[pd.DataFrame, Schema] | None:
    """One dataset of `folder`, typed by its validated schema; None when an optional one is absent."""
    name = FILES[dataset_type]
    csv_path, schema_path = folder / f"{name}.csv", folder / f"{name}.schema.json"
    if not csv_path.exists():
        if dataset_type == "Interactions":
            raise SchemaError(f"{csv_path}: the Interactions dataset is required (USER_ID, ITEM_ID, TIMESTAMP)")
        return None
    schema = personalize_schema.load(schema_path, dataset_type)
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False, na_values=[""])
    return _typed(frame, schema, csv_path), schema


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
        frame[schema.names].to_csv(folder / f"{name}.csv", index=False)
        shutil.copyfile(source, folder / f"{name}.schema.json")


def schema_document(path: Path) -> dict:
    """A schema file's JSON, for writers that derive one."""
    return dict(json.loads(path.read_text()))
