"""Leave the Python process as a call found it: a notebook kernel runs many trials and sweeps in one process."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

# (logger, level, handlers, propagate, disabled)
LoggerState = tuple[logging.Logger, int, list[logging.Handler], bool, bool]


@contextmanager
def left_as_found(env: Mapping[str, str], argv: list[str]) -> Iterator[None]:
    """Run the body with `env` set and `argv` as sys.argv, then restore what it changed.

    Restored: the working directory, the whole environment (the sweep callback's MLEXP_SWEEP_*), sys.argv,
    sys.warnoptions (handed to the processes a sweep starts), every logger's handlers and level (Hydra configures
    the root logger for each job) and Hydra's globals.
    """
    cwd, environ, old_argv, warnoptions = os.getcwd(), dict(os.environ), sys.argv, list(sys.warnoptions)
    loggers = _logging_state()
    global_hydra = GlobalHydra.instance()
    hydra = global_hydra.hydra if global_hydra.is_initialized() else None
    hydra_cfg = HydraConfig.instance().cfg
    global_hydra.clear()  # Hydra refuses to start while a caller's `initialize(...)` block is open
    os.environ.update(env)
    sys.argv = list(argv)
    try:
        yield
    finally:
        sys.argv = old_argv
        sys.warnoptions[:] = warnoptions
        _restore_environ(environ)
        os.chdir(cwd)
        _restore_logging(loggers)
        # the singleton may have been replaced meanwhile (Hydra's `initialize_config_dir` puts a copy back
        # when its block exits): clear whichever instance is current, not the one found at the start
        current = GlobalHydra.instance()
        current.clear()
        if hydra is not None:
            current.initialize(hydra)
        HydraConfig.instance().cfg = hydra_cfg


def _restore_environ(saved: dict[str, str]) -> None:
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    for key, value in saved.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def _logging_state() -> list[LoggerState]:
    manager: Any = logging.Logger.manager
    loggers = [logging.getLogger(), *(lg for lg in manager.loggerDict.values() if isinstance(lg, logging.Logger))]
    return [(lg, lg.level, list(lg.handlers), lg.propagate, lg.disabled) for lg in loggers]


def _restore_logging(state: list[LoggerState]) -> None:
    kept = {id(handler) for _, _, handlers, _, _ in state for handler in handlers}
    for logger, level, handlers, propagate, disabled in state:
        for handler in logger.handlers:
            if id(handler) not in kept:
                handler.close()  # Hydra's job log file would stay open, one more per call
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled
