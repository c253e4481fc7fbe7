"""The Trackers whose flusher thread runs, held over a fork (a DataLoader starting its workers).

A fork waits for their sends in progress: the child's copy of the journal's file buffer then holds no record the
child could write again, and its locks are free. A send that hangs (a store that does not answer) must not hang the
fork: past FORK_WAIT_S it goes ahead without that Tracker's lock.
"""

from __future__ import annotations

import os
import threading
from typing import Protocol


class Flushing(Protocol):
    def hold_for_fork(self, timeout: float) -> bool: ...

    def release_after_fork(self) -> None: ...

    def reset_in_child(self) -> None: ...


FORK_WAIT_S = 10.0
_flushing: set[Flushing] = set()
_lock = threading.Lock()  # taken after a Tracker's lock, never before
_held: list[Flushing] = []


def started(tracker: Flushing) -> None:
    with _lock:
        _flushing.add(tracker)


def stopped(tracker: Flushing) -> None:
    with _lock:
        _flushing.discard(tracker)


def _before_fork() -> None:
    with _lock:
        flushing = list(_flushing)
    for tracker in flushing:
        if tracker.hold_for_fork(FORK_WAIT_S):
            _held.append(tracker)  # only what was taken is released after


def _after_fork_in_parent() -> None:
    for tracker in _held:
        tracker.release_after_fork()
    _held.clear()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    for tracker in {*_held, *_flushing}:
        tracker.reset_in_child()
    _flushing.clear()
    _held.clear()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)
