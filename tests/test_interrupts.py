"""Ctrl-C: the first press stops the command, later ones are said; a sweep worker obeys it only in a job."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from mlexp import interrupts


@pytest.fixture
def command_handler(monkeypatch):
    """This process's SIGINT handled as the command's (stop_once over Python's default), restored after."""
    previous = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(interrupts, "_state", {"stopping": False, "said": False})
    monkeypatch.setattr(interrupts, "_process", {"command": False})
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


def _worker_job(started: str | None = None, heap: int = 0, warm_up: bool = False) -> int:
    """A sweep job's stand-in in a loky worker (or, `warm_up`, its warm-up): its pid, after writing it to `started`
    and waiting 60 s (warm-up: 2 s) to be pressed Ctrl-C; it leaves `heap` objects behind for loky's memory check."""
    with interrupts.ignored_in_warm_up(between_jobs=True) if warm_up else interrupts.only_during_jobs():
        _HEAP.extend([] for _ in range(heap))
        if started:
            Path(started).write_text(str(os.getpid()))
            time.sleep(2 if warm_up else 60)
    return os.getpid()


def _press_once_started(started: Path) -> None:
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(int(started.read_text()), signal.SIGINT)


def test_a_sweep_worker_obeys_ctrl_c_in_a_job_and_ignores_it_in_its_warm_up_and_between_jobs(tmp_path, capfd):
    # a terminal's Ctrl-C reaches every worker: one that found a worker in loky's own loop after a job (its memory
    # measured with a full garbage collection: 0.1 s through this heap) ended the worker with loky's traceback; one in
    # its warm-up came back as a traceback of the command's warm-up thread
    from joblib.externals.loky import ProcessPoolExecutor

    # the worker as a terminal's command starts it, even when the suite runs with SIGINT ignored
    as_from_a_terminal = {"initializer": signal.signal, "initargs": (signal.SIGINT, signal.default_int_handler)}
    with ProcessPoolExecutor(1, **as_from_a_terminal) as pool:
        warming = pool.submit(_worker_job, str(tmp_path / "warming"), 3_000_000, warm_up=True)
        _press_once_started(tmp_path / "warming")
        try:
            worker = warming.result(timeout=120)
        except KeyboardInterrupt:  # raised here it would stop the whole test session
            pytest.fail("Ctrl-C interrupted the worker's warm-up")
        with contextlib.suppress(ProcessLookupError):  # a worker the press ended fails the next line
            for _ in range(100):  # pressed from the moment the warm-up returned until well after the collection
                os.kill(worker, signal.SIGINT)
                time.sleep(0.003)
        assert pool.submit(_worker_job).result(timeout=60) == worker  # the same worker, alive
        job = pool.submit(_worker_job, str(tmp_path / "training"))
        _press_once_started(tmp_path / "training")
        with pytest.raises(KeyboardInterrupt):
            job.result(timeout=30)
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.usefixtures("command_handler")
def test_jobs_joblib_runs_in_the_commands_own_process_keep_its_ctrl_c_handling():
    # joblib may run a sweep's jobs in the command's process (n_jobs=-2 on 2 cores): its handler stays
    handler = signal.getsignal(signal.SIGINT)
    with interrupts.only_during_jobs():
        assert signal.getsignal(signal.SIGINT) is handler
    with interrupts.ignored_in_warm_up(between_jobs=True):
        assert signal.getsignal(signal.SIGINT) is handler
    assert signal.getsignal(signal.SIGINT) is handler


def test_after_its_warm_up_a_worker_of_hydras_own_launcher_obeys_ctrl_c_again(monkeypatch):
    # Hydra's joblib launcher runs its jobs without only_during_jobs: its workers must obey Ctrl-C between them
    previous = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(interrupts, "_process", {"command": False})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with interrupts.ignored_in_warm_up(between_jobs=False):
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with interrupts.ignored_in_warm_up(between_jobs=True):
            pass
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_sleep_obeying_signals_sleeps_the_whole_time_and_no_time_when_told_none():
    started = time.monotonic()
    interrupts.sleep_obeying_signals(0.5)
    assert 0.5 <= time.monotonic() - started < 1.5
    started = time.monotonic()
    interrupts.sleep_obeying_signals(0)  # compute.poll_s=0, as the SageMaker tests poll
    assert time.monotonic() - started < 0.1


class _Signalled(Exception):
    pass


def _raise_signalled(signum: int, frame: object) -> None:
    raise _Signalled


def _signal_this_thread_soon() -> None:
    time.sleep(0.3)  # once the main thread sleeps
    signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)


def test_sleep_obeying_signals_runs_a_handler_for_a_signal_another_thread_received():
    # time.sleep would run it only after its 30 s: Python runs handlers in the main thread, once that thread wakes
    previous = signal.signal(signal.SIGUSR1, _raise_signalled)
    helper = threading.Thread(target=_signal_this_thread_soon)
    started = time.monotonic()
    try:
        with pytest.raises(_Signalled):
            helper.start()
            interrupts.sleep_obeying_signals(30)
    finally:
        helper.join()
        signal.signal(signal.SIGUSR1, previous)
    assert time.monotonic() - started < 5
