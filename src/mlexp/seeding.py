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


# What MXNet imports only for features no task here uses, each inside a try that keeps going without it:
# scikit-learn for the legacy FeedForward API's base class (mxnet.model), scipy.stats for quantisation's
# entropy calibration (mxnet.contrib.quantization, mxnet.test_utils), scipy.sparse for NDArray <-> SciPy
# conversion (mxnet.ndarray.sparse, mxnet.ndarray.utils). Together about a third of MXNet's start-up.
SKIPPED_BY_MXNET = ("sklearn", "scipy.stats", "scipy.sparse")


class _Skipped(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if any(fullname == name or fullname.startswith(name + ".") for name in SKIPPED_BY_MXNET):
            raise ImportError(f"{fullname} is not loaded while MXNet loads")


def import_mxnet() -> ModuleType:
    """MXNet, loaded without the optional imports in SKIPPED_BY_MXNET that nothing has loaded yet.

    Every trial and sweep worker of an MXNet task pays MXNet's start-up. A task that uses one of those
    libraries imports it later as usual (MXNet keeps its fallback for the feature it would have served).
    setuptools' distutils shim is also set aside meanwhile: MXNet only compares versions with
    distutils.version, and the shim's distutils loads setuptools and pkg_resources for it (about 0.3 s).
    """
    if "mxnet" in sys.modules:
        return importlib.import_module("mxnet")
    shims = [finder for finder in sys.meta_path if type(finder).__module__ == "_distutils_hack"]
    finders = sys.meta_path[:]
    sys.meta_path[:] = [_Skipped(), *(f for f in finders if f not in shims)]
    try:
        return importlib.import_module("mxnet")
    finally:
        added = [f for f in sys.meta_path if f not in finders and not isinstance(f, _Skipped)]
        sys.meta_path[:] = added + finders
