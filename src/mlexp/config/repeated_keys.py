"""A key or group given twice on one command line (`task=a ... task=b`): Hydra keeps the last without a word, so the
run would not be the one the first value asked for."""

from __future__ import annotations

from collections.abc import Callable

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.errors import HydraException

from mlexp import tasks
from mlexp.config.bounds import out_of_bounds
from mlexp.errors import ConfigError

# the error a run of `key=value` meets for a value the key's type cannot take (`model.epochs=abc`); None when it fits
TypeCheck = Callable[[str, str], ConfigError | None]
# the error a run meets for the key itself (`model.nope`, or `++model.nope`, which adds it); None when it exists
KeyCheck = Callable[[str], ConfigError | None]


def _any_type(key: str, value: str) -> ConfigError | None:
    return None


def _any_key(key: str) -> ConfigError | None:
    return None


def check_repeated_keys(
    overrides: list[Override],
    task: str | None = None,
    type_error: TypeCheck = _any_type,
    key_error: KeyCheck = _any_key,
) -> None:
    """Refuse a `key=value` or `++key=value` whose key an earlier one set: `++` sets an existing key as `=` does.
    `+key` adds a key and `~key` deletes one, and Hydra says itself what it cannot apply of them; a sweep's values
    (`-m model.epochs=1,2`) are one override. `task`: the run's, whose ranges judge the values a sweep would list, as
    `type_error` judges their types. A key that does not exist (`key_error`) is refused for that first: fixing the
    repeat alone would meet it next, and a sweep of the key would be no fix at all."""
    first: dict[str, Override] = {}
    for override in overrides:
        if override.type not in (OverrideType.CHANGE, OverrideType.FORCE_ADD):
            continue
        # with its package: `model@a=x` and `model@b=y` are two keys
        key = override.get_key_element().removeprefix("++")
        if key not in first:
            first[key] = override
            continue
        earlier = first[key]
        unknown = key_error(f"{'++' if earlier.type == OverrideType.FORCE_ADD else ''}{earlier.key_or_group}")
        raise unknown or _repeated(key, earlier, override, task, type_error)


def _repeated(key: str, earlier: Override, later: Override, task: str | None, type_error: TypeCheck) -> ConfigError:
    """The one line naming the key, both values and the fix."""
    values = [_value(earlier), _value(later)]
    if values[0] == values[1]:
        return ConfigError(f"{key}={values[0]} is given twice; keep one of them")
    fix = "keep one of them"
    # `8` and `8,16` sweep 8 once; only marks-free values split at their commas as the grammar does
    listed = list(dict.fromkeys(item for value in values for item in value.split(",")))
    if key == "task":  # a sweep runs one task: its record, table and best trial are that task's
        fix += "; to run each task, run one command per task"
    elif not key.startswith("hydra") and not any(mark in value for value in values for mark in "([{'\"$\\"):
        # the sweep's own check would refuse a value of the wrong type or out of the key's range: that value's line,
        # not a sweep that fails
        refused = _first_refused(key, listed, task, type_error)
        if refused is not None:
            fix += f"; {refused}"
        elif len(listed) > 1:
            # the ++ stays: a key the config lacks is swept only as one the run adds (`-m extra=2,3` is refused)
            swept = f"++{key}" if OverrideType.FORCE_ADD in (earlier.type, later.type) else key
            fix += f"; to run each value, sweep them: -m {swept}={','.join(listed)}"
    return ConfigError(
        f"{key} is given twice ({key}={values[0]} and {key}={values[1]}), and a run takes one value per key: {fix}"
    )


def _first_refused(key: str, values: list[str], task: str | None, type_error: TypeCheck) -> ConfigError | None:
    """The type and range checks a run of `key=value` meets (the task's bounds), for the first value that fails."""
    bound = tasks.get(task).bounds.get(key) if task is not None and task in tasks.load_all() else None
    parser = OverridesParser.create()
    for value in values:
        refused = type_error(key, value)
        if refused is None and bound is not None:
            try:
                refused = out_of_bounds(key, parser.parse_override(f"{key}={value}").value(), bound)
            except HydraException:
                continue  # not a value of the grammar: Hydra's own line says so when it is run
        if refused is not None:
            return refused
    return None


def _value(override: Override) -> str:
    """The value as typed (`1,2` for a sweep's)."""
    line = override.input_line
    return line.partition("=")[2] if line else override.get_value_element_as_str()
