"""A rule that cannot run is one line before the trial opens: its SQL bound by DuckDB where the detect stage binds it
(a misspelt column, a syntax error), its name, its {placeholders}; the shipped rules import no DuckDB for it. The
command line of a misspelt column, refused, is test_task_constraints.py's REFUSED case for this rule."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from anomaly_detection_helpers import config, open_queries
from conftest import REPO, run_cli, store_client, trials_of
from mlexp import tasks
from mlexp.config.constraints import check_constraints
from mlexp.errors import ConfigError
from mlexp.tasks.anomaly_detection.rules import BUILT_IN, Rule

RULE = (
    "each rule in model.enabled must run: a name of letters, digits and _ (not unevaluable), {placeholders} naming "
    "numeric model values, and with engine=duckdb SQL that binds over the columns of a trip, its durations and the "
    "statistics"
)
# the columns of the detect stage's `durations` over a generated month: today's, file_month, durations, statistics
COLUMNS = (
    "VendorID, tpep_pickup_datetime, tpep_dropoff_datetime, passenger_count, trip_distance, RatecodeID, "
    "store_and_fwd_flag, PULocationID, DOLocationID, payment_type, fare_amount, extra, mta_tax, tip_amount, "
    "tolls_amount, improvement_surcharge, total_amount, congestion_surcharge, airport_fee, file_month, "
    "duration_second, duration_minute, duration_hour, duration_day, duration_q1, duration_median, duration_q3, "
    "duration_mad"
)


def _refusal(tmp_path, *overrides: str) -> str:
    with pytest.raises(ConfigError) as refused:
        check_constraints(config(tmp_path, *overrides), tasks.get("anomaly_detection").constraints)
    return str(refused.value)


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        # DuckDB's parser, on the predicate alone
        (
            ['+model.rules.bad="trip_distance > > 1"', "model.enabled=[bad]"],
            f'model.rules.bad="trip_distance > > 1": {RULE}; Parser Error: syntax error at or near ">"',
        ),
        # a function, with DuckDB's own hint
        (
            ['+model.rules.night="hourr(tpep_pickup_datetime) < 5"', "model.enabled=[night]"],
            f'model.rules.night="hourr(tpep_pickup_datetime) < 5": {RULE}; Catalog Error: Scalar Function with name '
            'hourr does not exist! Did you mean "hour"?',
        ),
        # the three mistakes the stages found (prepare: after the trial opened)
        (
            ['+model.rules.unevaluable="trip_distance > 100"', "model.enabled=[unevaluable]"],
            f'model.rules.unevaluable="trip_distance > 100": {RULE}; the name is reserved for rows no rule can judge; '
            "rename the rule",
        ),
        (
            ['+model.rules.long-trip="trip_distance > 100"', "model.enabled=[long-trip]"],
            f'model.rules.long-trip="trip_distance > 100": {RULE}; a rule name must be letters, digits and _ (it '
            "names a metric)",
        ),
        (
            ["model.rules.too_long='duration_second >= {max_hours:seconds}'"],
            f'model.rules.too_long="duration_second >= {{max_hours:seconds}}": {RULE}; {{max_hours}} is not a numeric '
            "model value; use one of {min_duration_seconds}, {max_duration_hours}, {iqr_k}, {robust_z_max}, "
            "{max_speed_mph}, {zero_distance_max_minutes}, {dst_fall_back_max_minutes}",
        ),
        (
            ["model.rules.too_long='duration_second >= {max_speed_mph:seconds}'"],
            f'model.rules.too_long="duration_second >= {{max_speed_mph:seconds}}": {RULE}; {{max_speed_mph:seconds}}: '
            "max_speed_mph does not end in a unit (_seconds, _minutes, _hours, _days); write {max_speed_mph}",
        ),
        # left in the SQL, {max_duration_hours:second} was a struct and DuckDB named a column `second`
        (
            ["model.rules.too_long='duration_second >= {max_duration_hours:second}'"],
            f'model.rules.too_long="duration_second >= {{max_duration_hours:second}}": {RULE}; '
            "{max_duration_hours:second} is no placeholder: write {max_duration_hours}, or "
            "{max_duration_hours:seconds} for it in seconds",
        ),
        # a value, not a condition: it bound, and the detect stage's count of flags failed (COALESCE of DOUBLE and
        # BOOLEAN) after prepare and query ran
        (
            ['+model.rules.odd="trip_distance"', "model.enabled=[odd]"],
            f'model.rules.odd="trip_distance": {RULE}; it is DOUBLE, not a condition: a rule is true for the trips it '
            "flags (e.g. trip_distance > 50)",
        ),
        # a predicate with double quotes is shown in single ones
        (
            ["+model.rules.q='\"VendorID\" = 1 AND tip_amout > 0'", "model.enabled=[q]"],
            f"model.rules.q='\"VendorID\" = 1 AND tip_amout > 0': {RULE}; there is no column tip_amout (did you mean "
            f"tip_amount?); columns: {COLUMNS}",
        ),
    ],
)
def test_each_mistake_is_named_with_its_fix(tmp_path, overrides, line):
    assert _refusal(tmp_path, *overrides) == line


def test_a_generated_month_has_no_coordinates_but_a_file_may_have_them_and_other_columns(tmp_path):
    # the generator writes today's columns only
    line = _refusal(tmp_path, '+model.rules.west="pickup_longitude < -74.3"', "model.enabled=[west]")
    assert line.endswith(f"; there is no column pickup_longitude; columns: {COLUMNS}")
    # a file may hold them, and columns of its own (kept by name): the stage binds the rule over the file itself
    constraints = tasks.get("anomaly_detection").constraints
    a_file = ("dataset.path=/data/yellow_tripdata_2025-01.parquet", "model.enabled=[r]")
    for rule in ("pickup_longitude < -74.3", "cbd_congestion_fee > 0"):
        check_constraints(config(tmp_path, *a_file, f"+model.rules.r='{rule}'"), constraints)
    # what no file changes is still refused there: a type, a syntax error
    line = _refusal(tmp_path, *a_file, "+model.rules.r='tpep_pickup_datetime > 5'")
    cast = (
        "Binder Error: Cannot compare values of type TIMESTAMP and type INTEGER_LITERAL - an explicit cast is required"
    )
    assert line.endswith(f"; {cast}")
    assert "Parser Error" in _refusal(tmp_path, *a_file, "+model.rules.r='cbd_congestion_fee >'")


def test_athenas_sql_is_not_bound_by_duckdb_but_its_names_are_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")  # engine=athena's rule asks for credentials (never used)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    constraints = tasks.get("anomaly_detection").constraints
    athena = ("engine=athena", "engine.s3_staging_dir=s3://results/mlexp/")
    # Trino's SQL: DuckDB would not know its functions; Athena's queries report its mistakes
    trino = "+model.rules.r='regexp_like(store_and_fwd_flag, \\'Y\\')'"
    check_constraints(config(tmp_path, *athena, trino, "model.enabled=[r]"), constraints)
    reserved = ("+model.rules.unevaluable='trip_distance > 1'", "model.enabled=[unevaluable]")
    with pytest.raises(ConfigError, match=r"^model.rules.unevaluable=.*the name is reserved"):
        check_constraints(config(tmp_path, *athena, *reserved), constraints)


def test_the_shipped_rules_are_checked_without_importing_duckdb():
    # every shipped rule enabled, at the edges of the thresholds' ranges: their texts are known to bind
    script = f"""
import sys
from hydra import compose, initialize_config_dir
from mlexp import tasks
from mlexp.config import make_composable
from mlexp.config.constraints import check_constraints
make_composable()
with initialize_config_dir(config_dir={str(REPO / "conf")!r}, version_base="1.3"):
    cfg = compose("config", overrides=["task=anomaly_detection", "model.enabled=[{",".join(BUILT_IN)}]",
                                       "model.dst_fall_back_max_minutes=0", "model.min_duration_seconds=-5"])
check_constraints(cfg, tasks.get("anomaly_detection").constraints)
print("duckdb" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO)
    assert done.stdout.strip() == "False", done.stderr


def test_the_shipped_texts_are_the_files_and_bind():
    from mlexp.tasks.anomaly_detection import binding
    from mlexp.tasks.anomaly_detection.rules import enabled_rules

    shipped = yaml.safe_load((REPO / "conf" / "model" / "sql_outliers.yaml").read_text())
    assert shipped["rules"] == BUILT_IN
    model = {**shipped, "enabled": list(BUILT_IN)}
    for rule in enabled_rules(model):
        assert binding.problem(rule.predicate, generated=True) is None, rule.name


def test_the_detect_stage_words_a_column_the_file_lacks_the_same_way(tmp_path):
    # a file's own columns (pickup_longitude, rate_code_x) are the stage's to judge; it names them among the columns
    trips = tmp_path / "yellow_tripdata_2014-01.csv"
    trips.write_text(
        "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance,pickup_longitude,rate_code_x\n"
        "1,2014-01-01 10:00:00,2014-01-01 10:10:00,1.5,-73.98,1\n"
    )
    cfg = config(tmp_path, "dataset.path=" + str(trips), "+model.rules.x='rate_code_y = 1'", "model.enabled=[x]")
    check_constraints(cfg, tasks.get("anomaly_detection").constraints)
    engine, queries = open_queries(cfg, [trips])
    with pytest.raises(ConfigError) as refused:
        engine.check_rule("x", queries.rule_check(queries.rules[0]), queries.rule_columns())
    # the stage refuses a value that is no condition the same way (a rule over a column only the file holds)
    with pytest.raises(ConfigError, match=r"^model.rules.x: it is VARCHAR, not a condition"):
        engine.check_rule("x", queries.rule_check(Rule("x", "rate_code_x", "rate_code_x")), queries.rule_columns())
    columns = COLUMNS.replace("airport_fee, file_month", "airport_fee, pickup_longitude, file_month, rate_code_x")
    assert (
        str(refused.value)
        == f"model.rules.x: there is no column rate_code_y (did you mean rate_code_x?); columns: {columns}"
    )


def test_a_rule_may_end_in_a_comment_and_flags_what_it_flags_without_it(tmp_project):
    # the rule sits inside the detect query: a `-- comment` at its end cut that query ("syntax error at or near FROM")
    flagged = {}
    for rule in ("fare_amount < 0", "fare_amount < 0 -- refunds", "fare_amount < 0 /* refunds */"):
        run_cli(
            tmp_project,
            "task=anomaly_detection",
            "dataset.n_rows=3000",
            f'+model.rules.neg="{rule}"',
            "model.enabled=[neg]",
        )
        newest = max(
            trials_of(tmp_project, "anomaly_detection"),
            key=lambda t: store_client(tmp_project).get_run(t.run_id).info.start_time,
        )
        flagged[rule] = newest.metrics["rows_flagged_neg"]
    assert len(set(flagged.values())) == 1 and flagged["fare_amount < 0"] > 0, flagged
