"""Input where no trip has a duration: every pickup or dropoff time read as null, named with what the file holds.

One unreadable timestamp is a trip the rules flag (`unparsable_timestamp`); a file where none reads (US dates
`01/31/2019 23:59:59`, which ISO 8601 and the default formats do not read) leaves nothing to measure, so the trial
fails naming the columns, a value the file holds and the formats that are tried.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from omegaconf import DictConfig

from mlexp.data import nyc_taxi
from mlexp.data.nyc_taxi import DROPOFF, PICKUP
from mlexp.errors import DataError
from mlexp.tasks.anomaly_detection import inputs
from mlexp.tasks.anomaly_detection.dialects import DUCKDB, quote

ISO_EXAMPLE = "2019-01-01 00:15:00"


def require_durations(cfg: DictConfig, rows_in: int, rows_without_duration: int) -> None:
    """Fail when rows were read but not one of them has a duration."""
    if rows_in and rows_without_duration == rows_in:
        raise DataError(no_durations(cfg, rows_in))


def no_durations(cfg: DictConfig, rows_in: int) -> str:
    """One line: no row's times read, what the input holds there, the formats tried and the fix."""
    formats = [str(fmt) for fmt in cfg.preprocessing.timestamp_formats]
    found = first_unread_time(cfg, formats)
    held = f"; {found[0]} holds e.g. {found[1]} {found[2]!r}" if found else ""
    return (
        f"none of the {rows_in:,} rows has a pickup and a dropoff time that read as timestamps ({PICKUP}, "
        f"{DROPOFF}), so no trip has a duration{held}. Times are read as ISO 8601 ({ISO_EXAMPLE!r}), then with "
        f"preprocessing.timestamp_formats ({formats}); add the file's format, e.g. "
        """'preprocessing.timestamp_formats=["%m/%d/%Y %H:%M:%S"]' for 01/31/2019 23:59:59"""
    )


def first_unread_time(cfg: DictConfig, formats: list[str]) -> tuple[Path, str, str] | None:
    """The first pickup or dropoff value written in the trial's source files that reads as null (file, column as
    named there, value); None on Athena, or where there is none to show."""
    if cfg.engine.name == "athena":
        return None
    folder = inputs.input_dir(cfg)
    connection = duckdb.connect()
    try:
        for source in inputs.read_manifest(cfg).get("sources", []):
            file = nyc_taxi.inspect(folder / source, connection)
            matched = nyc_taxi.match_columns(file.columns, inputs.aliases(cfg))
            for name in [*matched.get(PICKUP, []), *matched.get(DROPOFF, [])]:
                read = DUCKDB.typed(quote(name), file.columns[name], "TIMESTAMP", formats)
                row = connection.execute(
                    f"SELECT CAST({quote(name)} AS VARCHAR) FROM {nyc_taxi.reader_sql(file)} "
                    f"WHERE {quote(name)} IS NOT NULL AND {read} IS NULL LIMIT 1"
                ).fetchone()
                if row:
                    return file.path, name, str(row[0])
    except (duckdb.Error, DataError, OSError):
        return None  # the file changed since prepare read it: the message goes without an example
    finally:
        connection.close()
    return None
