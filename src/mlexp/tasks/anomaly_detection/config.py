"""Schemas of the TLC trip data, how it is normalised, the SQL outlier rules and the SQL engines."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from mlexp.config.task_groups import declare_group

# the counts every trial reports, before the per-rule ones; percent_flagged is a percentage (0.1 = 0.1 %)
HEADLINE = ["rows_in", "rows_flagged", "rows_out", "percent_flagged", "rows_flagged_unevaluable"]


class FileFormat(str, Enum):
    parquet = "parquet"
    csv = "csv"


class ParquetCompression(str, Enum):
    none = "none"
    snappy = "snappy"
    zstd = "zstd"
    lz4 = "lz4"
    gzip = "gzip"


@dataclass
class GeneratedAnomalies:
    """Shares of generated rows with each anomaly (exact counts: rate × rows, rounded)."""

    meter_left_on: float = 2e-4
    multi_day: float = 2e-5
    zero_duration: float = 8e-4
    negative_duration: float = 1e-5
    null_timestamp: float = 5e-6
    unparsable_timestamp: float = 5e-6
    zero_distance: float = 7e-3
    # off in the post's rules; about as often as in January 2019's file
    pickup_outside_month: float = 5e-5
    negative_fare: float = 1e-3
    implausible_speed: float = 1e-4


@dataclass
class NycTaxiDataset:
    # TLC yellow trip files (Parquet or CSV): a file, a folder or a glob; null: generate a month
    path: str | None = None
    # rows generated when path is null
    n_rows: int = 100_000
    format: FileFormat = FileFormat.parquet
    month: str = "2019-01"
    anomalies: GeneratedAnomalies = field(default_factory=GeneratedAnomalies)


@dataclass
class TripsPreprocessing:
    # older TLC names of today's columns, matched ignoring case and spaces
    column_aliases: dict[str, list[str]] = field(default_factory=dict)
    # text timestamps that are not ISO 8601, tried in order (strptime directives)
    timestamp_formats: list[str] = field(default_factory=list)
    # text codes of older files (2009's vendor_name "CMT", payment_type "CASH") -> today's numeric code,
    # per column, matched ignoring case and surrounding spaces
    value_codes: dict[str, dict[str, int]] = field(default_factory=dict)
    # CSV is parsed once into Parquet in the prepare stage, not again by every query
    stage_csv_as_parquet: bool = True


@dataclass
class DuckDBEngine:
    """engine=duckdb: SQL embedded in the trial's process, directly over local files."""

    name: str = "duckdb"
    # DuckDB spills to disk beyond this, so a trial's peak memory stays near it
    memory_limit: str = "3GB"
    # 0: one thread per core
    threads: int = 0
    # of the cleaned Parquet: its columns are dictionary-encoded already, so snappy saves 6 % of a month's
    # file (185 MB against 197) for 20 % more writing time (2.5 s against 2.05); the staged CSV copy is always none
    compression: ParquetCompression = ParquetCompression.none


@dataclass
class AthenaEngine:
    """engine=athena: the same SQL on Amazon Athena through PyAthena."""

    name: str = "athena"
    s3_staging_dir: str | None = None
    region_name: str = "us-east-1"
    work_group: str | None = None
    database: str = "db_yellow_cab_trip_details"
    table: str = "src_yellow_cab_trip_details"
    # the CTAS target holding the rows that pass every rule
    cleaned_table: str = "yellow_cab_trip_details_cleaned"
    # null: Athena chooses a fresh location under the query results; else each trial writes under
    # <cleaned_location>/<trial id>/ (CTAS needs an empty location, and DROP TABLE leaves the data)
    cleaned_location: str | None = None


@dataclass
class SqlOutlierRules:
    # name -> SQL predicate true for an outlier; {name} stands for the numeric model value of that name
    rules: dict[str, str] = field(default_factory=dict)
    enabled: list[str] = field(default_factory=list)
    min_duration_seconds: int = 0
    max_duration_hours: float = 24.0
    iqr_k: float = 1.5
    robust_z_max: float = 3.5
    max_speed_mph: float = 100.0
    zero_distance_max_minutes: float = 10.0
    dst_fall_back_max_minutes: float = 60.0
    top_n: int = 50
    flagged_rows_max: int = 10_000
    histogram_bins_per_decade: int = 10
    figure_size: list[float] = field(default_factory=lambda: [12.0, 12.0])


def headline_metrics(enabled: list[str]) -> list[str]:
    """task.headline_metrics: the row counts, then `rows_flagged_<rule>` for each rule in model.enabled."""
    return [*HEADLINE, *(f"rows_flagged_{name}" for name in enabled)]


OmegaConf.register_new_resolver("anomaly_headline_metrics", headline_metrics, replace=True)
store = ConfigStore.instance()
store.store(group="schema/dataset", name="nyc_taxi", node=NycTaxiDataset)
store.store(group="schema/preprocessing", name="nyc_taxi_trips", node=TripsPreprocessing)
store.store(group="schema/model", name="sql_outliers", node=SqlOutlierRules)
# engine=duckdb|athena: a config group of this task alone (conf/engine/)
declare_group("anomaly_detection", "engine", {"duckdb": DuckDBEngine, "athena": AthenaEngine})
