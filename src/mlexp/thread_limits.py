"""compute.num_threads for one trial: the thread variables, and the thread pools already loaded, for its duration.

A library reads the thread variables once, when it loads: MXNet and its OpenMP, or a BLAS a stage loads first. But
NumPy's OpenBLAS is loaded before any trial starts (by mlexp, the command's libraries, a notebook), so the variables
alone left a single trial's NumPy, SciPy and scikit-learn work on every core whatever compute.num_threads said. A
trial therefore sets both: the variables, and the count of every pool already loaded (threadpoolctl).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

# the variables BLAS, OpenMP and MXNet read once, when they are first imported
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MXNET_CPU_WORKER_NTHREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# what a pool of each kind (threadpoolctl's internal_api) reads when it loads, the first one set winning
_READ_WHEN_LOADED = {
    "openblas": ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"),
    "mkl": ("MKL_NUM_THREADS", "OMP_NUM_THREADS"),
    "blis": ("BLIS_NUM_THREADS", "OMP_NUM_THREADS"),
}


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def trial_threads(num_threads: int) -> Iterator[None]:
    """Within: the thread variables and every thread pool already loaded are set to num_threads (0: left as they
    are). threadpoolctl sets an OpenMP pool's count for the calling thread, the trial's own.

    On exit the variables and the pools that were loaded are put back, and a pool first loaded during the trial gets
    what the restored variables would have given it: a notebook's next trial (mlexp.run) does not inherit the limit.
    MXNet's engine and worker threads stay as the process's first MXNet trial set them (MXNet reads them once).
    """
    if num_threads <= 0:
        yield
        return
    from threadpoolctl import ThreadpoolController

    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    controller = ThreadpoolController()
    loaded = {pool.filepath for pool in controller.lib_controllers}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(num_threads)))
    try:
        with controller.limit(limits=num_threads):
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for pool in ThreadpoolController().lib_controllers:
            if pool.filepath not in loaded:
                pool.set_num_threads(_when_loaded(pool.internal_api))


def _when_loaded(kind: str) -> int:
    """The threads a pool of this kind takes when it loads under the current variables."""
    for name in _READ_WHEN_LOADED.get(kind, ("OMP_NUM_THREADS",)):
        value = os.environ.get(name, "").split(",")[0].strip()  # OpenMP's may be a list, one per nesting level
        if value.isdigit() and int(value) > 0:
            # OpenBLAS takes no more threads than cores when it loads; set_num_threads would exceed them
            return min(int(value), cores()) if kind == "openblas" else int(value)
    return cores()
