"""Text in a numeric column ('two point five' in trip_distance, 'abc' in fare_amount) reads as null, and not silently:
the prepare stage warns naming the file, the column, the values with their rows and the first one's line (CSV) or row
(Parquet), keeps the rows (the value null), and records the count with the trial. A clean file draws no warning."""

from __future__ import annotations

import csv
import gzip
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anomaly_detection_helpers import config
from conftest import REPO, run_cli, store_client, trials_of
from mlexp.data import nyc_taxi
from mlexp.tasks.anomaly_detection import inputs, staging, unread_warnings

HEADER = "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,fare_amount,total_amount"
GOOD = [
    "1,2019-01-01 00:46:40,2019-01-01 00:53:20,1,1.5,6.5,7.55",
    "2,2019-01-01 00:59:47,2019-01-01 01:18:59,1,2.6,12,14.58",
    # a padded number, NaN and an empty field are no text of that kind: they read as 2.5, NaN and null
    "2,2019-01-02 10:00:00,2019-01-02 10:09:00,1, 2.5 ,nan,",
    # a field of spaces is an empty one (2014 files pad their fields): null, and nothing to report
    "1,2019-01-03 08:00:00,2019-01-03 08:20:00,1,   ,9,10.3",
]
BAD = [
    "1,2019-01-04 08:00:00,2019-01-04 08:30:00,1,two point five,21,24.3",
    "2,2019-01-05 09:00:00,2019-01-05 09:10:00,1,2.1,abc,9.8",
    "1,2019-01-06 10:00:00,2019-01-06 10:40:00,2,two point five,30,33.8",
]


def _csv(folder: Path, rows: list[str], gzipped: bool = False) -> Path:
    """TLC's 2019 layout: CRLF, a blank line after the header (line 2, no row)."""
    path = folder / ("yellow_tripdata_2019-01.csv" + (".gz" if gzipped else ""))
    data = "\r\n".join([HEADER, "", *rows, ""]).encode()
    path.write_bytes(gzip.compress(data) if gzipped else data)
    return path


def _warnings(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("mlexp: warning:")]


def _stage(tmp_path: Path, path: Path, *overrides: str) -> tuple[list[Path], dict, dict]:
    cfg = config(tmp_path, *overrides)
    unknown: dict = {}
    unreadable: dict = {}
    read = staging.stage_csv(cfg, inputs.check_files(cfg, [path], [nyc_taxi.PICKUP]), unknown, unreadable)
    return read, unknown, unreadable


@pytest.mark.parametrize(
    "read_as", ["staged", "staged_gzip", "in_place"], ids=["staged", "staged_gzip", "read_in_place"]
)
def test_text_in_a_numeric_csv_column_is_named_counted_and_located_and_the_rows_kept(tmp_path, capsys, read_as):
    path = _csv(tmp_path, [*GOOD, *BAD], gzipped=read_as == "staged_gzip")
    staged = "true" if read_as != "in_place" else "false"
    read, unknown, unreadable = _stage(tmp_path, path, f"preprocessing.stage_csv_as_parquet={staged}")

    assert unreadable == {"trip_distance": {"two point five": 2}, "fare_amount": {"abc": 1}}
    assert unknown == {"VendorID": {}}  # a coded column held as text: reported, 0 rows
    warnings = _warnings(capsys)
    assert len(warnings) == 2
    [distance] = [w for w in warnings if ": trip_distance: " in w]
    # the header is line 1, the blank line 2, GOOD lines 3-6: the first bad row is line 7
    assert distance == (
        f"mlexp: warning: {path}: trip_distance: 2 rows hold text that is not a number, read as null (the first on "
        "line 7): 'two point five' (2 rows); the rows are kept, with trip_distance null (an enabled rule that uses "
        "trip_distance flags them as unevaluable); to read them, write the number in the file, or nothing where "
        "there is none"
    )
    [fare] = [w for w in warnings if ": fare_amount: " in w]
    assert f"{path}: fare_amount: 1 row holds text that is not a number, read as null (the first on line 8): " in fare
    assert "'abc' (1 row)" in fare
    if read_as != "in_place":  # no row is lost: every one is staged, the unreadable values null, the others read
        [staged] = read
        rows = pq.read_table(staged)
        assert rows.num_rows == len(GOOD) + len(BAD)
        assert rows["trip_distance"].to_pylist()[3:] == [None, None, 2.1, None]
        assert rows["fare_amount"].to_pylist()[4:] == [21.0, None, 30.0]


def test_text_in_a_numeric_parquet_column_is_named_with_its_row(tmp_path, capsys):
    # numbers stored as strings (a pandas column of object dtype, a CSV converted without types)
    path = tmp_path / "yellow_tripdata_2019-01.parquet"
    rows = [line.split(",") for line in [*GOOD, *BAD]]
    columns = HEADER.split(",")
    table = pa.table({name: [row[i] or None for row in rows] for i, name in enumerate(columns)})
    table = table.set_column(0, "VendorID", table["VendorID"].cast(pa.int64()))
    table = table.set_column(6, "total_amount", pa.array([float(row[6]) if row[6] else None for row in rows]))
    pq.write_table(table, path)

    read, _, unreadable = _stage(tmp_path, path)

    assert read == [path]  # read in place
    assert unreadable == {"trip_distance": {"two point five": 2}, "fare_amount": {"abc": 1}}
    warnings = _warnings(capsys)
    [distance] = [w for w in warnings if ": trip_distance: " in w]
    assert f"{path}: trip_distance: 2 rows hold text that is not a number, read as null (the first on row 5): " in (
        distance
    )
    [fare] = [w for w in warnings if ": fare_amount: " in w]
    assert "(the first on row 6): 'abc' (1 row)" in fare


@pytest.mark.parametrize("saved_as", ["csv", "parquet"])
def test_a_clean_file_draws_no_warning(tmp_path, capsys, saved_as):
    path = _csv(tmp_path, GOOD)
    if saved_as == "parquet":
        path = path.with_suffix(".parquet")
        pq.write_table(pa.table({"VendorID": [1, 2], "tpep_pickup_datetime": ["2019-01-01 00:46:40"] * 2,
                                 "tpep_dropoff_datetime": ["2019-01-01 00:53:20"] * 2,
                                 "trip_distance": [1.5, 2.5], "fare_amount": [6.5, 9.0]}), path)  # fmt: skip
    _, _, unreadable = _stage(tmp_path, path)
    assert all(not counter for counter in unreadable.values())
    assert _warnings(capsys) == []


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("unreadable") / "project"
    shutil.copytree(REPO / "conf", folder / "conf")
    return folder


def _trial_of(project: Path, path: Path):
    """The trial that read `path` (its dataset.path parameter), and its Pre-processing component's metrics."""
    [trial] = [
        t for t in trials_of(project, experiment="anomaly_detection") if t.params.get("dataset.path") == str(path)
    ]
    return trial, store_client(project).get_run(trial.components["Pre-processing"]).data.metrics


def test_a_trial_warns_and_records_the_rows_of_each_column_and_their_sum(project, tmp_path):
    path = _csv(tmp_path, [*GOOD, *BAD])
    done = run_cli(project, "task=anomaly_detection", f"dataset.path={path}")
    assert f"mlexp: warning: {path}: trip_distance: 2 rows hold text that is not a number" in done.stderr
    assert f"mlexp: warning: {path}: fare_amount: 1 row holds text that is not a number" in done.stderr
    trial, prepare = _trial_of(project, path)
    for metrics in (prepare, trial.metrics):  # the component's, and the trial's copy
        assert metrics["rows_unreadable_number_trip_distance"] == 2
        assert metrics["rows_unreadable_number_fare_amount"] == 1
        assert metrics["unreadable_numbers"] == 3
    # the rows are kept: every one read, none flagged for it (no enabled rule uses these columns)
    assert trial.metrics["rows_in"] == len(GOOD) + len(BAD)


def test_a_trial_on_a_clean_file_records_zero_and_warns_of_nothing(project, tmp_path):
    path = _csv(tmp_path, GOOD)
    done = run_cli(project, "task=anomaly_detection", f"dataset.path={path}")
    assert "mlexp: warning:" not in done.stderr
    _, prepare = _trial_of(project, path)
    assert prepare["unreadable_numbers"] == 0
    assert not [name for name in prepare if name.startswith("rows_unreadable_number_")]


def test_a_code_the_typed_reader_keeps_as_text_is_counted_and_never_stored(tmp_path, capsys):
    # a value code that is a number keeps payment_type text in the typed reader (it reads the file): its unknown
    # codes are counted there too, and the column that counts them is not written into the staged copy
    path = tmp_path / "yellow_tripdata_2019-01.csv"
    path.write_text(
        "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,payment_type,total_amount\n"
        "1,2019-01-01 00:00:00,2019-01-01 00:10:00,2,5\n"
        "1,2019-01-01 00:20:00,2019-01-01 00:30:00,bitcoin,5\n"
    )
    [staged], unknown, unreadable = _stage(tmp_path, path, "+preprocessing.value_codes.payment_type.2=1")
    assert unknown["payment_type"] == {"bitcoin": 1} and all(not c for c in unreadable.values())
    assert not [name for name in pq.read_schema(staged).names if name.startswith("__")]
    [warning] = _warnings(capsys)
    assert f"{path}: payment_type: 1 row holds text that is no code in preprocessing.value_codes.payment_type" in (
        warning
    )
    assert "(the first on line 3): 'bitcoin' (1 row)" in warning


@pytest.mark.parametrize("staged", ["true", "false"], ids=["staged", "read_in_place"])
def test_a_number_beyond_its_columns_type_is_named_out_of_range_not_text(tmp_path, capsys, staged):
    # a BIGINT ends at 9223372036854775807: 99999999999999999999 is a number that column cannot hold (a DOUBLE
    # reads even 1e400, as inf); in a coded column too, where it is no unknown code
    path = tmp_path / "yellow_tripdata_2019-01.csv"
    path.write_text(
        "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,PULocationID,payment_type,total_amount\n"
        "1,2019-01-01 00:00:00,2019-01-01 00:10:00,132,1,5\n"
        "1,2019-01-01 00:20:00,2019-01-01 00:30:00,abc,1,5\n"
        "1,2019-01-01 00:40:00,2019-01-01 00:50:00,99999999999999999999,1,5\n"
        "2,2019-01-01 01:00:00,2019-01-01 01:10:00,-99999999999999999999,-99999999999999999999,5\n"
    )
    read, unknown, unreadable = _stage(tmp_path, path, f"preprocessing.stage_csv_as_parquet={staged}")

    # counted as before: a value that reads as null, per column
    assert unreadable["PULocationID"] == {"abc": 1, "99999999999999999999": 1, "-99999999999999999999": 1}
    assert unknown["payment_type"] == {"-99999999999999999999": 1}
    text, beyond, code = _warnings(capsys)
    assert text.startswith(f"mlexp: warning: {path}: PULocationID: 1 row holds text that is not a number, read as ")
    assert "(the first on line 3): 'abc' (1 row);" in text
    assert beyond == (
        f"mlexp: warning: {path}: PULocationID: 2 rows hold a number out of range for the column's type (BIGINT: "
        "whole numbers from -9223372036854775808 to 9223372036854775807), read as null (the first on line 4): "
        "'99999999999999999999' (1 row), '-99999999999999999999' (1 row); the rows are kept, with PULocationID null "
        "(an enabled rule that uses PULocationID flags them as unevaluable); to read them, correct the number in "
        "the file, or write nothing where there is none"
    )
    assert code.startswith(f"mlexp: warning: {path}: payment_type: 1 row holds a number out of range for the colu")
    assert "(the first on line 5): '-99999999999999999999' (1 row)" in code
    if staged == "true":
        assert pq.read_table(read[0])["PULocationID"].to_pylist() == [132, None, None, None]


@pytest.mark.parametrize("staged", ["true", "false"], ids=["staged", "read_in_place"])
def test_a_field_of_tabs_is_an_empty_one(tmp_path, capsys, staged):
    # whitespace alone, tabs as spaces: null to DuckDB's casts and to Athena's reader, like an empty field
    tabs = [
        "1,2019-01-03 09:00:00,2019-01-03 09:20:00,1,\t\t,\t9 ,10.3",
        "\t,2019-01-03 10:00:00,2019-01-03 10:20:00,1, \t ,9,10.3",
    ]
    path = _csv(tmp_path, [*GOOD, *tabs])
    read, unknown, unreadable = _stage(tmp_path, path, f"preprocessing.stage_csv_as_parquet={staged}")
    assert all(not counter for counter in [*unreadable.values(), *unknown.values()])
    assert _warnings(capsys) == []
    if staged == "true":
        rows = pq.read_table(read[0])
        assert rows["trip_distance"].to_pylist()[3:] == [None, None, None]
        assert rows["fare_amount"].to_pylist()[4:] == [9.0, 9.0]  # a tab around a number is skipped, as a space


def test_the_line_named_is_the_files_after_a_quoted_field_holding_line_breaks(tmp_path, capsys):
    # the typed reader reads a quoted field across lines (the text reader refuses it): a code column it keeps as
    # text (a numeric code) counts 'bitcoin' there, named by the line an editor shows it on
    path = tmp_path / "yellow_tripdata_2019-01.csv"
    path.write_bytes(
        b"VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,payment_type,total_amount,note\r\n"
        b'1,2019-01-01 00:00:00,2019-01-01 00:10:00,2,5,"a note\r\nover\r\n\r\nfour lines"\r\n'
        b"\r\n"
        b'1,2019-01-01 00:20:00,2019-01-01 00:30:00,1,5,"a ""quoted"",\r\n""two-line"" one"\r\n'
        b'1,2019-01-01 00:40:00,2019-01-01 00:50:00,1,5,5" tall\r\n'
        b"1,2019-01-01 01:00:00,2019-01-01 01:10:00,bitcoin,5,plain\r\n"
    )
    [staged], unknown, _ = _stage(tmp_path, path, "+preprocessing.value_codes.payment_type.2=1")
    assert pq.read_table(staged)["note"].to_pylist()[0] == "a note\r\nover\r\n\r\nfour lines"
    assert unknown["payment_type"] == {"bitcoin": 1}
    [warning] = _warnings(capsys)
    assert "(the first on line 10): 'bitcoin' (1 row)" in warning


def test_line_numbers_follow_csv_quoting_as_pythons_csv_does(tmp_path):
    # each row's first line, as csv.reader finds it: quotes open a field only at its start, "" is a quote
    rows = [
        'a,"b\n\nc",d',
        "",
        'x,y""z,"w"',
        '"""",",\n""\n"""',
        'p,"q ""\n,"',
        '5" tall,"a, b",c',
        "last,one,row",
    ]
    path = tmp_path / "quoted.csv"
    path.write_text("h1,h2,h3\n" + "\n".join(rows) + "\n")
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        starts, before = [], reader.line_num
        for record in reader:
            if record:
                starts.append(before + 1)
            before = reader.line_num
    assert starts == [2, 6, 7, 10, 12, 13]
    assert unread_warnings.line_numbers(path, range(len(starts))) == dict(enumerate(starts))
