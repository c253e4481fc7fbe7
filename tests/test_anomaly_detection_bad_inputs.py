"""Taxi files a probe found mishandled: a code with a fraction (`VendorID=2.5`) was stored as 3 without a word (from
CSV text; as 2 from a Parquet column of floats), and a file of US-format timestamps (`01/03/2019 18:26:45`) failed
in the query stage with `TypeError: float() argument must be a string or a real number, not 'NAType'`."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anomaly_detection_helpers import config, open_queries
from conftest import run_cli, trials_of
from mlexp.data import nyc_taxi
from mlexp.tasks.anomaly_detection import inputs, staging
from mlexp.tasks.anomaly_detection.dialects import DUCKDB
from mlexp.tasks.anomaly_detection.trip_rows import Source, TripRows

TASK = "anomaly_detection"
HEADER = "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,PULocationID,trip_distance,payment_type,fare_amount"
ROWS = [
    "1,2019-01-01 00:46:40,2019-01-01 00:53:20,151,1.5,1,6.5",
    "2.0,2019-01-01 00:59:47,2019-01-01 01:18:59,239,2.6,2,12",  # a whole number written with a fraction: 2
    "2.5,2019-01-02 10:00:00,2019-01-02 10:09:00,236.5,2.5,1,9",
    "2,2019-01-03 08:00:00,2019-01-03 08:20:00,161,3.1,1.5,10.3",
    "2.5,2019-01-04 08:00:00,2019-01-04 08:30:00,43,6.2,1,21",
]


def _csv(folder: Path, rows: list[str], header: str = HEADER) -> Path:
    path = folder / "yellow_tripdata_2019-01.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _warnings(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("mlexp: warning:")]


def _kept(column: str) -> str:
    return (
        f"the rows are kept, with {column} null (an enabled rule that uses {column} flags them as unevaluable); to "
        "read them, correct the number in the file, or write nothing where there is none"
    )


@pytest.mark.parametrize("staged", ["true", "false"], ids=["staged", "read_in_place"])
def test_a_code_with_a_fraction_reads_as_null_with_a_warning_not_rounded(tmp_path, capsys, staged):
    path = _csv(tmp_path, ROWS)
    cfg = config(tmp_path, f"preprocessing.stage_csv_as_parquet={staged}")
    unknown: dict = {}
    unreadable: dict = {}
    read = staging.stage_csv(cfg, inputs.check_files(cfg, [path], [nyc_taxi.PICKUP]), unknown, unreadable)

    assert sorted(_warnings(capsys)) == _fraction_warnings(path, "line 4", "line 5")
    # counted with the column's other values that read as null
    assert unknown == {"VendorID": {"2.5": 2}, "payment_type": {"1.5": 1}}
    assert unreadable == {"PULocationID": {"236.5": 1}}
    if staged == "true":
        table = pq.read_table(read[0])
        assert table["VendorID"].to_pylist() == [1, 2, None, 2, None]
        assert table["PULocationID"].to_pylist() == [151, 239, None, 161, 43]
        assert table["payment_type"].to_pylist() == [1, 2, 1, None, 1]


def _fraction_warnings(path: Path, first: str, first_payment: str) -> list[str]:
    """The warnings, sorted, for ROWS' codes with a fraction: VendorID's and PULocationID's first at `first` (a CSV's
    line, a Parquet file's row), payment_type's at `first_payment`."""
    where = "whole numbers (codes and IDs, BIGINT), read as null rather than rounded"
    return [
        f"mlexp: warning: {path}: PULocationID: 1 row holds a number with a fraction where the column holds {where} "
        f"(the first on {first}): '236.5' (1 row); {_kept('PULocationID')}",
        f"mlexp: warning: {path}: VendorID: 2 rows hold a number with a fraction where the column holds {where} "
        f"(the first on {first}): '2.5' (2 rows); {_kept('VendorID')}",
        f"mlexp: warning: {path}: payment_type: 1 row holds a number with a fraction where the column holds {where} "
        f"(the first on {first_payment}): '1.5' (1 row); {_kept('payment_type')}",
    ]


def test_whole_numbers_keep_the_typed_reader_and_read_exactly(tmp_path, capsys, monkeypatch):
    # 2.0 is 2, and a file of whole numbers is read by the typed reader (not refused into the text path); a number a
    # DOUBLE does not hold exactly (from 2**53) is read as text, exactly
    path = _csv(tmp_path, [*ROWS[:2], "1,2019-01-05 08:00:00,2019-01-05 08:30:00,9007199254740993,6.2,1,21"])
    cfg = config(tmp_path)
    reads = []
    typed = staging.typed_csv_reader
    monkeypatch.setattr(staging, "typed_csv_reader", lambda *args: reads.append(args[0].path) or typed(*args))
    [staged] = staging.stage_csv(cfg, inputs.check_files(cfg, [path], [nyc_taxi.PICKUP]))
    assert pq.read_table(staged)["PULocationID"].to_pylist() == [151, 239, 9007199254740993]
    assert pq.read_table(staged)["VendorID"].to_pylist() == [1, 2, 1]
    assert _warnings(capsys) == [] and reads == [path]


def _parquet(folder: Path, lines: list[str] = ROWS, **types: pa.DataType) -> Path:
    """`lines` (ROWS) as a Parquet file, each column of `types` stored as that type (the others as TLC types them)."""
    names = HEADER.split(",")
    rows = [row.split(",") for row in lines]
    table = pa.table({name: [row[i] for row in rows] for i, name in enumerate(names)})
    tlc = {"tpep_pickup_datetime": pa.timestamp("us"), "tpep_dropoff_datetime": pa.timestamp("us")}
    for name, type in {**tlc, "trip_distance": pa.float64(), "fare_amount": pa.float64(), **types}.items():
        column = table[name].cast(pa.float64()).cast(type) if pa.types.is_decimal(type) else table[name].cast(type)
        table = table.set_column(names.index(name), name, column)
    path = folder / "yellow_tripdata_2019-01.parquet"
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize(
    "stored_as",
    [pa.float64(), pa.float32(), pa.decimal128(6, 1)],
    ids=["double", "float", "decimal"],
)
def test_a_code_with_a_fraction_in_a_parquet_float_column_reads_as_null_with_a_warning(tmp_path, capsys, stored_as):
    # a Parquet file written from a pandas column of float64 (codes with a missing value become floats); a whole
    # float (2.0, as TLC's own 2023 files store passenger_count and RatecodeID) is read as the code, silently
    path = _parquet(tmp_path, VendorID=stored_as, PULocationID=stored_as, payment_type=stored_as)
    cfg = config(tmp_path)
    unknown: dict = {}
    unreadable: dict = {}
    read = staging.stage_csv(cfg, inputs.check_files(cfg, [path], [nyc_taxi.PICKUP]), unknown, unreadable)

    assert read == [path]  # read in place
    assert sorted(_warnings(capsys)) == _fraction_warnings(path, "row 3", "row 4")
    assert unknown == {"VendorID": {"2.5": 2}, "payment_type": {"1.5": 1}}
    assert unreadable == {"PULocationID": {"236.5": 1}}
    engine, queries = open_queries(cfg, [path])
    trips = engine.query("trips", queries.trips()).astype(object)
    read_as = {
        column: trips[column].where(trips[column].notna(), None).tolist()
        for column in ("VendorID", "PULocationID", "payment_type")
    }
    assert read_as == {
        "VendorID": [1, 2, None, 2, None],
        "PULocationID": [151, 239, None, 161, 43],
        "payment_type": [1, 2, 1, None, 1],
    }


def test_a_parquet_float_code_that_is_nan_or_beyond_a_bigint_is_told_apart(tmp_path, capsys):
    # NaN is no ID: null, with a warning of its own (a float column's missing value is null, as pandas writes it, not
    # NaN; -NaN is NaN); 1e30 and inf are numbers no BIGINT holds, warned as out of range
    path = tmp_path / "yellow_tripdata_2019-01.parquet"
    start = pa.array([datetime(2019, 1, 1, hour) for hour in range(6)], pa.timestamp("us"))
    ids = pa.array([132.0, math.nan, 1e30, math.inf, -math.nan, None])
    pq.write_table(pa.table({"tpep_pickup_datetime": start, "tpep_dropoff_datetime": start, "PULocationID": ids}), path)
    cfg = config(tmp_path)
    unreadable: dict = {}
    staging.stage_csv(cfg, inputs.check_files(cfg, [path], [nyc_taxi.PICKUP]), {}, unreadable)

    assert unreadable == {"PULocationID": {"1e+30": 1, "inf": 1, "nan": 2}}
    out_of_range, nan = _warnings(capsys)
    assert f"{path}: PULocationID: 2 rows hold a number out of range for the column's type (BIGINT: " in out_of_range
    assert "(the first on row 3): '1e+30' (1 row), 'inf' (1 row);" in out_of_range
    assert nan == (
        f"mlexp: warning: {path}: PULocationID: 2 rows hold NaN (not a number) where the column holds whole numbers "
        f"(codes and IDs, BIGINT), read as null (the first on row 2): 'nan' (2 rows); {_kept('PULocationID')}"
    )


NAN_ROWS = [*ROWS[:2], "nan,2019-01-02 10:00:00,2019-01-02 10:09:00,236,2.5,nan,9"]


@pytest.mark.parametrize("saved_as", ["csv", "parquet"])
def test_a_nan_code_is_counted_and_named_alike_from_parquet_floats_and_csv_text(tmp_path, capsys, saved_as):
    floats = {"VendorID": pa.float64(), "payment_type": pa.float64()}
    path = _csv(tmp_path, NAN_ROWS) if saved_as == "csv" else _parquet(tmp_path, NAN_ROWS, **floats)
    cfg = config(tmp_path)
    unknown: dict = {}
    staging.stage_csv(cfg, inputs.check_files(cfg, [path], [nyc_taxi.PICKUP]), unknown, {})

    assert unknown == {"VendorID": {"nan": 1}, "payment_type": {"nan": 1}}  # with the coded columns' other nulls
    where = "line 4" if saved_as == "csv" else "row 3"
    assert sorted(_warnings(capsys)) == [
        f"mlexp: warning: {path}: {column}: 1 row holds NaN (not a number) where the column holds whole numbers "
        f"(codes and IDs, BIGINT), read as null (the first on {where}): 'nan' (1 row); {_kept(column)}"
        for column in ("VendorID", "payment_type")
    ]


def test_a_parquet_file_of_tlcs_own_types_gets_no_query_for_unread_values(tmp_path, capsys):
    # integer codes and IDs hold no NaN nor fraction, so the file is not scanned for them; NaN in the DOUBLE columns
    # (passenger_count, RatecodeID) is data, kept as a CSV's `nan` there is
    path = tmp_path / "yellow_tripdata_2024-01.parquet"
    start = pa.array([datetime(2024, 1, 1, hour) for hour in range(2)], pa.timestamp("us"))
    integers = {"VendorID": pa.int32(), "PULocationID": pa.int32(), "payment_type": pa.int64()}
    columns = {name: pa.array([1, 2], type) for name, type in integers.items()}
    doubles = {"passenger_count": [1.0, math.nan], "RatecodeID": [math.nan, 1.0]}
    times = {"tpep_pickup_datetime": start, "tpep_dropoff_datetime": start}
    pq.write_table(pa.table({**times, **columns, **doubles}), path)
    cfg = config(tmp_path)
    [file] = inputs.check_files(cfg, [path], [nyc_taxi.PICKUP])
    assert TripRows(DUCKDB, Source(nyc_taxi.reader_sql(file), file.columns), **inputs.reading(cfg)).unread() is None
    staging.stage_csv(cfg, [file])
    assert _warnings(capsys) == []


US_ROWS = [
    "1,01/03/2019 18:26:45,01/03/2019 18:31:48,151,0.71,1,5.5",
    "2,01/24/2019 23:01:07,01/24/2019 23:16:54,239,1.57,1,10.5",
]


def test_a_file_whose_timestamps_all_fail_to_read_fails_naming_a_value_and_the_formats(tmp_project):
    project = tmp_project
    path = _csv(project, US_ROWS)
    done = run_cli(project, f"task={TASK}", f"dataset.path={path}", check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr and "TypeError" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    [failed] = trials_of(project, experiment=TASK)
    assert line == (
        "mlexp: error: stage 'query' failed: none of the 2 rows has a pickup and a dropoff time that read as "
        "timestamps (tpep_pickup_datetime, tpep_dropoff_datetime), so no trip has a duration; "
        f"{path} holds e.g. tpep_pickup_datetime '01/03/2019 18:26:45'. Times are read as ISO 8601 "
        "('2019-01-01 00:15:00'), then with preprocessing.timestamp_formats (['%m/%d/%Y %I:%M:%S %p']); add the "
        """file's format, e.g. 'preprocessing.timestamp_formats=["%m/%d/%Y %H:%M:%S"]' for 01/31/2019 23:59:59 """
        f"(trial {failed.run_id} marked FAILED)"
    )
    assert failed.status == "FAILED" and failed.component_names == {"Pre-processing", "Query"}
