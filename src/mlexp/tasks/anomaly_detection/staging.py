"""A trial's files as its later stages read them: CSV parsed once into Parquet in today's schema, Parquet in place.

Values that read as null though written are counted on the way (trip_rows.py's `unread`) and warned about
(unread_warnings.py); a file without a row fails here; copies an earlier run staged and this one did not are removed.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from omegaconf import DictConfig

from mlexp.data import nyc_taxi
from mlexp.data.parquet_files import is_gzip
from mlexp.errors import DataError
from mlexp.tasks.anomaly_detection.dialects import DUCKDB, literal, quote
from mlexp.tasks.anomaly_detection.duckdb_engine import connect, file_month_sql
from mlexp.tasks.anomaly_detection.inputs import aliases, input_dir, reading, value_codes
from mlexp.tasks.anomaly_detection.parquet_output import OutputError, write_parquet
from mlexp.tasks.anomaly_detection.trip_rows import UNKNOWN_CODE, UNREADABLE_NUMBER, Source, TripRows
from mlexp.tasks.anomaly_detection.unread_values import Tally
from mlexp.tasks.anomaly_detection.unread_warnings import warn_unread

# the typed reader's stop on a number that is not whole (or one a DOUBLE does not hold exactly, from 2**53) in a
# BIGINT column: the file is read as text
NOT_WHOLE_STOP = "mlexp: a number that is not a whole one, or beyond 2**53, in a BIGINT column of "
EXACT = 2**53
# the staged copy of a CSV is read only by the trial's later stages: no compression to undo there
STAGED_COMPRESSION = "none"
# a staged copy (`staged_name`), or one being written
STAGED_COPY = re.compile(r"[0-9]{3,}_.+\.parquet(?P<partial>\.partial)?")
# a writer appends to its .partial without pause: one untouched this long was left by a killed run
PARTIAL_ALIVE_S = 600


def stage_csv(
    cfg: DictConfig,
    files: Sequence[nyc_taxi.TripFile],
    unknown: dict[str, Counter[str]] | None = None,
    unreadable: dict[str, Counter[str]] | None = None,
) -> list[Path]:
    """Each file as Parquet in today's schema (CSV parsed once; Parquet files are read in place).

    A file without a single trip row (a CSV of only a header, a Parquet file of 0 rows) fails here,
    naming the file: a month that holds nothing is a wrong path or a broken download.
    Text that reads as null is not dropped silently: in a coded column, text that is neither in
    preprocessing.value_codes nor a number; in a numeric column, text that is not a number ('two point five' in
    trip_distance); in a code or ID column, a number that is not whole (VendorID 2.5, as text or a Parquet float)
    or beyond a BIGINT. A warning names the file, the column, the values with their rows and the first one's line
    (CSV) or row (Parquet); `unknown` and `unreadable` (column -> value -> rows) add them up over the files.
    The rows are kept, with the value null.
    """
    read: list[Path] = []
    connection = connect(cfg.engine.memory_limit, cfg.engine.threads)
    for number, file in enumerate(files):
        source = Source(nyc_taxi.reader_sql(file), file.columns, file_month_sql(file.path))
        queries = TripRows(DUCKDB, source, **reading(cfg))
        # marker (UNKNOWN_CODE or UNREADABLE_NUMBER + column) -> the values that read as null, found while staging
        found: dict[str, Tally] = {}
        if file.format != "csv" or not cfg.preprocessing.stage_csv_as_parquet:
            if not _has_rows(connection, file):
                raise DataError(f"{file.path}: no rows ({_nothing(file)}); check dataset.path")
            found = _unread_in_place(connection, file, queries)
            read.append(file.path)
        else:
            target = input_dir(cfg) / "staged" / staged_name(number, file.path)
            rows = _stage_typed(cfg, connection, file, target, found)
            if rows is None:  # not a strict CSV of numbers where numbers belong: every field read as text
                found = {}
                rows = write_parquet(
                    connection,
                    queries.staged(),
                    target,
                    None,
                    compression=STAGED_COMPRESSION,
                    source=file.path,
                    unread=found,
                )
            if not rows:
                target.unlink()
                raise DataError(f"{file.path}: no rows ({_nothing(file)}); check dataset.path")
            read.append(target)
        warn_unread(connection, file, found)
        # every coded column checked in a file is reported, 0 included (rows_unknown_code_<column>)
        for column in queries.checked_columns().keys() & queries.value_codes.keys():
            found.setdefault(UNKNOWN_CODE + column, Tally())
        for marker, tally in found.items():
            for prefix, total in ((UNKNOWN_CODE, unknown), (UNREADABLE_NUMBER, unreadable)):
                if marker.startswith(prefix) and total is not None:
                    total.setdefault(marker.removeprefix(prefix), Counter()).update(tally.counts)
    _remove_stale_copies(input_dir(cfg) / "staged", read)
    return read


def _unread_in_place(
    connection: duckdb.DuckDBPyConnection, file: nyc_taxi.TripFile, queries: TripRows
) -> dict[str, Tally]:
    """The values of a file read in place (Parquet, or CSV with stage_csv_as_parquet=false) that read as null
    though written: one query, only when the file holds a coded or numeric column as text (every CSV; a Parquet
    file of 2009's text codes or of numbers stored as strings) or a code or ID as a float (a Parquet VendorID of
    DOUBLE); never for a Parquet file of TLC's own types."""
    found: dict[str, Tally] = {}
    if queries.unread() is None:
        return found
    try:
        for marker, value, rows, position in connection.execute(queries.unread_values()).fetchall():
            found.setdefault(marker, Tally()).add(value, rows, position)
    except duckdb.Error as error:
        raise DataError(nyc_taxi.read_error(error, file.path)) from error
    return found


def _remove_stale_copies(folder: Path, kept: Sequence[Path]) -> None:
    """Remove the copies an earlier run staged and this one did not (`staged_name`'s, nothing else), and the
    `.partial` ones a killed run left: the folder is recorded with its data version as it is. A `.partial`
    written to in the last PARTIAL_ALIVE_S seconds may be another trial's copy in progress, and stays."""
    if not folder.is_dir():
        return
    alive = time.time() - PARTIAL_ALIVE_S
    for stale in set(folder.iterdir()) - set(kept):
        copy = STAGED_COPY.fullmatch(stale.name)
        if copy and stale.is_file() and (not copy.group("partial") or stale.stat().st_mtime < alive):
            stale.unlink()
    if not any(folder.iterdir()):
        folder.rmdir()


def typed_csv_reader(
    file: nyc_taxi.TripFile,
    aliases: dict[str, list[str]],
    codes: dict[str, dict[str, int]],
    connection: duckdb.DuckDBPyConnection,
) -> tuple[str, dict[str, str]] | None:
    """A strict reader of a CSV file that parses each of today's numeric columns as its declared type, and the
    columns it gives (name -> type); None when no column would be parsed as a number.

    It reads what the text reader (`nyc_taxi.reader_sql` and the casts of `TripRows.trips`) reads, faster
    (about a third less CPU: no string per field), or fails: DuckDB parses a typed field with the cast the text
    path applies, an empty field reads as null as there, and every row must have the header's fields (strict,
    no padding: only empty surplus fields pass, as there). It fails on any value the text path would read as null
    (a bad number, text codes such as CASH) and on mixed line endings; its caller then reads the file as text,
    which also names the file and line of a row that does not parse. Timestamps stay text: TLC's files hold
    impossible ones (2019-13-01), which read as null. A column whose value codes include a number keeps text.
    """
    declared = {**nyc_taxi.COLUMNS, **nyc_taxi.COORDINATES}
    today = {name: column for column, names in nyc_taxi.match_columns(file.columns, aliases).items() for name in names}
    types = {}
    for name in file.columns:
        sql_type = declared.get(today.get(name, ""), "VARCHAR")
        coded = codes.get(today.get(name, ""), {})
        if sql_type in ("TIMESTAMP", "VARCHAR") or any(_is_number(connection, key, sql_type) for key in coded):
            sql_type = "VARCHAR"
        types[name] = sql_type
    if all(sql_type == "VARCHAR" for sql_type in types.values()):
        return None
    # DuckDB's reader rounds 2.5 in a BIGINT column to 3: those are read as DOUBLE, and the file read as text
    # (where such a value is null and warned about) unless each is a whole number a DOUBLE holds exactly
    whole = [name for name, sql_type in types.items() if sql_type == "BIGINT"]
    read = {name: "DOUBLE" if name in whole else sql_type for name, sql_type in types.items()}
    columns = ", ".join(f"{literal(name)}: {literal(sql_type)}" for name, sql_type in read.items())
    compression = "gzip" if is_gzip(file.path) else "none"
    relation = (
        f"read_csv({literal(str(file.path))}, header = true, auto_detect = false, columns = {{{columns}}}, "
        f"delim = ',', quote = '\"', escape = '\"', strict_mode = true, null_padding = false, nullstr = '', "
        f"compression = '{compression}')"
    )
    if whole:
        casts = ", ".join(f"CAST({quote(name)} AS BIGINT) AS {quote(name)}" for name in whole)
        odd = " OR ".join(
            f"NOT isfinite({quote(name)}) OR {quote(name)} <> floor({quote(name)}) OR abs({quote(name)}) >= {EXACT}"
            for name in whole
        )
        stop = f"error({literal(NOT_WHOLE_STOP + str(file.path))})"
        relation = f"(SELECT * REPLACE ({casts}) FROM {relation} WHERE CASE WHEN {odd} THEN {stop} ELSE true END)"
    return relation, types


def _is_number(connection: duckdb.DuckDBPyConnection, text: str, sql_type: str) -> bool:
    return connection.execute(f"SELECT try_cast(? AS {sql_type}) IS NOT NULL", [text.strip()]).fetchall()[0][0]


def _stage_typed(
    cfg: DictConfig,
    connection: duckdb.DuckDBPyConnection,
    file: nyc_taxi.TripFile,
    target: Path,
    unread: dict[str, Tally],
) -> int | None:
    """A CSV file staged through `typed_csv_reader`: its rows, or None when the file must be read as text.
    Text that reads as null is counted into `unread`: only in a coded column it keeps as text (one whose codes
    include a number), since a column it parses as a number refuses the file on text that is not one."""
    reader = typed_csv_reader(file, aliases(cfg), value_codes(cfg), connection)
    if reader is None:
        return None
    source = Source(reader[0], reader[1], file_month_sql(file.path))
    try:
        return write_parquet(
            connection,
            TripRows(DUCKDB, source, **reading(cfg)).staged(),
            target,
            None,
            compression=STAGED_COMPRESSION,
            unread=unread,
        )
    except OutputError:
        raise  # a full disk: the text reader would fail the same way, and blame the CSV
    except DataError:
        return None


def _nothing(file: nyc_taxi.TripFile) -> str:
    return "only a header" if file.format == "csv" else "a Parquet file of 0 rows"


def _has_rows(connection: duckdb.DuckDBPyConnection, file: nyc_taxi.TripFile) -> bool:
    """Whether a file holds a row: a Parquet footer's row count, or one row read from a CSV."""
    if file.format == "parquet":
        return bool(pq.read_metadata(file.path).num_rows)
    try:
        return bool(connection.execute(f"SELECT 1 FROM {nyc_taxi.reader_sql(file)} LIMIT 1").fetchall())
    except duckdb.Error as error:
        raise DataError(nyc_taxi.read_error(error, file.path)) from error


def staged_name(number: int, path: Path) -> str:
    """A staged file's name: the source's without .csv/.gz, so the month in it (which pickup_outside_month
    reads: nyc.yellow.2019-01.csv) survives, numbered so that two sources never share one."""
    stem = re.sub(r"(\.csv)?(\.gz)?$", "", path.name, flags=re.IGNORECASE)
    name = f"{number:03d}_{stem}.parquet"
    if nyc_taxi.file_month(Path(name)) != nyc_taxi.file_month(path):
        raise DataError(f"{path}: the month in its name would be lost in the staged copy {name}; rename the file")
    return name
