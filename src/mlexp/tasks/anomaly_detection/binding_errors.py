"""DuckDB's error binding a rule's predicate, worded in one line: before the trial (binding.py) and by the detect
stage's engine (duckdb_engine.py) alike.

Apart from binding.py, which binds in the detect stage's own query (queries.py): the engine, which the prepare stage
opens too, then does not make prepare's code reach the detection SQL (a stage's DVC dependencies are the modules it
imports).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import duckdb

from mlexp.errors import did_you_mean

UNKNOWN_COLUMN = re.compile(r'Referenced column "(.+?)" not found')


def said(error: duckdb.Error) -> str:
    """DuckDB's error without the SQL it quotes: its lines up to the first blank one (the message, and a "Did you
    mean" for a function), as one line."""
    text = str(error).strip()
    return " ".join(text.split("\n\n", 1)[0].splitlines())


def unbound(error: duckdb.Error, columns: Sequence[str]) -> str:
    """DuckDB's error binding a predicate, in one line: a column it does not find with the one its spelling is
    closest to and the columns there are; any other error as DuckDB says it (`said`: a type, a function)."""
    first = said(error)
    found = UNKNOWN_COLUMN.search(first)
    if found is None:
        return first
    column = found.group(1)
    hint = did_you_mean(column, list(columns)).strip()
    return f"there is no column {column}{f' ({hint})' if hint else ''}; columns: {', '.join(columns)}"


def not_a_condition(result: duckdb.DuckDBPyConnection) -> str | None:
    """Why the rule_check query's one column is not a condition (true for the trips a rule flags), or None: a number
    or a text binds, and only the detect stage's count of flags would fail on it."""
    kind = str(result.description[0][1]) if result.description else "BOOLEAN"
    if kind in ("BOOLEAN", "NULL"):
        return None
    return f"it is {kind}, not a condition: a rule is true for the trips it flags (e.g. trip_distance > 50)"
