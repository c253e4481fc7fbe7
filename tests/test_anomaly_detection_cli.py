"""`mlexp task=anomaly_detection` as the README shows it: a glob of real-format monthly Parquet files whose types
drift, a .csv.gz, the shipped threshold sweep, and a file without rows failing in one line."""

from __future__ import annotations

import gzip
import shutil
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO, run_cli, store_client, trials_of
from run_folders import run_folder

TASK = "anomaly_detection"
HEADER = "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,total_amount"


@pytest.fixture()
def project(tmp_path):
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    (tmp_path / "data").mkdir()
    return tmp_path


def _times(*texts: str) -> pa.Array:
    return pa.array([datetime.fromisoformat(t) for t in texts], pa.timestamp("us"))


def test_a_glob_of_monthly_parquet_files_with_drifting_types_and_a_csv_gz_run_to_the_end(project):
    # 2022: int32 VendorID, int64 passenger_count, airport_fee; 2023: int64, double, Airport_fee; one trip of 0 s
    pq.write_table(
        pa.table(
            {
                "VendorID": pa.array([1, 2, 2], pa.int32()),
                "tpep_pickup_datetime": _times("2022-01-01 10:00:00", "2022-01-01 11:00:00", "2022-01-02 09:00:00"),
                "tpep_dropoff_datetime": _times("2022-01-01 10:10:00", "2022-01-01 11:20:00", "2022-01-02 09:00:00"),
                "passenger_count": pa.array([1, 2, 1], pa.int64()),
                "airport_fee": pa.array([0.0, 1.25, 0.0]),
            }
        ),
        project / "data" / "yellow_tripdata_2022-01.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "VendorID": pa.array([2, 1], pa.int64()),
                "tpep_pickup_datetime": _times("2023-01-01 10:00:00", "2023-01-03 10:00:00"),
                "tpep_dropoff_datetime": _times("2023-01-01 10:30:00", "2023-01-05 10:00:00"),  # 2 days
                "passenger_count": pa.array([3.0, None]),
                "Airport_fee": pa.array([1.75, 0.0]),
            }
        ),
        project / "data" / "yellow_tripdata_2023-01.parquet",
    )
    done = run_cli(project, f"task={TASK}", "dataset.path=data/yellow_tripdata_20*.parquet")
    [trial] = trials_of(project, experiment=TASK)
    prepared = store_client(project).get_run(trial.components["Pre-processing"]).data.params
    assert trial.status == "FINISHED" and (prepared["files"], prepared["formats"]) == ("2", "parquet")
    assert (trial.metrics["rows_in"], trial.metrics["rows_flagged"], trial.metrics["rows_out"]) == (5, 2, 3)
    cleaned_path = run_folder(done) / "data" / "cleaned" / "trips_cleaned.parquet"
    assert pq.read_metadata(cleaned_path).row_group(0).column(0).compression == "UNCOMPRESSED"  # engine.compression
    cleaned = pq.read_table(cleaned_path)
    assert [name.lower() for name in cleaned.column_names].count("airport_fee") == 1
    assert sorted(cleaned["airport_fee"].to_pylist()) == [0.0, 1.25, 1.75]
    assert str(cleaned.schema.field("VendorID").type) == "int64"

    # TLC's 2019 CSV, gzipped with CRLF line endings, given as the README does
    rows = ["1,2019-01-01 00:46:40,2019-01-01 00:53:20,1,1.5,7.55", "2,2019-01-02 10:00:00,2019-01-02 10:00:00,1,0,3.3"]
    (project / "data" / "yellow_tripdata_2019-01.csv.gz").write_bytes(
        gzip.compress("\r\n".join([HEADER, *rows]).encode())
    )
    done = run_cli(
        project,
        f"task={TASK}",
        "dataset.path=data/yellow_tripdata_2019-01.csv.gz",
        "model.max_duration_hours=6.5",
        "engine.compression=snappy",
    )
    [gz] = [t for t in trials_of(project, experiment=TASK) if t.run_id != trial.run_id]
    prepared = store_client(project).get_run(gz.components["Pre-processing"]).data.params
    assert gz.status == "FINISHED" and prepared["formats"] == "csv"
    assert (gz.metrics["rows_in"], gz.metrics["rows_flagged_non_positive_duration"], gz.metrics["rows_out"]) == (
        2,
        1,
        1,
    )
    cleaned = pq.read_metadata(run_folder(done) / "data" / "cleaned" / "trips_cleaned.parquet")
    assert cleaned.num_rows == 1 and cleaned.row_group(0).column(0).compression == "SNAPPY"


@pytest.mark.parametrize("name", ["yellow_tripdata_2019-01.csv", "yellow_tripdata_2019-01.parquet"])
def test_a_file_without_rows_fails_in_preprocessing_with_one_line_naming_it(project, name):
    path = project / "data" / name
    if name.endswith(".csv"):
        path.write_text(HEADER + "\r\n")
    else:
        empty = _times()
        pq.write_table(pa.table({"tpep_pickup_datetime": empty, "tpep_dropoff_datetime": empty}), path)
    done = run_cli(project, f"task={TASK}", f"dataset.path={path}", check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr and "SELECT" not in done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("mlexp: error:")]
    assert f"{path}: no rows (" in line and "check dataset.path" in line and "marked FAILED" in line
    assert len(done.stderr.strip().splitlines()) == 1
    [failed] = trials_of(project, experiment=TASK)
    assert failed.status == "FAILED" and failed.component_names == {"Pre-processing"}


def test_the_shipped_threshold_sweep_reports_each_value_and_names_no_best(project):
    # small charts: drawing three 12x12 in charts per trial was a large part of each tiny trial's time
    small = ("dataset.n_rows=400", "model.figure_size=[4,4]")
    done = run_cli(project, "-m", f"task={TASK}", "sweep=anomaly_detection_thresholds", *small)
    trials = [t for t in trials_of(project, experiment=TASK) if "mlexp.sweep_id" in t.tags]
    assert sorted(float(t.params["model.max_duration_hours"]) for t in trials) == [6, 6.5, 12, 24, 48]
    assert all(t.status == "FINISHED" and "percent_flagged" in t.metrics for t in trials)
    flagged = {float(t.params["model.max_duration_hours"]): t.metrics["rows_flagged"] for t in trials}
    assert flagged[6] >= flagged[6.5] >= flagged[12] >= flagged[24] >= flagged[48]
    assert not any(t.tags.get("mlexp.best_in_sweep") for t in trials)
    assert "reporting-only" in done.stdout and "best trial:" not in done.stdout
    # the comparison the task doc advertises: each threshold against the share of rows it flags
    compared = run_cli(project, "compare", f"task={TASK}").stdout
    assert "percent_flagged" in compared and "model.max_duration_hours" in compared
    assert "by percent_flagged, lowest first (a reported figure, not optimised: no trial is best)" in compared
    chart = project / "outputs" / "compare" / TASK / "model_max_duration_hours_vs_percent_flagged.png"
    assert chart.stat().st_size > 0
