"""`mlexp task=anomaly_detection` end to end: components, headline metrics, outputs, a failure."""

from __future__ import annotations

import hashlib
import json
import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest

from anomaly_detection_helpers import functions_outside_trino
from conftest import REPO, run_cli, store_client, trials_of
from run_folders import run_folder

TASK = "anomaly_detection"
# 20,000 generated rows, as CSV (so prepare parses it into Parquet): at least one of each anomaly
SMALL = ("task=anomaly_detection", "dataset.n_rows=20000", "dataset.format=csv")
COMPONENTS = {"Pre-processing", "Query", "Detection", "Cleaning"}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("anomaly") / "project"
    shutil.copytree(REPO / "conf", folder / "conf")
    return folder


@pytest.fixture(scope="module")
def trial(project):
    # a rule added but not listed in model.enabled: it does not run, and the trial says so
    done = run_cli(project, *SMALL, "+model.rules.fast='trip_distance * 3600.0 / duration_second > 90'")
    [found] = [t for t in trials_of(project, experiment=TASK) if t.status == "FINISHED"]
    return project, found, done


def test_a_trial_has_the_four_components_and_the_headline_metrics(trial):
    project, found, done = trial
    assert found.status == "FINISHED" and found.component_names == COMPONENTS
    metrics = json.loads((run_folder(done) / "reports" / "metrics.json").read_text())
    # generated at 20,000 rows: 16 zero + 1 negative duration, 1 multi-day, 1 null + 1 unparsable timestamp
    assert metrics == {
        "percent_flagged": pytest.approx(0.1),
        "rows_in": 20000,
        "rows_flagged": 20,
        "rows_out": 19980,
        "rows_flagged_unevaluable": 0,
        "rows_flagged_unparsable_timestamp": 2,
        "rows_flagged_non_positive_duration": 17,
        "rows_flagged_too_long": 1,
    }
    assert found.metrics["rows_in"] == 20000 and found.metrics["rows_out"] == 19980
    assert "percent_flagged = 0.1" in done.stdout
    assert (
        "mlexp: warning: model.rules.fast is not in model.enabled, so it does not run; to run it: "
        "model.enabled=[unparsable_timestamp,non_positive_duration,too_long,fast]"
    ) in done.stderr
    assert "rows_flagged_fast" not in found.metrics


def test_a_trial_reusing_pre_processing_warns_of_its_own_idle_rule(tmp_path):
    # Pre-processing (reused: it does not depend on the rules) warned of the first trial's rule, and of none when the
    # first trial had none
    project = tmp_path / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    tiny = ("task=anomaly_detection", "dataset.n_rows=2000")
    run_cli(project, *tiny, "+model.rules.fast='trip_distance > 50'")
    again = run_cli(project, *tiny, "+model.rules.far='trip_distance > 60'")
    assert "Pre-processing: reusing component" in again.stdout + again.stderr
    assert "mlexp: warning: model.rules.far is not in model.enabled" in again.stderr
    assert "model.rules.fast" not in again.stderr


def test_components_record_queries_rules_and_elapsed_times(trial):
    project, found, done = trial
    client = store_client(project)
    query = client.get_run(found.components["Query"]).data
    assert {"elapsed_s_longest_trips", "elapsed_s_shortest_trips", "elapsed_s_duration_counts"} <= set(query.metrics)
    assert client.get_run(found.components["Query"]).data.params["rules_not_enabled"] == "fast"
    detection = client.get_run(found.components["Detection"]).data
    assert detection.params["rule.too_long"] == "duration_second >= 86400"
    assert detection.params["rule.non_positive_duration"] == "duration_second <= 0"
    assert detection.metrics["rows_flagged_non_positive_duration"] == 17
    cleaning = client.get_run(found.components["Cleaning"]).data
    assert cleaning.metrics["rows_out"] == 19980 and "elapsed_s_cleaned" in cleaning.metrics
    # hashed as it was written, never read back: the digest of the bytes on disk
    cleaned = run_folder(done) / "data" / "cleaned" / "trips_cleaned.parquet"
    assert cleaning.tags["data_version.cleaned trips"] == hashlib.md5(cleaned.read_bytes()).hexdigest()
    artifacts = {a.path for run in found.components.values() for a in client.list_artifacts(run, "plots")}
    assert {"plots/duration_sorted.png", "plots/duration_sorted_clean.png", "plots/duration_histogram.png"} <= artifacts
    sql = {a.path for a in client.list_artifacts(found.components["Query"], "sql")}
    assert "sql/longest_trips.sql" in sql


def test_outputs_cleaned_parquet_top_50_tables_and_flagged_rows(trial):
    _, _, done = trial
    data = run_folder(done) / "data"
    assert pq.read_metadata(data / "cleaned" / "trips_cleaned.parquet").num_rows == 19980
    longest = (data / "query" / "longest_trips.csv").read_text().splitlines()
    assert longest[0] == (
        "tpep_dropoff_datetime,tpep_pickup_datetime,duration_second,duration_minute,duration_hour,duration_day"
    )
    assert len(longest) == 51 and int(longest[1].split(",")[5]) >= 1
    flagged = (data / "detection" / "flagged_rows.csv").read_text().splitlines()
    assert len(flagged) == 21 and flagged[0].endswith("duration_second,rules")
    assert sum("too_long" in line for line in flagged) == 1
    assert list((data / "input" / "staged").glob("*.parquet"))  # the CSV, parsed once


def test_a_file_without_a_required_column_fails_with_one_line(trial):
    project, good, good_done = trial
    bad = project / "yellow_tripdata_2019-01.csv"
    bad.write_text("VendorID,tpep_pickup_datetime,trip_distance\n1,2019-01-01 00:00:00,1.0\n")
    done = run_cli(project, "task=anomaly_detection", f"dataset.path={bad}", check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("mlexp: error:")]
    assert f"{bad}: no column tpep_dropoff_datetime" in line and "marked FAILED" in line
    [failed] = [t for t in trials_of(project, experiment=TASK) if t.run_id != good.run_id]
    assert failed.status == "FAILED" and failed.component_names == {"Pre-processing"}
    # the good trial's report stays: a failed trial reports nothing
    assert json.loads((run_folder(good_done) / "reports" / "metrics.json").read_text())["rows_in"] == 20000


def _athena_type(dtype) -> str:
    kind = getattr(dtype, "kind", "O")
    return {"i": "bigint", "u": "bigint", "f": "double", "M": "timestamp", "b": "boolean"}.get(kind, "varchar")


def _athena_text(value) -> dict:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return {}
    if isinstance(value, pd.Timestamp):
        return {"VarCharValue": value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]}
    return {"VarCharValue": str(value)}


def _athena_result(frame: pd.DataFrame):
    """A query result as Athena returns it: a header row, then every value as text."""
    from moto.athena.models import QueryResults

    info = [
        {"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": str(c), "Label": str(c)}
        | {"Type": _athena_type(frame[c].dtype), "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN"}
        | {"CaseSensitive": False}
        for c in frame.columns
    ]
    rows = [{"Data": [{"VarCharValue": str(c)} for c in frame.columns]}]
    rows += [{"Data": [_athena_text(v) for v in row]} for row in frame.itertuples(index=False)]
    return QueryResults(rows=rows, column_info=info)


def test_engine_athena_runs_every_stage_and_reports_what_duckdb_reports(trial, tmp_path, monkeypatch):
    """The Athena path end to end, offline: moto answers each query with what DuckDB computes on the same rows."""
    from dataclasses import replace

    import duckdb
    import sqlglot
    from hydra import compose, initialize_config_dir
    from moto import mock_aws
    from moto.athena.models import athena_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    from mlexp.config import make_composable
    from mlexp.data import nyc_taxi
    from mlexp.tasks.anomaly_detection import inputs, stage_rules, stages
    from mlexp.tasks.anomaly_detection.dialects import DUCKDB
    from mlexp.tasks.anomaly_detection.rules import enabled_rules
    from mlexp.tracking import TrackingStore, Trial

    project, good, good_done = trial
    make_composable()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                *SMALL,
                "engine=athena",
                "engine.s3_staging_dir=s3://athena-results/mlexp/",
                "engine.cleaned_location=s3://lake/c/",
                f"paths.data={tmp_path / 'data'}",
                f"paths.reports={tmp_path / 'reports'}",
            ],
        )
    # the DuckDB trial's trips stand for the Glue table (names in lower case, as a crawler writes them)
    [staged] = (run_folder(good_done) / "data" / "input" / "staged").glob("*.parquet")
    duck = inputs.duckdb_engine(cfg, [nyc_taxi.inspect(staged, duckdb.connect())], "1GB", 1)
    columns = {k: v for k, v in duck.source().columns.items() if k != "file_month"}
    table = pd.DataFrame(
        {"column_name": [c.lower() for c in columns], "data_type": [t.lower() for t in columns.values()]}
    )
    q = replace(stage_rules.trip_queries(cfg, DUCKDB, duck.source()), rules=enabled_rules(cfg.model))
    empty = pd.DataFrame()
    answers = [table]  # prepare
    answers += [table, duck.query("c", q.duration_counts())]  # query: the counts first, then the top 50s
    answers += [duck.query(n, s) for n, s in [("l", q.top(50, True)), ("s", q.top(50, False))]]
    answers += [table, duck.query("d", q.duration_flags(10)), duck.query("f", q.flagged_rows(10_000))]
    answers += [table, empty, empty, pd.DataFrame({"_col0": [19980]})]

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "test")
    with mock_aws():
        athena_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].query_results_queue.extend(map(_athena_result, answers))
        store = TrackingStore.resolve(None, project)
        run = Trial.open(store.client(), store.experiment_id("athena_offline"), "athena", {})
        for stage, name in [("prepare", "Pre-processing"), ("query", "Query"), ("detect", "Detection")]:
            with run.component(name, stage) as tracker:
                getattr(stages, stage)(cfg, tracker)
        with run.component("Cleaning", "clean") as tracker:
            stages.clean(cfg, tracker)
        sent = [e.query for e in athena_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].executions.values()]
    run.close()

    assert len(sent) == len(answers) == 12
    for sql in sent:  # every statement is Athena SQL (DDL in Hive's spelling, queries in Trino's), Trino's functions
        sqlglot.parse_one(sql, read="athena")
        assert functions_outside_trino(sql) == set(), sql
    assert all("date_sub" not in sql for sql in sent) and sum("date_diff('day'" in sql for sql in sent) == 6
    assert sent[-2].startswith('CREATE TABLE "db_yellow_cab_trip_details"."yellow_cab_trip_details_cleaned"')
    # the CTAS writes under the trial's own prefix: a re-run never meets the data an earlier one left
    assert f"external_location = 's3://lake/c/{run.run_id}/'" in sent[-2]
    assert json.loads((tmp_path / "data" / "cleaned" / "athena_table.json").read_text())["location"] == (
        f"s3://lake/c/{run.run_id}/"
    )
    metrics = store.client().get_run(run.run_id).data.metrics
    for name in ("rows_in", "rows_flagged", "rows_out", *(f"rows_flagged_{r}" for r in cfg.model.enabled)):
        assert metrics[name] == good.metrics[name], name
    for name in ("longest_trips.csv", "shortest_trips.csv"):
        ours = (tmp_path / "data" / "query" / name).read_text()
        assert ours == (run_folder(good_done) / "data" / "query" / name).read_text()
    assert (tmp_path / "reports" / "plots" / "duration_sorted_clean.png").stat().st_size > 10_000


def test_an_edit_to_the_detection_sql_reruns_the_stages_after_prepare_and_not_prepare():
    from mlexp import stage_code

    code = {
        stage: {str(p) for p in stage_code.stage_files(f"mlexp.tasks.{TASK}.stages", stage, (), REPO)}
        for stage in ("prepare", "query", "detect", "clean")
    }
    # DVC re-runs a stage when a file of its code changes: staging a month again for a detection query was waste
    detection_sql = f"src/mlexp/tasks/{TASK}/queries.py"
    assert [stage for stage, files in code.items() if detection_sql in files] == ["query", "detect", "clean"]
    # prepare checks the rules and the columns they read, so their code stays its code
    assert {f"src/mlexp/tasks/{TASK}/rules.py", f"src/mlexp/tasks/{TASK}/rule_columns.py"} <= code["prepare"]
