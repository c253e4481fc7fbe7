"""One seed for every random number generator a trial touches."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int, num_threads: int = 0, mxnet: bool = False) -> None:
    """Seed Python and NumPy, and MXNet for tasks that use it (importing it costs seconds)."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if num_threads > 0:
        os.environ["MXNET_CPU_WORKER_NTHREADS"] = str(num_threads)
        os.environ["OMP_NUM_THREADS"] = str(num_threads)
    if mxnet:
        import mxnet as mx

        mx.random.seed(seed)
