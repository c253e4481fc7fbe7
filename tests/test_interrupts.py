"""Ctrl-C: the first press stops the command, later ones are said; a sweep worker obeys it only in a job."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from mlexp import interrupts


@pytest.fixture
def command_handler(monkeypatch):
    """This process's SIGINT handled as the command's (stop_once over Python's default), restored after."""
    previous = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(interrupts, "_state", {"stopping": False, "said": False})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupts.stop_once()
    yield
    signal.signal(signal.SIGINT, previous)


def _press() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)  # the handler runs at the main thread's next bytecode


@pytest.mark.usefixtures("command_handler")
def test_the_first_press_stops_and_later_ones_are_said_once(capsys):
    with pytest.raises(KeyboardInterrupt):
        _press()
    _press()  # while the stopped run closes its records: not raised
    _press()
    said = capsys.readouterr().err.splitlines()
    assert said == [f"mlexp: stopping: closing what was running (seconds); `kill {os.getpid()}` stops now"]


@pytest.mark.usefixtures("command_handler")
def test_a_press_a_finaliser_swallowed_is_delivered_again_as_a_first_press():
    # MXNet's NDArray.__del__ took the first press (Python prints and drops it): console's hook delivers it again,
    # which went to the later-press handler and was lost, and Ctrl-C stopped nothing for the rest of the command
    with pytest.raises(KeyboardInterrupt):
        _press()  # raised inside the finaliser, and dropped there
    with pytest.raises(KeyboardInterrupt):
        interrupts.interrupt_again()
        time.sleep(0.2)


_HEAP: list[list[int]] = []


def _worker_pid(started: str | None = None, heap: int = 0) -> int:
    """A sweep job's stand-in in a loky worker: its pid, after waiting to be interrupted when `started` is given; it
    leaves `heap` objects behind for loky's memory check to collect through."""
    with interrupts.only_during_jobs():
        _HEAP.extend([] for _ in range(heap))
        if started:
            Path(started).write_text("")
            time.sleep(60)
    return os.getpid()


def test_ctrl_c_interrupts_a_sweep_workers_job_and_not_the_worker_between_jobs(tmp_path, capfd):
    # a terminal's Ctrl-C reaches every worker: one that found a worker in loky's own loop after a job (its memory
    # measured with a full garbage collection: 0.1 s through this heap) ended the worker with loky's traceback
    from joblib.externals.loky import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1) as pool:
        worker = pool.submit(_worker_pid, None, 3_000_000).result(timeout=120)
        with contextlib.suppress(ProcessLookupError):  # a worker the press ended fails the next line
            for _ in range(100):  # pressed from the moment the job returned until well after the collection
                os.kill(worker, signal.SIGINT)
                time.sleep(0.003)
        assert pool.submit(_worker_pid).result(timeout=60) == worker  # the same worker, alive
        started = tmp_path / "started"
        job = pool.submit(_worker_pid, str(started))
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(worker, signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            job.result(timeout=30)
    assert "Traceback" not in capfd.readouterr().err
