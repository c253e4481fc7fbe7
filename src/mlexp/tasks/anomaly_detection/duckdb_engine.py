"""DuckDB embedded over the trial's local files.

DuckDB reads each file on its own and types it to today's schema before the files are united
by name, so a column whose physical type drifts between files (VendorID int32 in one year,
int64 in another) is one declared type, whatever each file holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from mlexp.data import nyc_taxi
from mlexp.errors import ConfigError, DataError
from mlexp.tasks.anomaly_detection.binding_errors import not_a_condition, unbound
from mlexp.tasks.anomaly_detection.dialects import DUCKDB, DUCKDB_MACROS, literal
from mlexp.tasks.anomaly_detection.engines import Engine
from mlexp.tasks.anomaly_detection.parquet_output import write_parquet
from mlexp.tasks.anomaly_detection.trip_rows import FILE_MONTH, Source, TripRows


def connect(memory_limit: str, threads: int) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with engine.memory_limit and engine.threads (0: one per core)."""
    connection = duckdb.connect()
    try:
        connection.execute(f"SET memory_limit = {literal(memory_limit)}")
    except duckdb.Error as error:
        raise ConfigError(f"engine.memory_limit={memory_limit!r}: {error}; write e.g. 3GB") from error
    if threads > 0:
        connection.execute(f"SET threads = {int(threads)}")
    for macro in DUCKDB_MACROS:
        connection.execute(macro)
    return connection


def file_month_sql(path: Path) -> str:
    month = nyc_taxi.file_month(path)
    return f"TIMESTAMP '{month}-01 00:00:00'" if month else "CAST(NULL AS TIMESTAMP)"


class DuckDBEngine(Engine):
    dialect = DUCKDB

    def __init__(
        self,
        files: Sequence[nyc_taxi.TripFile],
        memory_limit: str,
        threads: int,
        aliases: Mapping[str, Sequence[str]],
        timestamp_formats: Sequence[str],
        value_codes: Mapping[str, Mapping[str, int]],
        compression: str = "none",
    ) -> None:
        super().__init__()
        self.compression = compression
        self.files = list(files)
        self.connection = connect(memory_limit, threads)
        self.aliases = aliases
        self.timestamp_formats = list(timestamp_formats)
        self.value_codes = value_codes

    def file_trips(self, file: nyc_taxi.TripFile) -> str:
        """One file's rows in today's schema: each column cast to its declared type, older names and codes mapped."""
        source = Source(nyc_taxi.reader_sql(file), file.columns, file_month_sql(file.path))
        return TripRows(DUCKDB, source, self.aliases, self.timestamp_formats, value_codes=self.value_codes).trips()

    def source(self) -> Source:
        """All files as one relation: each typed on its own first, then united by name."""
        selects = [self.file_trips(file) for file in self.files]
        relation = selects[0] if len(selects) == 1 else "\nUNION ALL BY NAME\n".join(f"({s})" for s in selects)
        relation = f"({relation})"
        try:
            described = self.connection.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        except duckdb.Error as error:
            raise DataError(f"the trip files cannot be read as one table: {nyc_taxi.first_line(error)}") from error
        return Source(relation, {str(row[0]): str(row[1]) for row in described}, FILE_MONTH)

    def _run(self, sql: str) -> pd.DataFrame:
        return self.connection.execute(sql).df()

    def check_rule(self, name: str, sql: str, columns: Sequence[str] = ()) -> None:
        try:
            result = self.connection.execute(sql)
        except duckdb.Error as error:
            raise ConfigError(f"model.rules.{name}: {unbound(error, columns)}") from error
        problem = not_a_condition(result)
        if problem is not None:
            raise ConfigError(f"model.rules.{name}: {problem}")

    def write_cleaned(
        self, sql: str, out_dir: Path, expected_rows: int, trial_id: Callable[[], str] = str
    ) -> dict[str, Any]:
        target = out_dir / "trips_cleaned.parquet"
        started = time.perf_counter()
        try:
            rows = write_parquet(self.connection, sql, target, expected_rows, compression=self.compression)
        finally:
            self.timings["cleaned"] = time.perf_counter() - started
            self.sql["cleaned"] = sql
        return {"path": str(target), "rows": rows}
