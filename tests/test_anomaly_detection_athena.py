"""engine=athena offline: the exact Athena requests PyAthena sends, answered by moto's Athena mock."""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace

import boto3
import pytest
import sqlglot
from hydra import compose, initialize_config_dir
from moto import mock_aws
from moto.athena.models import QueryResults, athena_backends
from moto.core import DEFAULT_ACCOUNT_ID

from anomaly_detection_helpers import functions_outside_trino
from conftest import REPO, cli_env, run_cli
from mlexp.config import make_composable
from mlexp.errors import ConfigError, DataError
from mlexp.tasks.anomaly_detection import config_rules, inputs
from mlexp.tasks.anomaly_detection.athena_engine import AthenaEngine
from mlexp.tasks.anomaly_detection.dialects import ATHENA, DUCKDB
from mlexp.tasks.anomaly_detection.queries import TripQueries
from mlexp.tasks.anomaly_detection.rules import enabled_rules
from mlexp.tasks.anomaly_detection.trip_rows import Source

STAGING = "s3://athena-results/mlexp/"
DATABASE, TABLE = "db_yellow_cab_trip_details", "src_yellow_cab_trip_details"
# what a Glue crawler makes of yellow_tripdata_2019-01.csv: lower-case names, timestamps as text
GLUE_COLUMNS = [
    ("vendorid", "bigint"),
    ("tpep_pickup_datetime", "varchar"),
    ("tpep_dropoff_datetime", "varchar"),
    ("passenger_count", "bigint"),
    ("trip_distance", "double"),
    ("ratecodeid", "bigint"),
    ("store_and_fwd_flag", "varchar"),
    ("pulocationid", "bigint"),
    ("dolocationid", "bigint"),
    ("payment_type", "bigint"),
    ("fare_amount", "double"),
    ("extra", "double"),
    ("mta_tax", "double"),
    ("tip_amount", "double"),
    ("tolls_amount", "double"),
    ("improvement_surcharge", "double"),
    ("total_amount", "double"),
]


def _column(name: str, athena_type: str) -> dict:
    names = {"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": name, "Label": name}
    return names | {"Type": athena_type, "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": False}


def result(columns: list[tuple[str, str]], rows: list[list[str | None]]) -> QueryResults:
    """A result as Athena's GetQueryResults returns it: the header row first, then text values."""
    header = {"Data": [{"VarCharValue": name} for name, _ in columns]}
    data = [{"Data": [{"VarCharValue": v} if v is not None else {} for v in row]} for row in rows]
    return QueryResults(rows=[header, *data], column_info=[_column(n, t) for n, t in columns])


@pytest.fixture
def athena(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        boto3.client("athena", region_name="eu-west-1").create_work_group(Name="analysts")
        yield athena_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"]


def config(tmp_path, *overrides: str):
    make_composable()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                "task=anomaly_detection",
                "engine=athena",
                f"engine.s3_staging_dir={STAGING}",
                "engine.region_name=eu-west-1",
                "engine.work_group=analysts",
                f"paths.data={tmp_path}",
                *overrides,
            ],
        )


def requests() -> list[dict]:
    """Every StartQueryExecution Athena received, as GetQueryExecution reports it."""
    client = boto3.client("athena", region_name="eu-west-1")
    ids = client.list_query_executions(WorkGroup="analysts")["QueryExecutionIds"]
    found = [client.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]
    return sorted(found, key=lambda q: q["Status"]["SubmissionDateTime"])


def test_the_posts_top_50_query_goes_to_athena_with_the_configured_connection(athena, tmp_path):
    cfg = config(tmp_path)
    athena.query_results_queue.append(result([("column_name", "varchar"), ("data_type", "varchar")], GLUE_COLUMNS))
    longest = [["2019-01-02 10:00:00", "2019-01-01 09:00:00", "90000", "1500", "25", "1"]]
    top_columns = [("tpep_dropoff_datetime", "timestamp"), ("tpep_pickup_datetime", "timestamp")]
    top_columns += [(f"duration_{unit}", "bigint") for unit in ("second", "minute", "hour", "day")]
    athena.query_results_queue.append(result(top_columns, longest))

    engine = AthenaEngine(cfg.engine)
    queries = TripQueries(
        engine.dialect, engine.source(), inputs.aliases(cfg), list(cfg.preprocessing.timestamp_formats)
    )
    table = engine.query("longest_trips", queries.top(cfg.model.top_n, longest=True))

    [columns_request, top_request] = requests()
    for request in (columns_request, top_request):
        assert request["QueryExecutionContext"]["Database"] == DATABASE
        assert request["ResultConfiguration"]["OutputLocation"].startswith(STAGING)
        assert request["WorkGroup"] == "analysts"
    assert columns_request["Query"] == (
        "SELECT column_name, data_type FROM information_schema.columns\n"
        f"WHERE table_schema = '{DATABASE}' AND table_name = '{TABLE}'"
    )
    sql = top_request["Query"]
    for unit in ("second", "minute", "hour", "day"):
        assert f"date_diff('{unit}', tpep_pickup_datetime, tpep_dropoff_datetime) AS duration_{unit}" in sql
    assert (
        'coalesce(try_cast(trim("tpep_pickup_datetime") AS TIMESTAMP), '
        'try(date_parse(trim("tpep_pickup_datetime"), \'%m/%d/%Y %h:%i:%s %p\'))) AS "tpep_pickup_datetime"'
    ) in sql
    assert '"vendorid" AS "VendorID"' in sql and 'CAST(NULL AS DOUBLE) AS "congestion_surcharge"' in sql
    assert f'FROM "{DATABASE}"."{TABLE}"' in sql
    assert sql.endswith(
        "SELECT tpep_dropoff_datetime, tpep_pickup_datetime, duration_second, duration_minute, duration_hour, "
        "duration_day\nFROM durations\n"
        "ORDER BY duration_second DESC NULLS LAST, tpep_pickup_datetime, tpep_dropoff_datetime\nLIMIT 50"
    )
    assert table["duration_second"].tolist() == [90000] and str(table.iloc[0, 0]) == "2019-01-02 10:00:00"
    assert set(engine.timings) == {"table_columns", "longest_trips"}


def cleaning(athena, tmp_path, *overrides: str) -> tuple[AthenaEngine, TripQueries, dict]:
    """The engine and queries of an Athena trial, and the note of its cleaning (41 rows, in trial `trial1`)."""
    cfg = config(tmp_path, *overrides)
    engine = AthenaEngine(cfg.engine)
    source = Source(engine.table, dict(GLUE_COLUMNS))
    queries = TripQueries(engine.dialect, source, inputs.aliases(cfg), (), enabled_rules(cfg.model))
    athena.query_results_queue.extend([result([], []), result([], []), result([("_col0", "bigint")], [["41"]])])
    note = engine.write_cleaned(queries.cleaned(), tmp_path / "cleaned", expected_rows=41, trial_id=lambda: "trial1")
    return engine, queries, note


def test_cleaning_is_a_ctas_into_parquet_and_its_count_is_checked(athena, tmp_path):
    engine, queries, note = cleaning(athena, tmp_path, "engine.cleaned_location=s3://lake/trips_cleaned/")

    drop, create, count = [r["Query"] for r in requests()]
    target = '"db_yellow_cab_trip_details"."yellow_cab_trip_details_cleaned"'
    assert drop == "DROP TABLE IF EXISTS `db_yellow_cab_trip_details`.`yellow_cab_trip_details_cleaned`"
    assert create.startswith(
        f"CREATE TABLE {target}\nWITH (format = 'PARQUET', write_compression = 'SNAPPY', "
        "external_location = 's3://lake/trips_cleaned/trial1/') AS\nWITH trips AS ("
    )
    assert '(tpep_pickup_datetime IS NULL OR tpep_dropoff_datetime IS NULL\n) AS "value_unparsable_timestamp"' in create
    assert '(duration_second <= 0\n) AS "value_non_positive_duration"' in create
    assert '(duration_second >= 86400\n) AS "value_too_long"' in create
    # each predicate is evaluated once: the flag and the unevaluable test read its value
    assert create.count("duration_second >= 86400") == 1
    assert 'coalesce("value_too_long", false) AS "rule_too_long"' in create and '"value_too_long" IS NULL' in create
    assert create.endswith("FROM flags\nWHERE NOT flagged")
    assert count == f"SELECT count(*) FROM {target}"
    assert note["rows"] == 41
    assert json.loads((tmp_path / "cleaned" / "athena_table.json").read_text())["table"].endswith("_cleaned")

    assert note["location"] == "s3://lake/trips_cleaned/trial1/"

    # a re-run writes to its own trial's prefix: CTAS never meets the data the last run left behind
    athena.query_results_queue.extend([result([], []), result([], []), result([("_col0", "bigint")], [["40"]])])
    athena.query_results_queue.append(result([], []))
    with pytest.raises(DataError, match="not rows_in - rows_flagged = 41.*was dropped"):
        engine.write_cleaned(queries.cleaned(), tmp_path / "cleaned", expected_rows=41, trial_id=lambda: "trial2")
    *_, create_again, count_again, drop_again = [r["Query"] for r in requests()]
    assert "external_location = 's3://lake/trips_cleaned/trial2/'" in create_again and count_again == count
    # a table of the wrong rows does not stay behind for the next query to read as the cleaned trips
    assert drop_again == drop
    # outside a trial, a fresh random prefix rather than one shared by every such run
    first, second = engine.cleaned_location(""), engine.cleaned_location("")
    assert first != second and re.fullmatch(r"s3://lake/trips_cleaned/[0-9a-f]{32}/", first or "")


def test_athena_needs_a_result_location(athena, tmp_path):
    cfg = config(tmp_path, "engine.s3_staging_dir=null", "engine.work_group=null")
    with pytest.raises(ConfigError, match="engine=athena needs engine.s3_staging_dir=s3://"):
        AthenaEngine(cfg.engine)


def test_the_dialects_differ_only_where_athena_and_duckdb_spell_things_differently(tmp_path):
    cfg = config(tmp_path, "preprocessing.timestamp_formats=[]")
    source = Source('"db"."trips"', dict(GLUE_COLUMNS))
    athena_sql = TripQueries(AthenaEngine.dialect, source, inputs.aliases(cfg), (), enabled_rules(cfg.model))
    duckdb_sql = TripQueries(DUCKDB, source, inputs.aliases(cfg), (), enabled_rules(cfg.model))
    # and Athena trims text before casting it (DuckDB's casts skip surrounding spaces themselves)
    trimmed = re.compile(r'try_cast\(trim\(("(?:[^"]|"")*")\) AS')
    for build in (lambda q: q.top(50, True), lambda q: q.rule_counts(), lambda q: q.cleaned()):
        assert trimmed.search(build(athena_sql)) and not trimmed.search(build(duckdb_sql))
        assert build(duckdb_sql).replace("date_sub(", "date_diff(") == trimmed.sub(r"try_cast(\1 AS", build(athena_sql))
    # one percentile definition on both engines: the same exact SQL, no approx_percentile/quantile_cont
    assert duckdb_sql.quartiles().replace("date_sub(", "date_diff(") == trimmed.sub(
        r"try_cast(\1 AS", athena_sql.quartiles()
    )
    assert "approx_percentile" not in athena_sql.quartiles() and "quantile_cont" not in duckdb_sql.quartiles()


def test_every_statement_with_every_rule_parses_as_athena_sql(athena, tmp_path):
    from mlexp.tasks.anomaly_detection.rules import BUILT_IN

    cfg = config(tmp_path, f"model.enabled=[{','.join(BUILT_IN)}]")
    engine = AthenaEngine(cfg.engine)
    rules = enabled_rules(cfg.model)
    source = Source(engine.table, dict(GLUE_COLUMNS), engine.dialect.month_of_path())
    stats = {"duration_q1": 300.0, "duration_median": 600.0, "duration_q3": 900.0, "duration_mad": 250.0}
    queries = TripQueries(engine.dialect, source, inputs.aliases(cfg), list(cfg.preprocessing.timestamp_formats))
    queries = replace(queries, rules=rules, statistics=stats, value_codes=inputs.value_codes(cfg))
    statements = [queries.top(50, True), queries.top(50, False), queries.duration_counts()]
    statements += [queries.quartiles(), queries.median_absolute_deviation(600)]
    statements += [queries.rule_check(rule) for rule in rules]
    statements += [queries.duration_flags(10), queries.rule_counts(), queries.flagged_rows(10)]
    statements += engine.cleaning_statements(queries.cleaned(), engine.cleaned_location("run1")).values()
    for sql in statements:
        sqlglot.parse_one(sql, read="athena")  # raises ParseError on SQL Athena would refuse
        if not sql.startswith("DROP"):
            sqlglot.parse_one(sql, read="trino")
        assert functions_outside_trino(sql) == set(), sql
    # the check catches DuckDB's spellings: unknown to sqlglot (Anonymous) or known but not Trino's
    for duckdb_only in (
        "quantile_cont(duration_second, 0.5)",
        "strptime(x, '%Y')",
        "isodow(x)",
        "date_sub('day', a, b)",
    ):
        assert functions_outside_trino(f"SELECT {duckdb_only} FROM t") == {duckdb_only.split("(")[0]}
    assert '"$path"' in queries.trips() and "day_of_week(tpep_pickup_datetime) = 7" in queries.rule_counts()
    assert "CASE upper(trim(\"payment_type\")) WHEN 'CRD' THEN 1" not in queries.trips()  # Glue typed it bigint
    with pytest.raises(sqlglot.errors.ParseError):
        sqlglot.parse_one(queries.rule_counts().replace("count_if(", "count_if((", 1), read="athena")


def _without_credentials(env: dict[str, str], home) -> dict[str, str]:
    """`env` where botocore finds no AWS credentials: no variables, no files, no instance metadata service."""
    env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    env |= {"HOME": str(home), "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(home / "none")}
    return env | {"AWS_SHARED_CREDENTIALS_FILE": str(home / "none")}


def test_engine_athena_without_credentials_is_refused_before_the_trial_opens(tmp_project, tmp_path):
    # it was "stage 'prepare' failed: engine=athena: no AWS credentials found; ... (trial ... marked FAILED)", exit 1
    env = _without_credentials(cli_env(tmp_project), tmp_path)
    done = run_cli(
        tmp_project, "task=anomaly_detection", "engine=athena", f"engine.s3_staging_dir={STAGING}", check=False, env=env
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "mlexp: error: engine=athena: no AWS credentials found; run `aws configure` (or `aws sso login`), or set "
        "AWS_PROFILE=<profile> (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or run where an IAM role provides "
        "them, or use engine=duckdb"
    ]
    assert not (tmp_project / "mlflow.db").exists()  # no trial opened
    assert not (tmp_project / "data").exists()  # prepare did not run


def test_the_engine_still_refuses_credentials_that_vanished_after_the_check(tmp_path, monkeypatch):
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in _without_credentials({}, tmp_path).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        AthenaEngine(config(tmp_path).engine)
    assert str(refused.value) == config_rules.ATHENA_NO_CREDENTIALS


def test_an_empty_region_is_refused_by_the_engine_too(tmp_path):
    # it was "ValueError: Invalid endpoint: https://athena..amazonaws.com", a traceback in the trial
    with pytest.raises(ConfigError, match=r"^engine.region_name=: engine.region_name is the code of an AWS region"):
        AthenaEngine(config(tmp_path, "engine.region_name=''").engine)


def test_pickup_outside_month_on_athena_fails_naming_an_object_without_a_month(athena, tmp_path):
    cfg = config(tmp_path, "model.enabled=[too_long,pickup_outside_month]")
    engine = AthenaEngine(cfg.engine)
    found = [("rows_without_month", "bigint"), ("example_path", "varchar")]
    athena.query_results_queue.append(result(found, [["1234", "s3://trips/yellow/trips_2019.csv"]]))
    with pytest.raises(DataError) as error:
        inputs.check_table_months(enabled_rules(cfg.model), engine)
    assert str(error.value).startswith(
        "s3://trips/yellow/trips_2019.csv: no month (YYYY-MM) in the object name (1,234 rows of table "
        f"{DATABASE}.{TABLE} come from such objects), which rule pickup_outside_month needs"
    )
    [sent] = [r["Query"] for r in requests()]
    assert sent == (
        f'SELECT count(*) AS rows_without_month, min("$path") AS example_path FROM "{DATABASE}"."{TABLE}"\n'
        f"WHERE {ATHENA.month_of_path()} IS NULL"
    )
    assert functions_outside_trino(sent) == set()
    # every object named by its month: no error; without the rule, no query at all
    athena.query_results_queue.append(result(found, [["0", None]]))
    inputs.check_table_months(enabled_rules(cfg.model), engine)
    inputs.check_table_months(enabled_rules(config(tmp_path).model), engine)
    assert len(requests()) == 2


def test_a_query_athena_fails_is_reported_in_one_line_naming_the_query(athena, tmp_path, monkeypatch):
    from moto.athena.models import Execution

    engine = AthenaEngine(config(tmp_path).engine)
    monkeypatch.setattr(Execution, "status", property(lambda self: "FAILED"))  # what Athena reports for bad SQL
    with pytest.raises(DataError) as error:
        engine.query("longest_trips", "SELECT 1")
    message = str(error.value)
    assert message.startswith("query longest_trips failed on Athena: ") and "\n" not in message


def test_cleaning_without_a_cleaned_location_leaves_the_data_where_athena_puts_a_table(athena, tmp_path):
    _, _, note = cleaning(athena, tmp_path)  # engine.cleaned_location unset: the database's own location
    _, create, _ = [r["Query"] for r in requests()]
    assert create.startswith("CREATE TABLE ") and "WITH (format = 'PARQUET', write_compression = 'SNAPPY') AS" in create
    assert "external_location" not in create and note["rows"] == 41
