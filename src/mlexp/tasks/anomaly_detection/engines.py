"""Where the SQL runs: DuckDB embedded over local files, or Amazon Athena through PyAthena.

Both run a named query and return a DataFrame, time every query, and write the rows that
pass the rules: DuckDB streams them into a local Parquet file, Athena runs CREATE TABLE AS
SELECT into Parquet on S3 (the post's CTAS).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from mlexp.data import nyc_taxi
from mlexp.errors import ConfigError, DataError
from mlexp.tasks.anomaly_detection.dialects import ATHENA, DUCKDB, Dialect, literal, quote
from mlexp.tasks.anomaly_detection.queries import Source


def _changed(rows: int, expected: int) -> str:
    return (
        f"the cleaned trips are {rows:,} rows, not rows_in - rows_flagged = {expected:,}: "
        "the input changed after the detect stage; run detect again"
    )


class Engine:
    """What stages need of an engine; `timings` and `sql` record every query by name."""

    dialect: Dialect

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.sql: dict[str, str] = {}

    def source(self) -> Source:
        raise NotImplementedError

    def query(self, name: str, sql: str) -> pd.DataFrame:
        started = time.perf_counter()
        try:
            return self._run(sql)
        except (duckdb.Error, OSError) as error:
            raise DataError(f"query {name} failed on {self.dialect.name}: {str(error).splitlines()[0]}") from error
        finally:
            self.timings[name] = time.perf_counter() - started
            self.sql[name] = sql

    def _run(self, sql: str) -> pd.DataFrame:
        raise NotImplementedError

    def write_cleaned(self, sql: str, out_dir: Path, expected_rows: int) -> dict[str, Any]:
        """Store the result of `sql` if it has `expected_rows` rows; returns where it went and `rows`."""
        raise NotImplementedError

    def check_rule(self, name: str, sql: str) -> None:
        """Fail naming the rule when its predicate does not bind (a typo, a missing column)."""


def connect(memory_limit: str, threads: int) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with engine.memory_limit and engine.threads (0: one per core)."""
    connection = duckdb.connect()
    try:
        connection.execute(f"SET memory_limit = {literal(memory_limit)}")
    except duckdb.Error as error:
        raise ConfigError(f"engine.memory_limit={memory_limit!r}: {error}; write e.g. 3GB") from error
    if threads > 0:
        connection.execute(f"SET threads = {int(threads)}")
    return connection


class DuckDBEngine(Engine):
    dialect = DUCKDB

    def __init__(self, files: Sequence[nyc_taxi.TripFile], memory_limit: str, threads: int) -> None:
        super().__init__()
        self.files = list(files)
        self.connection = connect(memory_limit, threads)

    def source(self) -> Source:
        columns: dict[str, str] = {}
        for file in self.files:
            for name, sql_type in file.columns.items():
                # a column typed differently across files is read as text and cast by the queries
                columns[name] = sql_type if columns.get(name, sql_type) == sql_type else "VARCHAR"
        return Source(nyc_taxi.source_sql(self.files), columns)

    def _run(self, sql: str) -> pd.DataFrame:
        return self.connection.execute(sql).df()

    def check_rule(self, name: str, sql: str) -> None:
        try:
            self.connection.execute(sql)
        except duckdb.Error as error:
            raise ConfigError(f"model.rules.{name}: {str(error).splitlines()[0]}") from error

    def write_cleaned(self, sql: str, out_dir: Path, expected_rows: int) -> dict[str, Any]:
        target = out_dir / "trips_cleaned.parquet"
        started = time.perf_counter()
        try:
            rows = write_parquet(self.connection, sql, target, expected_rows)
        finally:
            self.timings["cleaned"] = time.perf_counter() - started
            self.sql["cleaned"] = sql
        return {"path": str(target), "rows": rows}


def write_parquet(connection: duckdb.DuckDBPyConnection, sql: str, target: Path, expected_rows: int | None) -> int:
    """Stream the rows of `sql` into a Parquet file (a million rows at a time); returns the row count.

    pyarrow's writer fed from DuckDB's Arrow stream is about twice as fast as DuckDB's own
    COPY TO on two cores, and holds one batch in memory. The file appears only when complete
    and, if `expected_rows` is given, only with that many rows.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    rows = 0
    try:
        reader = connection.sql(sql).to_arrow_reader(1_000_000)
        with pq.ParquetWriter(partial, reader.schema, compression="snappy") as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
    except (duckdb.Error, OSError) as error:
        partial.unlink(missing_ok=True)
        raise DataError(f"writing {target} failed: {str(error).splitlines()[0]}") from error
    if expected_rows is not None and rows != expected_rows:
        partial.unlink()
        raise DataError(_changed(rows, expected_rows))
    partial.replace(target)
    return rows


class AthenaEngine(Engine):
    """The post's set-up: PyAthena's connection, a Glue Data Catalog table, results in S3."""

    dialect = ATHENA

    def __init__(self, settings: Any) -> None:
        super().__init__()
        import pyathena  # imported here: only Athena trials need it

        if not settings.s3_staging_dir and not settings.work_group:
            raise ConfigError(
                "engine=athena needs engine.s3_staging_dir=s3://<bucket>/<prefix>/ "
                "or engine.work_group=<a workgroup with a result location>"
            )
        self.settings = settings
        arguments = {"s3_staging_dir": settings.s3_staging_dir, "region_name": settings.region_name}
        arguments |= {"schema_name": settings.database, "work_group": settings.work_group}
        self.connection = pyathena.connect(**{k: v for k, v in arguments.items() if v is not None})
        self.errors: tuple[type[Exception], ...] = (pyathena.error.Error,)

    @property
    def table(self) -> str:
        return f"{quote(self.settings.database)}.{quote(self.settings.table)}"

    def query(self, name: str, sql: str) -> pd.DataFrame:
        try:
            return super().query(name, sql)
        except self.errors as error:
            raise DataError(f"query {name} failed on Athena: {error}") from error

    def source(self) -> Source:
        columns = self.query(
            "table_columns",
            "SELECT column_name, data_type FROM information_schema.columns\n"
            # the Glue Data Catalog keeps names in lower case
            f"WHERE table_schema = {literal(self.settings.database.lower())} "
            f"AND table_name = {literal(self.settings.table.lower())}",
        )
        if columns.empty:
            raise DataError(f"Athena table {self.settings.database}.{self.settings.table} has no columns or is missing")
        return Source(self.table, dict(zip(columns.iloc[:, 0].astype(str), columns.iloc[:, 1].astype(str))))

    def _run(self, sql: str) -> pd.DataFrame:
        cursor = self.connection.cursor()
        cursor.execute(sql)
        if not cursor.description:  # DDL: no result set
            return pd.DataFrame()
        return pd.DataFrame(cursor.fetchall(), columns=[column[0] for column in cursor.description])

    def write_cleaned(self, sql: str, out_dir: Path, expected_rows: int) -> dict[str, Any]:
        """CREATE TABLE AS SELECT into Parquet (the post's CTAS); a JSON note of the table stays local."""
        target = f"{quote(self.settings.database)}.{quote(self.settings.cleaned_table)}"
        properties = ["format = 'PARQUET'", "write_compression = 'SNAPPY'"]
        if self.settings.cleaned_location:
            properties.append(f"external_location = {literal(self.settings.cleaned_location)}")
        # DROP is DDL, which Athena parses as Hive: names in backticks, not double quotes
        hive_name = f"`{self.settings.database}`.`{self.settings.cleaned_table}`"
        self.query("drop_cleaned", f"DROP TABLE IF EXISTS {hive_name}")
        self.query("cleaned", f"CREATE TABLE {target}\nWITH ({', '.join(properties)}) AS\n{sql}")
        rows = int(self.query("cleaned_rows", f"SELECT count(*) FROM {target}").iloc[0, 0])
        if rows != expected_rows:
            raise DataError(_changed(rows, expected_rows) + f" (table {target} holds them; drop it)")
        note = {"table": f"{self.settings.database}.{self.settings.cleaned_table}", "rows": rows}
        note["location"] = self.settings.cleaned_location or "under the query result location"
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "athena_table.json").write_text(json.dumps(note, indent=2) + "\n")
        return note
