"""Whether a rule's SQL predicate binds: DuckDB binds it in the detect stage's own query (TripQueries.rule_check)
over an empty table of the columns the trips have, so a misspelt column or a syntax error is refused in one line
before a trial opens (config_rules), not found by the detect stage after prepare and query ran; the stage binds
it again over the real input, and words DuckDB's error the same way (binding_errors.py).

Imported only when a rule needs binding: DuckDB's import and a connection take about 0.1 s, which a trial of the
shipped rules (rules.BUILT_IN) does not pay.
"""

from __future__ import annotations

from functools import cache, lru_cache

import duckdb

from mlexp.data.nyc_taxi import COLUMNS, COORDINATES
from mlexp.tasks.anomaly_detection.binding_errors import UNKNOWN_COLUMN, not_a_condition, said, unbound
from mlexp.tasks.anomaly_detection.dialects import DUCKDB, DUCKDB_MACROS, quote
from mlexp.tasks.anomaly_detection.queries import TripQueries
from mlexp.tasks.anomaly_detection.rules import STATISTICS, Rule
from mlexp.tasks.anomaly_detection.trip_rows import Source

# the empty tables a predicate is bound over: a generated month's columns (mlexp.data.nyc_taxi_synthetic writes
# today's), and those a TLC file may hold besides (2009-2015's coordinates)
TABLES = {"generated_trips": COLUMNS, "file_trips": {**COLUMNS, **COORDINATES}}


@cache
def _connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the task's macros and the empty tables of TABLES."""
    connection = duckdb.connect()
    for macro in DUCKDB_MACROS:
        connection.execute(macro)
    for table, columns in TABLES.items():
        connection.execute(f"CREATE TABLE {table} ({', '.join(f'{quote(n)} {t}' for n, t in columns.items())})")
    return connection


@lru_cache(maxsize=256)
def problem(predicate: str, generated: bool) -> str | None:
    """What DuckDB finds wrong binding `predicate` (a rule, its placeholders filled) where the detect stage does, over
    a generated month's columns (`generated`) or those a TLC file may hold; None when it binds. Over a file's columns
    a column DuckDB does not find is no problem here: the file may hold it (its other columns are kept), and the
    stage binds the rule over the file itself."""
    try:  # on its own first: a syntax error is placed in the predicate, not in the query around it
        statements = _connection().extract_statements(f"SELECT {predicate}")
    except duckdb.Error as error:
        return said(error)
    if len(statements) != 1:
        return "it holds more than one SQL statement; a rule is one condition on a trip"
    table = "generated_trips" if generated else "file_trips"
    statistics = dict.fromkeys(STATISTICS, 0.0)  # each computed, as a constant, when a rule names it
    queries = TripQueries(DUCKDB, Source(table, dict(TABLES[table])), {}, statistics=statistics)
    try:
        result = _connection().execute(queries.rule_check(Rule("rule", predicate, predicate)))
    except duckdb.Error as error:
        if not generated and UNKNOWN_COLUMN.search(said(error)):
            return None
        return unbound(error, queries.rule_columns())
    return not_a_condition(result)
