"""The TLC trip generator (seeded, the post's anomalies) and the loader's checks of real-format files."""

from __future__ import annotations

import gzip

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from conftest import run_cli, trials_of
from mlexp.data import nyc_taxi, nyc_taxi_synthetic
from mlexp.errors import DataError

RATES = {
    "meter_left_on": 0.002,
    "multi_day": 0.001,
    "zero_duration": 0.004,
    "negative_duration": 0.001,
    "null_timestamp": 0.001,
    "unparsable_timestamp": 0.001,
    "zero_distance": 0.01,
    "pickup_outside_month": 0.001,
    "negative_fare": 0.002,
    "implausible_speed": 0.001,
}
ALIASES = {"tpep_pickup_datetime": ["pickup_datetime"], "tpep_dropoff_datetime": ["dropoff_datetime"]}


def test_generator_is_deterministic_and_places_exact_anomaly_counts():
    first = nyc_taxi_synthetic.generate(20_000, 7, "2019-01", RATES)
    again = nyc_taxi_synthetic.generate(20_000, 7, "2019-01", RATES)
    other = nyc_taxi_synthetic.generate(20_000, 8, "2019-01", RATES)
    assert first.table.equals(again.table) and first.counts == again.counts
    assert not first.table.equals(other.table)
    assert first.counts == {k: int(v * 20_000) for k, v in RATES.items()}

    frame = first.table.to_pandas()
    assert list(frame.columns) == list(nyc_taxi.COLUMNS)
    seconds = (frame["tpep_dropoff_datetime"] - frame["tpep_pickup_datetime"]).dt.total_seconds()
    assert seconds.isna().sum() == first.counts["null_timestamp"] + first.counts["unparsable_timestamp"]
    assert (seconds == 0).sum() == first.counts["zero_duration"]
    assert (seconds < 0).sum() == first.counts["negative_duration"]
    assert (seconds >= 86400).sum() == first.counts["multi_day"]
    # normal trips stop at 4 hours; meters left on run 1 to 24 hours
    assert (seconds > 4 * 3600).sum() - (seconds >= 86400).sum() <= first.counts["meter_left_on"]
    assert (seconds > 4 * 3600).sum() - (seconds >= 86400).sum() > 0.7 * first.counts["meter_left_on"]
    assert (frame["trip_distance"] <= 0).sum() == first.counts["zero_distance"]
    normal = seconds[(seconds > 0) & (seconds < 86400)]
    assert 500 < normal.median() < 800  # about 11 minutes, as January 2019's trips
    # what practitioners' rules look for (the generator's kinds added for them; every other row is as before)
    pickups = frame["tpep_pickup_datetime"].dropna()
    outside = (pickups < "2019-01-01") | (pickups >= "2019-02-01")
    assert outside.sum() == first.counts["pickup_outside_month"]
    refunds = frame["mta_tax"] < 0  # every amount negated, as TLC records a refund
    assert refunds.sum() == first.counts["negative_fare"]
    assert (frame.loc[refunds, "fare_amount"] < 0).all() and (frame.loc[refunds, "total_amount"] < 0).all()
    speed = frame["trip_distance"] * 3600 / seconds.where(seconds > 0)
    assert (speed > 100).sum() == (speed > 60).sum() == first.counts["implausible_speed"]


def test_formats_hold_the_same_trips_and_csv_keeps_unparsable_text(tmp_path):
    month = nyc_taxi_synthetic.generate(2_000, 1, "2019-02", RATES)
    parquet = nyc_taxi_synthetic.write(month, tmp_path / "m.parquet", "parquet")
    csv = nyc_taxi_synthetic.write(month, tmp_path / "m.csv", "csv")
    assert str(pq.read_schema(parquet).field("tpep_pickup_datetime").type) == "timestamp[us]"
    text = pa_csv.read_csv(csv, convert_options=pa_csv.ConvertOptions(strings_can_be_null=True)).to_pandas()
    for column in ("tpep_pickup_datetime", "tpep_dropoff_datetime"):
        parsed = pd.to_datetime(text[column], format="%Y-%m-%d %H:%M:%S", errors="coerce")
        text[column + "_unparsable"] = text[column].notna() & parsed.isna()
    unparsable = text["tpep_pickup_datetime_unparsable"] | text["tpep_dropoff_datetime_unparsable"]
    assert unparsable.sum() == month.counts["unparsable_timestamp"] == 2
    assert text["tpep_pickup_datetime"].isna().sum() + text["tpep_dropoff_datetime"].isna().sum() == 2
    assert np.allclose(text["total_amount"], pq.read_table(parquet)["total_amount"].to_numpy())
    assert list(tmp_path.glob("*.partial")) == []
    # as TLC's 2019 CSV files: CRLF line endings, a blank line after the header, nothing quoted
    raw = csv.read_bytes()
    assert raw.startswith(b"VendorID,tpep_pickup_datetime,") and b",airport_fee\r\n\r\n" in raw[:300]
    assert raw.count(b"\r\n") == raw.count(b"\n") == 2_000 + 2 and b'"' not in raw


def test_loader_maps_older_column_names_and_keeps_extra_ones(tmp_path):
    path = tmp_path / "yellow_tripdata_2014-01.csv"
    path.write_text(" vendor_id, pickup_datetime, dropoff_datetime, trip_distance, airport_fee\n1,a,b,1.0,0\n")
    file = nyc_taxi.inspect(path, duckdb.connect())
    matched = nyc_taxi.match_columns(file.columns, ALIASES)
    assert matched["tpep_pickup_datetime"] == [" pickup_datetime"]  # the name as written, matched ignoring spaces
    assert matched["airport_fee"] == [" airport_fee"]
    assert "VendorID" not in matched  # vendor_id is not in these aliases
    assert nyc_taxi.extra_columns(file.columns, ALIASES) == [" vendor_id"]
    nyc_taxi.check_columns(file, [nyc_taxi.PICKUP, nyc_taxi.DROPOFF], ALIASES)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"PAR1 this is not parquet", "not a Parquet file (no PAR1 marker at its end): it starts as one but its end"),
        (b"VendorID,tpep_pickup_datetime,trip_distance\n1,2019-01-01 00:00:00,1\n", "no column tpep_dropoff_datetime"),
    ],
)
def test_malformed_files_fail_naming_file_and_problem(tmp_path, content, message):
    path = tmp_path / "yellow_tripdata_2019-01.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        file = nyc_taxi.inspect(path, duckdb.connect())
        nyc_taxi.check_columns(file, [nyc_taxi.PICKUP, nyc_taxi.DROPOFF], ALIASES)
    assert str(path) in str(error.value) and message in str(error.value)
    if "no column" in message:
        assert "looked for tpep_dropoff_datetime, dropoff_datetime" in str(error.value)
        assert "found: VendorID, tpep_pickup_datetime, trip_distance" in str(error.value)


TRIPS_CSV = b"VendorID,tpep_pickup_datetime,tpep_dropoff_datetime\r\n1,2019-01-01 00:00:00,2019-01-01 00:10:00\r\n"


@pytest.mark.parametrize(
    ("content", "looks"),
    [
        (TRIPS_CSV, "it is text, a CSV by its first line 'VendorID,tpep_pickup_datetime,tpep_dropoff_datetime'; "
         "rename it to .csv, or give the real Parquet file"),
        (b"\xef\xbb\xbftrips\n", "it is text, its first line 'trips'; rename it to .csv, or give the real Parquet"),
        (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code></Error>',
         "it is a web page or XML, as a failed download saves one (first line '<?xml version=\"1.0\" encoding="
         "\"UTF-8\"?>'); download the file again"),
        (gzip.compress(TRIPS_CSV), "it is gzip-compressed; if it holds a CSV, rename it to .csv.gz"),
        (b"PK\x03\x04" + bytes(40), "it is a ZIP archive; unzip it and give the Parquet file inside"),
        (bytes(range(256)), "(no PAR1 marker at its start), nor text; give the real Parquet file"),
    ],
    ids=["csv", "text", "error_page", "gzip", "zip", "binary"],
)  # fmt: skip
def test_a_file_named_parquet_that_is_not_says_what_it_looks_like_and_the_fix(tmp_path, content, looks):
    path = tmp_path / "yellow_tripdata_2019-01.parquet"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        nyc_taxi.inspect(path, duckdb.connect())
    message = str(error.value)
    assert message.startswith(f"{path}: not a Parquet file (no PAR1 marker at its start)") and looks in message
    assert "magic" not in message and "\n" not in message


def test_a_parquet_file_named_csv_is_read_as_parquet(tmp_path):
    path = tmp_path / "yellow_tripdata_2019-01.csv"
    pq.write_table(pa_csv.read_csv(pa.BufferReader(TRIPS_CSV)), path)
    file = nyc_taxi.inspect(path, duckdb.connect())
    assert file.format == "parquet" and file.columns["tpep_pickup_datetime"] == "TIMESTAMP"


def test_a_trial_on_a_csv_named_parquet_fails_in_one_line(tmp_project):
    path = tmp_project / "yellow_tripdata_2019-01.parquet"
    path.write_bytes(TRIPS_CSV)
    done = run_cli(tmp_project, "task=anomaly_detection", f"dataset.path={path}", check=False)
    [failed] = trials_of(tmp_project, experiment="anomaly_detection")
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        f"mlexp: error: stage 'prepare' failed: {path}: not a Parquet file (no PAR1 marker at its start): it is "
        "text, a CSV by its first line 'VendorID,tpep_pickup_datetime,tpep_dropoff_datetime'; rename it to .csv, "
        f"or give the real Parquet file (trial {failed.run_id} marked FAILED)"
    ]
    assert failed.status == "FAILED"


def _gzipped_parquet(path):
    """TRIPS_CSV as a Parquet file compressed whole with gzip, as a download saved unpacked."""
    packed = pa.BufferOutputStream()
    pq.write_table(pa_csv.read_csv(pa.BufferReader(TRIPS_CSV)), packed)
    path.write_bytes(gzip.compress(packed.getvalue().to_pybytes()))
    return path


@pytest.mark.parametrize(
    ("name", "fix"),
    [
        ("yellow_tripdata_2024-01.parquet.gz",
         "unpack it with `gunzip {path}`, then point dataset.path at {folder}/yellow_tripdata_2024-01.parquet"),
        ("yellow_tripdata_2024-01.parquet", "unpack it in place with `mv {path} {path}.gz && gunzip {path}.gz`"),
    ],
    ids=["named_parquet_gz", "named_parquet"],
)  # fmt: skip
def test_a_gzipped_parquet_file_fails_saying_so_and_how_to_unpack_it(tmp_path, name, fix):
    path = _gzipped_parquet(tmp_path / name)
    with pytest.raises(DataError) as error:
        nyc_taxi.inspect(path, duckdb.connect())
    assert str(error.value) == (
        f"{path}: a gzip-compressed Parquet file, which DuckDB reads only unpacked; "
        + fix.format(path=path, folder=tmp_path)
    )


def test_a_trial_on_a_gzipped_parquet_file_fails_in_one_line(tmp_project):
    path = _gzipped_parquet(tmp_project / "yellow_tripdata_2024-01.parquet.gz")
    done = run_cli(tmp_project, "task=anomaly_detection", f"dataset.path={path}", check=False)
    [failed] = trials_of(tmp_project, experiment="anomaly_detection")
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        f"mlexp: error: stage 'prepare' failed: {path}: a gzip-compressed Parquet file, which DuckDB reads only "
        f"unpacked; unpack it with `gunzip {path}`, then point dataset.path at {path.with_suffix('')} "
        f"(trial {failed.run_id} marked FAILED)"
    ]
    assert failed.status == "FAILED"


def test_globs_and_folders_of_monthly_files(tmp_path):
    for month in ("2019-01", "2019-02"):
        (tmp_path / f"yellow_tripdata_{month}.parquet").write_bytes(b"PAR1")
    (tmp_path / "notes.txt").write_text("not data")
    assert [p.name for p in nyc_taxi.locate(tmp_path)] == [
        "yellow_tripdata_2019-01.parquet",
        "yellow_tripdata_2019-02.parquet",
    ]
    assert len(nyc_taxi.locate(str(tmp_path / "yellow_tripdata_2019-*.parquet"))) == 2
    with pytest.raises(DataError, match="matches no file"):
        nyc_taxi.locate(str(tmp_path / "yellow_tripdata_2020-*.parquet"))


def test_file_digests_are_cached_by_file_identity_and_recomputed_when_a_file_changes(tmp_path, monkeypatch):
    """The MD5 recorded as data_version is read back from .mlexp/file_digests while the file stays as it was."""
    import hashlib
    import os
    import time

    from mlexp.tracking import digests

    monkeypatch.setattr(digests, "_KNOWN", {})  # this process's digests, kept besides the cache
    cache = tmp_path / "digests"
    trips = tmp_path / "yellow_tripdata_2019-01.csv"
    trips.write_bytes(b"VendorID,fare\n1,7.5\n")
    # just written: not cached (a second write in the same clock tick could keep the size and times)
    assert digests.file_digest(trips, cache) == hashlib.md5(trips.read_bytes()).hexdigest()
    assert not cache.exists()

    monkeypatch.setattr(digests, "DIGEST_SETTLE_S", 0)
    assert digests.file_digest(trips, cache) == hashlib.md5(b"VendorID,fare\n1,7.5\n").hexdigest()
    [entry] = cache.iterdir()
    entry.write_text("f" * 32)  # what the cache holds is what a new process returns: the file is not read again
    digests._KNOWN.clear()
    assert digests.file_digest(trips, cache) == "f" * 32

    # the same size and the same modification time put back: the change time still differs (ticks apart)
    stat = trips.stat()
    time.sleep(0.05)
    trips.write_bytes(b"VendorID,fare\n2,7.5\n")
    os.utime(trips, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert digests.file_digest(trips, cache) == hashlib.md5(b"VendorID,fare\n2,7.5\n").hexdigest()
    with trips.open("ab") as handle:
        handle.write(b"1,9.0\n")
    assert digests.file_digest(trips, cache) == hashlib.md5(b"VendorID,fare\n2,7.5\n1,9.0\n").hexdigest()

    # a folder (the staged trips): a file changed or added inside it gives a new digest
    folder = tmp_path / "staged"
    folder.mkdir()
    (folder / "000_a.parquet").write_bytes(b"a")
    first = digests.file_digest(folder, cache)
    assert first == digests.file_digest(folder, cache) and first.endswith(".dir")
    (folder / "001_b.parquet").write_bytes(b"b")
    assert digests.file_digest(folder, cache) not in (first, "f" * 32)


def test_a_folders_data_version_is_the_hash_dvc_records_for_it(tmp_path, monkeypatch):
    """`dvc add` of the same folder (a real DVC repository) writes the same `<md5>.dir` as the trial records,
    also when a file's MD5 came from its writer (DigestingFile) rather than from reading it."""
    import hashlib
    import subprocess
    import sys

    import pyarrow as pa
    import yaml

    from mlexp.tracking import digests

    monkeypatch.setattr(digests, "_KNOWN", {})
    folder = tmp_path / "staged"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.csv").write_text("VendorID,fare\n1,7.5\n")
    (folder / "sub" / "a.txt").write_bytes(b"\x00\x01 not text\r\n")
    table = pa.table({"fare": [7.5, 12.0]})
    with digests.DigestingFile(folder / "000_a.parquet") as sink, pq.ParquetWriter(sink, table.schema) as writer:
        writer.write_table(table)
    digests.remember(folder / "000_a.parquet", sink.hexdigest())
    ours = digests.file_digest(folder, tmp_path / "cache")

    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "add", "-q", "staged"], cwd=tmp_path, check=True)
    recorded = yaml.safe_load((tmp_path / "staged.dvc").read_text())["outs"][0]["md5"]
    assert ours == recorded
    assert sink.hexdigest() == hashlib.md5((folder / "000_a.parquet").read_bytes()).hexdigest()
