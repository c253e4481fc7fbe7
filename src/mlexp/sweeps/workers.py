"""Parallel sweep workers: thread counts set before they start, their start-up paid while the parent works.

Each joblib worker is a process of its own that imports Hydra, mlexp, the task's libraries and MXNet,
and starts its tracking writer, once. The sweep callback starts them in the background as soon as the
sweep begins, so they import while the parent opens the sweep's record; the launcher then reuses them.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import os
import threading
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mlexp.interrupts import ignored_in_warm_up
from mlexp.mxnet_engine import engine_variables
from mlexp.thread_limits import THREAD_VARIABLES, cores


def parallel_jobs(config: DictConfig) -> int:
    """How many trials the sweep runs at once: the joblib launcher's n_jobs, else one."""
    launcher = config.hydra.get("launcher") or {}
    if "joblib" not in str(launcher.get("_target_", "")):
        return 1
    n_jobs = int(launcher.get("n_jobs") or 1)
    return cores() if n_jobs < 0 else max(1, n_jobs)


def threads_per_trial(config: DictConfig) -> int:
    """compute.num_threads, or (0, the default) the machine's cores shared by the trials that run at once."""
    chosen = int(config.compute.num_threads or 0)
    return chosen if chosen > 0 else max(1, cores() // parallel_jobs(config))


def thread_variables(config: DictConfig) -> dict[str, str]:
    """The thread variables the sweep gives its jobs: their share of the cores. A value set in the environment is
    kept unless compute.num_threads names one. A task of small operators on one thread each also gets MXNet's
    synchronous engine (mlexp.mxnet_engine)."""
    if parallel_jobs(config) == 1 and not config.compute.num_threads:
        return {}  # one trial at a time: the libraries' own default (every core) is the share
    from mlexp import tasks

    threads = threads_per_trial(config)
    shares = {name: str(threads) for name in THREAD_VARIABLES if config.compute.num_threads or name not in os.environ}
    return {**shares, **engine_variables(tasks.get(config.task.name).small_mxnet_operators, threads)}


def set_thread_variables(config: DictConfig) -> None:
    """Give the sweep's workers their share of the cores before they import NumPy or MXNet (they inherit these)."""
    os.environ.update(thread_variables(config))


def joblib_arguments(config: DictConfig) -> dict[str, Any]:
    """The joblib.Parallel arguments of the sweep's launcher (mlexp.sweeps.joblib_launcher): the same reuse the workers.

    One job per dispatch: a worker that dies then cuts its own job only, never a batch of queued ones.
    """
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg

    launcher = OmegaConf.to_container(config.hydra.launcher, resolve=True)
    assert isinstance(launcher, dict)
    arguments = {str(k): v for k, v in launcher.items() if k != "_target_"}
    arguments["backend"] = "loky"  # as Hydra's: its threading backend cannot run Hydra jobs
    arguments["batch_size"] = 1
    process_joblib_cfg(arguments)
    return arguments


def exit_without_collecting() -> None:
    """At this worker's exit, skip collecting what its trials imported and made: the command waits for its workers
    to exit, and MXNet, matplotlib and pandas leave millions of objects (0.40 s to exit with them, 0.07 s with
    them frozen). Registered once per process however often it is called. Exit handlers run last registered
    first, so it may run before others (the tracking writer's close): it only skips the final collection."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


def prepare_worker(root: str, stages_module: str, uses_mxnet: bool, own_launcher: bool) -> int:
    """In a worker: import what every trial needs and start the tracking writer; returns the worker's pid.
    `own_launcher`: mlexp's launcher runs the jobs (each obeys Ctrl-C itself), not Hydra's."""
    from mlexp.tracking.journal_writer import start_early

    with ignored_in_warm_up(between_jobs=own_launcher):
        exit_without_collecting()
        start_early(Path(root))
        importlib.import_module("mlexp.cli")
        importlib.import_module("mlexp.runner")
        if uses_mxnet:  # before the task's modules, which import it the usual way
            from mlexp.mxnet_import import import_mxnet

            import_mxnet()
        importlib.import_module(stages_module)
    return os.getpid()


def start_workers(config: DictConfig) -> threading.Thread | None:
    """Start the joblib workers in the background; None when the sweep runs its trials in this process."""
    n_jobs = parallel_jobs(config)
    if n_jobs == 1 or "joblib" not in str(config.hydra.launcher.get("_target_", "")):
        return None
    from joblib import Parallel, delayed

    from mlexp import tasks

    task = tasks.get(config.task.name)
    root = str(Path(config.paths.root).resolve())
    arguments = joblib_arguments(config)
    own_launcher = "mlexp_joblib_launcher" in str(config.hydra.launcher._target_)

    def warm() -> None:
        # only a head start: if it fails (or Ctrl-C stops it), the launcher starts the workers itself
        with contextlib.suppress(BaseException):
            Parallel(**arguments)(
                delayed(prepare_worker)(root, task.stages_module, task.uses_mxnet, own_launcher) for _ in range(n_jobs)
            )

    thread = threading.Thread(target=warm, name="mlexp-sweep-workers", daemon=True)
    thread.start()
    return thread
