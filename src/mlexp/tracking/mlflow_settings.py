"""MLflow settings for one thread's calls inside a block, the process's environment left as it is.

MLflow reads its settings (HTTP retries and timeout, artifact progress bars) from environment variables at each
call, through the `get()` of its `mlflow.environment_variables` objects. Setting a variable for a while and removing
it afterwards broke other threads (a service's request thread listing the environment for proxies, as `requests`
does, met the removed variable: KeyError), gave the setting to every thread's calls, and to any process started
meanwhile, which took it for the user's own. Here a block's values answer those objects' reads made from the
block's thread only.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

_THIS_THREAD = threading.local()  # .blocks: this thread's blocks in force, (token, values), innermost last
_EVERY_THREAD: list[tuple[object, dict[str, str]]] = []  # blocks for every thread's reads, innermost last
_LOCK = threading.Lock()


@contextlib.contextmanager
def mlflow_settings_here(values: Mapping[str, str], *, every_thread: bool = False) -> Iterator[None]:
    """`values` (MLflow variable name -> value as text) for MLflow's reads inside the block: from this thread only,
    or with `every_thread` from any (MLflow's own worker threads download a model's files: a quiet download must
    be quiet there). This thread's blocks come first; the innermost block holding a name wins, and blocks may end in
    any order."""
    from mlflow import environment_variables

    for name in values:
        _answer_from_blocks(getattr(environment_variables, name))
    token = object()
    with _LOCK:
        blocks = _EVERY_THREAD if every_thread else _blocks()
        blocks.append((token, dict(values)))
    try:
        yield
    finally:
        with _LOCK:
            blocks[:] = [(t, v) for t, v in blocks if t is not token]


def _blocks() -> list[tuple[object, dict[str, str]]]:
    if not hasattr(_THIS_THREAD, "blocks"):
        _THIS_THREAD.blocks = []
    blocks: list[tuple[object, dict[str, str]]] = _THIS_THREAD.blocks
    return blocks


def _answer_from_blocks(variable: Any) -> None:
    """Make the variable's `get()` answer the blocks first, typed as MLflow types its value."""
    with _LOCK:
        if getattr(variable, "_read_from_blocks", False):
            return
        read_environment = variable.get

        def get() -> Any:
            for _, values in [*reversed(getattr(_THIS_THREAD, "blocks", ())), *reversed(_EVERY_THREAD)]:
                if variable.name in values:
                    value = values[variable.name]
                    return value.lower() in ("true", "1") if variable.type is bool else variable.type(value)
            return read_environment()

        variable.get = get
        variable._read_from_blocks = True
