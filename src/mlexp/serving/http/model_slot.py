"""A model that can be swapped while requests use it: hot reload of a promoted registry champion."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("mlexp.serving")


class ModelSlot:
    """Holds (model, version label); a reload swaps both in one assignment, so in-flight requests keep their model.

    `load()` returns (model, version_label) and runs once here, so a service starts with a model or not at all.
    """

    def __init__(self, load: Callable[[], tuple[Any, str]]) -> None:
        self._load = load
        self._loaded: tuple[Any, str] = load()
        self._reloading = threading.Lock()
        self._stop = threading.Event()
        self._last_failure: str | None = None
        self._poller: threading.Thread | None = None

    @property
    def current(self) -> Any:
        """The model to answer a request with (read it once per request)."""
        return self._loaded[0]

    @property
    def version(self) -> str:
        return self._loaded[1]

    def reload_if_changed(self, probe: Callable[[], str]) -> bool:
        """Load and swap in the model when probe() names another version; a failure keeps the old model."""
        with self._reloading:
            try:
                if probe() == self.version:
                    return False
                loaded = self._load()
            except Exception as error:
                failure = f"{type(error).__name__}: {error}"
                if failure != self._last_failure:  # one line per new problem, not one per poll
                    logger.warning("model reload failed, still serving version %s: %s", self.version, failure)
                self._last_failure = failure
                return False
            self._last_failure = None
            previous, self._loaded = self.version, loaded
        logger.info("model reloaded: version %s replaces %s", self.version, previous)
        return True

    def start_polling(self, probe: Callable[[], str], interval_s: float) -> threading.Thread:
        """Call reload_if_changed(probe) every interval_s seconds on a daemon thread until stop_polling()."""

        def poll() -> None:
            while not self._stop.wait(interval_s):
                self.reload_if_changed(probe)

        self._poller = threading.Thread(target=poll, name="mlexp-model-reload", daemon=True)
        self._poller.start()
        return self._poller

    def stop_polling(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
