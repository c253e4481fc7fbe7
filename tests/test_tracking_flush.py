"""Step metrics reach the store once `tracking.metric_flush_s` has passed, even when training goes quiet."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from mlflow.exceptions import MlflowException

from mlexp.tracking import TrackingStore, Trial, flushers
from mlexp.tracking.journal import Journal
from mlexp.tracking.journal_writer import JournalWriter
from mlexp.tracking.store_writer import StoreWriter

FLUSH_S = 0.2
# far past FLUSH_S: a loaded machine is slow, not wrong; a value that waits for the next log call never arrives
WAIT_S = 20

Found = TypeVar("Found")


def _poll(look: Callable[[], Found]) -> Found:
    """What `look` finds, once it finds something (or WAIT_S has passed): nothing is logged meanwhile."""
    deadline = time.monotonic() + WAIT_S
    while not (found := look()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _flushers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "mlexp-metric-flush"]


def _metric_batches(journal: Journal, run: str) -> list[list[tuple[str, float, int]]]:
    """The journal's log_batch records of `run` that carry metrics, as (name, value, step)."""
    return [
        [(name, value, step) for name, value, _, step in op["metrics"]]
        for op in journal.read_ops()
        if op["op"] == "log_batch" and op["run"] == run and op["metrics"]
    ]


@pytest.fixture
def store(tmp_path: Path) -> TrackingStore:
    return TrackingStore.resolve(None, tmp_path)


def test_a_step_logged_before_a_long_quiet_spell_reaches_the_store_while_the_component_runs(store):
    """An epoch of minutes (object detection) used to leave the UI's curve one epoch behind: the values waited for
    the next log call."""
    client = store.client()
    trial = Trial.open(client, store.experiment_id("exp"), "t", {}, curves=("loss",), metric_flush_s=FLUSH_S)
    with trial.component("Training", "train") as tracker:
        tracker.log_metrics({"loss": 0.9, "lr": 0.1}, step=1)
        curve = _poll(lambda: client.get_metric_history(trial.run_id, "loss"))  # the trial's run gets it last
        assert [(m.step, m.value) for m in curve] == [(1, 0.9)]
        assert [m.value for m in client.get_metric_history(tracker.run_id, "loss")] == [0.9]
        assert [m.value for m in client.get_metric_history(tracker.run_id, "lr")] == [0.1]  # the step, whole
        assert client.get_run(tracker.run_id).info.status == "RUNNING"
        assert _poll(lambda: not _flushers())  # nothing waits: no thread either
        tracker.log_metric("loss", 0.5, step=2)
    assert not _flushers()  # the component's end stops it
    trial.close()
    assert [m.value for m in client.get_metric_history(trial.run_id, "loss")] == [0.9, 0.5]


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")  # no traceback from the thread
def test_a_send_the_flusher_thread_could_not_make_fails_the_stage_at_its_next_call(store):
    client = store.client()
    trial = Trial.open(client, store.experiment_id("exp"), "t", {}, metric_flush_s=FLUSH_S)
    refused = pytest.raises(MlflowException, match="must be in the 'active' state")
    with refused, trial.component("Training", "train") as tracker:
        tracker.log_metric("loss", 0.9, step=1)
        client.delete_run(tracker.run_id)  # the store refuses the run's values from now on
        _poll(lambda: not _flushers())  # the thread tried, and is gone: its failure is the stage's
        tracker.log_metric("loss", 0.5, step=2)


class _FailsTheFlushersFirstSend(StoreWriter):
    """A store that refuses one batch, the first the flusher thread sends ("database is locked"), then takes all."""

    failed = False

    def log_batch(self, run, metrics=(), params=(), tags=()):
        if metrics and not self.failed and threading.current_thread().name == "mlexp-metric-flush":
            self.failed = True
            raise OSError("database is locked")
        super().log_batch(run, metrics, params, tags)


@pytest.mark.parametrize("stage_ends", ["quietly", "with_its_own_error", "by_ctrl_c"])
def test_a_send_the_flusher_could_not_make_fails_the_component_and_never_hides_the_stages_own_end(store, stage_ends):
    """The thread's failure was raised after the component's run had ended RUNNING, and in place of the stage's own
    error or Ctrl-C; the batch it failed to send was lost."""
    client = store.client()
    writer = _FailsTheFlushersFirstSend(client, store)
    trial = Trial.open(writer, writer.experiment_id("exp"), "t", {}, metric_flush_s=FLUSH_S)
    own = {"quietly": None, "with_its_own_error": ValueError("bad batch"), "by_ctrl_c": KeyboardInterrupt()}[stage_ends]
    expected = OSError if own is None else type(own)
    with pytest.raises(expected), trial.component("Training", "train") as tracker:
        tracker.log_metric("loss", 0.9, step=1)
        assert _poll(lambda: writer.failed and not _flushers())
        if own is not None:
            raise own
    component = client.get_run(tracker.run_id)
    assert component.info.status == ("KILLED" if stage_ends == "by_ctrl_c" else "FAILED")
    assert component.data.tags["mlexp.error"].startswith(expected.__name__), component.data.tags
    assert [m.value for m in client.get_metric_history(tracker.run_id, "loss")] == [0.9]  # sent at the end


def test_through_the_journal_a_quiet_step_is_appended_as_one_record_per_run_while_the_trial_runs(tmp_path, store):
    writer = JournalWriter(tmp_path, store)
    trial = Trial.open(writer, writer.experiment_id("exp"), "t", {}, curves=("loss",), metric_flush_s=FLUSH_S)
    with trial.component("Training", "train") as tracker:
        tracker.log_metrics({"loss": 0.9, "lr": 0.1}, step=1)
        assert _poll(lambda: _metric_batches(writer.journal, tracker.run)) == [[("loss", 0.9, 1), ("lr", 0.1, 1)]]
        assert _metric_batches(writer.journal, trial.run) == [[("loss", 0.9, 1)]]
    trial.close()


def test_values_logged_fast_while_the_flusher_sends_arrive_complete_in_order_in_whole_records(tmp_path, store):
    """The flusher thread and the stage's own sends take turns; the stage's other records go in between them."""
    values, buffer = 2000, 64
    writer = JournalWriter(tmp_path, store)
    trial = Trial.open(writer, writer.experiment_id("exp"), "t", {}, buffer, curves=("loss",), metric_flush_s=0.003)
    with trial.component("Training", "train") as tracker:
        for step in range(values):
            tracker.log_metric("loss", step / values, step=step)
            if step % 5 == 0:
                time.sleep(0.001)  # now the thread's turn, now the stage's
            if step % 100 == 0:
                writer.log_batch(tracker.run, tags=[("last_checkpoint", str(step))])
        component = tracker.run
    ops = writer.journal.read_ops()  # every line a whole record, or this fails to parse it
    assert ops[-1]["op"] == "set_status" and sum(op["op"] == "log_batch" for op in ops) > 2 * values // buffer
    for run in (component, trial.run):
        batches = _metric_batches(writer.journal, run)
        assert all(len(batch) <= buffer for batch in batches)
        assert [step for batch in batches for _, _, step in batch] == list(range(values))
    component_id = writer.run_id(component)
    trial.close()
    history = store.client().get_metric_history(component_id, "loss")
    assert sorted(m.step for m in history) == list(range(values))


def test_an_interval_past_the_platforms_clock_waits_without_failing_the_stage(store):
    # metric_flush_s=1e10 (the config takes it): the thread's wait raised OverflowError, failing the next log call
    client = store.client()
    trial = Trial.open(client, store.experiment_id("exp"), "t", {}, metric_flush_s=1e10)
    with trial.component("Training", "train") as tracker:
        tracker.log_metric("loss", 0.9, step=1)
        assert _poll(_flushers)
        time.sleep(FLUSH_S)  # the thread now waits for its interval (or failed to)
        tracker.log_metric("loss", 0.5, step=2)
    trial.close()
    assert [m.value for m in client.get_metric_history(tracker.run_id, "loss")] == [0.9, 0.5]


class _HungStore(StoreWriter):
    """A store that does not answer the flusher's send until told to."""

    answer = threading.Event()

    def log_batch(self, run, metrics=(), params=(), tags=()):
        if metrics and threading.current_thread().name == "mlexp-metric-flush":
            self.answer.wait()
        super().log_batch(run, metrics, params, tags)


def test_a_fork_waits_for_a_send_in_progress_but_not_for_a_store_that_hangs(store, monkeypatch):
    monkeypatch.setattr(flushers, "FORK_WAIT_S", 0.2)
    writer = _HungStore(store.client(), store)
    trial = Trial.open(writer, writer.experiment_id("exp"), "t", {}, metric_flush_s=FLUSH_S)
    forked: list[int] = []

    def fork() -> None:
        pid = os.fork()
        if pid == 0:  # the child: its copy has no flusher and a free lock, so it can log and send itself
            ok = tracker._flusher is None and tracker._lock.acquire(blocking=False)
            os._exit(0 if ok else 1)
        forked.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))

    with trial.component("Training", "train") as tracker:
        tracker.log_metric("loss", 0.9, step=1)
        time.sleep(FLUSH_S * 3)  # the flusher's send now hangs
        thread = threading.Thread(target=fork)
        thread.start()
        thread.join(WAIT_S)
        hung = thread.is_alive()
        writer.answer.set()
        assert not hung and forked == [0]
    trial.close()
