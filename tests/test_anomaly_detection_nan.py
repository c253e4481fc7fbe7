"""NaN in TLC's floating-point columns (passenger_count, RatecodeID, ... are DOUBLE in its Parquet files) is a missing
value, as SQL's NULL: DuckDB sorts NaN above every number and answers NaN > 6 true, so without that a trip would be
flagged for the value it lacks, and a statistic over the column (avg, stddev, a percentile) would be NaN for all."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import sqlglot

from anomaly_detection_helpers import config, counts, open_queries
from conftest import run_cli, store_client, trials_of
from mlexp.tasks.anomaly_detection import stage_rules
from mlexp.tasks.anomaly_detection.dialects import ATHENA
from mlexp.tasks.anomaly_detection.missing_values import missing_values
from mlexp.tasks.anomaly_detection.trip_rows import Source
from mlexp.tracking.metric_names import data_metric_name
from run_folders import run_folder

NAN = float("nan")
# eight ordinary trips, one of 9 passengers (the outlier), one whose passenger_count is NaN
PASSENGERS = [1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 9.0, NAN]
# a plain threshold, a z-score (mean and standard deviation) and a percentile on the column: each flags the 9
RULES = {
    "many_passengers": "passenger_count > 6",
    "passengers_z": "abs(passenger_count - (SELECT avg(passenger_count) FROM durations)) / "
    "(SELECT stddev_pop(passenger_count) FROM durations) > 2",
    "passengers_p90": "passenger_count > (SELECT quantile_cont(passenger_count, 0.9) FROM durations)",
}
ENABLED = f"model.enabled=[unparsable_timestamp,{','.join(RULES)}]"
ADDED = [f"+model.rules.{name}='{predicate}'" for name, predicate in RULES.items()]


def _parquet(folder: Path) -> Path:
    """Ten trips in TLC's Parquet types, but VendorID stored as a float (as pandas stores codes with a gap): NaN
    there too, in another trip, and in a fare no rule reads."""
    path = folder / "yellow_tripdata_2019-01.parquet"
    pickups = [datetime(2019, 1, 2, 10) + timedelta(hours=i) for i in range(len(PASSENGERS))]
    pq.write_table(
        pa.table(
            {
                "VendorID": [1.0, NAN, *[2.0] * 8],
                "tpep_pickup_datetime": pickups,
                "tpep_dropoff_datetime": [p + timedelta(minutes=10 + i) for i, p in enumerate(pickups)],
                "passenger_count": PASSENGERS,
                "trip_distance": [1.5] * len(PASSENGERS),
                "fare_amount": [8.0, 8.0, NAN, *[8.0] * 7],
            }
        ),
        path,
    )
    return path


def test_a_nan_is_missing_to_the_rules_and_their_statistics_and_its_count_is_still_reported(tmp_project, tmp_path):
    path = _parquet(tmp_path)
    done = run_cli(tmp_project, "task=anomaly_detection", f"dataset.path={path}", ENABLED, *ADDED)

    # the NaN where a code belongs is still named and counted, as before
    assert f"mlexp: warning: {path}: VendorID: 1 row holds NaN (not a number) where the column holds whole" in (
        done.stderr
    )
    [trial] = trials_of(tmp_project, experiment="anomaly_detection")
    prepare = store_client(tmp_project).get_run(trial.components["Pre-processing"]).data.metrics
    assert prepare["rows_unknown_code_VendorID"] == 1  # a coded column: counted with its unknown codes
    # each rule flags the 9 alone: not the NaN trip (NaN > 6 was true), and the mean, standard deviation and 90th
    # percentile are those of the nine numbers (with the NaN they were NaN, and every trip or none was flagged)
    assert {name: trial.metrics[f"rows_flagged_{name}"] for name in RULES} == dict.fromkeys(RULES, 1)
    # the NaN trip cannot be judged by a rule on its passenger_count: unevaluable, as for a null
    assert (trial.metrics["rows_flagged_unevaluable"], trial.metrics["rows_flagged"]) == (1, 2)
    cleaned = pq.read_table(run_folder(done) / "data" / "cleaned" / "trips_cleaned.parquet")
    assert cleaned.num_rows == trial.metrics["rows_out"] == 8
    # a NaN no rule reads is kept as the file holds it
    fares = cleaned["fare_amount"]
    assert (fares.null_count, pc.sum(pc.is_nan(fares)).as_py()) == (0, 1)


def test_athenas_sql_reads_a_nan_as_missing_too(tmp_path):
    """No Trino runs here: the Athena dialect's statements are translated by sqlglot and run on DuckDB over the
    file's rows, as a Glue table of its types (Trino's comparisons with NaN differ from DuckDB's: neither flags it)."""
    path = _parquet(tmp_path)
    cfg = config(tmp_path, "model.enabled=[many_passengers]", "+model.rules.many_passengers='passenger_count > 6'")
    _, queries = open_queries(cfg, [path])
    glue = duckdb.connect()
    glue.execute("CREATE SCHEMA db")
    glue.execute(f"CREATE TABLE db.trips AS SELECT * FROM read_parquet('{path}')")
    columns = {str(r[0]): str(r[1]) for r in glue.execute("DESCRIBE db.trips").fetchall()}
    athena = replace(stage_rules.trip_queries(cfg, ATHENA, Source('"db"."trips"', columns)), rules=queries.rules)

    sql = sqlglot.transpile(athena.flagged_rows(100), read="athena", write="duckdb")[0]
    flagged = glue.execute(sql).df()
    assert sorted(zip(flagged["passenger_count"].fillna(-1), flagged["rules"])) == [
        (-1, "unevaluable"),
        (9.0, "many_passengers"),
    ]
    # and the detect stage's count of the trips the rule cannot judge for their missing passenger_count
    by_duration = glue.execute(sqlglot.transpile(athena.duration_flags(10), read="athena", write="duckdb")[0]).df()
    [found] = missing_values(by_duration, athena.missing_value_checks())
    assert (found.column, found.trips, found.unjudged) == ("passenger_count", 1, {"many_passengers": 1})


# a rule is placed in `SELECT ... FROM durations` and may query the trips itself: each qualified name is the column
QUALIFIED = {
    "by_relation": "durations.passenger_count > 6",
    "quoted_relation": '"durations".passenger_count > 6',
    "quoted_both": '"durations"."passenger_count" > 6',
    "by_alias": "durations.passenger_count > (SELECT quantile_cont(t.passenger_count, 0.9) FROM trips AS t)",
}


@pytest.mark.parametrize("name", QUALIFIED)
def test_a_rule_naming_the_column_qualified_reads_its_nan_as_missing_too(tmp_path, name):
    cfg = config(tmp_path, f"model.enabled=[{name}]", f"+model.rules.{name}='{QUALIFIED[name]}'")
    engine, queries = open_queries(cfg, [_parquet(tmp_path)])

    found = counts(engine, queries)
    # the 9 alone is flagged; the NaN trip only as unevaluable (NaN > 6 was true)
    assert (found[name], found["unevaluable"]) == (1, 1)


def test_a_missing_value_a_rule_cannot_judge_is_warned_about_once_per_column_and_counted(tmp_project, tmp_path):
    """NaN and empty (null) values in the columns the rules read: a comparison with one is NULL, so the trip is not
    flagged by that rule; said once per column, naming the rules that cannot judge it, and not where a rule does."""
    path = tmp_path / "yellow_tripdata_2019-01.parquet"
    pickups = [datetime(2019, 1, 2, 10) + timedelta(hours=i) for i in range(6)]
    pq.write_table(
        pa.table(
            {
                "tpep_pickup_datetime": pickups,
                "tpep_dropoff_datetime": [p + timedelta(minutes=10) for p in pickups],
                # the second trip negative_fare cannot judge; the third it flags by its total, NaN fare and all
                "fare_amount": [8.0, NAN, NAN, -3.0, 8.0, 8.0],
                # an empty total beside a negative fare: flagged all the same
                "total_amount": [10.0, 10.0, -5.0, None, 10.0, 10.0],
                # a rule that says what a missing passenger count means judges the NaN
                "passenger_count": [1.0, 1.0, 1.0, 1.0, NAN, 9.0],
                # a name MLflow takes in no metric name, nor SQL unquoted (the trial failed on its metric); the trip
                # lacking it is flagged by its fare
                "tip (%)": [10.0, 10.0, 10.0, NAN, 10.0, 10.0],
            }
        ),
        path,
    )
    rule = "+model.rules.many_passengers='passenger_count IS NULL OR passenger_count > 6'"
    tip_rule = """+model.rules.big_tip='"tip (%)" > 50'"""
    enabled = "model.enabled=[unparsable_timestamp,negative_fare,many_passengers,big_tip]"
    done = run_cli(tmp_project, "task=anomaly_detection", f"dataset.path={path}", enabled, rule, tip_rule)

    warnings = [line for line in done.stderr.splitlines() if "lack" in line]
    assert warnings == [
        "mlexp: warning: fare_amount: 2 trips lack a value (NaN or empty): rule negative_fare cannot flag 1 of them, "
        "since a comparison with a missing value is NULL, not true (a trip no other rule flags counts as unevaluable); "
        "fill or drop such trips before the trial (mlexp has no setting for it), or say in the rule what a missing "
        "value means (e.g. fare_amount IS NULL OR …)",
        "mlexp: warning: tip (%): 1 trip lacks a value (NaN or empty): rule big_tip cannot flag it, since a comparison "
        "with a missing value is NULL, not true (a trip no other rule flags counts as unevaluable); fill or drop such "
        "trips before the trial (mlexp has no setting for it), or say in the rule what a missing value means (e.g. "
        '"tip (%)" IS NULL OR …)',
    ]
    [trial] = trials_of(tmp_project, experiment="anomaly_detection")
    detection = store_client(tmp_project).get_run(trial.components["Detection"]).data.metrics
    missing = {name: value for name, value in detection.items() if name.startswith("rows_missing_")}
    assert missing == {
        "rows_missing_passenger_count": 1,
        "rows_missing_fare_amount": 2,
        "rows_missing_total_amount": 1,
        data_metric_name("rows_missing_", "tip (%)"): 1,
    }
    assert [name for name in missing if name.startswith("rows_missing_tip ___")]  # readable in the MLflow UI
    assert (trial.metrics["rows_flagged_negative_fare"], trial.metrics["rows_flagged_unevaluable"]) == (2, 1)
    assert trial.metrics["rows_out"] == 1


def test_columns_whose_names_mlflow_refuses_get_a_metric_each():
    names = {data_metric_name("rows_missing_", column) for column in ("tip (%)", "tip ($)", "tip")}
    assert len(names) == 3 and "rows_missing_tip" in names
