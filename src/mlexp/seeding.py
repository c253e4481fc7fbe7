"""One seed for every random number generator a trial touches."""

from __future__ import annotations

import importlib
import importlib.abc
import os
import random
import sys
from types import ModuleType

import numpy as np


def seed_everything(seed: int, num_threads: int = 0, mxnet: bool = False) -> None:
    """Seed Python and NumPy, and MXNet for tasks that use it (importing it costs seconds).

    Python's string hashing (PYTHONHASHSEED) is left alone: the interpreter reads it once at
    start-up, so setting it here would change nothing in this process, and same config and
    seed already give the same metrics in processes whose hash seeds differ (test_trial_run.py).
    """
    random.seed(seed)
    np.random.seed(seed)
    if num_threads > 0:
        # read by MXNet and OpenMP when they load, which in a trial happens after this
        os.environ["MXNET_CPU_WORKER_NTHREADS"] = str(num_threads)
        os.environ["OMP_NUM_THREADS"] = str(num_threads)
    if mxnet:
        import_mxnet().random.seed(seed)


class _WithoutSklearn(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname == "sklearn" or fullname.startswith("sklearn."):
            raise ImportError(f"{fullname} is not loaded while MXNet loads")


def import_mxnet() -> ModuleType:
    """MXNet, loaded without scikit-learn when nothing has loaded that yet.

    mxnet.model imports sklearn only to give its legacy FeedForward API a BaseEstimator base, and keeps a
    plain class when the import fails. That import is about a fifth of MXNet's start-up (0.8 of 4-5 CPU s
    here), paid by every trial and sweep worker of a task that never uses scikit-learn. A task that does
    imports it later as usual.
    """
    if "mxnet" in sys.modules or "sklearn" in sys.modules:
        return importlib.import_module("mxnet")
    blocker = _WithoutSklearn()
    sys.meta_path.insert(0, blocker)
    try:
        return importlib.import_module("mxnet")
    finally:
        sys.meta_path.remove(blocker)
