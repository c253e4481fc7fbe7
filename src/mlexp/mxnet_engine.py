"""Which MXNet engine runs a trial's operators: chosen in the environment, which MXNet reads once, at import.

MXNet's default engine hands every operator to a worker thread and waits for it. For a network whose operators
take microseconds (the abalone regressor: 20 epochs, 1.85 CPU s with the hand-off, 1.45 s without) that hand-off
is about a fifth of a trial's CPU, and with one thread per trial (two parallel trials on 2 cores) no idle core
absorbs it. Its synchronous engine runs the same operators in the same order in the calling thread: the same
results. For convolutional networks the worker thread overlaps Python with the operators, so they keep it.
"""

from __future__ import annotations

import os

ENGINE_VARIABLE = "MXNET_ENGINE_TYPE"
SYNCHRONOUS_ENGINE = "NaiveEngine"


def engine_variables(small_operators: bool, threads: int) -> dict[str, str]:
    """The engine variable for a trial of `threads` threads, or nothing: the user's own setting always stays."""
    if small_operators and threads == 1 and ENGINE_VARIABLE not in os.environ:
        return {ENGINE_VARIABLE: SYNCHRONOUS_ENGINE}
    return {}
