"""A query's rows streamed into a Parquet file: the cleaned trips (DuckDB), a staged copy of a CSV."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from mlexp.data import nyc_taxi
from mlexp.errors import DataError
from mlexp.interrupts import get_obeying_signals
from mlexp.tasks.anomaly_detection.engines import cleaned_rows_changed
from mlexp.tasks.anomaly_detection.trip_rows import UNREAD
from mlexp.tasks.anomaly_detection.unread_values import Tally, count_unread
from mlexp.tracking.digests import DigestingFile, remember


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
    rows. A column UNREAD (`TripRows.unread`: the values that read as null though written) is not written:
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
            for batch in _read_ahead(reader, connection.interrupt):
                if listed >= 0 and unread is not None:
                    count_unread(batch.column(listed), unread, rows)
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
        raise DataError(cleaned_rows_changed(rows, expected_rows))
    partial.replace(target)
    remember(target, sink.hexdigest())
    return rows


_END = object()


def _read_ahead(reader: pa.RecordBatchReader, interrupt: Callable[[], object]) -> Iterator[pa.RecordBatch]:
    """`reader`'s batches, the next one read by a thread while the caller handles this one: DuckDB (computing
    and converting to Arrow) and pyarrow (encoding Parquet) both release the GIL, so on two cores they overlap.
    An error reading is raised here, as the reader raised it; leaving early stops the thread, and `interrupt`
    (the query's connection.interrupt) ends the batch it is reading: a Ctrl-C is not kept waiting for it."""
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
    ended = False
    try:
        # a batch of a month's cleaned trips takes seconds to compute: a Ctrl-C meanwhile is obeyed at once
        while (item := get_obeying_signals(handoff)) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
        ended = True
    finally:
        stop.set()
        if not ended:
            interrupt()  # the thread's error, if any, is not handed on: stop is set
        thread.join()
