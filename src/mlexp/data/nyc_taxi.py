"""NYC TLC yellow taxi trip records, as published: monthly CSV (to 2022) or Parquet files.

The loader does not read rows into Python: it checks each file's columns with DuckDB and
gives the SQL that reads them (`source_sql`), so queries run over files of any size.
Real files differ across years; `match_columns` maps the older names (a small mapping in
conf/preprocessing/nyc_taxi_trips.yaml) onto today's, case- and space-insensitively.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from mlexp.data.sources import expand
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
}
PICKUP, DROPOFF = "tpep_pickup_datetime", "tpep_dropoff_datetime"
# what a folder given as dataset.path is searched for (.gz: gzipped CSV)
SUFFIXES = (".parquet", ".csv", ".gz")


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
    if path.suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    with path.open("rb") as handle:
        return "parquet" if handle.read(4) == b"PAR1" else "csv"


def reader_sql(paths: Sequence[Path], format: str) -> str:
    """DuckDB's table function reading `paths`; CSV is read as text, typed later with TRY_CAST."""
    listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    if format == "parquet":
        return f"read_parquet([{listed}], union_by_name = true)"
    return f"read_csv([{listed}], header = true, all_varchar = true, union_by_name = true)"


def source_sql(files: Sequence[TripFile]) -> str:
    """A relation over all `files`, Parquet and CSV together, columns united by name."""
    readers = []
    for format in ("parquet", "csv"):
        paths = [f.path for f in files if f.format == format]
        if paths:
            readers.append(reader_sql(paths, format))
    if len(readers) == 1:
        return readers[0]
    return "(" + " UNION ALL BY NAME ".join(f"SELECT * FROM {reader}" for reader in readers) + ")"


def inspect(path: Path, connection: duckdb.DuckDBPyConnection) -> TripFile:
    """Read a file's column names and types (the Parquet footer, or a CSV's header and sample)."""
    if not path.is_file():
        raise DataError(f"{path} is not a readable file; give TLC trip files (Parquet or CSV)")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; expected TLC trip records with a header row")
    format = file_format(path)
    try:
        described = connection.execute(f"DESCRIBE SELECT * FROM {reader_sql([path], format)}").fetchall()
    except (duckdb.Error, OSError) as error:
        first_line = str(error).splitlines()[0]
        raise DataError(f"{path} is not a readable {format} file of trip records: {first_line}") from error
    return TripFile(path, format, {str(row[0]): str(row[1]) for row in described})


def _key(name: str) -> str:
    return name.strip().lower()


def match_columns(names: Iterable[str], aliases: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """For each of today's columns, the names in `names` that hold it (today's name first, then older ones)."""
    by_key: dict[str, list[str]] = {}
    for name in names:
        by_key.setdefault(_key(name), []).append(name)
    matched = {}
    for column in COLUMNS:
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
    """Columns that are none of today's (e.g. airport_fee, 2015's pickup_longitude): kept as they are."""
    known = {_key(alias) for column in COLUMNS for alias in (column, *aliases.get(column, ()))}
    return [name for name in names if _key(name) not in known]
