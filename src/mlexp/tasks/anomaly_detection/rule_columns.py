"""Which columns a rule's SQL predicate reads, from DuckDB's syntax tree of it (`json_serialize_sql`), not its text.

A column's name in a string literal (vendor_name = 'passenger_count'), a struct's field (s.passenger_count) or an
alias is no column read; a name qualified by a relation (durations.passenger_count, or t.passenger_count in a
subquery over the trips) is. The tree is parsed, not bound, so a dotted name is read as DuckDB's binder tries it
first: relation.column when its first part names a relation in scope, else column.field. Unbound names may read
more than the rule does (a lambda's parameter, a subquery's own column named like a trip's), never less: a column
read too many costs NaN handling, or refuses the rule for an input lacking it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

# the relation every rule is evaluated over (queries.py's `durations`); those of a rule's own subqueries are found
# in its tree
EVALUATED_OVER = "durations"
# catalog.schema.table: the most parts a column's qualifier has
QUALIFIER_PARTS = 3


@cache
def _parser() -> duckdb.DuckDBPyConnection:
    import duckdb  # imported here: a trial of the shipped rules imports DuckDB only once it opens (config_rules)

    return duckdb.connect()


@lru_cache(maxsize=256)
def columns_read(predicate: str) -> frozenset[str] | None:
    """The columns `predicate` reads, in lower case (DuckDB matches names ignoring case); None when DuckDB gives
    no tree of it, or a tree that does not name every column it reads."""
    # the line break ends a `-- comment` at the predicate's end, as in the queries
    sql = f"SELECT ({predicate}\n)"
    # a cursor of its own: one DuckDB connection is not to be used by two threads at once
    [(serialized,)] = _parser().cursor().execute("SELECT json_serialize_sql(?)", [sql]).fetchall()
    tree = json.loads(serialized)
    if tree["error"] or _reads_unnamed_columns(tree):
        return None
    relations = {EVALUATED_OVER, *_relation_names(tree)}
    return frozenset(_column(names, relations) for names in _column_refs(tree))


def reads(predicate: str, column: str) -> bool:
    """Whether `predicate` reads `column` (a column of the trips, a duration, a statistic, file_month)."""
    found = columns_read(predicate)
    if found is None:
        # no tree: a PIVOT in a subquery, which DuckDB runs but json_serialize_sql does not serialize ("Only SELECT
        # statements"), or SQL DuckDB does not parse: on engine=athena Trino's, which still runs there; on DuckDB
        # its bind refuses it. Or a tree naming not every column read (`*`, COLUMNS(...), USING). Such a rule is
        # read by its text: a column named anywhere in it, also in a string, counts, so no column it reads is missed
        return re.search(rf"(?<!\w){re.escape(column)}(?!\w)", predicate, re.IGNORECASE) is not None
    return column.lower() in found


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            yield from _nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _nodes(value)


def _column_refs(tree: Any) -> Iterator[list[str]]:
    for node in _nodes(tree):
        if node.get("class") == "COLUMN_REF":
            yield node["column_names"]
        # DuckDB's method syntax, `passenger_count.abs()`, parses as the function abs of a schema passenger_count and
        # runs as abs(passenger_count): the "schema" is the column it reads
        elif node.get("class") == "FUNCTION" and node.get("schema"):
            yield [node["schema"]]


def _reads_unnamed_columns(tree: Any) -> bool:
    """Whether the rule reads columns its tree does not name: `*`, COLUMNS('regex'), a join's USING (...)."""
    return any(node.get("class") == "STAR" or node.get("using_columns") for node in _nodes(tree))


def _relation_names(tree: Any) -> Iterator[str]:
    """The tables, aliases and common table expressions a rule's subqueries name, in lower case."""
    for node in _nodes(tree):
        # a table reference (FROM trips AS t, a subquery, a table function) is the node with an alias but no class
        if "alias" in node and "class" not in node:
            yield from (str(node[key]).lower() for key in ("alias", "table_name") if node.get(key))
        if isinstance(common := node.get("cte_map"), dict):
            yield from (str(entry["key"]).lower() for entry in common["map"])


def _column(names: list[str], relations: set[str]) -> str:
    """The column a (maybe dotted) name reads: the part after its last qualifier naming a relation, else its first
    part (a struct column, the rest its fields)."""
    lowered = [name.lower() for name in names]
    qualifiers = [i for i in range(min(QUALIFIER_PARTS, len(lowered) - 1)) if lowered[i] in relations]
    return lowered[qualifiers[-1] + 1] if qualifiers else lowered[0]
