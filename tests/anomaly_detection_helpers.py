"""Shared by the anomaly_detection tests: the task's composed config, DuckDB queries over files, rule counts."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import sqlglot
from hydra import compose, initialize_config_dir

from conftest import REPO
from mlexp.config import make_composable
from mlexp.data import nyc_taxi
from mlexp.tasks.anomaly_detection import inputs
from mlexp.tasks.anomaly_detection.dialects import DUCKDB
from mlexp.tasks.anomaly_detection.duckdb_engine import DuckDBEngine
from mlexp.tasks.anomaly_detection.queries import TripQueries
from mlexp.tasks.anomaly_detection.rules import enabled_rules
from mlexp.tasks.anomaly_detection.stage_rules import statistics_for, trip_queries


def config(tmp_path: Path, *overrides: str):
    """conf/ composed for task=anomaly_detection, writing under tmp_path."""
    make_composable()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=["task=anomaly_detection", f"paths.data={tmp_path}", *overrides])


def open_queries(cfg, paths: list[Path]) -> tuple[DuckDBEngine, TripQueries]:
    """DuckDB over `paths` as a trial opens it, with the enabled rules and the statistics they use."""
    files = inputs.check_files(cfg, paths, [nyc_taxi.PICKUP, nyc_taxi.DROPOFF])
    engine = inputs.duckdb_engine(cfg, files, "1GB", 1)
    queries = replace(trip_queries(cfg, DUCKDB, engine.source()), rules=enabled_rules(cfg.model))
    return engine, replace(queries, statistics=statistics_for(engine, queries))


def counts(engine: DuckDBEngine, queries: TripQueries) -> dict[str, int]:
    """The rule_counts query's row, by column name."""
    row = engine.query("rule_counts", queries.rule_counts()).iloc[0]
    return {str(name): int(value) for name, value in row.items()}


# every function the Athena statements call, each one Trino's (Athena engine v3): https://trino.io/docs/current/functions
TRINO_FUNCTIONS = {
    "abs", "ceil", "coalesce", "concat_ws", "count", "count_if", "date_diff", "date_parse", "day", "day_of_week",
    "floor", "hour", "is_nan", "log10", "max", "min", "month", "nullif", "regexp_extract", "sum", "trim", "try",
    "try_cast", "upper", "cast",
}  # fmt: skip
# words a "(" follows that call no function
SQL_WORDS = {"as", "in", "and", "or", "not", "when", "then", "else", "over", "from", "with", "select", "exists"}


def functions_outside_trino(sql: str) -> set[str]:
    """Functions `sql` calls that are not in TRINO_FUNCTIONS: sqlglot's unknown ones (exp.Anonymous), and
    every name written before "(" outside string literals (sqlglot maps DuckDB's isodow to a known function)."""
    tree = sqlglot.parse_one(sql, read="athena")
    unknown = {node.name.lower() for node in tree.find_all(sqlglot.exp.Anonymous)}
    text = re.sub(r"'(?:[^']|'')*'", "''", sql)
    called = {name.lower() for name in re.findall(r"(?<![\w.\"])([A-Za-z_]\w*)\s*\(", text)}
    return (unknown | called) - SQL_WORDS - TRINO_FUNCTIONS
