"""Which columns a rule's SQL predicate reads, from DuckDB's syntax tree of it (`json_serialize_sql`), not its text.

A column's name in a string literal (vendor_name = 'passenger_count'), a struct's field (s.passenger_count) or an
alias is no column read; a name qualified by a relation (durations.passenger_count, or t.passenger_count in a
subquery over the trips) is. The tree is parsed, not bound, so a dotted name is read as DuckDB's binder tries it
first: relation.column when its first part names a relation in scope, else column.field. A lambda's parameter is no
column in the lambda's body (`lambda x: x > 1`; Trino's `x -> x > 1` as an argument of a function taking a lambda;
elsewhere DuckDB's `->` is its JSON operator, which reads the column on its left). Unbound names may read more than
the rule does (a subquery's own column named like a trip's), never less: a column read too many costs NaN handling,
or refuses the rule for an input lacking it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Set
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

# the relation every rule is evaluated over (queries.py's `durations`); those of a rule's own subqueries are found
# in its tree
EVALUATED_OVER = "durations"
# catalog.schema.table: the most parts a column's qualifier has
QUALIFIER_PARTS = 3
# Trino's functions taking a lambda (Athena engine v3; https://trino.io/docs/current/functions/lambda.html, array.html,
# map.html), whose `x -> ...` arguments are lambdas; DuckDB's own are read from DuckDB (_lambda_functions)
TRINO_LAMBDA_FUNCTIONS = frozenset(
    {
        "all_match", "any_match", "none_match", "array_sort", "filter", "reduce", "transform", "zip_with",
        "map_filter", "map_zip_with", "transform_keys", "transform_values", "regexp_replace", "reduce_agg",
    }
)  # fmt: skip
DUCKDB_LAMBDA_FUNCTIONS = (
    "SELECT DISTINCT function_name FROM duckdb_functions() WHERE list_contains(parameter_types, 'LAMBDA')"
)
# how DuckDB serializes `lambda x: ...`, which is a lambda wherever it stands (`x -> ...` is SINGLE_ARROW)
LAMBDA_KEYWORD = "LAMBDA_KEYWORD"


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
    return frozenset(_columns(tree, relations, frozenset()))


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


@cache
def _lambda_functions() -> frozenset[str]:
    """The functions whose `x -> ...` arguments are lambdas: DuckDB's (those with a LAMBDA parameter) and Trino's."""
    found = _parser().cursor().execute(DUCKDB_LAMBDA_FUNCTIONS).fetchall()
    return frozenset(str(name).lower() for (name,) in found) | TRINO_LAMBDA_FUNCTIONS


def _columns(
    tree: Any, relations: Set[str], parameters: frozenset[str], lambda_argument: bool = False
) -> Iterator[str]:
    """The columns `tree` reads, in lower case. `parameters`: the names the lambdas around it bind, which are no
    columns there; `lambda_argument`: whether `tree` is an argument of a function taking a lambda."""
    if isinstance(tree, list):
        for value in tree:
            yield from _columns(value, relations, parameters)
        return
    if not isinstance(tree, dict):
        return
    if tree.get("class") == "LAMBDA" and (lambda_argument or tree.get("syntax_type") == LAMBDA_KEYWORD):
        # its left side declares the parameters, read by none; they shadow a column in its body, nested lambdas' too
        yield from _columns(tree["expr"], relations, parameters | _parameters(tree["lhs"]))
        return
    names = _names_read(tree)
    if names is not None:
        lowered = [name.lower() for name in names]
        part = _column_part(lowered, relations)
        # a parameter's field (x.fare) or method (x.abs()) is the parameter's; durations.x is the column x
        if not (part == 0 and lowered[0] in parameters):
            yield lowered[part]
    takes_lambda = tree.get("class") == "FUNCTION" and str(tree.get("function_name")).lower() in _lambda_functions()
    for key, value in tree.items():
        if takes_lambda and key == "arguments":
            for argument in value:
                yield from _columns(argument["expression"], relations, parameters, lambda_argument=True)
        else:
            yield from _columns(value, relations, parameters)


def _names_read(node: dict[str, Any]) -> list[str] | None:
    """The (maybe dotted) name `node` reads a column by, if it reads one."""
    if node.get("class") == "COLUMN_REF":
        return list(node["column_names"])
    # DuckDB's method syntax, `passenger_count.abs()`, parses as the function abs of a schema passenger_count and
    # runs as abs(passenger_count): the "schema" is the column it reads
    if node.get("class") == "FUNCTION" and node.get("schema"):
        return [node["schema"]]
    return None


def _parameters(declared: dict[str, Any]) -> frozenset[str]:
    """The names a lambda's left side binds, in lower case: `x`, or `(x, y)`, which DuckDB parses as row(x, y)."""
    if declared.get("class") == "COLUMN_REF":
        refs = [declared]
    elif declared.get("class") == "FUNCTION" and declared.get("function_name") == "row":
        refs = [argument["expression"] for argument in declared["arguments"]]
    else:
        refs = []
    return frozenset(ref["column_names"][0].lower() for ref in refs if len(ref.get("column_names", [])) == 1)


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


def _column_part(lowered: list[str], relations: Set[str]) -> int:
    """Which part of a (maybe dotted) name is the column it reads: the part after its last qualifier naming a relation,
    else its first part (a struct column, the rest its fields)."""
    qualifiers = [i for i in range(min(QUALIFIER_PARTS, len(lowered) - 1)) if lowered[i] in relations]
    return qualifiers[-1] + 1 if qualifiers else 0
