"""Where the SQL runs: DuckDB embedded over local files, or Amazon Athena through PyAthena.

Both run a named query and return a DataFrame, time every query, and write the rows that
pass the rules: DuckDB streams them into a local Parquet file, Athena runs CREATE TABLE AS
SELECT into Parquet on S3 (the post's CTAS).

DuckDB reads each file on its own and types it to today's schema before the files are united
by name, so a column whose physical type drifts between files (VendorID int32 in one year,
int64 in another) is one declared type, whatever each file holds.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlexp.aws_setup import REGION
from mlexp.data import nyc_taxi
from mlexp.errors import ConfigError, DataError
from mlexp.tasks.anomaly_detection.binding import not_a_condition, unbound
from mlexp.tasks.anomaly_detection.config_rules import ATHENA_NO_CREDENTIALS, athena_results_located
from mlexp.tasks.anomaly_detection.dialects import ATHENA, DUCKDB, DUCKDB_MACROS, Dialect, literal, quote
from mlexp.tasks.anomaly_detection.queries import FILE_MONTH, UNREAD, Source, TripQueries
from mlexp.tracking.digests import DigestingFile, remember


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
            if nyc_taxi.is_read_error(error):
                raise DataError(nyc_taxi.read_error(error)) from error
            raise DataError(f"query {name} failed on {self.dialect.name}: {nyc_taxi.first_line(error)}") from error
        finally:
            self.timings[name] = time.perf_counter() - started
            self.sql[name] = sql

    def _run(self, sql: str) -> pd.DataFrame:
        raise NotImplementedError

    def write_cleaned(
        self, sql: str, out_dir: Path, expected_rows: int, trial_id: Callable[[], str] = str
    ) -> dict[str, Any]:
        """Store the result of `sql` if it has `expected_rows` rows; returns where it went and `rows`.

        `trial_id` gives the trial's run id, asked only where it names the output (Athena's CTAS location):
        in a trial it waits for the tracking writer to have created the run (0.9 s in a 1,000-row trial)."""
        raise NotImplementedError

    def check_rule(self, name: str, sql: str, columns: Sequence[str] = ()) -> None:
        """Fail naming the rule when its predicate does not bind (a typo, a missing column: `columns` are those the
        query offers, named in the error)."""


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
        return TripQueries(DUCKDB, source, self.aliases, self.timestamp_formats, value_codes=self.value_codes).trips()

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


@dataclass
class Tally:
    """The values of one marker (`TripQueries.unread`) that read as null though written: rows per value, and each
    value's first row's position in its file (0: the first row), where known."""

    counts: Counter[str] = field(default_factory=Counter)
    firsts: dict[str, int] = field(default_factory=dict)

    def add(self, value: str, rows: int, position: int | None) -> None:
        self.counts[value] += rows
        if position is not None and position < self.firsts.get(value, position + 1):
            self.firsts[value] = position

    def first(self, values: Collection[str] | None = None) -> int | None:
        """The position of the first row holding one of `values` (None: any value), or None when unknown."""
        known = self.firsts if values is None else {v: at for v, at in self.firsts.items() if v in values}
        return min(known.values(), default=None)


class OutputError(DataError):
    """Writing a file failed for the disk's sake (full, not writable): no other way of reading the input helps."""


def write_parquet(
    connection: duckdb.DuckDBPyConnection,
    sql: str,
    target: Path,
    expected_rows: int | None,
    *,
    compression: str,
    source: Path | None = None,
    unread: dict[str, Tally] | None = None,
) -> int:
    """Stream the rows of `sql` into a Parquet file (a million rows at a time); returns the row count.

    pyarrow's writer fed from DuckDB's Arrow stream took 10-20 % less CPU and wall time than DuckDB's
    own COPY TO on two cores (3M trips, 2026-12-02; COPY matched it only with preserve_insertion_order
    off, which reorders the rows; for a staged CSV month, 2026-12-04, the two were within 0.2 s). A thread
    reads the next batch while this one is encoded, so DuckDB's work and pyarrow's overlap (at most three
    batches in memory), and the file is hashed as it is written (its data version, `remember`ed for
    log_output). The file appears only when complete and, if `expected_rows` is given, only with that many
    rows. A column UNREAD (`TripQueries.unread`: the values that read as null though written) is not written:
    given `unread`, its values are counted there per marker, with the first one's position (the rows come in the
    query's order)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    rows = 0
    try:
        reader = connection.sql(sql).to_arrow_reader(1_000_000)
        listed = reader.schema.get_field_index(UNREAD)
        kept = [i for i in range(len(reader.schema)) if i != listed]
        schema = pa.schema([reader.schema.field(i) for i in kept])
        # a month's timestamps are nearly all distinct: a dictionary is built, overflows and is dropped for
        # every row group (0.33 against 0.21 CPU s per column at 7.7M trips, and 2 MB larger); the other
        # columns of a 2019 month shrink 2-9x with one (older files' float coordinates overflow it too)
        dictionary = [field.name for field in schema if not pa.types.is_timestamp(field.type)]
        # hashed as it is written: recording the file as an output does not read it back (file_digest)
        with (
            DigestingFile(partial) as sink,
            pq.ParquetWriter(sink, schema, compression=compression, use_dictionary=dictionary) as writer,
        ):
            for batch in _read_ahead(reader):
                if listed >= 0 and unread is not None:
                    _count_unread(batch.column(listed), unread, rows)
                writer.write_batch(pa.RecordBatch.from_arrays([batch.column(i) for i in kept], schema=schema))
                rows += batch.num_rows
    except (duckdb.Error, OSError) as error:
        partial.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno is not None:  # the disk's (DuckDB's errors carry none)
            raise OutputError(
                f"writing {target} failed: {nyc_taxi.first_line(error)}; check the free space and permissions "
                f"of {target.parent}, or write elsewhere with paths.data=<folder>"
            ) from error
        if nyc_taxi.is_read_error(error) or source is not None:
            raise DataError(nyc_taxi.read_error(error, source)) from error
        raise DataError(f"writing {target} failed: {nyc_taxi.first_line(error)}") from error
    except BaseException:  # Ctrl-C, memory, a pyarrow error: no half-written file is left in an output folder
        partial.unlink(missing_ok=True)
        raise
    if expected_rows is not None and rows != expected_rows:
        partial.unlink()
        raise DataError(_changed(rows, expected_rows))
    partial.replace(target)
    remember(target, sink.hexdigest())
    return rows


_END = object()


def _read_ahead(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    """`reader`'s batches, the next one read by a thread while the caller handles this one: DuckDB (computing
    and converting to Arrow) and pyarrow (encoding Parquet) both release the GIL, so on two cores they overlap.
    An error reading is raised here, as the reader raised it; leaving early stops the thread."""
    handoff: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in reader:
                if not hand(batch):
                    return
        except BaseException as error:  # noqa: BLE001 (handed to the consumer, which raises it)
            hand(error)
            return
        hand(_END)

    thread = threading.Thread(target=produce, name="mlexp-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := handoff.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _count_unread(values: pa.Array, unread: dict[str, Tally], offset: int) -> None:
    """A batch's UNREAD lists into `unread` (marker -> Tally); `offset`: the rows before the batch."""
    if values.null_count == len(values):
        return
    found = pc.list_flatten(values)
    rows = pc.add(pc.list_parent_indices(values).cast(pa.int64()), offset)
    table = pa.table({"marker": found.field("marker"), "value": found.field("value"), "row": rows})
    for group in table.group_by(["marker", "value"]).aggregate([("row", "min"), ("row", "count")]).to_pylist():
        unread.setdefault(group["marker"], Tally()).add(group["value"], group["row_count"], group["row_min"])


class AthenaEngine(Engine):
    """The post's set-up: PyAthena's connection, a Glue Data Catalog table, results in S3."""

    dialect = ATHENA

    def __init__(self, settings: Any) -> None:
        super().__init__()
        import pyathena  # imported here: only Athena trials need it

        if not athena_results_located(settings.s3_staging_dir, settings.work_group):
            raise ConfigError(
                "engine=athena needs engine.s3_staging_dir=s3://<bucket>/<prefix>/ "
                "or engine.work_group=<a workgroup with a result location>"
            )
        if (error := REGION.refusal((settings.region_name,))) is not None:
            raise error  # not botocore's "Invalid endpoint: https://athena..amazonaws.com", a traceback
        self.settings = settings
        arguments = {"s3_staging_dir": settings.s3_staging_dir, "region_name": settings.region_name}
        arguments |= {"schema_name": settings.database, "work_group": settings.work_group}
        with quiet_pyathena():
            self.connection = pyathena.connect(**{k: v for k, v in arguments.items() if v is not None})
        if self.connection.session.get_credentials() is None:
            raise ConfigError(ATHENA_NO_CREDENTIALS)  # config_rules refused it before the trial, unless they vanished
        self.errors: tuple[type[Exception], ...] = (pyathena.error.Error,)

    @property
    def table(self) -> str:
        return f"{quote(self.settings.database)}.{quote(self.settings.table)}"

    def query(self, name: str, sql: str) -> pd.DataFrame:
        try:
            with quiet_pyathena():
                return super().query(name, sql)
        except self.errors as error:
            raise DataError(f"query {name} failed on Athena: {nyc_taxi.first_line(error)}") from error

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

    def rows_without_month(self) -> tuple[int, str | None]:
        """Rows whose S3 object ("$path") has no month (YYYY-MM) in its name, and one such object."""
        found = self.query(
            "rows_without_month",
            f'SELECT count(*) AS rows_without_month, min("$path") AS example_path FROM {self.table}\n'
            f"WHERE {ATHENA.month_of_path()} IS NULL",
        )
        rows = int(found["rows_without_month"].iloc[0])
        example = found["example_path"].iloc[0]
        return rows, None if example is None or pd.isna(example) else str(example)

    def cleaned_location(self, trial_id: str) -> str | None:
        """Where this trial's CTAS writes: a fresh prefix per trial (its run id), since CTAS fails on a location
        holding data and DROP TABLE leaves a table's S3 data behind (null: Athena picks one under the results)."""
        if not self.settings.cleaned_location:
            return None
        # outside a trial (the Python API) a random prefix is as fresh as a trial id
        return f"{str(self.settings.cleaned_location).rstrip('/')}/{trial_id or uuid.uuid4().hex}/"

    def cleaning_statements(self, sql: str, location: str | None) -> dict[str, str]:
        """The statements that replace the cleaned table: DROP (Hive DDL), CTAS (Trino), and the row count."""
        target = f"{quote(self.settings.database)}.{quote(self.settings.cleaned_table)}"
        properties = ["format = 'PARQUET'", "write_compression = 'SNAPPY'"]
        if location:
            properties.append(f"external_location = {literal(location)}")
        # DROP is DDL, which Athena parses as Hive: names in backticks, not double quotes
        hive_name = f"`{self.settings.database}`.`{self.settings.cleaned_table}`"
        return {
            "drop_cleaned": f"DROP TABLE IF EXISTS {hive_name}",
            "cleaned": f"CREATE TABLE {target}\nWITH ({', '.join(properties)}) AS\n{sql}",
            "cleaned_rows": f"SELECT count(*) FROM {target}",
        }

    def write_cleaned(
        self, sql: str, out_dir: Path, expected_rows: int, trial_id: Callable[[], str] = str
    ) -> dict[str, Any]:
        """CREATE TABLE AS SELECT into Parquet (the post's CTAS); a JSON note of the table stays local."""
        location = self.cleaned_location(trial_id() if self.settings.cleaned_location else "")
        statements = self.cleaning_statements(sql, location)
        target = f"{quote(self.settings.database)}.{quote(self.settings.cleaned_table)}"
        self.query("drop_cleaned", statements["drop_cleaned"])
        self.query("cleaned", statements["cleaned"])
        rows = int(self.query("cleaned_rows", statements["cleaned_rows"]).iloc[0, 0])
        if rows != expected_rows:
            # a table of the wrong rows must not stay for the next query to read as the cleaned trips
            self.query("drop_mismatched", statements["drop_cleaned"])
            raise DataError(_changed(rows, expected_rows) + f" (table {target} was dropped)")
        note = {"table": f"{self.settings.database}.{self.settings.cleaned_table}", "rows": rows}
        note["location"] = location or "under the query result location"
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "athena_table.json").write_text(json.dumps(note, indent=2) + "\n")
        return note


@contextmanager
def quiet_pyathena() -> Iterator[None]:
    """PyAthena logs a full traceback before raising; the error it raises is reported as one line instead."""
    logger = logging.getLogger("pyathena")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
