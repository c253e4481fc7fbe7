"""What the rules mean: thresholds in seconds, NULL as a named reason, the practitioners' rules, and Athena's
SQL flagging the same rows as DuckDB's on the same data."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import sqlglot

from anomaly_detection_helpers import config, counts, open_queries
from mlexp.data import nyc_taxi_synthetic
from mlexp.errors import DataError
from mlexp.tasks.anomaly_detection import inputs, stage_rules
from mlexp.tasks.anomaly_detection.dialects import ATHENA
from mlexp.tasks.anomaly_detection.rules import BUILT_IN, enabled_rules, not_enabled, threshold_markers
from mlexp.tasks.anomaly_detection.trip_rows import Source

HEADER = "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance,fare_amount,total_amount"
DEFAULT_RULES = ["unparsable_timestamp", "non_positive_duration", "too_long"]


def write_csv(path: Path, rows: list[tuple]) -> Path:
    path.write_text("\n".join([HEADER, *(",".join(map(str, r)) for r in rows)]) + "\n")
    return path


def test_fractional_hours_are_compared_in_seconds_and_the_chart_marks_that_value(tmp_path):
    # 6 h 20 min, exactly 6.5 h, 6 h 40 min, 7 h
    ends = ["16:20:00", "16:30:00", "16:40:00", "17:00:00"]
    path = write_csv(
        tmp_path / "yellow_tripdata_2019-01.csv",
        [(1, "2019-01-02 10:00:00", f"2019-01-02 {end}", 30, 80, 90) for end in ends],
    )
    cfg = config(tmp_path, "model.max_duration_hours=6.5")
    engine, queries = open_queries(cfg, [path])
    assert queries.rules[2].predicate == "duration_second >= 23400"
    assert counts(engine, queries)["too_long"] == 3  # whole hours (duration_hour >= 6.5) would flag only 7 h
    marks = threshold_markers(queries.rules, cfg.model, {})
    assert marks == {"too_long: duration_second >= 23400": 23400.0}


# pickup, dropoff, reasons it is flagged for with every default rule on (one is removed at a time)
NULL_ROWS = [
    ("2019-01-02 10:00:00", "2019-01-02 10:10:00", set()),
    ("", "2019-01-02 10:10:00", {"unparsable_timestamp"}),
    ("2019-01-02 10:00:00", "2019-13-01 00:00:00", {"unparsable_timestamp"}),
    ("2019-01-02 10:00:00", "2019-01-02 10:00:00", {"non_positive_duration"}),
    ("2019-01-02 10:00:00", "2019-01-02 09:00:00", {"non_positive_duration"}),
    ("2019-01-02 10:00:00", "2019-01-04 10:00:00", {"too_long"}),
    ("2019-01-03 10:00:00", "2019-01-03 10:20:00", set()),
]


@pytest.mark.parametrize("disabled", DEFAULT_RULES)
def test_disabling_any_default_rule_lets_no_row_without_a_duration_through(tmp_path, disabled):
    path = write_csv(tmp_path / "yellow_tripdata_2019-01.csv", [(1, p, d, 1.0, 8, 9) for p, d, _ in NULL_ROWS])
    enabled = [rule for rule in DEFAULT_RULES if rule != disabled]
    engine, queries = open_queries(config(tmp_path, f"model.enabled=[{','.join(enabled)}]"), [path])
    found = counts(engine, queries)
    without_duration = sum("unparsable_timestamp" in reasons for *_, reasons in NULL_ROWS)
    kept = [r for r in NULL_ROWS if not (r[2] - {disabled}) and (disabled != "unparsable_timestamp" or not r[2])]
    assert found["unevaluable"] == (without_duration if disabled == "unparsable_timestamp" else 0)
    assert found["rows_flagged"] == len(NULL_ROWS) - len(kept)

    written = engine.write_cleaned(queries.cleaned(), tmp_path / "cleaned", found["rows_in"] - found["rows_flagged"])
    cleaned = pq.read_table(written["path"]).to_pandas()
    assert cleaned["tpep_pickup_datetime"].notna().all() and cleaned["tpep_dropoff_datetime"].notna().all()
    assert len(cleaned) == len(kept)
    flagged = engine.query("flagged", queries.flagged_rows(100))
    reasons = sorted(flagged["rules"])
    if disabled == "unparsable_timestamp":
        assert reasons.count("unevaluable") == without_duration


def test_a_rule_answering_null_flags_the_row_as_unevaluable(tmp_path):
    path = write_csv(tmp_path / "yellow_tripdata_2019-01.csv", [(1, p, d, "", 8, 9) for p, d, _ in NULL_ROWS[:1]])
    engine, queries = open_queries(config(tmp_path, "model.enabled=[non_positive_distance]"), [path])
    found = counts(engine, queries)
    assert (found["non_positive_distance"], found["unevaluable"], found["rows_flagged"]) == (0, 1, 1)


def test_a_row_without_a_duration_is_not_kept_when_no_enabled_rule_reads_the_duration(tmp_path):
    # negative_fare answers false for every row (fares are there), so only "no duration" keeps rows 2 and 3 out
    path = write_csv(tmp_path / "yellow_tripdata_2019-01.csv", [(1, p, d, 1.0, 8, 9) for p, d, _ in NULL_ROWS[:3]])
    engine, queries = open_queries(config(tmp_path, "model.enabled=[negative_fare]"), [path])
    found = counts(engine, queries)
    assert (found["negative_fare"], found["unevaluable"], found["rows_flagged"]) == (0, 2, 2)
    written = engine.write_cleaned(queries.cleaned(), tmp_path / "cleaned", 1)
    cleaned = pq.read_table(written["path"]).to_pandas()
    assert cleaned["tpep_pickup_datetime"].notna().all() and cleaned["tpep_dropoff_datetime"].notna().all()
    assert len(cleaned) == 1


def test_a_median_absolute_deviation_of_zero_fails_naming_the_rule_and_the_fix(tmp_path):
    # four of six trips last exactly 10 min: the MAD is 0 and every robust z-score would divide by it
    ends = ["10:10:00", "10:10:00", "10:10:00", "10:10:00", "10:12:00", "14:00:00"]
    path = write_csv(
        tmp_path / "yellow_tripdata_2019-01.csv", [(1, "2019-01-02 10:00:00", f"2019-01-02 {e}", 1, 8, 9) for e in ends]
    )
    with pytest.raises(DataError) as error:
        open_queries(config(tmp_path, "model.enabled=[non_positive_duration,duration_robust_z]"), [path])
    message = str(error.value)
    assert message.startswith("model.rules.duration_robust_z: the median absolute deviation of duration_second is 0")
    assert "use duration_iqr or too_long instead of duration_robust_z in model.enabled" in message
    assert "600 s" in message and "\n" not in message
    # the same trips under Tukey's fences: judged, the 4-hour trip flagged
    engine, queries = open_queries(config(tmp_path, "model.enabled=[duration_iqr]"), [path])
    found = counts(engine, queries)
    assert (found["duration_iqr"], found["unevaluable"], found["rows_flagged"]) == (1, 0, 1)


# a November file: pickups, dropoffs, distance, fare, total, the practitioners' rules each row fails
NOVEMBER = [
    ("2019-11-05 10:00:00", "2019-11-05 10:15:00", 3.0, 12, 15, set()),
    ("2008-12-31 23:50:00", "2009-01-01 00:05:00", 2.0, 9, 11, {"pickup_outside_month"}),
    ("2088-11-01 10:00:00", "2088-11-01 10:20:00", 3.0, 14, 16, {"pickup_outside_month"}),
    ("2019-11-05 11:00:00", "2019-11-05 11:10:00", 50.0, 140, 150, {"implausible_speed"}),
    ("2019-11-05 12:00:00", "2019-11-05 12:10:00", 2.0, -5, -4.2, {"negative_fare"}),
    ("2019-11-05 13:00:00", "2019-11-05 13:20:00", 0.0, 2.5, 3.3, {"zero_distance_long_duration"}),
    ("2019-11-05 14:00:00", "2019-11-05 14:05:00", 0.0, 2.5, 3.3, set()),
    # 3 November 2019, 01:50 summer time to 01:10 winter time: 20 minutes, recorded as -40
    ("2019-11-03 01:50:00", "2019-11-03 01:10:00", 2.0, 9, 11, {"dst_fall_back", "non_positive_duration"}),
    ("2019-11-10 01:50:00", "2019-11-10 01:10:00", 2.0, 9, 11, {"non_positive_duration"}),
    ("2019-11-30 23:55:00", "2019-12-01 00:10:00", 2.5, 11, 13, set()),
]
PRACTITIONERS = ["pickup_outside_month", "implausible_speed", "negative_fare", "zero_distance_long_duration"]
PRACTITIONERS += ["dst_fall_back"]


def test_practitioners_rules_are_off_by_default_and_each_flags_its_rows(tmp_path):
    assert not set(PRACTITIONERS) & set(config(tmp_path).model.enabled)
    path = write_csv(tmp_path / "yellow_tripdata_2019-11.csv", [(1, *row[:5]) for row in NOVEMBER])
    cfg = config(tmp_path, f"model.enabled=[{','.join(DEFAULT_RULES + PRACTITIONERS)}]")
    engine, queries = open_queries(cfg, [path])
    found = counts(engine, queries)
    for rule in DEFAULT_RULES + PRACTITIONERS:
        assert found[rule] == sum(rule in row[5] for row in NOVEMBER), rule
    assert found["rows_flagged"] == sum(bool(row[5]) for row in NOVEMBER) and found["unevaluable"] == 0

    unnamed = write_csv(tmp_path / "trips.csv", [(1, *row[:5]) for row in NOVEMBER])
    with pytest.raises(DataError, match=r"trips.csv: no month \(YYYY-MM\) in the file name, which rule pickup_outside"):
        inputs.check_file_months(enabled_rules(cfg.model), [path, unnamed])


def test_rules_added_but_not_enabled_are_named(tmp_path):
    model = config(tmp_path, "+model.rules.fast='trip_distance > 100'").model
    assert not_enabled(model) == ["fast"]
    assert set(config(tmp_path).model.rules) == set(BUILT_IN)  # the warning knows every shipped rule


def test_athenas_sql_flags_the_same_rows_as_duckdbs_on_the_same_data(tmp_path):
    """No Trino runs here: the Athena dialect's statements are parsed as Athena SQL, translated by sqlglot and run
    on DuckDB over the rows as a Glue crawler types a CSV (lower-case names, timestamps as text)."""
    rates = {"zero_duration": 0.004, "negative_duration": 0.002, "multi_day": 0.002, "meter_left_on": 0.01}
    month = nyc_taxi_synthetic.generate(3000, 5, "2019-01", rates | {"null_timestamp": 0.001, "zero_distance": 0.01})
    path = nyc_taxi_synthetic.write(month, tmp_path / "yellow_tripdata_2019-01.csv", "csv")
    rules = "unparsable_timestamp,non_positive_duration,too_long,duration_iqr,duration_robust_z,non_positive_distance"
    cfg = config(tmp_path, f"model.enabled=[{rules}]", "model.max_duration_hours=2.5")
    engine, queries = open_queries(cfg, [path])

    glue = duckdb.connect()
    glue.execute("CREATE SCHEMA db")
    glue.execute(
        "CREATE TABLE db.trips AS SELECT * REPLACE (CAST(trip_distance AS DOUBLE) AS trip_distance) FROM "
        f"read_csv('{path}', all_varchar = true, normalize_names = true)"
    )
    columns = {str(r[0]): str(r[1]) for r in glue.execute("DESCRIBE db.trips").fetchall()}
    athena = replace(stage_rules.trip_queries(cfg, ATHENA, Source('"db"."trips"', columns)), rules=queries.rules)

    def run(sql: str):
        sqlglot.parse_one(sql, read="athena")  # fails on anything Athena would not parse
        return glue.execute(sqlglot.transpile(sql, read="athena", write="duckdb")[0]).df()

    q1, median, q3 = run(athena.quartiles()).iloc[0].tolist()
    mad = run(athena.median_absolute_deviation(median)).iloc[0, 0]
    statistics = {"duration_q1": q1, "duration_median": median, "duration_q3": q3, "duration_mad": mad}
    assert statistics == pytest.approx(dict(queries.statistics), abs=0)  # one percentile definition
    athena = replace(athena, statistics=statistics)

    ours = engine.query("flagged", queries.flagged_rows(10_000))
    theirs = run(athena.flagged_rows(10_000))
    key = ["tpep_pickup_datetime", "total_amount", "rules"]
    assert len(ours) == len(theirs) > 50
    assert sorted(map(tuple, ours[key].astype(str).values)) == sorted(map(tuple, theirs[key].astype(str).values))
    assert {"duration_iqr", "duration_robust_z"} <= {r for rules in ours["rules"] for r in rules.split(";")}


def test_the_histogram_marks_only_a_threshold_on_duration_second_itself(tmp_path):
    odd = "+model.rules.odd='duration_second >= 600 * 2 OR (duration_second < 30)'"
    cfg = config(tmp_path, "model.enabled=[implausible_speed,zero_distance_long_duration,odd]", odd)
    rules = enabled_rules(cfg.model)
    assert rules[0].predicate == "duration_second > 0 AND trip_distance * 3600.0 / duration_second > 100"
    marks = threshold_markers(rules, cfg.model, {})
    # a speed limit (x / duration_second > 100) is no duration; `600 * 2` is not 600
    assert not [label for label in marks if label.startswith("implausible_speed")]
    assert marks == {"zero_distance_long_duration: duration_second >= 600": 600.0, "odd: duration_second < 30": 30.0}
