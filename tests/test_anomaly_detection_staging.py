"""Staging a CSV file: a strict typed reader first (fast), the text reader when it refuses the file.

The typed reader must give exactly the text reader's values or refuse the file: these tests stage the same
file both ways and compare, check that the typed reader really ran (or really refused), and that a refused
file still gets the text reader's error naming the file and the line.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from anomaly_detection_helpers import config
from mlexp.data import nyc_taxi
from mlexp.errors import DataError
from mlexp.tasks.anomaly_detection import inputs, staging

HEADER = (
    "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,store_and_fwd_flag,"
    "payment_type,total_amount,pickup_longitude,note"
)
# values a cast reads in more than one spelling (1.0 and 1e0 as a whole number, padded, signed, quoted), empty
# fields, an impossible month and NYC Open Data's timestamp format (both read as text, then converted)
ODD_ROWS = [
    "1,2019-01-01 00:46:40,2019-01-01 00:53:20,1,1.5,N,1,7.55,-73.99,a",
    '2.0,2019-01-01 00:59:47,2019-01-01 01:18:59, 2 ,+2.6,,"2",1e1,,',
    '1e0,2019-13-01 00:00:00,2019-01-02 10:00:00,00012,.5,Y,1,nan,-74,"quoted, with a comma"',
    "2,01/03/2019 08:00:00 AM,01/03/2019 09:30:00 AM,,1_000,N,,-3.5,1.25e1,",
]


class Spy:
    """Counts the stagings read by the typed reader (its strict read_csv), how many of them completed, and every
    staging write (either reader)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tried = self.done = self.writes = 0
        write = staging.write_parquet

        def counted(connection, sql, *args, **kwargs):
            typed = "strict_mode = true" in sql
            self.writes += 1
            self.tried += typed
            rows = write(connection, sql, *args, **kwargs)
            self.done += typed
            return rows

        monkeypatch.setattr(staging, "write_parquet", counted)


def _stage(tmp_path: Path, path: Path, *overrides: str) -> Path:
    cfg = config(tmp_path, *overrides)
    [staged] = staging.stage_csv(cfg, inputs.check_files(cfg, [path], [nyc_taxi.PICKUP]))
    return staged


def _as_text(tmp_path: Path, path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The same file staged by the text reader alone, into a folder of its own."""
    with monkeypatch.context() as patch:
        patch.setattr(staging, "typed_csv_reader", lambda *args: None)
        return _stage(tmp_path / "as_text", path)


def test_a_strict_csv_is_staged_by_the_typed_reader_with_the_text_readers_values(tmp_path, monkeypatch):
    path = tmp_path / "yellow_tripdata_2019-01.csv"
    path.write_bytes("\r\n".join([HEADER, "", *ODD_ROWS, ""]).encode())
    spy = Spy(monkeypatch)
    typed = pq.read_table(_stage(tmp_path, path))
    assert (spy.tried, spy.done) == (1, 1)
    text = pq.read_table(_as_text(tmp_path, path, monkeypatch))
    assert spy.tried == 1  # the text reader's staging did not use it
    # (pandas' equals: NaN, read from "nan", equals NaN)
    assert typed.schema == text.schema and typed.to_pandas().equals(text.to_pandas())
    rows = typed.to_pydict()
    assert rows["VendorID"] == [1, 2, 1, 2]
    assert rows["passenger_count"] == [1.0, 2.0, 12.0, None]
    assert rows["trip_distance"] == [1.5, 2.6, 0.5, 1000.0]
    assert rows["payment_type"] == [1, 2, 1, None]
    assert rows["total_amount"][1] == 10.0 and rows["total_amount"][2] != rows["total_amount"][2]
    assert rows["total_amount"][3] == -3.5
    assert rows["store_and_fwd_flag"] == ["N", None, "Y", "N"]
    assert rows["pickup_longitude"] == [-73.99, None, -74.0, 12.5]
    assert rows["note"] == ["a", None, "quoted, with a comma", None]
    assert rows[nyc_taxi.PICKUP][2] is None and str(rows[nyc_taxi.PICKUP][3]) == "2019-01-03 08:00:00"


# files the typed reader refuses, and what the text reader reads there
REFUSED = {
    # 2009's text codes: the typed reader parses payment_type as a number
    "text_code": ("1,2019-01-01 10:00:00,2019-01-01 10:10:00,1,2.5,N,CASH,8,,", "payment_type", 2),
    # a value no cast reads: null, as the text reader reads it
    "bad_number": ("1,2019-01-01 10:00:00,2019-01-01 10:10:00,1,2.5,N,1,8 USD,,", "total_amount", None),
    "spaces_only": ("1,2019-01-01 10:00:00,2019-01-01 10:10:00,  ,2.5,N,1,8,,", "passenger_count", None),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_file_the_typed_reader_refuses_is_staged_by_the_text_reader(tmp_path, monkeypatch, case):
    row, column, value = REFUSED[case]
    path = tmp_path / "yellow_tripdata_2019-01.csv"
    path.write_text("\n".join([HEADER, ODD_ROWS[0], row]) + "\n")
    spy = Spy(monkeypatch)
    staged = pq.read_table(_stage(tmp_path, path))
    assert (spy.tried, spy.done) == (1, 0)
    assert staged.num_rows == 2 and staged[column].to_pylist() == [staged[column][0].as_py(), value]
    assert staged.to_pandas().equals(pq.read_table(_as_text(tmp_path, path, monkeypatch)).to_pandas())
    # no partial file of the refused attempt is left behind
    assert [p.name for p in staged_folder(tmp_path).iterdir()] == ["000_yellow_tripdata_2019-01.parquet"]


def staged_folder(tmp_path: Path) -> Path:
    return tmp_path / "input" / "staged"


SAVED_AS = {
    "crlf_blank_line": lambda rows: "\r\n".join([HEADER, "", *rows, ""]).encode(),
    "lf_no_final_newline": lambda rows: "\n".join([HEADER, *rows]).encode(),
    "mixed_line_endings": lambda rows: (
        HEADER + "\n" + "".join(r + ("\r\n" if i % 2 else "\n") for i, r in enumerate(rows))
    ).encode(),
    "utf8_bom": lambda rows: b"\xef\xbb\xbf" + "\n".join([HEADER, *rows, ""]).encode(),
    "gzip": lambda rows: gzip.compress("\r\n".join([HEADER, *rows]).encode()),
}


@pytest.mark.parametrize("saved_as", list(SAVED_AS))
def test_a_csv_saved_any_way_is_staged_with_the_text_readers_values(tmp_path, monkeypatch, saved_as):
    path = tmp_path / ("yellow_tripdata_2019-01.csv" + (".gz" if saved_as == "gzip" else ""))
    path.write_bytes(SAVED_AS[saved_as](ODD_ROWS))
    spy = Spy(monkeypatch)
    staged = pq.read_table(_stage(tmp_path, path))
    # (mixed line endings: whichever reader read them)
    assert spy.tried == 1 and (spy.done == 1 or saved_as == "mixed_line_endings")
    assert staged.num_rows == len(ODD_ROWS) and staged["VendorID"].to_pylist() == [1, 2, 1, 2]
    assert staged.to_pandas().equals(pq.read_table(_as_text(tmp_path, path, monkeypatch)).to_pandas())


@pytest.mark.parametrize("bad", ["too_few", "too_many"])
def test_a_row_of_the_wrong_length_is_refused_by_the_typed_reader_and_named_by_the_text_reader(
    tmp_path, monkeypatch, bad
):
    line = ODD_ROWS[0].rsplit(",", 3)[0] if bad == "too_few" else ODD_ROWS[0] + ",surplus"
    path = tmp_path / "yellow_tripdata_2019-01.csv"
    path.write_bytes("\r\n".join([HEADER, "", ODD_ROWS[0], line, ODD_ROWS[2]]).encode())
    spy = Spy(monkeypatch)
    with pytest.raises(DataError) as error:
        _stage(tmp_path, path)
    assert (spy.tried, spy.done) == (1, 0)
    found = 7 if bad == "too_few" else 11
    assert str(error.value).startswith(
        f"{path}: line 4: expected 10 comma-separated fields as in the header, found {found}: {line!r}"
    )
    assert not any(staged_folder(tmp_path).iterdir())


def test_value_codes_that_are_numbers_keep_their_column_text(tmp_path, monkeypatch):
    # a code written as a number (here "2" for CASH's code 1) must win over reading 2 as the number 2
    path = tmp_path / "yellow_tripdata_2019-01.csv"
    path.write_text("\n".join([HEADER, *ODD_ROWS]) + "\n")
    cfg = config(tmp_path, "+preprocessing.value_codes.payment_type.2=1")
    file = inputs.check_files(cfg, [path], [nyc_taxi.PICKUP])[0]
    connection = staging.connect("1GB", 1)
    _, types = staging.typed_csv_reader(file, inputs.aliases(cfg), inputs.value_codes(cfg), connection)
    assert types["payment_type"] == "VARCHAR" and types["VendorID"] == "BIGINT"
    assert types[nyc_taxi.PICKUP] == "VARCHAR" and types["note"] == "VARCHAR"
    assert _stage(tmp_path, path, "+preprocessing.value_codes.payment_type.2=1") and pq.read_table(
        staged_folder(tmp_path) / "000_yellow_tripdata_2019-01.parquet"
    )["payment_type"].to_pylist() == [1, 1, 1, None]


class _Writer:
    """The tracking writer, as much as the prepare stage uses: the datasets it is given."""

    def __init__(self) -> None:
        self.datasets: list[tuple[str, str]] = []

    def log_dataset(self, run: str, name: str, digest: str, source: str, media_type: str) -> None:
        self.datasets.append((name, digest))


def test_each_file_is_hashed_once_the_input_beside_staging_and_the_staged_copy_as_it_is_written(tmp_path, monkeypatch):
    import hashlib
    import threading

    from mlexp.tasks.anomaly_detection import stages
    from mlexp.tracking import Tracker, digests

    monkeypatch.setenv("MLEXP_ROOT", str(tmp_path))
    hashed: list[list] = []  # per MD5 computed: the thread that started it and the bytes it was fed

    class Counted:
        def __init__(self, *args):
            self.md5 = hashlib.md5(*args)
            hashed.append([threading.current_thread().name, sum(len(a) for a in args)])
            self.fed = hashed[-1]

        def update(self, data):
            self.fed[1] += len(data)
            self.md5.update(data)

        def hexdigest(self):
            return self.md5.hexdigest()

    class Hashlib:
        sha256 = staticmethod(hashlib.sha256)
        md5 = Counted

    monkeypatch.setattr(digests, "hashlib", Hashlib)
    path = tmp_path / "yellow_tripdata_2019-01.csv"
    path.write_text("\n".join([HEADER, *ODD_ROWS]) + "\n")
    writer = _Writer()
    cfg = config(tmp_path, f"dataset.path={path}")
    stages.prepare(cfg, Tracker(writer, "run"))  # type: ignore[arg-type]
    assert writer.datasets == [("trips", hashlib.md5(path.read_bytes()).hexdigest())]
    staged = inputs.input_dir(cfg) / "staged"
    [copy] = staged.iterdir()
    # the input by the prefetch thread; the staged copy as DigestingFile wrote it (never read back); then the
    # folder's list of files, as DVC hashes a folder
    by_size = {size: thread for thread, size in hashed}
    assert len(hashed) == 3 and by_size[path.stat().st_size] == "mlexp-digest-prefetch"
    assert copy.stat().st_size in by_size
    # asked again, the folder's digest hashes its list anew (written just now), never the staged copy
    assert digests.file_digest(staged).endswith(".dir") and len(hashed) == 4
    assert [size for _, size in hashed].count(copy.stat().st_size) == 1


def test_a_full_disk_is_reported_as_the_disks_once_never_as_a_fault_of_the_csv(tmp_path, monkeypatch):
    from mlexp.tasks.anomaly_detection import parquet_output
    from mlexp.tracking import digests

    path = tmp_path / "yellow_tripdata_2019-01.csv"
    path.write_bytes("\r\n".join([HEADER, "", *ODD_ROWS, ""]).encode())
    spy = Spy(monkeypatch)
    # every staged copy lands on a device that is always full
    monkeypatch.setattr(parquet_output, "DigestingFile", lambda _partial: digests.DigestingFile(Path("/dev/full")))
    with pytest.raises(DataError) as failed:
        _stage(tmp_path, path)
    message = str(failed.value)
    assert "No space left on device" in message and "free space" in message and str(path) not in message
    assert (spy.tried, spy.done, spy.writes) == (1, 0, 1)  # not read a second time, as text
    assert not list((inputs.input_dir(config(tmp_path)) / "staged").glob("*.partial"))
