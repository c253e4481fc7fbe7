"""Amazon Athena through PyAthena, as the post queries it."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pandas as pd

from mlexp.aws_setup import REGION
from mlexp.console import logger_quiet
from mlexp.data import nyc_taxi
from mlexp.errors import ConfigError, DataError
from mlexp.tasks.anomaly_detection.athena_settings import ATHENA_NO_CREDENTIALS, athena_results_located
from mlexp.tasks.anomaly_detection.dialects import ATHENA, literal, quote
from mlexp.tasks.anomaly_detection.engines import Engine, cleaned_rows_changed
from mlexp.tasks.anomaly_detection.trip_rows import Source


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
            raise DataError(cleaned_rows_changed(rows, expected_rows) + f" (table {target} was dropped)")
        note = {"table": f"{self.settings.database}.{self.settings.cleaned_table}", "rows": rows}
        note["location"] = location or "under the query result location"
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "athena_table.json").write_text(json.dumps(note, indent=2) + "\n")
        return note


def quiet_pyathena() -> AbstractContextManager[None]:
    """PyAthena logs a full traceback before raising; the error it raises is reported as one line instead."""
    return logger_quiet("pyathena", logging.CRITICAL)
