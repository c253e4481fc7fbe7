"""Config groups a task brings of its own, such as anomaly_detection's `engine`.

The framework's schema holds only the groups every task shares. A task declares its own
groups here, from its config.py; `register_schemas` adds them to the root schema once the
tasks are loaded, and the task selects the group's default in its conf/task/<task>.yaml
(`- /engine: duckdb` in its defaults list). Another task's config never selects the group,
so `engine=athena` with that task is refused, naming the tasks that have it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.core.config_store import ConfigStore

from mlexp.config.schema import shared_groups
from mlexp.errors import ConfigError

# group -> the tasks that declare it
TASK_GROUPS: dict[str, set[str]] = {}
# (group, option) -> its schema: two tasks may share a group, not give one option two schemas
_SCHEMAS: dict[tuple[str, str], type] = {}


def declare_group(task: str, group: str, options: Mapping[str, type]) -> None:
    """Declare `group` a config group of `task`, each option validated by its dataclass schema.

    The schemas are stored as `schema/<group>/<option>`, the name each option's YAML puts
    first in its defaults list (`- /schema/engine/duckdb@_here_`).
    """
    if group in shared_groups():
        raise ValueError(f"task {task!r} declares {group!r}, which every task shares; name its own group differently")
    store = ConfigStore.instance()
    for option, schema in options.items():
        if _SCHEMAS.setdefault((group, option), schema) is not schema:
            raise ValueError(f"task {task!r} gives {group}={option} a second schema; name its option differently")
        store.store(group=f"schema/{group}", name=option, node=schema)
    TASK_GROUPS.setdefault(group, set()).add(task)


def foreign_group(group: str, option: str | None, task: str) -> ConfigError | None:
    """The error for choosing `group=option` with a task that does not have that group; None when it does."""
    missing = _missing_group(group, task)
    return None if missing is None else ConfigError(f"{missing}; remove {group}={option}")


def foreign_key(key: str, task: str) -> ConfigError | None:
    """The error for setting `group.key` with a task that does not have that group; None when it does."""
    missing = _missing_group(key.split(".")[0], task)
    return None if missing is None else ConfigError(f"{key}: {missing}; remove {key}")


def _missing_group(group: str, task: str) -> str | None:
    owners = TASK_GROUPS.get(group)
    if owners is None or task in owners:
        return None
    which = ("task " if len(owners) == 1 else "tasks ") + ", ".join(sorted(owners))
    return f"task {task!r} has no {group} group ({group} belongs to {which})"


def unselected_groups(section: Mapping[Any, object]) -> set[str]:
    """Other tasks' groups in a composed config: present (null) for the schema, meaningless for this task."""
    return {group for group in TASK_GROUPS if group in section and section[group] is None}
