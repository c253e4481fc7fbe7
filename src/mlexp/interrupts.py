"""Ctrl-C stops a run once: a second press while it closes its records is said, not obeyed.

A user who pressed Ctrl-C twice (or held it) interrupted the closing itself: the sweep's record, and the trials and
components it was marking KILLED, stayed RUNNING in the store, which only a hand edit of the store could end
(`mlexp delete` refuses an experiment with running runs). Closing takes seconds; a press meanwhile prints a line
(once), and SIGTERM still stops the command at once.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TypeVar

Item = TypeVar("Item")

# A signal sent to the process may reach another of its threads (when the main thread has one pending). Python runs
# the handler in the main thread, but only once that thread wakes: a blocking wait that must obey Ctrl-C or SIGTERM
# wakes this often (a served trial's Ctrl-C went unheeded during its 10-minute graceful stop). Five wake-ups a second
# cost nothing measurable, and a press still feels immediate
SIGNAL_CHECK_S = 0.2

_state = {"stopping": False, "said": False}
# trials this process said it marked KILLED: the sweep's closing line need not name them again
_announced_killed: set[str] = set()
# "command": this process is the command (stop_once ran), not a sweep's worker; "obeys": whether this worker obeyed
# Ctrl-C when it started (a command started in the background ignores it, and so do its workers)
_process: dict[str, bool] = {"command": False}


def announce_killed(run_id: str) -> None:
    _announced_killed.add(run_id)


def announced_killed() -> frozenset[str]:
    return frozenset(_announced_killed)


def stop_once() -> None:
    """From now on the first Ctrl-C raises KeyboardInterrupt, as Python's own handler does, and later ones print a
    line. Only the command's main thread sets it, and only over Python's default handler (a shell that starts the
    command in the background has SIGINT ignored: left so)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _process["command"] = True
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _press)


def wait_obeying_signals(wait: Callable[[float], bool], seconds: float | None) -> bool:
    """Call `wait(most)`, a wait of at most `most` seconds that says whether what it waits for happened, until it
    does or `seconds` pass (None: no limit); whether it happened. Signal handlers run between the calls."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while True:
        most = SIGNAL_CHECK_S if deadline is None else min(SIGNAL_CHECK_S, deadline - time.monotonic())
        if most <= 0:
            return wait(0)
        if wait(most):
            return True


def sleep_obeying_signals(seconds: float) -> None:
    """time.sleep(seconds), but signal handlers run meanwhile (a Ctrl-C stops it within SIGNAL_CHECK_S)."""
    wait_obeying_signals(threading.Event().wait, seconds)


def get_obeying_signals(items: queue.Queue[Item]) -> Item:
    """items.get(), but signal handlers run meanwhile (a Ctrl-C stops it within SIGNAL_CHECK_S)."""
    while True:
        try:
            return items.get(timeout=SIGNAL_CHECK_S)
        except queue.Empty:
            continue


def interrupt_again() -> None:
    """Deliver a Ctrl-C to the main code again, as a first press: one that an object's finaliser swallowed
    (mlexp.console) never stopped anything. Callable from any thread."""
    _state["stopping"] = False
    _thread.interrupt_main()


def _press(signum: int, frame: FrameType | None) -> None:
    if not _state["stopping"]:
        _state["stopping"] = True
        raise KeyboardInterrupt
    if not _state["said"]:
        _state["said"] = True
        print(f"mlexp: stopping: closing what was running (seconds); `kill {os.getpid()}` stops now", file=sys.stderr)


def _a_worker_that_obeys() -> bool:
    """Whether this is a sweep's worker that obeyed Ctrl-C when it started (not the command: joblib may run the
    jobs in the command's own process, which keeps its handler)."""
    return not _process["command"] and _process.setdefault(
        "obeys", signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    )


@contextlib.contextmanager
def only_during_jobs() -> Iterator[None]:
    """In a sweep's worker process, around each job it runs: Ctrl-C interrupts the job, and is ignored between jobs.

    A terminal's Ctrl-C reaches every worker in the command's process group. One that found a worker in loky's own
    loop, not in a job (measuring its memory after a job: a garbage collection of up to a second), ended the worker
    with a traceback of loky's code; the command stops its workers itself once it has handled its own press."""
    if not _a_worker_that_obeys():
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def ignored_in_warm_up(between_jobs: bool) -> Iterator[None]:
    """In a sweep's worker process, its warm-up (imports, the tracking writer) ignores Ctrl-C, and so does the worker
    after it when `between_jobs` (its jobs obey it themselves: only_during_jobs). A press there was raised again in
    the command's warm-up thread, a traceback; the command stops its workers itself."""
    if not _a_worker_that_obeys():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        if not between_jobs:
            signal.signal(signal.SIGINT, previous)
