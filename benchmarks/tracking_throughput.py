"""Tracking throughput: 10,000 step metrics through mlexp's Tracker vs MLflow's own ways of logging them.

Goals (issue 10): the Tracker is no slower than MLflow's `log_batch` done by hand, and at least 50x faster than
one synchronous `MlflowClient.log_metric` call per value. MLflow's asynchronous logging (`synchronous=False`)
is measured too. Every path is timed until its values are in the store, and each one's history is checked.

Stores, each created before any timing:
- sqlite: a throw-away SQLite file, as a project's default store;
- server: a real `mlflow server` on 127.0.0.1 whose backend store is a real PostgreSQL (pgserver's binaries),
  as a team runs it (docs/team_server.md). Skipped, and said so, when pgserver is not installed.

Paths, each into runs of its own:
- tracker (curve): a trial component's `Tracker.log_metric` per value plus its final flush, on a declared curve
  (task.curves, like train_loss): every value also reaches the trial's run, so it writes 2 rows per value;
- log_batch by hand, same rows: the same 2 x 10,000 rows built as `Metric`s and sent 1,000 per `log_batch`;
- tracker (plain) / log_batch by hand, 1 row per value: a metric that is not a curve, into one run;
- async log_metric: `MlflowClient.log_metric(..., synchronous=False)` per value, then a wait for every write:
  as MLflow ships it (one queued log_batch per value), and with MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS set so
  that its queue merges values into log_batch calls;
- log_metric: one synchronous call per value.
A per-value path projected (from 100 calls) to take over BASELINE_BUDGET_S times 1,000 calls and extrapolates
linearly, and says so. The batch paths run REPEATS times each, interleaved; the median is reported.

    .venv/bin/python benchmarks/tracking_throughput.py             # both stores, 10,000 values
    .venv/bin/python benchmarks/tracking_throughput.py --values 500 --stores sqlite
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

GOAL_SPEEDUP = 50.0
# "no slower than log_batch by hand": both send the same log_batch requests; 5% is the run-to-run noise
NO_SLOWER_TOLERANCE = 1.05
METRIC = "train_loss"
BATCH = 1000  # MLflow's limit of metrics per log_batch request
BASELINE_BUDGET_S = 60.0  # time every per-value call only if that is projected to take at most this long
BASELINE_REDUCED = 1_000
CALIBRATION = 100
# the batch paths take seconds and a shared machine's load moves them by tens of percent: median of interleaved runs
REPEATS = 5
# MLflow's async queue sends one log_batch per value unless told to wait and merge what arrived meanwhile
ASYNC_BUFFER_S = 1  # whole seconds: MLflow reads the variable as an int
JOURNAL = "tracker, curve, runner's journal path"


def value(step: int) -> float:
    return 1.0 / (step + 1)


@dataclass
class Timing:
    """One path's seconds for `values` values, the runs it wrote to and a note on how it was measured."""

    seconds: float
    runs: list[str]
    rows_per_value: int = 1
    note: str = ""
    stored: int | None = None  # values each run must hold; None: all of them


def time_tracker(client, experiment_id: str, values: int, curve: bool) -> Timing:
    """A trial component's Tracker: log_metric per value plus the final flush (as a stage's loop does)."""
    from mlexp.tracking import Trial

    trial = Trial.open(
        client, experiment_id, f"tracker-{'curve' if curve else 'plain'}", {}, curves=(METRIC,) if curve else ()
    )
    with trial.component("Training", "train") as tracker:
        start = time.perf_counter()
        for step in range(values):
            tracker.log_metric(METRIC, value(step), step=step)
        tracker.flush()
        elapsed = time.perf_counter() - start
        component = tracker.run_id
    trial.close()
    return Timing(elapsed, [component, trial.run_id] if curve else [component], 2 if curve else 1)


def time_tracker_through_journal(store, root: Path, values: int) -> Timing | None:
    """The runner's path: the Tracker writes to the trial's journal and the writer process applies it to the store.

    Timed from the first value to the store holding all of them (`sync`); the writer process's start (which the
    runner overlaps with the task's imports) is not. None when this mlexp has no journal writer.
    """
    try:
        from mlexp.tracking.journal_writer import JournalWriter
    except ImportError:
        return None
    from mlexp.tracking import Trial

    writer = JournalWriter(root, store)
    writer.sync()
    trial = Trial.open(writer, writer.experiment_id("tracking_throughput"), "tracker-journal", {}, curves=(METRIC,))
    with trial.component("Training", "train") as tracker:
        start = time.perf_counter()
        for step in range(values):
            tracker.log_metric(METRIC, value(step), step=step)
        tracker.flush()
        writer.sync()
        elapsed = time.perf_counter() - start
        component = tracker.run_id
    trial.close()
    runs = [component, trial.run_id]
    writer.finish()  # the writer process stays for the next repeat: `measure` closes it
    return Timing(elapsed, runs, 2, note="journal + writer process, timed until the store holds every value")


def time_log_batch_by_hand(client, experiment_id: str, values: int, runs: int) -> Timing:
    """What a careful MLflow user writes: Metric objects sent 1,000 per log_batch, into `runs` runs."""
    from mlflow.entities import Metric

    run_ids = [client.create_run(experiment_id, run_name=f"log-batch-{i}").info.run_id for i in range(runs)]
    start = time.perf_counter()
    pending: list[Metric] = []
    for step in range(values):
        pending.append(Metric(METRIC, value(step), int(time.time() * 1000), step))
        if len(pending) == BATCH:
            for run_id in run_ids:
                client.log_batch(run_id, metrics=pending)
            pending = []
    for run_id in run_ids:
        if pending:
            client.log_batch(run_id, metrics=pending)
    elapsed = time.perf_counter() - start
    for run_id in run_ids:
        client.set_terminated(run_id)
    return Timing(elapsed, run_ids, runs)


def time_per_value_calls(client, experiment_id: str, values: int, synchronous: bool, budget: bool = True) -> Timing:
    """One log_metric call per value, synchronous or queued (timed until every queued write is done).

    When a 100-call calibration projects more than BASELINE_BUDGET_S for all values (and `budget`), 1,000 calls
    are timed and the figure extrapolated linearly (said so in the note).
    """
    run_id = client.create_run(experiment_id, run_name=f"log-metric-{'sync' if synchronous else 'async'}").info.run_id

    def calls(first: int, count: int) -> float:
        start = time.perf_counter()
        operations = [
            client.log_metric(run_id, METRIC, value(step), step=step, synchronous=synchronous)
            for step in range(first, first + count)
        ]
        for operation in operations:
            if operation is not None:  # synchronous calls return None
                operation.wait()
        return time.perf_counter() - start

    calibration = min(CALIBRATION, values)
    calibration_s = calls(0, calibration)
    projected_s = calibration_s / calibration * values
    if not budget or projected_s <= BASELINE_BUDGET_S or values <= BASELINE_REDUCED + calibration:
        seconds = calibration_s + calls(calibration, values - calibration)
        note, stored = f"measured: all {values:,} calls", values
    else:
        measured_s = calls(calibration, BASELINE_REDUCED)
        seconds = measured_s / BASELINE_REDUCED * values
        note = (
            f"EXTRAPOLATED linearly from {BASELINE_REDUCED:,} timed calls ({measured_s:.2f} s; a {calibration}-call "
            f"calibration projected {projected_s:.0f} s for {values:,}, over the {BASELINE_BUDGET_S:g} s budget)"
        )
        stored = calibration + BASELINE_REDUCED
    client.set_terminated(run_id)
    return Timing(seconds, [run_id], note=note, stored=stored)


def time_async_buffered(client, experiment_id: str, values: int) -> Timing:
    """MLflow's asynchronous logging with its queue merging values into log_batch calls every ASYNC_BUFFER_S."""
    os.environ["MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"] = str(ASYNC_BUFFER_S)
    try:
        # no extrapolation: the queue's wait is paid per flush, not per value, so 100 calls would overstate it
        timing = time_per_value_calls(client, experiment_id, values, synchronous=False, budget=False)
    finally:
        del os.environ["MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"]
    timing.note += f"; MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS={ASYNC_BUFFER_S:g}"
    return timing


@contextlib.contextmanager
def sqlite_store(folder: Path) -> Iterator[str]:
    from mlexp.tracking import TrackingStore

    yield TrackingStore.resolve(None, folder).uri


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def postgres_server_store(folder: Path) -> Iterator[str]:
    """A real `mlflow server` on loopback over a real PostgreSQL (pgserver), artifacts served from a folder."""
    import pgserver
    import psycopg2

    pgdata = folder / "pgdata"
    if os.geteuid() == 0:  # pgserver runs postgres as user `pgserver`, which must reach the folder
        for part in [pgdata.parent, *pgdata.parents]:
            if part != Path("/"):
                part.chmod(part.stat().st_mode | 0o711)
    postgres = pgserver.get_server(pgdata, cleanup_mode="stop")
    try:
        connection = psycopg2.connect(postgres.get_uri())
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE mlflow")
        connection.close()
        socket_dir = postgres.get_postmaster_info().socket_dir
        database = f"postgresql+psycopg2://postgres:@/mlflow?host={socket_dir}"
        port, log = _free_port(), folder / "server.log"
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
        with log.open("wb") as out:
            server = subprocess.Popen(
                [shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow", "server"]
                + ["--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--backend-store-uri", database]
                + ["--serve-artifacts", "--artifacts-destination", str(folder / "artifacts")],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for(url, server, log)
            yield url
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, 15)
                server.wait(timeout=15)
    finally:
        postgres.cleanup()


def _wait_for(url: str, server: subprocess.Popen[bytes], log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"mlflow server exited {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"mlflow server did not answer /health within {seconds:.0f} s")


STORES: dict[str, Callable[[Path], contextlib.AbstractContextManager[str]]] = {
    "sqlite": sqlite_store,
    "server": postgres_server_store,
}


def stored_values(client, timing: Timing) -> tuple[int, int]:
    """(values in every run of the path, of which distinct steps) as the store returns them; the minimum over runs."""
    counts = []
    for run_id in timing.runs:
        rows = client.get_metric_history(run_id, METRIC)
        counts.append((len(rows), len({row.step for row in rows})))
    return min(counts)


def median_of_interleaved(paths: dict[str, Callable[[], Timing]]) -> dict[str, Timing]:
    """Each path REPEATS times, in turns, so that a burst of load hits them alike; the median run of each.

    Each turn starts one path later than the last: SQLite's write-ahead log is checkpointed into the database
    by whichever write fills it, and in a fixed order that cost fell on the same path every turn."""
    runs: dict[str, list[Timing]] = {label: [] for label in paths}
    labels = list(paths)
    for turn in range(REPEATS):
        for label in labels[turn % len(labels) :] + labels[: turn % len(labels)]:
            runs[label].append(paths[label]())
    return {label: sorted(timings, key=lambda t: t.seconds)[len(timings) // 2] for label, timings in runs.items()}


def journal_timing(store, root: Path, values: int) -> Timing:
    timing = time_tracker_through_journal(store, root, values)
    assert timing is not None, "this mlexp has no journal writer"
    return timing


def has_journal() -> bool:
    try:
        import mlexp.tracking.journal_writer  # noqa: F401
    except ImportError:
        return False
    return True


def measure(name: str, values: int, folder: Path) -> tuple[bool, bool]:
    """Every path on one store; prints the figures and ratios; (every goal met, every value stored)."""
    from mlflow.tracking import MlflowClient

    from mlexp.tracking import TrackingStore

    print(f"\n== store: {name}")
    with STORES[name](folder) as uri:
        store = TrackingStore.resolve(uri, folder)
        client = MlflowClient(store.uri)
        experiment_id = store.experiment_id("tracking_throughput")  # creates the schema: not timed
        print(f"   {store.uri}")
        batch_paths: dict[str, Callable[[], Timing]] = {
            "tracker, curve (2 rows/value)": lambda: time_tracker(client, experiment_id, values, curve=True),
            "log_batch by hand, same 2 rows/value": lambda: time_log_batch_by_hand(client, experiment_id, values, 2),
            "tracker, plain metric (1 row/value)": lambda: time_tracker(client, experiment_id, values, curve=False),
            "log_batch by hand, 1 row/value": lambda: time_log_batch_by_hand(client, experiment_id, values, 1),
        }
        if has_journal():  # judged alike: in the same interleaved turns as the paths it is compared with
            batch_paths[JOURNAL] = lambda: journal_timing(store, folder, values)
        try:
            paths = median_of_interleaved(batch_paths)
        finally:
            if has_journal():
                from mlexp.tracking.journal_writer import close_writers

                close_writers()
        paths["async log_metric (synchronous=False)"] = time_per_value_calls(client, experiment_id, values, False)
        paths[f"async log_metric, merged every {ASYNC_BUFFER_S:g} s"] = time_async_buffered(
            client, experiment_id, values
        )
        paths["log_metric, one synchronous call/value"] = time_per_value_calls(client, experiment_id, values, True)
        complete = True
        for label, timing in paths.items():
            stored, steps = stored_values(client, timing)
            expected = timing.stored or values
            ok = stored == steps == expected
            complete &= ok
            print(
                f"   {label:40s} {timing.seconds:8.3f} s  {timing.seconds / values * 1000:8.4f} ms/value  "
                f"stored {stored:,}/{expected:,} per run: {'OK' if ok else 'MISSING VALUES'}"
            )
            if timing.note:
                print(f"   {'':40s} {timing.note}")
    seconds = {label: timing.seconds for label, timing in paths.items()}
    curve, plain = seconds["tracker, curve (2 rows/value)"], seconds["tracker, plain metric (1 row/value)"]
    same_rows = seconds["log_batch by hand, same 2 rows/value"] / curve
    one_row = seconds["log_batch by hand, 1 row/value"] / plain
    single = seconds["log_metric, one synchronous call/value"] / curve
    # like for like: the plain metric writes the rows log_metric writes, 1 per value (a curve writes 2)
    single_plain = seconds["log_metric, one synchronous call/value"] / plain
    ceiling = seconds["log_metric, one synchronous call/value"] / seconds["log_batch by hand, 1 row/value"]
    queued = seconds["async log_metric (synchronous=False)"] / curve
    merged = seconds[f"async log_metric, merged every {ASYNC_BUFFER_S:g} s"] / curve
    print(f"   (the tracker, log_batch and journal paths: median of {REPEATS} interleaved runs each)")
    print(
        f"ratio: log_batch by hand / Tracker = {same_rows:.2f} (curve, same 2 rows/value), {one_row:.2f} (plain); "
        f"goal >= {1 / NO_SLOWER_TOLERANCE:.2f} (no slower, {NO_SLOWER_TOLERANCE - 1:.0%} noise)"
    )
    print(
        f"ratio: one synchronous log_metric per value / Tracker = {single_plain:.1f}x (plain, the same 1 row/value), "
        f"{single:.1f}x (curve, 2 rows/value); goal >= {GOAL_SPEEDUP:g}x"
    )
    print(
        f"   (MLflow's own log_batch of the same rows reaches {ceiling:.1f}x: the store's cost per row bounds every "
        "client of this store)"
    )
    print(f"ratio: async log_metric / Tracker (curve) = {queued:.1f}x, merged async = {merged:.1f}x (no goal)")
    journal_ratio = same_rows  # no journal in this mlexp: judged by the Tracker alone
    if JOURNAL in seconds:
        journal_ratio = seconds["log_batch by hand, same 2 rows/value"] / seconds[JOURNAL]
        print(
            f"ratio: log_batch by hand / Tracker through the journal (runner's path) = {journal_ratio:.2f} (curve); "
            f"goal >= {1 / NO_SLOWER_TOLERANCE:.2f}"
        )
    met = (
        complete and min(same_rows, one_row, journal_ratio) * NO_SLOWER_TOLERANCE >= 1 and single_plain >= GOAL_SPEEDUP
    )
    print(f"{name}: {'GOAL MET' if met else 'GOAL MISSED'}{'' if complete else ' (MISSING VALUES)'}")
    return met, complete


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg()) + " (1, 5, 15 min)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--values", type=int, default=10_000, help="step metrics per path (default 10,000)")
    parser.add_argument("--stores", default="sqlite,server", help="comma-separated: sqlite, server")
    args = parser.parse_args()
    # never write to the repository's store, nor to one named in the caller's environment
    for name in [name for name in os.environ if name.startswith(("MLFLOW_", "MLEXP_"))]:
        del os.environ[name]
    from mlexp import console

    console.quiet_third_party()  # the sagemaker-mlflow plugin would warn on every request to a plain server
    stores = [s for s in args.stores.split(",") if s]
    if "server" in stores:
        try:
            import pgserver  # noqa: F401
        except ImportError:
            print("server store SKIPPED: pgserver (PostgreSQL binaries in a wheel) is not installed")
            stores.remove("server")
    print(f"tracking throughput: {args.values:,} step metrics per path, stores: {', '.join(stores)}")
    print(f"load average before start: {load_average()} ({os.cpu_count()} CPUs); other work skews the figures")
    results = []
    for name in stores:
        with tempfile.TemporaryDirectory(prefix=f"mlexp-bench-tracking-{name}-") as tmp:
            results.append(measure(name, args.values, Path(tmp)))
    print(f"\nload average at the end: {load_average()}")
    print("GOAL MET" if results and all(met for met, _ in results) else "GOAL MISSED")
    if not all(complete for _, complete in results):
        print("MISSING VALUES: a store does not hold every value a path logged")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
