"""Ctrl-C in the command's process: the first press stops it, later ones are said, one a finaliser swallowed counts."""

from __future__ import annotations

import os
import signal
import time

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
