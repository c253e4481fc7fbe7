"""Ctrl-C stops a run once: a second press while it closes its records is said, not obeyed.

A user who pressed Ctrl-C twice (or held it) interrupted the closing itself: the sweep's record, and the trials and
components it was marking KILLED, stayed RUNNING in the store, which only a hand edit of the store could end
(`mlexp delete` refuses an experiment with running runs). Closing takes seconds; a press meanwhile prints a line
(once), and SIGTERM still stops the command at once.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
from types import FrameType

_state = {"stopping": False, "said": False}
# trials this process said it marked KILLED: the sweep's closing line need not name them again
_announced_killed: set[str] = set()


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
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _press)


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
