"""The tracking journal: a trial whose process is killed still reaches the store, its open runs KILLED."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from conftest import TINY, private_writer_env, run_cli, start_cli, store_client, trials_of
from mlexp.tracking.journal import Journal, JournalFile, journals_root, new_ref
from mlexp.tracking.journal_apply import replay_orphans, settle
from mlexp.tracking.store import TrackingStore
from mlexp.tracking.store_writer import StoreWriter
from one_trial_journal import journal_of_one_trial


def test_records_the_store_never_got_are_replayed_and_open_runs_end_killed(tmp_path):
    store = TrackingStore.resolve(None, tmp_path)
    journal = Journal.create(tmp_path, store.uri, store.artifact_root)
    records = JournalFile(journal)
    trial, component = "ref-" + "a" * 32, "ref-" + "b" * 32
    records.append("create_run", ref=trial, experiment="@exp", run_name="t", tags=[["mlexp.kind", "trial"]])
    records.append(
        "create_run",
        ref=component,
        experiment="@exp",
        run_name="Training",
        tags=[["mlexp.kind", "component"], ["mlflow.parentRunId", trial]],
    )
    records.append("log_batch", run=component, metrics=[["loss", 0.5, 1000, s] for s in range(3)], params=[], tags=[])
    # a value naming an experiment is resolved under the key made for it only: a user's "@alice" stays as it is
    experiment_tag = [["mlexp.trials_experiment_id", "@exp"]]
    records.append("log_batch", run=trial, metrics=[], params=[["lr", "0.1"], ["owner", "@alice"]], tags=experiment_tag)
    records.append("set_status", run=component, status="FINISHED", terminated=True)
    # the process dies here: no end record, the trial never closed; a torn line follows
    with journal.ops_path.open("a") as handle:
        handle.write('{"op": "log_batch", "run"')
    records.close()
    journal.release()

    [replayed] = replay_orphans(tmp_path)
    assert replayed.error == "" and len(replayed.killed) == 1
    client = MlflowClient(store.uri)
    [run] = client.search_runs([client.get_experiment_by_name("exp").experiment_id], "tags.`mlexp.kind` = 'trial'")
    assert run.info.status == "KILLED" and run.data.params == {"lr": "0.1", "owner": "@alice"}
    assert run.data.tags["mlexp.trials_experiment_id"] == run.info.experiment_id
    assert client.get_experiment_by_name("alice") is None
    [child] = client.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{run.info.run_id}'")
    assert child.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(child.info.run_id, "loss")] == [0, 1, 2]
    assert not journal.folder.exists()


def test_a_journal_whose_trial_still_runs_is_left_alone(tmp_path):
    store = TrackingStore.resolve(None, tmp_path)
    journal = Journal.create(tmp_path, store.uri, store.artifact_root)  # owned by this (live) process
    assert replay_orphans(tmp_path) == []
    assert journal.folder.exists()
    journal.release()


def _journal_has_training(project) -> bool:
    for ops in journals_root(project).glob("*/ops.jsonl"):
        if any(json.loads(line).get("run_name") == "Training" for line in ops.read_text().splitlines()[:-1]):
            return True
    return False


def _writer_of(process: subprocess.Popen) -> psutil.Process:
    """The tracking writer a command started (it must have been the first of its writer key)."""
    [writer] = [
        child
        for child in psutil.Process(process.pid).children()
        if "mlexp.tracking.writer_process" in " ".join(child.cmdline())
    ]
    return writer


def _start_endless_trial(project, env, rows: int = 300):
    process = start_cli(
        project,
        *("task=tabular_regression", f"dataset.n_rows={rows}", "model.epochs=100000"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not _journal_has_training(project):
        time.sleep(0.3)
    return process


def test_a_trial_whose_store_is_down_fails_in_one_line_and_keeps_its_journal(tmp_project):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    started = time.monotonic()
    down = f"tracking.uri=http://127.0.0.1:{port}"
    done = run_cli(tmp_project, "task=tabular_regression", *TINY, down, check=False, timeout=300)
    elapsed = time.monotonic() - started
    assert done.returncode != 0 and elapsed < 120, (elapsed, done.stderr[-2000:])
    assert "Traceback" not in done.stderr and "mlexp sync" in done.stderr.strip().splitlines()[-1]
    assert list(journals_root(tmp_project).glob("*/ops.jsonl"))
    # what that line says to do, while the store is still down: kept again, said in seconds (it was silent 5+ min)
    started = time.monotonic()
    synced = run_cli(tmp_project, "sync", check=False, timeout=120)
    assert synced.returncode == 1 and time.monotonic() - started < 60, synced.stderr[-2000:]
    assert synced.stdout.strip().splitlines()[-1] == "0 trial journals stored, 1 kept"
    assert list(journals_root(tmp_project).glob("*/ops.jsonl"))


def _ops(project) -> list[dict]:
    files = journals_root(project).glob("*/ops.jsonl")
    return [json.loads(line) for ops in files for line in ops.read_text().splitlines()]


def test_a_trial_whose_writer_is_killed_succeeds_and_says_its_records_are_safe_for_mlexp_sync(tmp_project):
    env = private_writer_env(tmp_project)  # the writer to kill is this test's own, not one other tests share
    process = start_cli(tmp_project, "task=tabular_regression", "dataset.n_rows=300", "model.epochs=30", env=env)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not _journal_has_training(tmp_project):
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGSTOP)  # the trial waits while its writer is killed: no race with its end
        writer = _writer_of(process)
        assert not any(op["op"] == "end" for op in _ops(tmp_project)), "the trial ended before its writer was killed"
        writer.kill()
        while writer.is_running() and writer.status() != psutil.STATUS_ZOMBIE:  # its parent, stopped, reaps it later
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGCONT)
    stdout, stderr = process.communicate(timeout=300)

    assert process.returncode == 0, stderr[-2000:]  # the trial's work succeeded
    assert "trial done: test_msle = " in stdout and "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert "tracking writer process stopped" in last and "records are whole and safe" in last, last
    assert "mlexp sync" in last
    ops = _ops(tmp_project)
    assert ops[-1]["op"] == "end"  # the journal is whole
    synced = run_cli(tmp_project, "sync")
    assert "1 trial journal stored, 0 kept" in synced.stdout
    [trial] = trials_of(tmp_project)
    assert trial.status == "FINISHED" and "test_msle" in trial.metrics
    assert float(stdout.split("test_msle = ")[1].split()[0]) == pytest.approx(trial.metrics["test_msle"], rel=1e-5)
    client = store_client(tmp_project)
    assert len(client.get_metric_history(trial.run_id, "train_loss")) == 30
    assert not list(journals_root(tmp_project).glob("*/ops.jsonl"))


def test_a_killed_trial_is_stored_killed_by_the_writer_that_outlives_it_or_by_mlexp_sync_if_both_are_killed(
    tmp_project,
):
    # a writer of the test's own, started by the first trial (as its child): both trials use it, the second kills it
    env = private_writer_env(tmp_project)
    process = _start_endless_trial(tmp_project, env)
    writer = _writer_of(process)
    os.killpg(process.pid, signal.SIGKILL)  # the command's process group: the writer has a session of its own
    process.wait(timeout=30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and list(journals_root(tmp_project).glob("*/ops.jsonl")):
        time.sleep(0.1)

    assert writer.is_running()
    assert not list(journals_root(tmp_project).glob("*/ops.jsonl")), "the writer did not store the killed trial"
    [trial] = trials_of(tmp_project)
    assert trial.status == "KILLED" and "journal was replayed" in trial.tags["mlexp.error"]
    client = store_client(tmp_project)
    assert client.get_run(trial.components["Training"]).info.status == "KILLED"
    assert client.get_run(trial.components["Pre-processing"]).info.status == "FINISHED"
    assert run_cli(tmp_project, "sync", env=env).stdout.startswith("nothing to sync: no trial journals in ")

    # a second trial, killed with that writer: nothing gets to clean up (on other data: a Pre-processing of its own)
    process = _start_endless_trial(tmp_project, env, rows=310)
    children = psutil.Process(process.pid).children()
    assert not [c for c in children if "mlexp.tracking.writer_process" in " ".join(c.cmdline())]  # it uses the first
    writer.kill()
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert list(journals_root(tmp_project).glob("*/ops.jsonl")), "the killed trial left no journal"

    synced = run_cli(tmp_project, "sync")
    assert "1 trial journal stored, 0 kept" in synced.stdout
    [second] = [other for other in trials_of(tmp_project) if other.run_id != trial.run_id]
    assert second.status == "KILLED" and second.params["model.epochs"] == "100000"
    assert client.get_run(second.components["Training"]).info.status == "KILLED"
    assert client.get_run(second.components["Pre-processing"]).info.status == "FINISHED"
    assert not list(journals_root(tmp_project).glob("*/ops.jsonl"))


class _Killed(BaseException):
    """The applier's process dies here: nothing after this line runs, not even `except Exception`."""


def _journal_of_one_trial(root, store, marker: str = "a") -> Journal:
    return journal_of_one_trial(root, store.uri, store.artifact_root, ref="ref-" + marker * 32)


def test_an_applier_killed_right_after_creating_a_run_does_not_create_it_twice(tmp_path, monkeypatch):
    store = TrackingStore.resolve(None, tmp_path)
    journal = _journal_of_one_trial(tmp_path, store)
    create_run = StoreWriter.create_run

    def create_then_die(self, *args, **kwargs):
        create_run(self, *args, **kwargs)  # the run reached the store; its id never reached state.json
        raise _Killed

    monkeypatch.setattr(StoreWriter, "create_run", create_then_die)
    with pytest.raises(_Killed):
        replay_orphans(tmp_path)
    assert journal.state().applied == 0 and journal.folder.exists()
    monkeypatch.setattr(StoreWriter, "create_run", create_run)

    [replayed] = replay_orphans(tmp_path)
    assert replayed.error == "" and replayed.killed == []
    client = MlflowClient(store.uri)
    [run] = client.search_runs([client.get_experiment_by_name("exp").experiment_id], run_view_type=ViewType.ALL)
    assert run.info.status == "FINISHED" and run.data.params == {"lr": "0.1"}
    assert not journal.folder.exists()


def _replay_in_a_process(root: str, queue) -> None:
    try:
        queue.put(("ok", [str(r.folder) for r in replay_orphans(Path(root)) if not r.error]))
    except BaseException as error:  # noqa: BLE001 - the test reports whatever escaped
        queue.put(("raised", repr(error)))


def test_concurrent_replays_store_every_journal_once_and_leave_no_folder(tmp_path):
    store = TrackingStore.resolve(None, tmp_path)
    # made once, not raced for by the two replayers; in a copy of MLflow's schema, as the command makes a store
    store.client().create_experiment("exp")
    folders = {str(_journal_of_one_trial(tmp_path, store, marker).folder) for marker in "0123456789abcdef"}
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    replayers = [context.Process(target=_replay_in_a_process, args=(str(tmp_path), queue)) for _ in range(2)]
    for replayer in replayers:
        replayer.start()
    results = [queue.get(timeout=120) for _ in replayers]
    for replayer in replayers:
        replayer.join(timeout=30)
    assert [kind for kind, _ in results] == ["ok", "ok"], results
    stored = [folder for _, done in results for folder in done]
    assert sorted(stored) == sorted(folders)  # each journal by exactly one of them
    client = MlflowClient(store.uri)
    runs = client.search_runs([client.get_experiment_by_name("exp").experiment_id], run_view_type=ViewType.ALL)
    assert len(runs) == len(folders) and {r.info.status for r in runs} == {"FINISHED"}
    assert list(journals_root(tmp_path).iterdir()) == []


def test_settle_says_which_trials_are_still_being_stored_once_it_stops_waiting(tmp_path, capsys):
    store = TrackingStore.resolve(None, tmp_path)
    journal = Journal.create(tmp_path, store.uri, store.artifact_root, group="sweep-1")  # its trial still runs
    try:
        assert settle(tmp_path, group="sweep-1", wait_s=0.2) == []
    finally:
        journal.release()
    assert f"1 trial(s) still being stored: run `mlexp sync` ({journal.folder})" in capsys.readouterr().err


@pytest.mark.parametrize("removed_while", ["making sure the folder exists", "opening the lock file"])
def test_a_journal_its_writer_removes_while_settle_checks_its_locks_counts_as_stored(
    tmp_path, monkeypatch, removed_while
):
    import filelock._core._acquire as acquiring

    store = TrackingStore.resolve(None, tmp_path)
    journal = Journal.create(tmp_path, store.uri, store.artifact_root, group="sweep-1")
    journal.release()
    folder = journal.folder

    def writer_removes_it_meanwhile(lock_path):  # the interleavings CI hit
        shutil.rmtree(folder, ignore_errors=True)
        if removed_while == "making sure the folder exists":  # Path.mkdir(exist_ok=True) saw it, then it was gone
            raise FileExistsError(errno.EEXIST, "File exists", str(folder))

    monkeypatch.setattr(acquiring, "ensure_directory_exists", writer_removes_it_meanwhile)
    assert settle(tmp_path, group="sweep-1", wait_s=0.2) == []
    assert not folder.exists()


def test_sync_with_no_journal_to_store_says_so_and_where_it_looked(tmp_project):
    folder = journals_root(tmp_project)
    synced = run_cli(tmp_project, "sync")  # was "0 trial journal(s) stored, 0 kept"
    assert synced.stdout.splitlines() == [
        f"nothing to sync: no trial journals in {folder} (every trial's records are in its store)"
    ]
    store = TrackingStore.resolve(None, tmp_project)
    journal = Journal.create(tmp_project, store.uri, store.artifact_root)  # its trial (this process) still runs
    try:
        held = run_cli(tmp_project, "sync")
    finally:
        journal.release()
    assert held.stdout.splitlines() == [
        f"nothing to sync: 1 trial journal in {folder}, held by its running trial or by the writer storing it now"
    ]


def _killed_trial_journal(project, refused: bool = False) -> None:
    """The journal of a trial whose process was killed after its run ended: `mlexp sync` stores it, unless `refused`:
    then it also logs to a run the store does not have, which the store refuses every time."""
    store = TrackingStore.resolve(None, project)
    journal = Journal.create(project, store.uri, store.artifact_root)
    records, run = JournalFile(journal), new_ref()
    records.append("create_run", ref=run, experiment="@exp", run_name="t", tags=[["mlexp.kind", "trial"]])
    records.append("set_status", run=run, status="FINISHED", terminated=True)
    if refused:
        records.append("log_batch", run="0" * 32, metrics=[["loss", 0.5, 1000, 0]], params=[], tags=[])
    records.close()
    journal.release()


@pytest.mark.usefixtures("tmp_project_with_store")
def test_sync_counts_the_journals_it_stored_and_kept_each_in_its_number(tmp_project):
    _killed_trial_journal(tmp_project)
    _killed_trial_journal(tmp_project, refused=True)
    synced = run_cli(tmp_project, "sync", check=False)
    assert synced.returncode == 1 and synced.stdout.splitlines()[-1] == "1 trial journal stored, 1 kept"
    for _ in range(2):
        _killed_trial_journal(tmp_project)
    synced = run_cli(tmp_project, "sync", check=False)
    assert synced.returncode == 1 and synced.stdout.splitlines()[-1] == "2 trial journals stored, 1 kept"
    assert run_cli(tmp_project, "sync", check=False).stdout.splitlines()[-1] == "0 trial journals stored, 1 kept"
