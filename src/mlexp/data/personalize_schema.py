"""Avro schemas of Amazon Personalize's three datasets, validated the way CreateSchema does.

The rules are those of the Personalize documentation and the metadata-selection post: a record
with `name`, `namespace`, `fields` and `version`; each dataset's required fields and types;
reserved keywords with their types (EVENT_TYPE, EVENT_VALUE, IMPRESSION on interactions,
CREATION_TIMESTAMP on items); a `null` union only as `[type, "null"]`; `categorical` only on
strings; no unknown types. Every error names the field and the rule it breaks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlexp.data.text_files import decode_utf8
from mlexp.errors import DataError

PRIMITIVE_TYPES = ("string", "int", "long", "float", "double", "boolean")
DATASET_TYPES = ("Users", "Items", "Interactions")
REQUIRED = {
    "Users": {"USER_ID": "string"},
    "Items": {"ITEM_ID": "string"},
    "Interactions": {"USER_ID": "string", "ITEM_ID": "string", "TIMESTAMP": "long"},
}
# reserved keywords: the dataset they belong to, the type Personalize accepts, whether null is allowed
RESERVED = {
    "EVENT_TYPE": ("Interactions", "string", False),
    "EVENT_VALUE": ("Interactions", "float", True),
    "IMPRESSION": ("Interactions", "string", True),
    "CREATION_TIMESTAMP": ("Items", "long", False),
}
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,149}$")


class SchemaError(DataError):
    """A Personalize schema breaks a rule; the message names the field and the rule."""


@dataclass(frozen=True)
class Field:
    """One field of a validated schema."""

    name: str
    type: str  # one of PRIMITIVE_TYPES
    nullable: bool
    categorical: bool


@dataclass(frozen=True)
class Schema:
    """A validated Personalize schema of one dataset type."""

    dataset_type: str
    fields: tuple[Field, ...]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def metadata_fields(self) -> list[str]:
        """Fields beyond the required ones and the reserved keywords: what `features.*` can choose from."""
        fixed = set(REQUIRED[self.dataset_type]) | set(RESERVED)
        return [f.name for f in self.fields if f.name not in fixed]


def _field_type(raw: Any, where: str, problems: list[str]) -> tuple[str, bool] | None:
    """(type, nullable) of a field's Avro `type`, or None after recording why it is not accepted."""
    if isinstance(raw, str):
        if raw not in PRIMITIVE_TYPES:
            problems.append(f"{where}: type {raw!r} is not a Personalize type; use one of {', '.join(PRIMITIVE_TYPES)}")
            return None
        return raw, False
    if isinstance(raw, list):
        others = [t for t in raw if t != "null"]
        if "null" not in raw or len(others) != 1 or len(raw) != 2:
            problems.append(f'{where}: a union must be one type and "null", e.g. ["float", "null"]; got {raw}')
            return None
        return _field_type(others[0], where, problems) and (others[0], True)
    problems.append(f'{where}: type must be a type name or a [type, "null"] union; got {raw!r}')
    return None


def _check_field(raw: Any, index: int, dataset_type: str, problems: list[str]) -> Field | None:
    if not isinstance(raw, dict) or "name" not in raw or "type" not in raw:
        problems.append(f"field #{index + 1}: every field needs a 'name' and a 'type'")
        return None
    name = raw["name"]
    where = f"field {name!r}"
    if not isinstance(name, str) or not NAME.match(name):
        problems.append(f"{where}: a name starts with a letter or _ and holds letters, digits and _ (≤ 150)")
        return None
    typed = _field_type(raw["type"], where, problems)
    if typed is None:
        return None
    type_, nullable = typed
    categorical = raw.get("categorical", False)
    if not isinstance(categorical, bool):
        problems.append(f"{where}: categorical must be true or false; got {categorical!r}")
    elif categorical and type_ != "string":
        problems.append(f"{where}: categorical applies to string fields only; this one is {type_}")
    if name in REQUIRED[dataset_type]:
        wanted = REQUIRED[dataset_type][name]
        if type_ != wanted or nullable:
            problems.append(
                f"{where}: required field of {dataset_type} must be {wanted!r} (not null); got {raw['type']}"
            )
    if name in RESERVED:
        owner, wanted, may_be_null = RESERVED[name]
        if owner != dataset_type:
            problems.append(f"{where}: reserved keyword of the {owner} dataset, not allowed in {dataset_type}")
        elif type_ != wanted or (nullable and not may_be_null):
            union = f" or [{wanted!r}, 'null']" if may_be_null else ""
            problems.append(f"{where}: reserved keyword must be {wanted!r}{union}; got {raw['type']}")
    return Field(name, type_, nullable, bool(categorical))


def validate(document: Any, dataset_type: str, source: str = "schema") -> Schema:
    """The schema `document` (parsed JSON) for `dataset_type`, or a SchemaError listing every broken rule."""
    if dataset_type not in DATASET_TYPES:
        raise SchemaError(f"{source}: dataset type {dataset_type!r} is not one of {', '.join(DATASET_TYPES)}")
    problems: list[str] = []
    if not isinstance(document, dict):
        raise SchemaError(f"{source}: a schema is a JSON object (an Avro record)")
    if document.get("type") != "record":
        problems.append(f"'type': must be \"record\"; got {document.get('type')!r}")
    for key in ("name", "namespace", "version"):
        if not isinstance(document.get(key), str) or not document.get(key):
            problems.append(f"{key!r}: the record needs a non-empty string {key}")
    raw_fields = document.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        problems.append("'fields': the record needs a non-empty list of fields")
        raw_fields = []
    fields = [f for i, raw in enumerate(raw_fields) if (f := _check_field(raw, i, dataset_type, problems))]
    names = [f.name for f in fields]
    for duplicate in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"field {duplicate!r}: appears more than once")
    for required, wanted in REQUIRED[dataset_type].items():
        if required not in names and not any(f"field {required!r}" in p for p in problems):
            problems.append(f"field {required!r}: required in {dataset_type} ({wanted})")
    if dataset_type in ("Users", "Items"):
        fixed = set(REQUIRED[dataset_type]) | set(RESERVED)
        if fields and not [n for n in names if n not in fixed]:
            problems.append(
                f"fields: {dataset_type} needs at least one metadata field besides {', '.join(fixed & set(names))}"
            )
    if problems:
        raise SchemaError(f"{source} ({dataset_type} schema): " + "; ".join(problems))
    return Schema(dataset_type, tuple(fields))


def load(path: Path, dataset_type: str) -> Schema:
    """Read and validate a schema file."""
    if path.is_dir():
        raise SchemaError(f"{path} is a folder, not a schema file: put the schema's JSON there, or remove the folder")
    try:
        document = json.loads(decode_utf8(path, path.read_bytes(), excel=False))
    except FileNotFoundError:
        raise SchemaError(f"{path}: schema file is missing") from None
    except OSError as error:
        raise SchemaError(f"{path}: cannot be read ({error.strerror}); make it a readable JSON file") from None
    except json.JSONDecodeError as error:
        raise SchemaError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    return validate(document, dataset_type, str(path))
