"""The rules on a hand-built file whose every anomaly is known, plus a generated month, through DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from anomaly_detection_helpers import config, counts, open_queries
from conftest import one_line_error
from mlexp import tasks
from mlexp.config.constraints import check_constraints
from mlexp.config.params import apply_params_file
from mlexp.data import nyc_taxi, nyc_taxi_synthetic
from mlexp.errors import ConfigError, DataError
from mlexp.tasks.anomaly_detection import inputs, staging
from mlexp.tasks.anomaly_detection.rule_columns import columns_read
from mlexp.tasks.anomaly_detection.rules import Rule, columns_used, enabled_rules

# a 2014-style header: older names, padded with spaces, no location IDs, no congestion_surcharge,
# an extra column (pickup_longitude)
OLD_HEADER = (
    " vendor_id, pickup_datetime, dropoff_datetime, passenger_count, trip_distance, rate_code,"
    " store_and_fwd_flag, payment_type, fare_amount, surcharge, mta_tax, tip_amount, tolls_amount,"
    " total_amount, pickup_longitude"
)
# pickup, dropoff, trip_distance, total_amount (the row's key), rules it fails
ROWS = [
    ("2014-01-01 10:00:00", "2014-01-01 10:10:00", 1.5, 1.01, set()),
    ("2014-01-01 10:00:00", "2014-01-01 10:00:00", 0.0, 2.02, {"non_positive_duration", "non_positive_distance"}),
    ("2014-01-01 10:00:00", "2014-01-01 09:59:00", 1.0, 3.03, {"non_positive_duration"}),
    ("2014-01-01 10:00:00", "2014-01-02 10:00:00", 9.0, 4.04, {"too_long"}),
    # 23:59:59 long: under a day (DuckDB's date_diff('day') would say 1, Athena's 0)
    ("2014-01-01 10:00:00", "2014-01-02 09:59:59", 9.0, 5.05, set()),
    ("2014-01-01 23:59:00", "2014-01-02 00:01:00", 0.4, 6.06, set()),
    ("", "2014-01-01 10:10:00", 1.5, 7.07, {"unparsable_timestamp"}),
    ("2014-01-01 10:00:00", "2014-13-01 00:00:00", 1.5, 8.08, {"unparsable_timestamp"}),
    # NYC Open Data's export format
    ("01/01/2014 10:00:00 AM", "01/01/2014 10:30:00 AM", 4.0, 9.09, set()),
    ("2014-01-01 11:00:00", "2014-01-01 11:05:00", 0.0, 10.10, {"non_positive_distance"}),
    ("2014-01-01 00:00:00", "2014-01-04 00:00:00", 30.0, 11.11, {"too_long"}),
    (" 2014-01-01 12:00:00", "2014-01-01 12:20:00 ", 3.0, 12.12, set()),
]
DEFAULT_RULES = ("unparsable_timestamp", "non_positive_duration", "too_long")


def write_old_csv(path: Path) -> Path:
    lines = [OLD_HEADER]
    for pickup, dropoff, distance, total, _ in ROWS:
        lines.append(f"1,{pickup},{dropoff},1,{distance},1,N,1,9.5,0.5,0.5,0,0,{total},-73.98")
    path.write_text("\n".join(lines) + "\n")
    return path


def expected(total: float, rules: tuple[str, ...] = DEFAULT_RULES) -> bool:
    failed = next(r[4] for r in ROWS if r[3] == total)
    return bool(failed & set(rules))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("trips")
    old = write_old_csv(folder / "yellow_tripdata_2014-01.csv")
    rates = {"multi_day": 0.002, "zero_duration": 0.004, "negative_duration": 0.002, "null_timestamp": 0.001}
    month = nyc_taxi_synthetic.generate(5000, 3, "2019-01", rates | {"unparsable_timestamp": 0.001})
    new = nyc_taxi_synthetic.write(month, folder / "yellow_tripdata_2019-01.parquet", "parquet")
    return {"old": old, "new": new, "month": month, "folder": folder}


def test_rules_count_every_known_anomaly_in_an_old_format_file(files, tmp_path):
    engine, queries = open_queries(config(tmp_path), [files["old"]])
    found = counts(engine, queries)
    assert found["rows_in"] == len(ROWS)
    for rule in DEFAULT_RULES:
        assert found[rule] == sum(rule in r[4] for r in ROWS), rule
    assert found["rows_flagged"] == sum(expected(r[3]) for r in ROWS) == 6
    # the post's predicate for the same rule: duration_day >= 1
    post = engine.query("post", queries._with() + "SELECT count_if(duration_day >= 1) FROM durations").iloc[0, 0]
    assert post == found["too_long"]


def test_statistical_and_distance_rules_are_selectable(files, tmp_path):
    cfg = config(tmp_path, "model.enabled=[non_positive_distance,duration_iqr,duration_robust_z]")
    engine, queries = open_queries(cfg, [files["old"]])
    found = counts(engine, queries)
    assert found["non_positive_distance"] == 2
    assert queries.rules[1].predicate.startswith("duration_second < duration_q1 - 1.5 * (duration_q3 - duration_q1)")
    # the same rules by numpy, on the ten rows with a duration
    seconds = np.array([600, 0, -60, 86400, 86399, 120, 1800, 300, 259200, 1200], dtype=float)
    q1, median, q3 = np.percentile(seconds, [25, 50, 75])
    assert queries.statistics["duration_q1"] == pytest.approx(q1)
    assert found["duration_iqr"] == np.sum((seconds < q1 - 1.5 * (q3 - q1)) | (seconds > q3 + 1.5 * (q3 - q1))) == 1
    mad = np.median(np.abs(seconds - median))
    assert found["duration_robust_z"] == np.sum(0.6745 * np.abs(seconds - median) / mad > 3.5)


def test_old_and_new_files_in_one_glob_and_cleaned_output_excludes_exactly_the_flagged_rows(files, tmp_path):
    engine, queries = open_queries(config(tmp_path), [files["old"], files["new"]])
    month = files["month"].counts
    found = counts(engine, queries)
    assert found["rows_in"] == len(ROWS) + 5000
    assert found["unparsable_timestamp"] == 2 + month["null_timestamp"] + month["unparsable_timestamp"]
    assert found["non_positive_duration"] == 2 + month["zero_duration"] + month["negative_duration"]
    assert found["too_long"] == 2 + month["multi_day"]

    written = engine.write_cleaned(queries.cleaned(), tmp_path / "cleaned", found["rows_in"] - found["rows_flagged"])
    cleaned = pq.read_table(written["path"]).to_pandas()
    assert list(cleaned.columns[:19]) == list(nyc_taxi.COLUMNS) and "pickup_longitude" in cleaned.columns
    old_rows = cleaned[cleaned["pickup_longitude"].notna()]
    assert old_rows["pickup_longitude"].tolist() == [-73.98] * len(old_rows)  # typed DOUBLE, not text
    assert sorted(old_rows["total_amount"]) == [r[3] for r in ROWS if not expected(r[3])]
    assert old_rows["congestion_surcharge"].isna().all()
    # the generated month, judged by pandas on its own
    raw = pq.read_table(files["new"]).to_pandas()
    seconds = (raw["tpep_dropoff_datetime"] - raw["tpep_pickup_datetime"]).dt.total_seconds()
    keep = raw[seconds.notna() & (seconds > 0) & (seconds < 86400)]
    new_rows = cleaned[cleaned["pickup_longitude"].isna()]
    key = ["tpep_pickup_datetime", "tpep_dropoff_datetime", "total_amount"]
    pd.testing.assert_frame_equal(
        new_rows[key].sort_values(key).reset_index(drop=True), keep[key].sort_values(key).reset_index(drop=True)
    )


def test_top_50_tables_are_ordered_like_the_posts_queries(files, tmp_path):
    engine, queries = open_queries(config(tmp_path), [files["new"]])
    longest = engine.query("longest", queries.top(50, longest=True))
    shortest = engine.query("shortest", queries.top(50, longest=False))
    raw = pq.read_table(files["new"]).to_pandas()
    seconds = (raw["tpep_dropoff_datetime"] - raw["tpep_pickup_datetime"]).dt.total_seconds().dropna()
    assert list(longest.columns) == [
        "tpep_dropoff_datetime",
        "tpep_pickup_datetime",
        "duration_second",
        "duration_minute",
        "duration_hour",
        "duration_day",
    ]
    assert longest["duration_second"].tolist() == sorted(seconds, reverse=True)[:50]
    assert shortest["duration_second"].tolist() == sorted(seconds)[:50]
    assert (longest["duration_day"] == longest["duration_second"] // 86400).all()
    assert shortest["duration_second"].iloc[0] < 0


def test_staged_csv_keeps_every_row_and_count(files, tmp_path):
    cfg = config(tmp_path)
    checked = inputs.check_files(cfg, [files["old"]], [nyc_taxi.PICKUP])
    [staged] = staging.stage_csv(cfg, checked)
    assert staged.suffix == ".parquet" and pq.read_metadata(staged).num_rows == len(ROWS)
    engine, queries = open_queries(cfg, [staged])
    assert counts(engine, queries)["rows_flagged"] == 6


def test_an_enabled_name_no_rule_has_is_refused_with_the_rules_there_are(tmp_path):
    # checked before a trial opens (the command line: test_task_constraints.py), and in a params file's values
    constraints = tasks.get("anomaly_detection").constraints
    check_constraints(config(tmp_path, "+model.rules.fast='trip_distance > 50'", "model.enabled=[fast]"), constraints)
    with pytest.raises(ConfigError) as refused:
        check_constraints(config(tmp_path, "model.enabled=[speeding,too_lng,too_long,too_lng]"), constraints)
    assert str(refused.value).startswith(
        "model.enabled=[speeding, too_lng, too_long, too_lng]: each name in model.enabled (the rules that run) must "
        "be one of model.rules; model.rules has no 'speeding', 'too_lng' (did you mean too_long?); rules: "
        "unparsable_timestamp, non_positive_duration, too_long, duration_iqr,"
    )
    params = tmp_path / "params.yaml"
    params.write_text("anomaly_detection:\n  model:\n    enabled: [non_positive_duratoin]\n")
    with pytest.raises(ConfigError, match=r"params.yaml: section anomaly_detection: model.enabled=\[non_positive_dur"):
        apply_params_file(config(tmp_path), params, [], constraints=constraints)
    # a name the command line gives is the command line's mistake, whatever the file holds: the runner's plain line
    params.write_text("anomaly_detection:\n  model:\n    top_n: 5\n")
    given = ["model.enabled=[too_lng]"]
    merged = apply_params_file(config(tmp_path, *given), params, given, constraints=constraints)
    with pytest.raises(ConfigError, match=r"^model.enabled=\[too_lng\]: each name"):
        check_constraints(merged, constraints)


def test_a_sweep_listing_a_name_no_rule_has_is_refused_before_its_record_opens(tmp_project):
    message = one_line_error(tmp_project, "-m", "task=anomaly_detection", "model.enabled=[too_long],[too_lng]")
    assert message.startswith(
        "the sweep would run model.enabled=[too_lng] (from model.enabled=[too_long],[too_lng]): each name in "
        "model.enabled (the rules that run) must be one of model.rules; model.rules has no 'too_lng' (did you mean "
        "too_long?); rules: unparsable_timestamp,"
    )


def test_rule_mistakes_name_the_rule_and_the_fix(files, tmp_path):
    cfg = config(tmp_path, "model.rules.too_long='duration_hour >= {max_hours}'")
    with pytest.raises(ConfigError, match=r"model.rules.too_long: \{max_hours\} is not a numeric model value"):
        enabled_rules(cfg.model)
    cfg = config(tmp_path, "+model.rules.fast='trip_distnce / duration_hour > 60'", "model.enabled=[fast]")
    engine, queries = open_queries(cfg, [files["old"]])
    with pytest.raises(ConfigError, match=r"model.rules.fast: .*trip_distnce"):
        engine.check_rule("fast", queries.rule_check(queries.rules[0]))


def test_the_threshold_a_sweep_moves_changes_the_rule_and_its_count(files, tmp_path):
    found = {}
    for hours in ("1", "24", "48"):
        engine, queries = open_queries(config(tmp_path, f"model.max_duration_hours={hours}"), [files["new"]])
        assert queries.rules[2].predicate == f"duration_second >= {int(hours) * 3600}"
        found[hours] = counts(engine, queries)["too_long"]
    # generated trips last at most 4 hours unless multi-day (1 to 3 days)
    assert found["24"] == files["month"].counts["multi_day"]
    assert found["1"] > 5 * found["24"] > 5 * found["48"] > 0


def test_a_rule_on_a_column_an_input_lacks_fails_instead_of_flagging_nothing(files, tmp_path):
    cfg = config(tmp_path, "+model.rules.airport='PULocationID = 132'", "model.enabled=[too_long,airport]")
    checked = inputs.check_files(cfg, [files["old"], files["new"]], [nyc_taxi.PICKUP])
    missing = {str(f.path): inputs.missing_columns(cfg, f.columns) for f in checked}
    lacking = ["PULocationID", "DOLocationID", "improvement_surcharge", "congestion_surcharge", "airport_fee"]
    assert missing[str(files["old"])] == lacking and missing[str(files["new"])] == []
    inputs.write_manifest(cfg, {"files": [f.path for f in checked], "missing_columns": missing})
    with pytest.raises(DataError, match=r"yellow_tripdata_2014-01.csv: no column PULocationID, which rule airport"):
        inputs.check_rule_columns(cfg, enabled_rules(cfg.model))


def _manifest_of(cfg, files) -> None:
    """input/manifest.json as prepare writes it for the 2014 file (which lacks PULocationID and DOLocationID) and
    the 2019 one."""
    checked = inputs.check_files(cfg, [files["old"], files["new"]], [nyc_taxi.PICKUP])
    missing = {str(f.path): inputs.missing_columns(cfg, f.columns) for f in checked}
    inputs.write_manifest(cfg, {"files": [f.path for f in checked], "missing_columns": missing})


# each names PULocationID, which the 2014 file lacks, only as a lambda's parameter: DuckDB's `lambda x:` (one or two
# parameters) and Trino's `x -> ...` (engine=athena), where it is the list's element in the lambda's body
LAMBDA_PARAMETERS = {
    "duckdb_lambda": "len(list_filter([1, 2], lambda PULocationID: PULocationID > 1)) = 1 AND fare_amount > 9",
    "two_parameters": "list_reduce([1, 2], lambda PULocationID, x: PULocationID + x) = 3 AND fare_amount > 9",
    "trino_lambda": "cardinality(filter(ARRAY[1, 2], PULocationID -> PULocationID > 1)) = 1 AND fare_amount > 9",
}


# each names PULocationID, which the 2014 file lacks, without reading it
NOT_READ = {
    "in_a_string": "store_and_fwd_flag = 'PULocationID'",
    "as_a_struct_field": "{'PULocationID': fare_amount}.PULocationID > 100",
    "in_a_comment": "fare_amount > 100 -- PULocationID is 2014's pickup_longitude",
    **LAMBDA_PARAMETERS,
}


@pytest.mark.parametrize("name", NOT_READ)
def test_a_column_a_rule_only_names_is_not_read_so_an_input_lacking_it_is_no_refusal(files, tmp_path, name):
    cfg = config(tmp_path, f'+model.rules.{name}="{NOT_READ[name]}"', f"model.enabled=[too_long,{name}]")
    _manifest_of(cfg, files)
    inputs.check_rule_columns(cfg, enabled_rules(cfg.model))  # the text search refused each, naming PULocationID


@pytest.mark.parametrize(
    "rule",
    [
        "durations.DOLocationID = 132 OR store_and_fwd_flag = 'PULocationID'",
        "EXISTS (SELECT 1 FROM trips AS t WHERE t.DOLocationID = 132) AND store_and_fwd_flag = 'PULocationID'",
        # beside a lambda, in its body (a column the lambda captures), and as DuckDB's JSON arrow, which is no lambda
        "len(list_filter([1, 2], lambda PULocationID: PULocationID > 1)) = 1 AND DOLocationID = 132",
        "len(list_filter([1, 2], lambda PULocationID: PULocationID > DOLocationID)) = 1",
        "cardinality(filter(ARRAY[1, 2], PULocationID -> PULocationID > DOLocationID)) = 1",
        "DOLocationID -> '$.zone' = '132'",
    ],
)
def test_a_column_a_rule_reads_is_named_when_an_input_lacks_it(files, tmp_path, rule):
    cfg = config(tmp_path, f'+model.rules.airport="{rule}"', "model.enabled=[airport]")
    _manifest_of(cfg, files)
    # the column the rule reads, not PULocationID in its string (which the text search named first)
    with pytest.raises(DataError, match=r"yellow_tripdata_2014-01.csv: no column DOLocationID, which rule airport"):
        inputs.check_rule_columns(cfg, enabled_rules(cfg.model))


def test_the_columns_a_rule_reads_are_those_of_its_parse_not_every_name_in_its_text():
    predicates = [
        "store_and_fwd_flag = 'tip_amount'",
        "{'extra': fare_amount}.extra > 1 -- not mta_tax",
        '"durations"."Passenger_Count" > 6',
    ]
    rules = [Rule(f"r{n}", p, p) for n, p in enumerate(predicates)]
    # the floating-point columns whose NaN reads as null: not extra, mta_tax or tip_amount, which no rule reads
    assert columns_used(rules, nyc_taxi.COLUMNS) == ["passenger_count", "store_and_fwd_flag", "fare_amount"]


def test_a_rule_duckdb_runs_but_does_not_serialize_is_read_by_its_text():
    pivoted = "EXISTS (FROM (PIVOT trips ON payment_type USING sum(fare_amount)))"
    assert duckdb.execute(f"WITH trips AS (SELECT 1 AS payment_type, 2.0 AS fare_amount) SELECT {pivoted}").fetchone()
    assert columns_read(pivoted) is None  # json_serialize_sql: "Only SELECT statements can be serialized"
    rule = Rule("pivoted", pivoted, pivoted)
    assert rule.uses("fare_amount") and rule.uses("payment_type") and not rule.uses("tip_amount")


def test_a_column_a_method_reads_counts_and_columns_a_tree_does_not_name_fall_back_to_the_text():
    # DuckDB parses `passenger_count.abs()` as a function of a schema passenger_count, and runs abs(passenger_count)
    method = Rule("m", "passenger_count.abs() > 6", "passenger_count.abs() > 6")
    assert method.uses("passenger_count")
    assert duckdb.execute("SELECT (-7.0).abs() > 6").fetchone() == (True,)
    # `*`, COLUMNS(...) and USING read columns they do not name: every name in the text counts, as before the parse
    for unnamed in ("COLUMNS('tip_amount|fare_amount') > 100", "EXISTS (FROM trips JOIN trips USING (fare_amount))"):
        assert columns_read(unnamed) is None and Rule("u", unnamed, unnamed).uses("fare_amount")


@pytest.mark.parametrize("name", LAMBDA_PARAMETERS)
def test_a_lambdas_parameter_named_like_a_column_is_no_column_read(name):
    assert columns_read(LAMBDA_PARAMETERS[name]) == {"fare_amount"}  # and no refusal: NOT_READ holds them


def test_a_lambda_rule_runs_on_an_input_lacking_the_column_its_parameter_is_named_like(files, tmp_path):
    rule = LAMBDA_PARAMETERS["duckdb_lambda"]
    cfg = config(tmp_path, f'+model.rules.element="{rule}"', "model.enabled=[element]")
    _manifest_of(cfg, files)
    inputs.check_rule_columns(cfg, enabled_rules(cfg.model))
    engine, queries = open_queries(cfg, [files["old"]])
    engine.check_rule("element", queries.rule_check(queries.rules[0]), queries.rule_columns())
    assert counts(engine, queries)["element"] == len(ROWS)  # every fare is 9.5: the lambda's parameter is the element
