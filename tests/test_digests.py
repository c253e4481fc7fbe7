"""Data versions computed once: ahead of a trial's first stage (prefetch) and as a file is written (DigestingFile)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import cli_env
from mlexp import tasks
from mlexp.tracking import digests
from wrapped_cli import wrapped_cli


@pytest.fixture()
def fed(monkeypatch: pytest.MonkeyPatch) -> list[list]:
    """Per MD5 this process computes: the thread that started it and how many bytes it was fed."""
    hashed: list[list] = []

    class Counted:
        def __init__(self, *args: bytes) -> None:
            self.md5 = hashlib.md5(*args)
            hashed.append([threading.current_thread().name, sum(len(a) for a in args)])
            self.record = hashed[-1]

        def update(self, data: bytes) -> None:
            self.record[1] += len(data)
            self.md5.update(data)

        def hexdigest(self) -> str:
            return self.md5.hexdigest()

    class Hashlib:
        sha256 = staticmethod(hashlib.sha256)
        md5 = Counted

    monkeypatch.setattr(digests, "hashlib", Hashlib)
    monkeypatch.setattr(digests, "_KNOWN", {})
    monkeypatch.setattr(digests, "_PENDING", {})
    return hashed


def test_a_prefetched_digest_is_used_and_a_file_changed_since_is_hashed_again(tmp_path, fed):
    trips = tmp_path / "trips.csv"
    trips.write_bytes(b"x" * 3_000_000)
    digests.prefetch([trips, tmp_path / "missing.csv"])  # a missing file is for the stage to report
    assert digests.file_digest(trips, tmp_path / "cache") == hashlib.md5(trips.read_bytes()).hexdigest()
    assert fed == [["mlexp-digest-prefetch", 3_000_000]]  # read once, by the prefetch thread

    trips.write_bytes(b"y" * 3_000_000)  # the same size, new times: the prefetched digest no longer applies
    assert digests.file_digest(trips, tmp_path / "cache") == hashlib.md5(trips.read_bytes()).hexdigest()
    assert fed[1] == ["MainThread", 3_000_000]


def test_a_file_hashed_as_it_is_written_is_never_read_back(tmp_path, fed):
    path = tmp_path / "cleaned.parquet"
    with digests.DigestingFile(path) as sink:
        for _ in range(300):  # small writes, as a Parquet writer's page headers, and big ones
            sink.write(b"h" * 7)
            sink.write(memoryview(b"p" * 40_000))
        assert sink.tell() == 300 * 40_007
    assert sink.hexdigest() == hashlib.md5(path.read_bytes()).hexdigest()
    digests.remember(path, sink.hexdigest())
    assert digests.file_digest(path, tmp_path / "cache") == sink.hexdigest()
    assert [size for _, size in fed] == [300 * 40_007]  # the writer's MD5 only


def test_a_write_that_fails_is_raised_to_the_writer_and_leaves_no_digest(tmp_path):
    full = Path("/dev/full")  # every write fails: no space left on device
    sink = digests.DigestingFile(full)
    with pytest.raises(OSError, match="No space left"):  # by a later write
        for _ in range(8):
            sink.write(b"x" * digests.CHUNK_BYTES)
    with pytest.raises(OSError, match="No space left"):  # and by close, for a writer that went on regardless
        sink.close()
    with pytest.raises(ValueError, match="failed"):
        sink.hexdigest()
    with pytest.raises(ValueError, match="closed"):
        sink.write(b"x")
    last = digests.DigestingFile(full)
    last.write(b"x")
    with pytest.raises(OSError, match="No space left"):  # by close, when no write came after (the last bytes
        last.close()  # are flushed there)
    last.close()
    with pytest.raises(ValueError, match="failed"):
        last.hexdigest()
    # inside `with`, an exception already on its way out is the one the writer sees
    with pytest.raises(KeyboardInterrupt), digests.DigestingFile(full) as interrupted:
        interrupted.write(b"x" * digests.CHUNK_BYTES)
        raise KeyboardInterrupt
    with pytest.raises(ValueError, match="failed"):
        interrupted.hexdigest()
    still_open = digests.DigestingFile(tmp_path / "open.bin")
    try:
        with pytest.raises(ValueError, match="still being written"):
            still_open.hexdigest()
    finally:
        still_open.close()


def test_the_command_starts_hashing_the_dataset_only_when_the_first_stage_runs(tmp_path, fed):
    trips = tmp_path / "yellow_tripdata_2019-01.csv"
    trips.write_bytes(b"VendorID\n1\n")
    (tmp_path / "notes.txt").write_bytes(b"not a trip file")
    task = tasks.get("anomaly_detection")
    for stage, hashed in (("query", []), ("prepare", [trips]), (None, [trips])):
        digests._PENDING.clear()
        task.start_hashing_inputs(OmegaConf.create({"stage": stage, "dataset": {"path": str(tmp_path)}}))
        assert sorted(Path(path) for path in digests._PENDING) == hashed  # the folder's trip files only
    digests._PENDING.clear()
    task.start_hashing_inputs(OmegaConf.create({"stage": None, "dataset": {"path": str(tmp_path / "no_*.csv")}}))
    assert not digests._PENDING  # a wrong path: the prepare stage reports it
    remote = {"stage": None, "dataset": {"path": str(trips)}, "compute": {"target": "sagemaker"}}
    task.start_hashing_inputs(OmegaConf.create(remote))
    assert not digests._PENDING  # a training job runs the stages, and hashes what it reads there


# the CLI with the prepare stage wrapped: which files were being hashed when it was entered
PENDING_AT_PREPARE = wrapped_cli(
    "mlexp.tasks.anomaly_detection.stages",
    "prepare",
    '"\\n".join(sorted(digests._PENDING))',
    imports="from mlexp.tracking import digests",
)


def test_a_trials_input_is_being_hashed_before_its_first_stage_starts(tmp_project):
    trips = tmp_project / "yellow_tripdata_2019-01.csv"
    trips.write_text("VendorID,tpep_pickup_datetime,tpep_dropoff_datetime\n1,2019-01-01 00:00:00,2019-01-01 00:10:00\n")
    noted = tmp_project / "pending_at_prepare.txt"
    command = [sys.executable, "-c", PENDING_AT_PREPARE, str(noted), "task=anomaly_detection", f"dataset.path={trips}"]
    done = subprocess.run(command, cwd=tmp_project, env=cli_env(tmp_project), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert noted.read_text().splitlines() == [str(trips.resolve())]


def test_the_trip_suffixes_the_task_declares_are_the_loaders(tmp_path):
    from mlexp.data import nyc_taxi

    assert tasks.get("anomaly_detection").dataset_suffixes == nyc_taxi.SUFFIXES
