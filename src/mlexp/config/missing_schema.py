"""An option's YAML that names a schema nothing stored: most often a task package whose __init__.py does not import
its config module, so the schemas that module stores in Hydra's ConfigStore never exist.

Hydra says `In 'backend/fast': Could not load 'schema/backend/fast'.` and lists its search path, which points
nowhere near the fix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from hydra.errors import MissingConfigException

from mlexp import tasks
from mlexp.config.schema import shared_groups
from mlexp.errors import ConfigError

_ASKED_BY = re.compile(r"In '(?P<asking>[^']+)': Could not load '(?P<schema>schema/(?P<group>.+)/(?P<option>[^/']+))'")


def missing_schema(error: BaseException, conf_dir: Path, task: str | None) -> ConfigError | None:
    """The one-line error for a composition of `task` that failed on a schema no code stored; None for other errors."""
    found = _ASKED_BY.match(str(error)) if isinstance(error, MissingConfigException) else None
    if found is None:
        return None
    group, option = found["group"], found["option"]
    asking = Path(conf_dir.name, f"{found['asking']}.yaml")
    if not (conf_dir / f"{found['asking']}.yaml").is_file():  # a schema asking for another: not a file of conf/
        asking = Path(found["asking"])
    if group in shared_groups():
        store = f'ConfigStore.instance().store(group="schema/{group}", name="{option}", node=<its dataclass>)'
    else:
        owner = task or "<task>"
        store = f'mlexp.config.declare_group("{owner}", "{group}", {{"{option}": <its dataclass>}})'
    registered = tasks.TASKS.get(task or "")
    package = registered.stages_module.rpartition(".")[0] if registered is not None else None
    where = f"the __init__.py of {package} (`from {package} import config`)" if package else "the task's __init__.py"
    return ConfigError(
        f"{asking} asks for the schema {found['schema']}, which no loaded code stores: store it in the task's "
        f"config.py with {store}, and import that module in {where}"
    )


def task_given(arguments: Sequence[str]) -> str | None:
    """The `task=` of a command's arguments, if one names it."""
    return next((a.partition("=")[2] for a in arguments if a.startswith("task=")), None)
