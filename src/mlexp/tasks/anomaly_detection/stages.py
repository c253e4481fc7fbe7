"""The post's workflow as trial components: Pre-processing, Query, Detection, Cleaning.

prepare  locate (or generate) the TLC trip files, check their columns, parse CSV once
query    the post's queries: the 50 longest and shortest trips; the sorted-duration chart
detect   every enabled rule's count on all rows, flagged rows (capped), the duration histogram
clean    the rows passing every rule as Parquet (the post's CTAS) and the chart after cleaning

The engine, the queries and the rules of the stages after prepare are made ready in stage_rules.py (prepare's code
stays clear of the detection SQL, queries.py); each chart is drawn beside a query (stage_charts.py).
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from mlexp.data import nyc_taxi
from mlexp.errors import DataError
from mlexp.tasks.anomaly_detection import inputs, staging, timestamps
from mlexp.tasks.anomaly_detection.athena_engine import AthenaEngine
from mlexp.tasks.anomaly_detection.engines import Engine
from mlexp.tasks.anomaly_detection.missing_values import missing_values, warn_missing
from mlexp.tasks.anomaly_detection.queries import TOP_COLUMNS
from mlexp.tasks.anomaly_detection.rule_settings import model_settings, warn_not_enabled
from mlexp.tasks.anomaly_detection.rules import DURATION_CUT, UNEVALUABLE, Rule, enabled_rules, threshold_markers
from mlexp.tasks.anomaly_detection.stage_charts import charts_loading, histogram_chart, sorted_chart
from mlexp.tasks.anomaly_detection.stage_rules import open_engine, rules_and_queries
from mlexp.tracking import Tracker
from mlexp.tracking.digests import prefetch
from mlexp.tracking.metric_names import data_metric_name

# detect's count of the trips kept per duration_second value, which the clean stage charts
KEPT = "kept_durations.csv"


def _folder(root: str, name: str) -> Path:
    path = Path(root) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _log_queries(cfg: DictConfig, engine: Engine, tracker: Tracker, out: Path, source: bool = False) -> None:
    """Each query's wall time as `elapsed_s_<query>`, and its SQL next to its results and as an artifact.

    Every metric is logged once per trial (a metric logged twice reads as a curve in comparisons),
    so the Athena table's column query, which every stage runs, is reported by prepare alone.
    """
    folder = _folder(str(out), "sql")
    for name, seconds in engine.timings.items():
        if name == "table_columns" and not source:
            continue
        tracker.log_metric(f"elapsed_s_{name}", seconds)
        (folder / f"{name}.sql").write_text(engine.sql[name] + "\n")
        tracker.log_artifact(folder / f"{name}.sql", name="sql", media_type="application/sql")


def duration_thresholds(cfg: DictConfig, statistics: dict[str, float]) -> dict[str, float]:
    """Where the enabled rules cut duration_second, read from their resolved predicates, 0 s and below
    included (the histogram's log axis leaves those out); fences from `statistics` when given."""
    model = model_settings(cfg)
    rules = enabled_rules(model)
    cuts = {f"{r.name}: {m.group(1)}": float(m.group(2)) for r in rules for m in DURATION_CUT.finditer(r.predicate)}
    return cuts | threshold_markers(rules, model, statistics)


def _input_named(cfg: DictConfig) -> str:
    """The trial's input in a few words (never the SQL that reads it)."""
    if cfg.engine.name == "athena":
        return f"Athena table {cfg.engine.database}.{cfg.engine.table}"
    return f"the files of {inputs.input_dir(cfg) / inputs.MANIFEST}"


def _trial_id(tracker: Tracker) -> str:
    """The trial's MLflow run id (the prefix of Athena's CTAS location)."""
    return tracker.trial_run_id or tracker.run_id


def prepare(cfg: DictConfig, tracker: Tracker) -> None:
    """Check the trips' columns (every file, or the Athena table) and write input/manifest.json."""
    rules = enabled_rules(model_settings(cfg))  # a mistake in the rules fails before any data is read
    required = [nyc_taxi.PICKUP, nyc_taxi.DROPOFF]
    if cfg.engine.name == "athena":
        engine = AthenaEngine(cfg.engine)
        source = engine.source()
        table = f"{cfg.engine.database}.{cfg.engine.table}"
        nyc_taxi.check_columns(nyc_taxi.TripFile(Path(table), "athena", source.columns), required, inputs.aliases(cfg))
        inputs.check_table_months(rules, engine)
        missing = {table: inputs.missing_columns(cfg, source.columns)}
        inputs.write_manifest(cfg, {"table": table, "missing_columns": missing})
        tracker.log_input("trips", "application/x-athena-table", f"athena://{table}")
        _log_queries(cfg, engine, tracker, inputs.input_dir(cfg), source=True)
        return
    generated: dict[str, int] = {}
    if cfg.dataset.path:
        paths = nyc_taxi.locate(cfg.dataset.path)
    else:
        path, generated = inputs.generate(cfg)
        paths = [path]
    inputs.check_file_months(rules, paths)
    unknown: dict[str, Counter[str]] = {}
    unreadable: dict[str, Counter[str]] = {}
    if cfg.dataset.path:
        # each input's MD5 (its data_version) is computed on a thread while DuckDB checks and stages the files,
        # if the command has not started it already (the task declares dataset_suffixes): hashlib releases the
        # GIL, so hashing a 705 MB month (1.2 CPU s) overlaps the parse, and log_input below waits for it
        prefetch(paths)
    files = inputs.check_files(cfg, paths, required)
    read = staging.stage_csv(cfg, files, unknown, unreadable)
    # rows whose code text no mapping knows, and rows whose text in a numeric column is not a number (both read as
    # null, the rows kept; stage_csv warned naming the values): the latter per column where there are any, and
    # their sum over the columns (0: every number read), so that a trial records that it checked
    tracker.log_metrics(
        {data_metric_name("rows_unknown_code_", column): sum(found.values()) for column, found in unknown.items()}
    )
    per_column = {
        data_metric_name("rows_unreadable_number_", column): sum(found.values()) for column, found in unreadable.items()
    }
    per_column = {name: rows for name, rows in per_column.items() if rows}
    tracker.log_metrics({**per_column, "unreadable_numbers": sum(per_column.values())})
    missing = {str(file.path): inputs.missing_columns(cfg, file.columns) for file in files}
    inputs.write_manifest(cfg, {"files": read, "sources": paths, "generated": generated, "missing_columns": missing})
    formats = sorted({file.format for file in files})
    origin = cfg.dataset.path or "generated"
    tracker.log_parameters({"files": len(files), "formats": ",".join(formats), "source": origin})
    tracker.log_parameters({f"generated_{kind}": count for kind, count in generated.items()})
    for source_path in paths:
        name = "trips" if len(paths) == 1 else f"trips: {source_path.name}"
        tracker.log_input(name, f"application/x-{files[0].format}", source_path)
    if read != paths:
        tracker.log_output("trips as Parquet", "application/x-parquet", inputs.input_dir(cfg) / "staged")


def query(cfg: DictConfig, tracker: Tracker) -> None:
    """The post's queries: the top_n longest and shortest trips, and the sorted-duration scatter."""
    # here, not in prepare: a trial that reuses another's Pre-processing (which does not depend on the rules) warned
    # of that trial's idle rule, or of none
    warn_not_enabled(cfg, tracker)
    with charts_loading():
        engine, queries = open_engine(cfg)
        counts = engine.query("duration_counts", queries.duration_counts())
        rows_in = int(counts.iloc[:, 1].sum())
        if rows_in == 0:
            raise DataError(f"no trip rows in {_input_named(cfg)}; check dataset.path")
        timestamps.require_durations(cfg, rows_in, int(counts.loc[counts.iloc[:, 0].isna()].iloc[:, 1].sum()))
        n = cfg.model.top_n
        with ThreadPoolExecutor(1, thread_name_prefix="mlexp-chart") as meanwhile:
            thresholds = duration_thresholds(cfg, {})
            drawing = meanwhile.submit(sorted_chart, cfg, counts, "duration_sorted", "All trips", thresholds)
            tables = {
                "longest_trips": engine.query("longest_trips", queries.top(n, longest=True)),
                "shortest_trips": engine.query("shortest_trips", queries.top(n, longest=False)),
            }
            chart = drawing.result()
    folder = _folder(cfg.paths.data, "query")
    for name, table in tables.items():
        table.set_axis(TOP_COLUMNS, axis=1).to_csv(folder / f"{name}.csv", index=False)
        tracker.log_artifact(folder / f"{name}.csv", name="tables", media_type="text/csv")
    chart.log(tracker)
    durations = counts.iloc[:, 0].dropna()
    # rows_in is Detection's: it reports the counts a threshold change reruns
    tracker.log_metrics({"rows_without_duration": rows_in - chart.trips_shown})
    tracker.log_metrics({"duration_second_min": float(durations.min()), "duration_second_max": float(durations.max())})
    _log_queries(cfg, engine, tracker, folder)


def _log_counts(tracker: Tracker, detection: dict[str, Any]) -> None:
    """rows_in, rows_flagged, rows_flagged_<rule> and _unevaluable, each also as a percentage of rows_in."""
    rows_in = detection["rows_in"]
    counts = {"rows_in": rows_in, "rows_flagged": detection["rows_flagged"]}
    counts |= {f"rows_flagged_{name}": rule["rows_flagged"] for name, rule in detection["rules"].items()}
    counts[f"rows_flagged_{UNEVALUABLE}"] = detection[UNEVALUABLE]
    tracker.log_metrics(counts)
    # a percentage, 0 to 100 (not a share): rows_flagged → percent_flagged, rows_flagged_<r> → percent_flagged_<r>
    percent = {
        name.replace("rows_", "percent_", 1): 100.0 * n / rows_in for name, n in counts.items() if name != "rows_in"
    }
    tracker.log_metrics(percent)


def _summed(by_duration: pd.DataFrame, rules: list[Rule]) -> tuple[dict[str, int], dict[str, int]]:
    """duration_flags' rows summed: rows_in, rows_non_positive, rows_without_duration, unevaluable and
    rows_flagged, and apart each rule's flags by rule name. Columns are looked up in lower case: Athena
    (Trino) folds names."""
    table = by_duration.set_axis([str(name).lower() for name in by_duration.columns], axis=1)
    seconds = table["duration_second"]
    counts = {
        "rows_in": int(table["trips"].sum()),
        "rows_non_positive": int(table.loc[seconds <= 0, "trips"].sum()),
        "rows_without_duration": int(table.loc[seconds.isna(), "trips"].sum()),
        UNEVALUABLE: int(table[UNEVALUABLE].sum()),
    }
    counts["rows_flagged"] = counts["rows_in"] - int(table["kept"].sum())
    return counts, {rule.name: int(table[f"rule_{rule.name}".lower()].sum()) for rule in rules}


def _histogram(by_duration: pd.DataFrame) -> pd.DataFrame:
    """Trips per logarithmic bin of positive duration_second, from duration_flags' rows."""
    table = by_duration.set_axis([str(name).lower() for name in by_duration.columns], axis=1)
    binned = table.dropna(subset=["bin"]).astype({"bin": "int64"})
    return binned.groupby("bin", as_index=False)["trips"].sum().astype("int64")


def _kept(by_duration: pd.DataFrame) -> pd.DataFrame:
    """Trips kept per duration_second value: the data of the sorted chart after cleaning."""
    table = by_duration.set_axis([str(name).lower() for name in by_duration.columns], axis=1)
    kept = table.loc[table["kept"] > 0, ["duration_second", "kept"]].dropna()
    return kept.astype("int64").set_axis(["duration_second", "trips"], axis=1)


def detect(cfg: DictConfig, tracker: Tracker) -> None:
    """Count each enabled rule's outliers over every row; write the flagged rows (capped) and the histogram.

    One scan (duration_flags) gives every count, the histogram and the trips kept per duration, which the
    clean stage charts; a second one reads the flagged rows themselves.
    """
    with charts_loading():
        rules, engine, queries = rules_and_queries(cfg)
        by_duration = engine.query("duration_flags", queries.duration_flags(cfg.model.histogram_bins_per_decade))
        counts, per_rule = _summed(by_duration, rules)
        if counts["rows_in"] == 0:
            raise DataError(f"no trip rows in {_input_named(cfg)}; check dataset.path")
        non_positive, missing = counts["rows_non_positive"], counts["rows_without_duration"]
        timestamps.require_durations(cfg, counts["rows_in"], missing)
        rows_missing = warn_missing(missing_values(by_duration, queries.missing_value_checks()))
        note = f"not on the log axis: {non_positive:,} trips of 0 s or less, {missing:,} without a duration"
        markers = threshold_markers(rules, model_settings(cfg), queries.statistics)
        with ThreadPoolExecutor(1, thread_name_prefix="mlexp-chart") as meanwhile:
            drawing = meanwhile.submit(histogram_chart, cfg, _histogram(by_duration), markers, note)
            flagged = engine.query("flagged_rows", queries.flagged_rows(cfg.model.flagged_rows_max))
            chart = drawing.result()
    detection = {"rows_in": counts["rows_in"], "rows_flagged": counts["rows_flagged"], "statistics": queries.statistics}
    detection[UNEVALUABLE] = counts[UNEVALUABLE]
    detection["rules"] = {r.name: {"predicate": r.predicate, "rows_flagged": per_rule[r.name]} for r in rules}
    folder = _folder(cfg.paths.data, "detection")
    flagged.set_axis([*queries.data_columns, "duration_second", "rules"], axis=1).to_csv(
        folder / "flagged_rows.csv", index=False
    )
    _kept(by_duration).to_csv(folder / KEPT, index=False)
    (folder / "detection.json").write_text(json.dumps(detection, indent=2) + "\n")
    tracker.log_artifact(folder / "flagged_rows.csv", name="tables", media_type="text/csv")
    tracker.log_artifact(folder / "detection.json", name="detection", media_type="application/json")
    chart.log(tracker)
    tracker.log_parameters({f"rule.{rule.name}": rule.predicate for rule in rules})
    tracker.log_metrics(queries.statistics)
    tracker.log_metrics(rows_missing)
    _log_counts(tracker, detection)
    _log_queries(cfg, engine, tracker, folder)


def clean(cfg: DictConfig, tracker: Tracker) -> None:
    """Write the rows that pass every rule (exactly rows_in - rows_flagged) and chart them."""
    path = Path(cfg.paths.data) / "detection" / "detection.json"
    if not path.exists():
        raise DataError(f"{path} is missing: run the detect stage first (mlexp task={cfg.task.name} stage=detect)")
    if not path.with_name(KEPT).exists():
        raise DataError(f"{path.with_name(KEPT)} is missing: run the detect stage again")
    detection = json.loads(path.read_text())
    with charts_loading():
        rules, engine, queries = rules_and_queries(cfg, detection["statistics"])
        if {r.name: r.predicate for r in rules} != {n: r["predicate"] for n, r in detection["rules"].items()}:
            raise DataError(
                f"{path} was made with other rules than model.enabled/model.rules; run the detect stage again"
            )
        expected = detection["rows_in"] - detection["rows_flagged"]
        folder = _folder(cfg.paths.data, "cleaned")
        # the trips kept per duration, counted by detect's scan: the written rows are exactly those
        # (write_cleaned checks their number), so the chart is drawn while they are written
        counts = pd.read_csv(path.with_name(KEPT))
        with ThreadPoolExecutor(1, thread_name_prefix="mlexp-chart") as meanwhile:
            thresholds = duration_thresholds(cfg, detection["statistics"])
            drawing = meanwhile.submit(
                sorted_chart, cfg, counts, "duration_sorted_clean", "After removing outliers", thresholds
            )
            written = engine.write_cleaned(queries.cleaned(), folder, expected, lambda: _trial_id(tracker))
            chart = drawing.result()
    chart.log(tracker)
    if "path" in written:
        tracker.log_output("cleaned trips", "application/x-parquet", written["path"])
    else:
        tracker.log_output("cleaned trips", "application/x-athena-table", f"athena://{written['table']}")
    tracker.log_metric("rows_out", written["rows"])
    _log_queries(cfg, engine, tracker, folder)
