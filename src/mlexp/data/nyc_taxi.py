"""NYC TLC yellow taxi trip records, as published: monthly CSV (to 2022) or Parquet files.

The loader does not read rows into Python: it checks each file's columns (a Parquet footer,
a CSV header) and gives the SQL that reads the file (`reader_sql`), so queries run over files
of any size. Real files differ across years; `match_columns` maps the older names (a small
mapping in conf/preprocessing/nyc_taxi_trips.yaml) onto today's, case- and space-insensitively.

CSV is read as people save it: LF, CRLF or mixed line endings, a UTF-8 byte order mark or
none, gzip-compressed (.csv.gz), blank lines. The header is read here and handed to DuckDB
with every column as text, so DuckDB's dialect sniffer (which gives up on mixed line endings)
never runs; a row that still does not parse fails naming the file, the line and what was expected,
and a file that is not UTF-8 (Latin-1, Windows-1252) fails naming its first such line and how to re-save it.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import duckdb

from mlexp.data.parquet_files import MAGIC as PARQUET_MAGIC
from mlexp.data.parquet_files import holds_gzipped_parquet, is_gzip, not_parquet
from mlexp.data.sources import expand
from mlexp.data.text_files import not_utf8, with_nul
from mlexp.errors import DataError

# today's yellow-taxi columns and the types of TLC's Parquet files
COLUMNS: dict[str, str] = {
    "VendorID": "BIGINT",
    "tpep_pickup_datetime": "TIMESTAMP",
    "tpep_dropoff_datetime": "TIMESTAMP",
    "passenger_count": "DOUBLE",
    "trip_distance": "DOUBLE",
    "RatecodeID": "DOUBLE",
    "store_and_fwd_flag": "VARCHAR",
    "PULocationID": "BIGINT",
    "DOLocationID": "BIGINT",
    "payment_type": "BIGINT",
    "fare_amount": "DOUBLE",
    "extra": "DOUBLE",
    "mta_tax": "DOUBLE",
    "tip_amount": "DOUBLE",
    "tolls_amount": "DOUBLE",
    "improvement_surcharge": "DOUBLE",
    "total_amount": "DOUBLE",
    "congestion_surcharge": "DOUBLE",
    # airport_fee (2022 files) and Airport_fee (2023 files): one column, the names matched ignoring case
    "airport_fee": "DOUBLE",
}
# 2009-2015's coordinates (before the location IDs): typed and named alike when a file has them,
# absent from the output when no input has them
COORDINATES: dict[str, str] = {
    "pickup_longitude": "DOUBLE",
    "pickup_latitude": "DOUBLE",
    "dropoff_longitude": "DOUBLE",
    "dropoff_latitude": "DOUBLE",
}
PICKUP, DROPOFF = "tpep_pickup_datetime", "tpep_dropoff_datetime"
# what a folder given as dataset.path is searched for (.gz: gzipped CSV)
SUFFIXES = (".parquet", ".csv", ".gz")
# the month a TLC file holds, from its name (yellow_tripdata_2019-01.parquet)
MONTH_IN_NAME = re.compile(r"(?<!\d)((?:19|20)\d{2})-(0[1-9]|1[0-2])(?!\d)")
# the column a CSV row's surplus field lands in, and the error that stops a query on a row of the wrong length
OVERFLOW = "__overflow"
FIELD_COUNT_ERROR = "mlexp: a row whose field count differs from the header in "
# DuckDB's null text for CSV: none, so an empty field reads as '' and only a missing one (padded) as null
NO_NULL_TEXT = "\\N\\x01"


@dataclass(frozen=True)
class TripFile:
    """One data file: its format and its columns (name as written in the file → DuckDB type)."""

    path: Path
    format: str
    columns: dict[str, str]


def locate(path: str | Path) -> list[Path]:
    """The trip files `path` names: one file, a folder of them, or a glob of monthly files."""
    return expand(path, SUFFIXES)


def file_format(path: Path) -> str:
    """parquet or csv: by the name, else by the first bytes. A Parquet file gzipped whole (.parquet.gz) is parquet,
    so that reading it fails naming what it is (`not_parquet`), not as a CSV that is binary."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    with path.open("rb") as handle:
        parquet = handle.read(len(PARQUET_MAGIC)) == PARQUET_MAGIC
    return "parquet" if parquet or holds_gzipped_parquet(path) else "csv"


def file_month(path: Path) -> str | None:
    """The month in a file's name ("2019-01" of yellow_tripdata_2019-01.csv.gz), or None."""
    found = MONTH_IN_NAME.findall(path.name)
    return f"{found[-1][0]}-{found[-1][1]}" if found else None


def open_bytes(path: Path) -> BinaryIO:
    """A file's bytes, unpacked when it is gzip-compressed."""
    return gzip.open(path, "rb") if is_gzip(path) else path.open("rb")  # type: ignore[return-value]


def csv_header(path: Path) -> list[str]:
    """A CSV file's column names: its first line, byte order mark and line ending removed, gzip or not.

    Only the first line is decoded, so a byte that is not UTF-8 further down is reported at its own line.
    """
    try:
        with open_bytes(path) as raw:
            data = raw.readline(1 << 20)
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: line 1: expected a header row of column names ({error})") from error
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        line = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(not_utf8(path, 1, data, error)) from error
    if "\x00" in line:
        raise DataError(with_nul(path, data))
    text = line.rstrip("\r\n")
    if "\r" in text:
        raise DataError(
            f"{path}: line 1: its lines end with a carriage return alone (CR, as 'CSV (Macintosh)' saves them); "
            "expected LF or CRLF line endings: re-save it as 'CSV UTF-8', or convert it with "
            "`tr '\\r' '\\n' < in.csv > out.csv`"
        )
    try:
        names = next(csv.reader([text]), [])
    except csv.Error:  # a NUL byte: not a header of names either
        names = []
    if len(names) < 2:
        raise DataError(f"{path}: line 1: expected a header row of comma-separated column names, found {line[:80]!r}")
    return names


def encoding_error(path: Path) -> str:
    """The first line of a file that is not UTF-8, as one line (DuckDB's own error counts lines differently)."""
    with open_bytes(path) as raw:
        for number, data in enumerate(raw, start=1):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as error:
                return not_utf8(path, number, data, error)
    return f"{path}: expected UTF-8 text; the file is not UTF-8: re-save it as UTF-8"


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def reader_sql(file: TripFile) -> str:
    """DuckDB's relation reading one file; CSV as text (typed later), with the header read here.

    A CSV row must have the header's number of fields. DuckDB's reader (strict_mode off, for mixed
    line endings) would silently drop surplus fields and pad missing ones, so it reads one more
    column than the header (OVERFLOW) and pads short rows with null while an empty field reads as
    '' (nullstr is text no file holds): a row with a value in OVERFLOW, or null in the header's last
    column, stops the query with FIELD_COUNT_ERROR, which `read_error` turns into the file and line.
    Empty surplus fields (TLC's 2016-07..12 rows end in ",,") pass.
    """
    if file.format == "parquet":
        return f"read_parquet({_text(str(file.path))})"
    names = list(file.columns)
    columns = ", ".join(f"{_text(name)}: 'VARCHAR'" for name in [*names, OVERFLOW])
    compression = "gzip" if is_gzip(file.path) else "none"
    read = (
        f"read_csv({_text(str(file.path))}, header = true, auto_detect = false, columns = {{{columns}}}, "
        f"delim = ',', quote = '\"', escape = '\"', strict_mode = false, null_padding = true, "
        f"nullstr = {_text(NO_NULL_TEXT)}, compression = '{compression}')"
    )
    fields = ", ".join(f"nullif({_name(name)}, '') AS {_name(name)}" for name in names)
    wrong = f"{_name(names[-1])} IS NULL OR {_name(OVERFLOW)} <> ''"
    error = f"error({_text(FIELD_COUNT_ERROR + str(file.path))})"
    return f"(SELECT {fields} FROM {read} WHERE CASE WHEN {wrong} THEN {error} ELSE true END)"


def field_count_error(path: Path) -> str:
    """The first row of a CSV whose fields do not match its header, as one line naming the file and the line.

    Read only once DuckDB found such a row: the reader does not report where.
    """
    expected = len(csv_header(path))
    with (
        open_bytes(path) as raw,
        io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="") as text,
    ):
        last = [""]

        def lines() -> Iterator[str]:
            for line in text:
                last[0] = line
                yield line

        rows = csv.reader(lines())
        next(rows, None)
        for row in rows:
            if row and (len(row) < expected or any(field != "" for field in row[expected:])):
                original = last[0].rstrip("\r\n")[:80]
                return (
                    f"{path}: line {rows.line_num}: expected {expected} comma-separated fields as in the header, "
                    f"found {len(row)}: {original!r}"
                )
    return f"{path}: a row does not have the header's {expected} comma-separated fields"


def inspect(path: Path, connection: duckdb.DuckDBPyConnection) -> TripFile:
    """Read a file's column names and types (the Parquet footer, or a CSV's header: all text)."""
    if not path.is_file():
        raise DataError(f"{path} is not a readable file; give TLC trip files (Parquet or CSV)")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; expected TLC trip records with a header row")
    format = file_format(path)
    columns = {name: "VARCHAR" for name in csv_header(path)} if format == "csv" else {}
    try:
        described = connection.execute(f"DESCRIBE SELECT * FROM {reader_sql(TripFile(path, format, columns))}")
        rows = described.fetchall()
    except (duckdb.Error, OSError) as error:
        wrong = not_parquet(path) if format == "parquet" else None
        raise DataError(
            wrong or f"{path} is not a readable {format} file of trip records: {first_line(error)}"
        ) from error
    return TripFile(path, format, {str(row[0]): str(row[1]) for row in rows})


def is_read_error(error: BaseException) -> bool:
    """Whether a DuckDB error is about a CSV row (one `read_error` names the file and line of)."""
    return "CSV Error on Line" in str(error) or FIELD_COUNT_ERROR in str(error)


def first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]


def read_error(error: BaseException, path: Path | None = None) -> str:
    """DuckDB's error on reading rows, as one line naming the file, the line and what was expected."""
    text = str(error)
    short_or_long = re.search(re.escape(FIELD_COUNT_ERROR) + r"(.+)$", text, re.MULTILINE)
    if short_or_long:
        return field_count_error(Path(short_or_long.group(1).strip()))
    line = re.search(r"CSV Error on Line: (\d+)", text)
    if line is None:
        return f"{path}: {first_line(error)}" if path else first_line(error)
    named = re.search(r"^\s*file = (.+)$", text, re.MULTILINE)
    where = str(path) if path else (named.group(1).strip() if named else "a CSV file")
    if "Invalid unicode" in text and (path or named):
        return encoding_error(Path(where))
    counts = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    original = re.search(r"Original Line:\s*\n?(.*)", text)
    found = f": {original.group(1).strip()[:80]!r}" if original else ""
    if counts:
        expected = f"expected {counts.group(1)} comma-separated fields as in the header, found {counts.group(2)}"
    else:
        expected = "expected a row of comma-separated fields (" + first_line(error) + ")"
    return f"{where}: line {line.group(1)}: {expected}{found}"


def _key(name: str) -> str:
    return name.strip().lower()


def match_columns(names: Iterable[str], aliases: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """For each of today's columns (and the coordinates), the names in `names` that hold it (today's name first)."""
    by_key: dict[str, list[str]] = {}
    for name in names:
        by_key.setdefault(_key(name), []).append(name)
    matched = {}
    for column in {**COLUMNS, **COORDINATES}:
        found = [n for alias in (column, *aliases.get(column, ())) for n in by_key.get(_key(alias), [])]
        if found:
            matched[column] = list(dict.fromkeys(found))
    return matched


def check_columns(file: TripFile, required: Iterable[str], aliases: Mapping[str, Sequence[str]]) -> None:
    """Fail naming the file and the first required column it lacks (under any of its names)."""
    matched = match_columns(file.columns, aliases)
    for column in required:
        if column not in matched:
            names = ", ".join([column, *aliases.get(column, ())])
            raise DataError(
                f"{file.path}: no column {column} (looked for {names}); found: {', '.join(file.columns)}. "
                f"Add the file's name for it to preprocessing.column_aliases.{column}"
            )


def extra_columns(names: Iterable[str], aliases: Mapping[str, Sequence[str]]) -> list[str]:
    """Columns that are none of today's nor the coordinates (e.g. 2014's rate_code_x): kept as they are."""
    known = {_key(alias) for column in {**COLUMNS, **COORDINATES} for alias in (column, *aliases.get(column, ()))}
    return [name for name in names if _key(name) not in known]
