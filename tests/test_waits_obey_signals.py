"""A long wait in the main thread obeys a Ctrl-C that Linux delivered to another thread of the process.

Python runs the handler only in the main thread, once it wakes: a main thread in one long select() or sleep() held
the press until the wait ended (a trial waiting up to 10 minutes for the tracking writer, a SageMaker poll's 30 s, a
large input's MD5 being prefetched, DuckDB computing the next batch of a Parquet file).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

# {wait} blocks the main thread for 60 s unless it obeys the press a helper thread sends itself after 0.5 s
SCRIPT = """
import json, signal, threading, time

signal.signal(signal.SIGINT, signal.default_int_handler)  # as a command started from a terminal has it
{setup}

def press():
    time.sleep(0.5)
    signal.pthread_kill(threading.get_ident(), signal.SIGINT)

threading.Thread(target=press, daemon=True).start()
started = time.monotonic()
try:
    {wait}
    outcome = "returned"
except KeyboardInterrupt:
    outcome = "KeyboardInterrupt"
except Exception as error:
    outcome = repr(error)
print(json.dumps({{"outcome": outcome, "elapsed": time.monotonic() - started}}))
"""

WRITER_ANSWER = """
import socket
from mlexp.tracking.journal_writer import WriterConnection

ours, writer = socket.socketpair()  # the writer's end, which never replies
connection = object.__new__(WriterConnection)
connection.socket = ours
connection._replies = ours.makefile("r", encoding="utf-8")
connection.closed = False
"""

TRAINING_JOB = """
from mlexp.sagemaker.training_job import wait_for_job

class Client:
    def describe_training_job(self, TrainingJobName):
        return {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"}
"""

PREFETCHED_DIGEST = """
import tempfile
from pathlib import Path
from mlexp.tracking import digests

def hashed_in_ten_seconds(path, cache):  # a month of trips being read
    time.sleep(10)
    return "0" * 32

digests._digest = hashed_in_ten_seconds
trips = Path(tempfile.mkdtemp()) / "trips.csv"
trips.write_text("VendorID,fare\\n1,7.5\\n")
digests.prefetch([trips])
"""

PARQUET_BATCH = """
import tempfile
from pathlib import Path
import duckdb
from mlexp.tasks.anomaly_detection.parquet_output import write_parquet

connection = duckdb.connect()
connection.execute("SET threads=1; SET enable_progress_bar=false")  # the bar would share stdout with the outcome

def computed_slowly(values):  # 0.1 s per vector of 2048 rows: the only batch takes 10 s
    time.sleep(0.1)
    return values

connection.create_function("computed_slowly", computed_slowly, ["BIGINT"], "BIGINT", type="arrow")
target = Path(tempfile.mkdtemp()) / "trips.parquet"
trips = "SELECT computed_slowly(range) FROM range(204800)"
"""

WAITS = {
    "tracking writer's answer": (WRITER_ANSWER, 'connection.answer({"cmd": "end", "journal": "journal.jsonl"})'),
    "SageMaker training job": (TRAINING_JOB, 'wait_for_job(Client(), "job", poll_s=60)'),
    "digest being prefetched": (PREFETCHED_DIGEST, "digests.file_digest(trips)"),
    "Parquet file's next batch": (PARQUET_BATCH, 'write_parquet(connection, trips, target, None, compression="zstd")'),
}


@pytest.mark.parametrize("wait", WAITS)
def test_a_ctrl_c_another_thread_received_stops_the_wait_at_once(wait, tmp_path):
    setup, call = WAITS[wait]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLEXP_"))}
    env["MLEXP_TRACKING_REPLY_S"] = "60"
    env["TMPDIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(setup=setup, wait=call)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    reported = json.loads(done.stdout.splitlines()[-1])
    assert reported["outcome"] == "KeyboardInterrupt", done.stdout + done.stderr
    assert reported["elapsed"] < 5, f"the press waited {reported['elapsed']:.1f} s for the wait to end"
