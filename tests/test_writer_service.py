"""The tracking writer is shared: commands of the same user and settings reach one process that keeps MLflow loaded."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from conftest import TINY, cli_env, private_writer_env, run_cli, trials_of
from mlexp.errors import MlexpError
from mlexp.experiment_analytics.store import AnalyticsError
from mlexp.sweeps import recorder
from mlexp.sweeps.summary import SweepEnd
from mlexp.tracking import writer_address
from mlexp.tracking.journal_apply import StoreWriters, replay_orphans
from mlexp.tracking.journal_writer import JournalWriter, close_writers, writer_connection
from mlexp.tracking.store import TrackingStore


def _writers(socket_path) -> list[psutil.Process]:
    return [
        process
        for process in psutil.process_iter(["cmdline"])
        if process.info["cmdline"] and str(socket_path) in process.info["cmdline"]
    ]


def _socket_path(env: dict[str, str]):
    script = "from mlexp.tracking.writer_address import socket_path; print(socket_path())"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _dead(process: psutil.Process, seconds: float = 10) -> bool:
    """Whether `process` ended within `seconds`, its sockets closed. A zombie counts once its other threads are gone
    too: a writer's parent, the command that started it, has left, and whatever reaps orphans may not have yet."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            threads = os.listdir(f"/proc/{process.pid}/task")
            if process.status() == psutil.STATUS_ZOMBIE and len(threads) <= 1:
                return True
        except (FileNotFoundError, psutil.NoSuchProcess):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def file_writer_scope(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The scope of one writer for this file's commands and in-process records that need no writer of their own
    (no other file's commands reach it): each start imports MLflow (seconds of CPU), so a test reuses the one an
    earlier test left running; after a test kills it, the next command starts another. Killed after the file."""
    folder = tmp_path_factory.mktemp("writer-scope")
    scope = f"test-{folder}"
    yield scope
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLEXP_WRITER_SCOPE", scope)
        paths = {str(writer_address.socket_path()), _socket_path(cli_env(folder) | {"MLEXP_WRITER_SCOPE": scope})}
    for path in paths:
        for process in _writers(path):
            process.kill()


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_commands_in_a_row_share_one_writer_of_its_own_session_and_the_next_command_replaces_a_killed_one(
    tmp_project, file_writer_scope
):
    env = cli_env(tmp_project) | {"MLEXP_WRITER_SCOPE": file_writer_scope}
    path = _socket_path(env)
    run_cli(tmp_project, "task=tabular_regression", *TINY, env=env)
    [writer] = _writers(path)
    # the writer runs in a session of its own: Ctrl-C in the terminal (the command's process group) spares it
    assert os.getsid(writer.pid) == writer.pid
    run_cli(tmp_project, "task=tabular_regression", *TINY, "seed=1", env=env)
    run_cli(tmp_project, "sync", env=env)  # a command without a trial: no writer of its own either

    assert [process.pid for process in _writers(path)] == [writer.pid]  # the second trial started none
    trials = trials_of(tmp_project)
    assert len(trials) == 2 and {trial.status for trial in trials} == {"FINISHED"}
    assert all("test_msle" in trial.metrics for trial in trials)

    writer.kill()  # between commands
    assert _dead(writer)
    assert os.path.exists(path)  # a dead writer's socket file stays: connecting to it is refused
    done = run_cli(tmp_project, "task=tabular_regression", *TINY, "seed=2", env=env)
    assert "Traceback" not in done.stderr
    [replacement] = _writers(path)
    assert replacement.pid != writer.pid
    trials = trials_of(tmp_project)
    assert len(trials) == 3 and {trial.status for trial in trials} == {"FINISHED"}


def test_a_value_the_run_refuses_starts_no_writer(tmp_project):
    """A mistyped value, in a trial or a sweep, left a writer process loading MLflow and idling for minutes (in the
    suite, one per test of a refusal: hundreds of CPU seconds)."""
    env = private_writer_env(tmp_project)
    path = _socket_path(env)
    rows = next(arg for arg in TINY if arg.startswith("dataset.n_rows="))
    for refused, said in (
        (["task=tabular_regression", rows, "model.epochs=0"], "model.epochs=0 is out of range"),
        (
            ["task=tabular_regression", "model.epochs=1", "dataset.n_rows=4", "preprocessing.train_test_split=0.1"],
            "dataset.n_rows",
        ),
        # refused before the sweep's record opens
        (["-m", "task=tabular_regression", rows, "model.epochs=1,0"], "model.epochs=0 is out of range"),
    ):
        done = run_cli(tmp_project, *refused, env=env, check=False)
        assert done.returncode == 2 and done.stderr.startswith("mlexp: error: ") and said in done.stderr, done.stderr
        assert "given twice" not in done.stderr
        assert _writers(path) == [] and not Path(path).exists()
    assert not (tmp_project / "outputs").exists()  # no run folder either


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_an_idle_writer_leaves_and_the_next_command_starts_another(tmp_project):
    env = private_writer_env(tmp_project) | {"MLEXP_WRITER_IDLE_S": "1"}
    path = _socket_path(env)
    run_cli(tmp_project, "task=tabular_regression", *TINY, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (_writers(path) or os.path.exists(path)):
        time.sleep(0.2)
    assert not _writers(path) and not os.path.exists(path), "the idle writer is still there"

    run_cli(tmp_project, "task=tabular_regression", *TINY, "seed=1", env=env)
    assert len(trials_of(tmp_project)) == 2


def test_a_replaced_sqlite_file_is_opened_anew_not_written_through_the_old_handle(tmp_path):
    writers = StoreWriters()
    store = TrackingStore.resolve(None, tmp_path)
    first = writers.get(store.uri, store.artifact_root)
    first.experiment_id("before")
    db = tmp_path / "mlflow.db"
    for leftover in tmp_path.glob("mlflow.db*"):
        leftover.unlink()  # the user starts afresh: `rm mlflow.db`

    writer = writers.get(store.uri, store.artifact_root)
    writer.experiment_id("after")
    with sqlite3.connect(db) as database:
        names = {name for (name,) in database.execute("select name from experiments")}
    assert "after" in names and "before" not in names


def test_the_writer_key_follows_settings_and_code_not_the_project(tmp_path, monkeypatch):
    monkeypatch.setenv("MLEXP_ROOT", str(tmp_path / "a"))
    key = writer_address.writer_key()
    monkeypatch.setenv("MLEXP_ROOT", str(tmp_path / "b"))
    assert writer_address.writer_key() == key  # every project shares the writer
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "other-credentials")
    assert writer_address.writer_key() != key
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    monkeypatch.setenv("AWS_PROFILE", "other-account")
    assert writer_address.writer_key() != key


@pytest.mark.parametrize("module", ["tasks/recommendation/__init__.py", "experiment_analytics/trials.py"])
def test_an_edit_to_what_a_sweep_summary_reads_gets_a_writer_of_its_own(module):
    # the writer's sweep summary reads the tasks' declarations (a sweep file's report command) and ranks trials with
    # experiment analytics: a writer started before the edit must not summarise with the old code
    declaration = Path(writer_address.__file__).resolve().parents[1] / module
    before = declaration.stat()
    key = writer_address.writer_key()
    try:
        os.utime(declaration, ns=(before.st_atime_ns, time.time_ns() + 10**12))  # the newest file, as an edit makes it
        assert writer_address.writer_key() != key
    finally:
        os.utime(declaration, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert writer_address.writer_key() == key


@pytest.fixture
def private_writer(file_writer_scope: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This test process records through the file's writer (file_writer_scope); its connections closed after."""
    monkeypatch.setenv("MLEXP_WRITER_SCOPE", file_writer_scope)
    yield
    close_writers()


def _runs(store: TrackingStore) -> dict[str, str]:
    client = store.client()
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    return {run.info.run_name: run.info.status for run in client.search_runs(experiments)}


def test_a_broken_journal_does_not_stop_the_writer_for_other_commands(tmp_path, private_writer):
    first, second = tmp_path / "one", tmp_path / "two"
    stores = [TrackingStore.resolve(None, root) for root in (first, second)]
    broken = JournalWriter(first, stores[0])
    broken.create_run(broken.experiment_id("exp"), "doomed", {})
    broken.sync()
    [writer] = _writers(writer_address.socket_path())
    with broken.journal.ops_path.open("a") as ops:
        ops.write('{"op": "log_batch", "run"\n')  # a whole line that is no record (a disk that filled up)

    healthy = JournalWriter(second, stores[1])
    run = healthy.create_run(healthy.experiment_id("exp"), "kept", {})
    healthy.log_batch(run, metrics=[("loss", 0.5, 0, 1)])
    healthy.set_status(run, "FINISHED")
    healthy.finish()

    assert writer.is_running() and _writers(writer_address.socket_path()) == [writer]
    assert _runs(stores[1]) == {"kept": "FINISHED"}


def test_a_trial_that_gave_up_on_the_writer_is_not_ended_killed_while_it_runs(tmp_path, private_writer):
    store = TrackingStore.resolve(None, tmp_path)
    journal = JournalWriter(tmp_path, store)
    run = journal.create_run(journal.experiment_id("exp"), "alive", {})
    journal.sync()
    journal.connection.close()  # what a trial does when the writer does not answer in time
    time.sleep(1)
    assert journal.journal.folder.exists() and _runs(store) == {"alive": "RUNNING"}

    journal.log_batch(run, metrics=[("loss", 0.25, 0, 1)])  # still recorded: the journal is the trial's
    journal.set_status(run, "FINISHED")
    journal.file.close()
    journal.journal.release()
    [replayed] = replay_orphans(tmp_path)  # `mlexp sync`
    assert replayed.error == "" and replayed.killed == []
    assert _runs(store) == {"alive": "FINISHED"}


def test_a_command_that_cannot_reach_a_writer_records_from_its_own_process(tmp_project):
    blocker = tmp_project / "not-a-folder"
    blocker.write_text("")  # where the writer's socket folder should be
    env = cli_env(tmp_project) | {"XDG_RUNTIME_DIR": str(blocker)}
    done = run_cli(tmp_project, "task=tabular_regression", *TINY, env=env)
    assert "records from its own process instead" in done.stderr and "Traceback" not in done.stderr
    [trial] = trials_of(tmp_project)
    assert trial.status == "FINISHED" and "test_msle" in trial.metrics


def test_credentials_nobody_listed_still_get_a_writer_of_their_own(monkeypatch):
    key = writer_address.writer_key()
    monkeypatch.setenv("DATABRICKS_HOST", "https://other-workspace")
    assert writer_address.writer_key() != key
    monkeypatch.delenv("DATABRICKS_HOST")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a sweep's thread share: the same writer
    monkeypatch.setenv("PWD", "/elsewhere")
    assert writer_address.writer_key() == key


def test_a_joblib_worker_reaches_the_writer_of_the_command_that_started_it(monkeypatch):
    # joblib sets thread-count variables in its loky workers (those the parent has not set): with them in the key,
    # every parallel sweep's jobs started a second writer, importing MLflow while the workers imported MXNet
    from joblib import Parallel, delayed
    from joblib._parallel_backends import ParallelBackendBase
    from joblib.externals.loky import get_reusable_executor

    joblibs = {*ParallelBackendBase.MAX_NUM_THREADS_VARS, ParallelBackendBase.TBB_ENABLE_IPC_VAR}
    for name in joblibs:
        monkeypatch.delenv(name, raising=False)
    # new workers, as a sweep's command starts: idle ones kept from an earlier test hold that test's environment
    get_reusable_executor(reuse=True).shutdown(wait=True)

    def _worker_settings() -> tuple[list[tuple[str, str]], dict[str, str]]:
        # nested: sent by value, so the workers do not import this test module (and MLflow with it) to find it
        return writer_address.writer_settings(), dict(os.environ)

    [(worker_settings, worker_env)] = Parallel(n_jobs=2, backend="loky")(delayed(_worker_settings)() for _ in [0])
    assert joblibs <= set(worker_env)  # the worker's environment does differ from this process's
    # the key's environment part (its code stamp is the same for a sweep's workers: they run the command's code)
    assert worker_settings == writer_address.writer_settings()


def _sweep_end(root) -> SweepEnd:
    """The end of a sweep that is not in the store: only a summary that really runs can say so."""
    store = TrackingStore.resolve(None, root)
    return SweepEnd(
        uri=store.uri,
        experiment="tabular_regression",
        sweep_id="0" * 32,
        name="grid-1",
        metric="test_msle",
        reporting_only=False,
        headline_metrics=["test_msle"],
        charts_dir=str(root / "charts"),
        failed_jobs=0,
    )


def test_a_sweep_end_the_writer_got_but_never_answered_is_not_done_again_by_the_sweep(
    tmp_path, private_writer, monkeypatch
):
    monkeypatch.setenv("MLEXP_TRACKING_REPLY_S", "3")
    monkeypatch.setenv("MLEXP_ROOT", str(tmp_path))  # the sweep's project: its store is the one compare reads
    writer_connection(tmp_path)
    [writer] = _writers(writer_address.socket_path())
    writer.suspend()  # a hung writer: it holds the request and says nothing
    try:
        # done again here, the summary would say the sweep is not in the store (below); it says the writer's silence
        with pytest.raises(MlexpError, match=r"did not answer.*`mlexp compare sweep=grid-1` ranks them"):
            recorder._summarise(_sweep_end(tmp_path))
    finally:
        writer.resume()


def test_a_sweep_end_the_writer_never_got_is_done_by_the_sweeps_own_process(tmp_path, private_writer):
    writer_connection(tmp_path)
    [writer] = _writers(writer_address.socket_path())
    writer.kill()
    assert _dead(writer)
    with pytest.raises(AnalyticsError, match="no sweep named or with id"):
        recorder._summarise(_sweep_end(tmp_path))
