"""Where the SQL runs: DuckDB embedded over local files (duckdb_engine.py), or Amazon Athena through PyAthena
(athena_engine.py).

Both run a named query and return a DataFrame, time every query, and write the rows that
pass the rules: DuckDB streams them into a local Parquet file, Athena runs CREATE TABLE AS
SELECT into Parquet on S3 (the post's CTAS).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from mlexp.data import nyc_taxi
from mlexp.errors import DataError
from mlexp.tasks.anomaly_detection.dialects import Dialect
from mlexp.tasks.anomaly_detection.trip_rows import Source


def cleaned_rows_changed(rows: int, expected: int) -> str:
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
