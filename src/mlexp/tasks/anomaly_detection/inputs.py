"""The trips a trial reads: TLC files given by dataset.path or a generated month, recorded in a manifest.

The prepare stage checks every file's columns, stages them (staging.py: CSV parsed once into Parquet, each query
would otherwise parse the text again) and writes `input/manifest.json`; the later stages open their engine from it,
so under DVC each stage reads exactly what prepare checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
from omegaconf import DictConfig, OmegaConf

from mlexp.config.schema import choice_text
from mlexp.data import nyc_taxi, nyc_taxi_synthetic
from mlexp.errors import DataError
from mlexp.paths import relative_if_under
from mlexp.tasks.anomaly_detection.athena_engine import AthenaEngine
from mlexp.tasks.anomaly_detection.duckdb_engine import DuckDBEngine
from mlexp.tasks.anomaly_detection.rules import Rule
from mlexp.tasks.anomaly_detection.trip_rows import FILE_MONTH

MANIFEST = "manifest.json"


def input_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.data) / "input"


def aliases(cfg: DictConfig) -> dict[str, list[str]]:
    return OmegaConf.to_container(cfg.preprocessing.column_aliases)  # type: ignore[return-value]


def value_codes(cfg: DictConfig) -> dict[str, dict[str, int]]:
    return OmegaConf.to_container(cfg.preprocessing.value_codes)  # type: ignore[return-value]


def reading(cfg: DictConfig) -> dict[str, Any]:
    """How the trial reads the trips (TripRows' settings): column aliases, timestamp formats, value codes."""
    formats = list(cfg.preprocessing.timestamp_formats)
    return {"aliases": aliases(cfg), "timestamp_formats": formats, "value_codes": value_codes(cfg)}


def duckdb_engine(
    cfg: DictConfig, files: Sequence[nyc_taxi.TripFile], memory_limit: str, threads: int, compression: str = "none"
) -> DuckDBEngine:
    """DuckDB over `files`, each typed to today's schema with the trial's preprocessing."""
    return DuckDBEngine(files, memory_limit, threads, **reading(cfg), compression=compression)


def check_file_months(rules: Sequence[Rule], paths: Sequence[Path]) -> None:
    """A rule on file_month needs every file's month in its name; else it could judge no row."""
    using = [rule.name for rule in rules if rule.uses(FILE_MONTH)]
    unnamed = [path for path in paths if nyc_taxi.file_month(path) is None]
    if using and unnamed:
        raise DataError(
            f"{unnamed[0]}: no month (YYYY-MM) in the file name, which rule {using[0]} needs; "
            "rename the file as TLC does (yellow_tripdata_2019-01.parquet) or remove the rule from model.enabled"
        )


def check_table_months(rules: Sequence[Rule], engine: AthenaEngine) -> None:
    """On Athena the month comes from each row's S3 object name: fail naming one without it, as for files."""
    using = [rule.name for rule in rules if rule.uses(FILE_MONTH)]
    if not using:
        return
    rows, example = engine.rows_without_month()
    if rows:
        raise DataError(
            f"{example}: no month (YYYY-MM) in the object name ({rows:,} rows of table {engine.settings.database}."
            f"{engine.settings.table} come from such objects), which rule {using[0]} needs; rename the objects as "
            "TLC does (yellow_tripdata_2019-01.parquet) or remove the rule from model.enabled"
        )


def generate(cfg: DictConfig) -> tuple[Path, dict[str, int]]:
    """Write a synthetic month in TLC's format under input/; returns the file and its anomaly counts."""
    data = cfg.dataset
    rates = OmegaConf.to_container(data.anomalies)
    month = nyc_taxi_synthetic.generate(data.n_rows, cfg.seed, data.month, rates)  # type: ignore[arg-type]
    format = choice_text(data.format)
    path = input_dir(cfg) / f"yellow_tripdata_{data.month}_synthetic.{format}"
    return nyc_taxi_synthetic.write(month, path, format), month.counts


def check_files(cfg: DictConfig, paths: Sequence[Path], required: Sequence[str]) -> list[nyc_taxi.TripFile]:
    connection = duckdb.connect()
    files = [nyc_taxi.inspect(path, connection) for path in paths]
    for file in files:
        nyc_taxi.check_columns(file, required, aliases(cfg))
    return files


def missing_columns(cfg: DictConfig, columns: Iterable[str]) -> list[str]:
    """Today's columns a file lacks under every name (they read as null)."""
    matched = nyc_taxi.match_columns(columns, aliases(cfg))
    return [column for column in nyc_taxi.COLUMNS if column not in matched]


def check_rule_columns(cfg: DictConfig, rules: Sequence[Rule]) -> None:
    """A rule on a column some input lacks would silently flag nothing there: fail instead."""
    for source, missing in read_manifest(cfg).get("missing_columns", {}).items():
        for rule in rules:
            used = [column for column in missing if rule.uses(column)]
            if used:
                raise DataError(
                    f"{source}: no column {used[0]}, which rule {rule.name} uses ({rule.predicate}); "
                    f"remove the rule from model.enabled or add the file's name for {used[0]} "
                    f"to preprocessing.column_aliases.{used[0]}"
                )


def write_manifest(cfg: DictConfig, content: dict[str, Any]) -> Path:
    folder = input_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    for key in ("files", "sources"):
        # inside input/ the manifest names files relative to itself, so a copied workspace (dvc exp) still works
        content[key] = [relative_if_under(Path(p), folder) for p in content.get(key, [])]
    (folder / MANIFEST).write_text(json.dumps({"engine": cfg.engine.name, **content}, indent=2) + "\n")
    return folder / MANIFEST


def read_manifest(cfg: DictConfig) -> dict[str, Any]:
    path = input_dir(cfg) / MANIFEST
    if not path.exists():
        raise DataError(f"{path} is missing: run the prepare stage first (mlexp task={cfg.task.name} stage=prepare)")
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest["engine"] != cfg.engine.name:
        raise DataError(f"prepare ran with engine={manifest['engine']}; run it again with engine={cfg.engine.name}")
    manifest["files"] = [input_dir(cfg) / p for p in manifest["files"]]
    return manifest
