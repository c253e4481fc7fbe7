"""The config groups conf/ offers and whether an override may choose an option of one: an option that does not
exist (with the closest one), another task's option or group, a list, null or a number, `~group`, `+group` for a
group the run composes already; and a key given twice, judged first."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml
from hydra import compose
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from mlexp import tasks
from mlexp.config.known_keys import check_named
from mlexp.config.repeated_keys import KeyCheck, TypeCheck, check_repeated_keys
from mlexp.config.search_path import ConfigFolder, config_folders, initialized, option_file
from mlexp.config.task_groups import foreign_group
from mlexp.config.value_checks import error_applying, misfit
from mlexp.errors import ConfigError, a_or_an, did_you_mean

_ABSENT = object()


def config_groups(conf_dir: Path) -> dict[str, list[str]]:
    """Each config group and its options (the YAML files in its folder): conf/'s, and those of the other folders the
    command's config search path holds (config_folders: `--config-dir`, `hydra.searchpath`), as Hydra composes them."""
    groups: dict[str, set[str]] = {}
    for config_folder in config_folders(conf_dir):
        if not config_folder.path.is_dir():
            continue  # a search path entry that is not there: Hydra skips it too
        for folder in config_folder.path.iterdir():
            if folder.is_dir() and folder.name != "hydra":
                groups.setdefault(folder.name, set()).update(p.stem for p in folder.glob("*.yaml"))
    return {group: sorted(groups[group]) for group in sorted(groups)}


def conf_file(path: Path) -> Any:
    """A YAML file of conf/, read from the file: a syntax error's mark then names it (the CLI's one line says where)."""
    with path.open(encoding="utf-8") as file:
        return yaml.safe_load(file)


def check_group_options(
    conf_dir: Path, overrides: list[str], *, check_options: bool = True
) -> tuple[list[str], list[str] | None]:
    """Check the group options; return the group choices and the value keys to check (None: nothing to check)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    groups = config_groups(conf_dir)
    task = _chosen_task(conf_dir, parsed) if check_options else None
    if check_options:
        check_repeated_keys(parsed, task, *_repeat_checks(conf_dir, parsed, groups, task))

    def run_task() -> str | None:  # the task, worked out only for the rare override that needs it
        return task if check_options else _chosen_task(conf_dir, parsed)

    choices, values, swept = [], [], False
    for override in parsed:
        key = override.key_or_group
        if key in groups and override.is_delete():
            raise ConfigError(
                f"~{key}: every run composes {a_or_an(key)} option, so it cannot be deleted; choose another with "
                f"{key}=<option>"
            )
        value = override.value()
        if key in groups and isinstance(value, list):
            # Hydra merges a list's options in one config (the last one's task wins): mlexp runs one of each
            listed = ",".join(str(option) for option in value)
            line = override.input_line or key
            if key == "task":  # a sweep runs one task (its record, table and best trial are that task's)
                raise ConfigError(f"{line}: a run composes one task, not a list; run one command per task")
            raise ConfigError(
                f"{line}: {key} takes one option, not a list; to run each, add -m and write {key}={listed}"
            )
        odd = _not_an_option_name(override) if key in groups and not override.is_delete() else None
        if odd is not None:
            # Hydra's own report was a ValueError traceback: "Config group override must be a string or a list"
            chosen = run_task()
            options = sorted(_allowed(conf_dir, parsed, chosen).get(key) or groups[key])
            line = override.input_line or f"{key}={odd}"
            foreign = foreign_group(key, odd, chosen) if chosen is not None else None
            if foreign is not None:  # engine=null with a task that has no engine
                raise foreign
            if odd == "null":
                why = f"{line}: every run composes {a_or_an(key)} option, so it cannot be null"
            else:
                why = f"{key}={odd} is not {a_or_an(key)} option" + (f" (in {line})" if line != f"{key}={odd}" else "")
            raise ConfigError(f"{why}; choose one of: {', '.join(options)}")
        if key in groups and (override.is_force_add() or override.is_add()):
            _check_group_addition(conf_dir, override, run_task())
        if check_options and key in groups:
            for option in _options(override):
                _check_option(conf_dir, groups, key, option, task, parsed)
        if key.split("/")[0] in groups or key.startswith("hydra"):
            swept = swept or override.is_sweep_override()
            choices.append(override.input_line or f"{key}={override.get_value_element_as_str()}")
        elif override.is_delete():
            values.append(f"~{key}")  # checked as a deletion: a key mlexp reads cannot go
        elif override.is_force_add():
            values.append(f"++{key}")  # checked as an addition, and echoed as the command wrote it
        elif override.is_add():
            values.append(f"+{key}")  # checked as an addition: a section of fixed settings takes no new one
        else:
            values.append(key)
    if swept or not values:
        return choices, None  # one composition cannot stand for several; Hydra checks each job
    return choices, values


def _repeat_checks(
    conf_dir: Path, parsed: list[Override], groups: dict[str, list[str]], task: str | None
) -> tuple[TypeCheck, KeyCheck]:
    """The type check a run of `key=value` meets (the schema's), for a value of a key given twice, and the key check
    (check_named) of that key: tried on the config the command's group choices compose, composed once and only when a
    repeated key needs it. A task that does not exist is that task's error first: without it, no key has a type."""

    @functools.cache
    def composed() -> DictConfig | None:
        if task is not None:
            _check_task(groups["task"], task)
        choices = [
            o.input_line or f"{o.key_or_group}={o.get_value_element_as_str()}"
            for o in parsed
            if o.key_or_group.split("/")[0] in groups
        ]
        try:
            with initialized(conf_dir):
                return compose("config", overrides=choices)
        except HydraException:
            return None  # a swept or wrong choice: the run's own checks say what

    def type_error(key: str, value: str) -> ConfigError | None:
        cfg = None if key.split("/")[0] in groups else composed()
        if cfg is None or OmegaConf.select(cfg, key, default=_ABSENT, throw_on_resolution_failure=False) is _ABSENT:
            return None  # a group choice, or a key the key check names
        try:
            override = OverridesParser.create().parse_override(f"{key}={value}")
        except HydraException:
            return None  # not a value of the grammar: Hydra's own line says so when it is run
        error = error_applying(copy.deepcopy(cfg), override)
        return None if error is None else misfit(f"{key}={value}", key, value, error)

    def key_error(key: str) -> ConfigError | None:
        name = key.lstrip("+")
        cfg = None if name.split("/")[0] in groups or name.startswith("hydra") else composed()
        try:
            if cfg is not None:  # Hydra's own settings are not in the composed config
                check_named(cfg, key)
        except ConfigError as error:
            return error
        return None

    return type_error, key_error


def _not_an_option_name(override: Override) -> str | None:
    """A group's value that names no option (null, a number, true), as it was written; None for names and the rest.
    The options are files, whose names Hydra's grammar reads as strings unless they look like another type."""
    value: Any = override.value()
    for one in value.list if isinstance(value, ChoiceSweep) else [value]:
        if one is None:
            return "null"
        if isinstance(one, bool):
            return str(one).lower()
        if isinstance(one, (int, float)):
            return str(one)
    return None


def _options(override: Override) -> list[str]:
    """The group options an override chooses: one, or each of a sweep's list (`model=ssd,yolo3`)."""
    value: Any = override.value()
    if isinstance(value, ChoiceSweep):
        return [str(option) for option in value.list if isinstance(option, str)]
    return [value] if isinstance(value, str) else []


def _chosen_task(conf_dir: Path, parsed: list[Override]) -> str | None:
    """The task a run composes: `task=<name>`, else config.yaml's default; None when tasks are swept."""
    for override in parsed:
        if override.key_or_group == "task":
            value = override.value()
            return value if isinstance(value, str) else None
    for entry in (conf_file(conf_dir / "config.yaml") or {}).get("defaults", []):
        if isinstance(entry, dict) and isinstance(entry.get("task"), str):
            return str(entry["task"])
    return None


def _check_group_addition(conf_dir: Path, override: Override, task: str | None) -> None:
    """`+group=option` adds a group the run does not compose; one it composes already (every run's model, a task's
    engine) fails in Hydra as "Multiple values for model", and `++group=` is not Hydra's at all."""
    group = override.key_or_group
    line = override.input_line or f"+{group}"
    if override.is_force_add():
        raise ConfigError(f"{line}: ++ adds keys, not a group's option; choose the option with {group}=<option>")
    if group in _composed_groups(conf_dir, task):
        raise ConfigError(f"{line}: every run of this task composes {a_or_an(group)} option already; choose another "
                          f"with {line.lstrip('+')} (no +)")  # fmt: skip


def _composed_groups(conf_dir: Path, task: str | None) -> set[str]:
    """The groups conf/config.yaml's defaults and the task's compose."""
    files = [conf_dir / "config.yaml", *([option_file(conf_dir, "task", task)] if task else [])]
    groups = set()
    for path in [path for path in files if path is not None and path.exists()]:
        for entry in (conf_file(path) or {}).get("defaults", []):
            if isinstance(entry, dict):
                groups |= {str(name).removeprefix("override ").strip("/") for name in entry}
    return groups


def _check_option(
    conf_dir: Path, groups: dict[str, list[str]], group: str, option: str, task: str | None, parsed: list[Override]
) -> None:
    """`group=option` names a file of the group in a folder the command searches. Whether the task runs it is the
    composed config's check (validate.check_choices: `task.choices`); an option no folder has lists the task's."""
    if group == "task":
        _check_task(groups["task"], option)
        return
    if option not in groups[group]:
        allowed = _allowed(conf_dir, parsed, task).get(group)
        of_task = f" of task {task!r}" if allowed else ""
        options = sorted(allowed or groups[group])
        folders = config_folders(conf_dir)
        searched = f" (searched {', '.join(map(_as_searched, folders))})" if len(folders) > 1 else ""
        raise ConfigError(
            f"{group}={option!r} is not {a_or_an(group)} option{of_task}{searched}; {did_you_mean(option, options)}"
            f"choose one of: {', '.join(options)}"
        )
    error = foreign_group(group, option, task) if task is not None else None
    if error is not None:
        raise error


def _as_searched(folder: ConfigFolder) -> str:
    """A folder as the line of an option no folder has names it. One that is not there, a hydra.searchpath entry
    Hydra skips with only a warning (a missing --config-dir is refused before), is more likely the mistake than the
    option's name: the line says it is missing."""
    return folder.shown if folder.path.is_dir() else f"{folder.shown} (no such folder)"


def _check_task(options: list[str], option: str) -> None:
    if option not in options:
        raise ConfigError(
            f"task={option!r} is not a task; {did_you_mean(option, options)}choose one of: {', '.join(options)}"
        )
    if option not in tasks.load_all():
        raise ConfigError(
            f"task={option!r} has conf/task/{option}.yaml but no package registers it; install its package "
            f"(entry point group {tasks.ENTRY_POINT_GROUP!r}) or add src/mlexp/tasks/{option}/"
        )


def task_choices(conf_dir: Path, task: str | None) -> dict[str, list[str]]:
    """The group options conf/task/<task>.yaml accepts (`task.choices`); read only to explain an error."""
    path = option_file(conf_dir, "task", task) if task is not None else None
    if path is None:
        return {}
    choices = ((conf_file(path) or {}).get("task") or {}).get("choices") or {}
    return {str(group): [str(option) for option in options] for group, options in choices.items()}


def _allowed(conf_dir: Path, parsed: list[Override], task: str | None) -> dict[str, list[str]]:
    """The task's choices as the command has them: conf/task/<task>.yaml's, or a list the command gives
    (`task.choices.model=[mlp_regressor,my_net]`, the way to run an option of one's own with a task)."""
    allowed = task_choices(conf_dir, task)
    for override in parsed:
        group = override.key_or_group.removeprefix("task.choices.")
        value = override.value()
        if group != override.key_or_group and not override.is_delete() and isinstance(value, list):
            allowed[group] = [str(option) for option in value]
    return allowed
