"""One seed for every random number generator a trial touches."""

from __future__ import annotations

import os
import random
import sys

import numpy as np

from mlexp.mxnet_engine import engine_variables
from mlexp.mxnet_import import import_mxnet


def seed_everything(seed: int, num_threads: int = 0, mxnet: bool = False, small_operators: bool = False) -> None:
    """Seed Python and NumPy, and MXNet for tasks that use it (importing it costs seconds); a task of small
    operators on one thread gets MXNet's synchronous engine (mlexp.mxnet_engine).

    Python's string hashing (PYTHONHASHSEED) is left alone: the interpreter reads it once at
    start-up, so setting it here would change nothing in this process, and same config and
    seed already give the same metrics in processes whose hash seeds differ (test_trial_run.py).
    """
    random.seed(seed)
    np.random.seed(seed)
    # the thread variables MXNet reads as it loads here are the trial's (mlexp.thread_limits.trial_threads)
    if "mxnet" not in sys.modules:  # MXNet picks its engine once, when it loads, for the whole process
        os.environ.update(engine_variables(small_operators, num_threads))
    if mxnet:
        import_mxnet().random.seed(seed)
