"""The files analysts really have, through the DuckDB path: line endings, BOM, gzip, drifting Parquet types,
2022/2023 airport_fee spellings, 2009 headers and codes, padded Parquet names, and rows that do not parse."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anomaly_detection_helpers import config, counts, open_queries
from mlexp.data import nyc_taxi
from mlexp.errors import DataError
from mlexp.tasks.anomaly_detection import inputs, staging

HEADER = "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,total_amount"
# 2019-01 rows: one of 0 s (flagged), one over a day (flagged), one without a dropoff (flagged), two good
ROWS = [
    "1,2019-01-01 00:46:40,2019-01-01 00:53:20,1,1.5,7.55",
    "2,2019-01-01 00:59:47,2019-01-01 01:18:59,1,2.6,14.58",
    "2,2019-01-02 10:00:00,2019-01-02 10:00:00,1,0,3.3",
    '1,2019-01-03 08:00:00,2019-01-04 09:00:00,"2",9.1,52.3',
    "1,2019-01-04 08:00:00,,1,1.0,6.3",
]


def _lf(path: Path) -> bytes:
    return ("\n".join([HEADER, *ROWS]) + "\n").encode()


SAVED_AS = {
    "lf": lambda path: _lf(path),
    # TLC's own 2019 files: CRLF, a blank line after the header; re-saved without a final line ending
    "crlf_blank_line_no_final_newline": lambda path: "\r\n".join([HEADER, "", *ROWS]).encode(),
    "mixed_line_endings": lambda path: (
        HEADER + "\n" + "".join(r + ("\r\n" if i % 2 else "\n") for i, r in enumerate(ROWS))
    ).encode(),
    "utf8_bom_crlf": lambda path: b"\xef\xbb\xbf" + "\r\n".join([HEADER, *ROWS, ""]).encode(),
    "gzip": lambda path: gzip.compress("\r\n".join([HEADER, *ROWS]).encode()),
}


@pytest.mark.parametrize("saved_as", list(SAVED_AS))
def test_csv_saved_any_way_reads_every_row_and_flags_the_same_ones(tmp_path, saved_as):
    path = tmp_path / ("yellow_tripdata_2019-01.csv" + (".gz" if saved_as == "gzip" else ""))
    path.write_bytes(SAVED_AS[saved_as](path))
    cfg = config(tmp_path)
    engine, queries = open_queries(cfg, [path])
    found = counts(engine, queries)
    assert found["rows_in"] == 5 and found["rows_flagged"] == 3
    assert (found["non_positive_duration"], found["too_long"], found["unparsable_timestamp"]) == (1, 1, 1)
    # the first column's name lost its BOM: VendorID holds the values (a BOM left on would read as null
    # under VendorID and add a column named '\ufeffVendorID')
    assert engine.source().columns["VendorID"] == "BIGINT"
    assert not [name for name in engine.source().columns if "\ufeff" in name]
    assert engine.query("v", f"SELECT VendorID FROM {engine.source().relation}")["VendorID"].tolist() == [1, 2, 2, 1, 1]
    # staged once into Parquet (the trial's path): same rows, values without a stray \r
    [staged] = staging.stage_csv(cfg, inputs.check_files(cfg, [path], [nyc_taxi.PICKUP]))
    table = pq.read_table(staged)
    assert table.num_rows == 5 and table["total_amount"].to_pylist() == [7.55, 14.58, 3.3, 52.3, 6.3]
    assert table["VendorID"].to_pylist() == [1, 2, 2, 1, 1]
    assert not [name for name in table.column_names if "\ufeff" in name]
    assert table["passenger_count"].to_pylist()[3] == 2.0


# a row with too few fields, and one with too many (whose surplus DuckDB's lenient reader would drop)
BAD_ROWS = {
    "too_few": ("2,2019-01-02 10:00:00,1", 3),
    "too_many": ("2,2019-01-02 10:00:00,2019-01-02 10:10:00,1,2.0,9.3,4.5,x", 8),
}


@pytest.mark.parametrize("bad", list(BAD_ROWS))
@pytest.mark.parametrize("staged", [True, False])
def test_a_row_that_does_not_parse_names_the_file_the_line_and_what_was_expected(tmp_path, staged, bad):
    path = tmp_path / "yellow_tripdata_2019-01.csv"
    line, found = BAD_ROWS[bad]
    # a blank line after the header, as TLC's 2019 files: the line number still counts it
    path.write_bytes("\r\n".join([HEADER, "", ROWS[0], line, ROWS[2]]).encode())
    cfg = config(tmp_path)
    with pytest.raises(DataError) as error:
        if staged:
            staging.stage_csv(cfg, inputs.check_files(cfg, [path], [nyc_taxi.PICKUP]))
        else:
            engine, queries = open_queries(cfg, [path])
            counts(engine, queries)
    message = str(error.value)
    assert message.startswith(f"{path}: line 4: expected 6 comma-separated fields as in the header, found {found}")
    assert repr(line) in message and "\n" not in message


def test_a_csv_whose_lines_end_with_cr_alone_is_named_with_how_to_convert_it(tmp_path):
    path = tmp_path / "yellow_tripdata_2019-01.csv"
    path.write_bytes("\r".join([HEADER, *ROWS]).encode())  # "CSV (Macintosh)": no LF anywhere
    cfg = config(tmp_path)
    with pytest.raises(DataError) as error:
        inputs.check_files(cfg, [path], [nyc_taxi.PICKUP])
    message = str(error.value)
    assert message.startswith(f"{path}: line 1: its lines end with a carriage return alone")
    assert "LF or CRLF" in message and "\n" not in message


# a Latin-1 byte (é, as Excel saves "Café") in line 2, and in line 1502 (beyond the header's read-ahead)
NOT_UTF8 = {"line_2": 2, "line_1502": 1502}


@pytest.mark.parametrize("where", list(NOT_UTF8))
@pytest.mark.parametrize("staged", [True, False])
def test_a_file_that_is_not_utf8_is_named_with_its_line_and_how_to_re_save_it(tmp_path, where, staged):
    line = NOT_UTF8[where]
    bad = ROWS[1].encode().replace(b"14.58", b"14.5\xe9")
    rows = [ROWS[0].encode()] * (line - 2) + [bad] + [ROWS[2].encode()] * 3
    path = tmp_path / "yellow_tripdata_2019-01.csv"
    path.write_bytes(b"\r\n".join([HEADER.encode(), *rows]) + b"\r\n")
    cfg = config(tmp_path)
    with pytest.raises(DataError) as error:
        if staged:
            staging.stage_csv(cfg, inputs.check_files(cfg, [path], [nyc_taxi.PICKUP]))
        else:
            counts(*open_queries(cfg, [path]))
    message = str(error.value)
    assert message.startswith(f"{path}: line {line}: expected UTF-8 text, found the byte 0xe9: the file is not UTF-8")
    assert "re-save it as UTF-8" in message and "\n" not in message


def test_a_header_that_is_not_utf8_is_line_1(tmp_path):
    path = tmp_path / "yellow_tripdata_2019-01.csv"
    path.write_bytes(b"Vendor\xe9ID," + HEADER.encode().split(b",", 1)[1] + b"\n" + ROWS[0].encode() + b"\n")
    with pytest.raises(
        DataError, match=r"yellow_tripdata_2019-01.csv: line 1: expected UTF-8 text, found the byte 0xe9"
    ):
        inputs.check_files(config(tmp_path), [path], [nyc_taxi.PICKUP])


def test_a_utf16_file_is_told_as_utf16_with_its_own_iconv(tmp_path):
    path = tmp_path / "yellow_tripdata_2019-01.csv"
    path.write_bytes((HEADER + "\n" + ROWS[0] + "\n").encode("utf-16"))
    with pytest.raises(DataError) as refused:
        inputs.check_files(config(tmp_path), [path], [nyc_taxi.PICKUP])
    assert "the file is UTF-16 (as Excel's 'Unicode Text' saves it)" in str(refused.value)
    assert "`iconv -f utf-16 -t utf-8 in.csv > out.csv`" in str(refused.value)
    path.write_bytes((HEADER + "\n" + ROWS[0] + "\n").encode("utf-16-le"))  # no byte order mark: valid UTF-8
    with pytest.raises(DataError) as refused:
        inputs.check_files(config(tmp_path), [path], [nyc_taxi.PICKUP])
    assert "found a NUL byte: the file is UTF-16LE without a byte order mark" in str(refused.value)
    assert "`iconv -f utf-16le -t utf-8 in.csv > out.csv`" in str(refused.value)


EMPTY = {
    "header_only_csv": ("yellow_tripdata_2019-01.csv", "only a header"),
    "zero_row_parquet": ("yellow_tripdata_2019-01.parquet", "a Parquet file of 0 rows"),
}


@pytest.mark.parametrize("kind", list(EMPTY))
@pytest.mark.parametrize("staged", [True, False])
def test_a_file_without_rows_fails_in_preprocessing_naming_it(tmp_path, kind, staged):
    name, nothing = EMPTY[kind]
    good = tmp_path / "yellow_tripdata_2019-02.csv"
    good.write_text("\n".join([HEADER, *ROWS]) + "\n")
    path = tmp_path / name
    if name.endswith(".csv"):
        path.write_text(HEADER + "\r\n")
    else:
        _parquet(path, {"VendorID": pa.array([], pa.int64()), nyc_taxi.PICKUP: _times(), nyc_taxi.DROPOFF: _times()})
    cfg = config(tmp_path, f"preprocessing.stage_csv_as_parquet={staged}")
    with pytest.raises(DataError) as error:
        staging.stage_csv(cfg, inputs.check_files(cfg, [good, path], [nyc_taxi.PICKUP]))
    assert str(error.value) == f"{path}: no rows ({nothing}); check dataset.path"


def test_empty_surplus_fields_as_in_tlc_2016_second_half_are_read(tmp_path):
    # July to December 2016: every row ends in two empty fields the header does not name
    path = tmp_path / "yellow_tripdata_2016-07.csv"
    path.write_bytes("\r\n".join([HEADER, *(row + ",," for row in ROWS[:3]), ""]).encode())
    cfg = config(tmp_path)
    [staged] = staging.stage_csv(cfg, inputs.check_files(cfg, [path], [nyc_taxi.PICKUP]))
    table = pq.read_table(staged)
    assert table.num_rows == 3 and table["total_amount"].to_pylist() == [7.55, 14.58, 3.3]
    assert "__overflow" not in table.column_names


def test_a_staged_csv_keeps_the_month_of_a_dotted_file_name(tmp_path):
    path = tmp_path / "nyc.yellow.2019-01.csv"
    path.write_text("\n".join([HEADER, *ROWS[:2], "1,2018-12-31 23:50:00,2019-01-01 00:05:00,1,2.0,12.3"]) + "\n")
    cfg = config(tmp_path, "model.enabled=[pickup_outside_month]")
    [staged] = staging.stage_csv(cfg, inputs.check_files(cfg, [path], [nyc_taxi.PICKUP]))
    assert staged.name == "000_nyc.yellow.2019-01.parquet" and nyc_taxi.file_month(staged) == "2019-01"
    found = counts(*open_queries(cfg, [staged]))
    assert (found["pickup_outside_month"], found["unevaluable"], found["rows_flagged"]) == (1, 0, 1)


def test_staging_removes_what_an_earlier_run_staged_and_this_one_did_not(tmp_path):
    """The staged folder is recorded with its data version: it holds this run's copies only."""
    months = []
    for month in ("2019-01", "2019-02"):
        months.append(tmp_path / f"yellow_tripdata_{month}.csv")
        months[-1].write_text("\n".join([HEADER, *ROWS[:2]]) + "\n")
    cfg = config(tmp_path)
    both = staging.stage_csv(cfg, inputs.check_files(cfg, months, [nyc_taxi.PICKUP]))
    folder = inputs.input_dir(cfg) / "staged"
    assert sorted(folder.iterdir()) == sorted(both) and len(both) == 2
    killed, writing = folder / "007_yellow_tripdata_2019-05.parquet.partial", folder / f"{both[0].name}.partial"
    for partial in (killed, writing):
        partial.write_bytes(b"PAR1")
    os.utime(killed, (time.time() - staging.PARTIAL_ALIVE_S - 1,) * 2)
    (folder / "notes.txt").write_text("a user's file")
    [one] = staging.stage_csv(cfg, inputs.check_files(cfg, months[1:], [nyc_taxi.PICKUP]))
    # a killed run's copy goes; one written to just now may be another trial's, and a user's file is not ours
    assert sorted(p.name for p in folder.iterdir()) == sorted([one.name, writing.name, "notes.txt"])
    writing.unlink()
    (folder / "notes.txt").unlink()
    parquet = _parquet(tmp_path / "yellow_tripdata_2019-03.parquet", {"tpep_pickup_datetime": pa.array(["x"])})
    assert staging.stage_csv(cfg, inputs.check_files(cfg, [parquet], [nyc_taxi.PICKUP])) == [parquet]
    assert not folder.exists()  # a Parquet file is read in place: nothing staged is left


def _parquet(path: Path, columns: dict[str, pa.Array]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def _times(*texts: str) -> pa.Array:
    return pa.array([pa.scalar(t).cast(pa.timestamp("us")).as_py() for t in texts], pa.timestamp("us"))


def test_parquet_types_drifting_between_files_unify_to_the_declared_types(tmp_path):
    pickups = _times("2022-01-01 10:00:00", "2022-01-01 11:00:00")
    dropoffs = _times("2022-01-01 10:10:00", "2022-01-01 11:20:00")
    base = {"tpep_pickup_datetime": pickups, "tpep_dropoff_datetime": dropoffs}
    # 2022: int32 VendorID, int64 passenger_count, airport_fee; 2023: int64, double, Airport_fee
    first = _parquet(
        tmp_path / "yellow_tripdata_2022-01.parquet",
        {"VendorID": pa.array([1, 2], pa.int32()), **base, "passenger_count": pa.array([1, 2], pa.int64())}
        | {"airport_fee": pa.array([0.0, 1.25])},
    )
    second = _parquet(
        tmp_path / "yellow_tripdata_2023-01.parquet",
        {"VendorID": pa.array([2, 1], pa.int64()), **base, "passenger_count": pa.array([3.0, None])}
        | {"Airport_fee": pa.array([1.75, 0.0])},
    )
    third = tmp_path / "yellow_tripdata_2022-02.csv"
    third.write_text(f"{HEADER},Airport_fee\n1,2022-02-01 10:00:00,2022-02-01 10:05:00,1,1.0,6.3,1.25\n")
    engine, queries = open_queries(config(tmp_path), [first, second, third])
    columns = engine.source().columns
    assert (columns["VendorID"], columns["passenger_count"], columns["airport_fee"]) == ("BIGINT", "DOUBLE", "DOUBLE")
    assert [name for name in columns if name.lower() == "airport_fee"] == ["airport_fee"]

    def no_trial_id() -> str:  # in a trial, asking waits for the tracking writer: a local file needs no id
        raise AssertionError("the DuckDB engine asked for the trial id")

    written = engine.write_cleaned(queries.cleaned(), tmp_path / "cleaned", 5, trial_id=no_trial_id)
    cleaned = pq.read_table(written["path"])
    assert [name.lower() for name in cleaned.column_names].count("airport_fee") == 1
    assert sorted(cleaned["airport_fee"].to_pylist()) == [0.0, 0.0, 1.25, 1.25, 1.75]
    assert sorted(v for v in cleaned["passenger_count"].to_pylist() if v is not None) == [1.0, 1.0, 2.0, 3.0]
    assert str(cleaned.schema.field("VendorID").type) == "int64"


# 2009's header: other names, other case, text vendor and payment codes
HEADER_2009 = (
    "vendor_name,Trip_Pickup_DateTime,Trip_Dropoff_DateTime,Passenger_Count,Trip_Distance,Payment_Type,"
    "Fare_Amt,surcharge,mta_tax,Tip_Amt,Tolls_Amt,Total_Amt,Start_Lon"
)
ROWS_2009 = [
    ("CMT", "CASH", 1, 2),
    ("VTS", "Credit", 2, 1),
    ("DDS", "CRD", None, 1),  # Digital Dispatch Systems: no code today, so null (not a made-up 3)
    ("VTS", "Cas", 2, 2),
    ("CMT", "Cre", 1, 1),
    ("CMT", "No Charge", 1, 3),
    ("VTS", " Dispute ", 2, 4),
    ("VTS", "2", 2, 2),  # some 2010 files already hold the numbers
    ("XYZ", "bitcoin", None, None),  # no code known: null, never a guess
]


def test_2009_headers_text_codes_and_padded_parquet_names_map_to_todays_columns(tmp_path):
    old = tmp_path / "yellow_tripdata_2009-01.csv"
    lines = [HEADER_2009]
    for number, (vendor, payment, _, _) in enumerate(ROWS_2009):
        lines.append(
            f"{vendor},2009-01-0{number + 1} 10:00:00,2009-01-0{number + 1} 10:12:00,1,2.5,{payment},8,0,0,0,0,8,-73.99"
        )
    old.write_text("\n".join(lines) + "\n")
    padded = _parquet(
        tmp_path / "yellow_tripdata_2014-01.parquet",
        {
            " vendor_id ": pa.array(["CMT"]),
            " Pickup_DateTime": _times("2014-01-05 10:00:00"),
            "DROPOFF_DATETIME ": _times("2014-01-05 10:30:00"),
            " Payment_Type ": pa.array(["CSH"]),
            " Fare_Amt": pa.array([11.0]),
        },
    )
    cfg = config(tmp_path)
    engine, queries = open_queries(cfg, [old, padded])
    rows = engine.query("trips", queries._with() + "SELECT * FROM durations ORDER BY tpep_pickup_datetime")
    rows = rows.astype(object).where(rows.notna(), None)
    assert rows["VendorID"].tolist()[: len(ROWS_2009)] == [r[2] for r in ROWS_2009]
    assert rows["payment_type"].tolist()[: len(ROWS_2009)] == [r[3] for r in ROWS_2009]
    assert rows["duration_second"].tolist() == [720] * len(ROWS_2009) + [1800]
    assert rows["fare_amount"].tolist()[-1] == 11.0 and rows["VendorID"].tolist()[-1] == 1
    assert rows["payment_type"].tolist()[-1] == 2
    assert counts(engine, queries)["rows_flagged"] == 0
    # 2009's Start_Lon is today's pickup_longitude, a number (null where a file has no coordinates)
    assert rows["pickup_longitude"].tolist() == [-73.99] * len(ROWS_2009) + [None]
    assert "Start_Lon" not in rows.columns and engine.source().columns["pickup_longitude"] == "DOUBLE"


def test_values_padded_with_spaces_as_in_2014_files_convert(tmp_path):
    path = tmp_path / "yellow_tripdata_2014-01.csv"
    path.write_text(HEADER + "\n" + " 2 , 2014-01-05 10:00:00 ,2014-01-05 10:30:00  ,  1 ,\t2.5, 8.5 \n")
    cfg = config(tmp_path)
    [staged] = staging.stage_csv(cfg, inputs.check_files(cfg, [path], [nyc_taxi.PICKUP]))
    row = pq.read_table(staged).to_pylist()[0]
    assert (row["VendorID"], row["passenger_count"], row["trip_distance"], row["total_amount"]) == (2, 1.0, 2.5, 8.5)
    assert str(row["tpep_dropoff_datetime"] - row["tpep_pickup_datetime"]) == "0:30:00"


@pytest.mark.parametrize("staged", [True, False])
def test_text_codes_no_mapping_knows_are_counted_and_named_in_a_warning(tmp_path, capsys, staged):
    # 2009's text codes, two of them unknown (bitcoin twice, "Voucher" once) and DDS, which has no code today
    old = tmp_path / "yellow_tripdata_2009-01.csv"
    codes = [
        ("CMT", "CASH"),
        ("DDS", "bitcoin"),
        ("VTS", "Cre"),
        ("VTS", " Voucher "),
        ("CMT", "BITCOIN "),
        ("VTS", ""),
    ]
    old.write_text(
        "\n".join(
            [HEADER_2009]
            + [
                f"{v},2009-01-01 10:0{i}:00,2009-01-01 10:1{i}:00,1,2.5,{p},8,0,0,0,0,8,-73.99"
                for i, (v, p) in enumerate(codes)
            ]
        )
        + "\n"
    )
    # a 2009 Parquet file with text codes is read in place, not staged: its unknown codes are counted too
    parquet = _parquet(
        tmp_path / "yellow_tripdata_2009-02.parquet",
        {
            "vendor_name": pa.array(["CMT", "CMT"]),
            "Trip_Pickup_DateTime": _times("2009-02-01 10:00:00", "2009-02-01 11:00:00"),
            "Trip_Dropoff_DateTime": _times("2009-02-01 10:30:00", "2009-02-01 11:30:00"),
            "Payment_Type": pa.array(["CSH", "Bitcoin"]),
        },
    )
    cfg = config(tmp_path, f"preprocessing.stage_csv_as_parquet={staged}")
    unknown: dict = {}
    read = staging.stage_csv(cfg, inputs.check_files(cfg, [old, parquet], [nyc_taxi.PICKUP]), unknown)

    assert unknown == {"VendorID": {"DDS": 1}, "payment_type": {"bitcoin": 1, "BITCOIN": 1, "Voucher": 1, "Bitcoin": 1}}
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mlexp: warning:")]
    assert len(warnings) == 3
    [csv_payment] = [w for w in warnings if str(old) in w and ": payment_type: " in w]
    assert "3 rows hold text that is no code in preprocessing.value_codes.payment_type, read as null" in csv_payment
    assert all(f"{value!r} (1 row)" in csv_payment for value in ("bitcoin", "BITCOIN", "Voucher"))
    assert "'DDS' (1 row)" in next(w for w in warnings if str(old) in w and ": VendorID: " in w)
    assert "'Bitcoin' (1 row)" in next(w for w in warnings if str(parquet) in w)
    # the counts are not stored with the trips: a staged file has today's columns only
    assert read[0].suffix == (".parquet" if staged else ".csv")
    assert not staged or all(not name.startswith("__") for name in pq.read_schema(read[0]).names)
    engine, queries = open_queries(cfg, read)
    rows = engine.query("trips", queries._with() + "SELECT * FROM durations ORDER BY tpep_pickup_datetime")
    rows = rows.astype(object).where(rows.notna(), None)
    assert rows["payment_type"].tolist() == [2, None, 1, None, None, None, 2, None]


def test_rows_with_unknown_codes_are_logged_to_mlflow_summed_over_the_files(tmp_path, monkeypatch):
    from mlexp.tasks.anomaly_detection import stages
    from mlexp.tracking import TrackingStore, Trial

    monkeypatch.setenv("MLEXP_ROOT", str(tmp_path))
    csv = tmp_path / "yellow_tripdata_2009-01.csv"
    codes = [("CMT", "CASH"), ("DDS", "bitcoin"), ("VTS", " Voucher "), ("CMT", "Cre"), ("XYZ", "Nope ")]
    rows = [
        f"{v},2009-01-01 10:0{i}:00,2009-01-01 10:1{i}:00,1,2.5,{p},8,0,0,0,0,8,-73.99"
        for i, (v, p) in enumerate(codes)
    ]
    csv.write_text("\n".join([HEADER_2009, *rows]) + "\n")
    parquet = _parquet(
        tmp_path / "yellow_tripdata_2009-02.parquet",
        {
            "vendor_name": pa.array(["CMT", "VTS"]),
            "Trip_Pickup_DateTime": _times("2009-02-01 10:00:00", "2009-02-01 11:00:00"),
            "Trip_Dropoff_DateTime": _times("2009-02-01 10:30:00", "2009-02-01 11:30:00"),
            "Payment_Type": pa.array(["CSH", "Bitcoin"]),
        },
    )
    cfg = config(tmp_path, f"dataset.path={tmp_path}")
    store = TrackingStore.resolve(None, tmp_path)
    trial = Trial.open(store.client(), store.experiment_id("unknown_codes"), "unknown_codes", {})
    with trial.component("Pre-processing", "prepare") as tracker:
        stages.prepare(cfg, tracker)
    component = tracker.run_id
    trial.close()

    client = store.client()
    for run in (component, trial.run_id):  # the component's metric, and the trial's copy of its last value
        metrics = client.get_run(run).data.metrics
        # CSV: bitcoin, Voucher, Nope and XYZ; Parquet (read in place): Bitcoin
        assert metrics["rows_unknown_code_payment_type"] == 4
        assert metrics["rows_unknown_code_VendorID"] == 2
    assert inputs.read_manifest(cfg)["files"][1] == parquet
