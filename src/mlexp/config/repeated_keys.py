"""A key or group given twice on one command line (`task=a ... task=b`): Hydra keeps the last without a word, so the
run would not be the one the first value asked for."""

from __future__ import annotations

from hydra.core.override_parser.types import Override, OverrideType

from mlexp.errors import ConfigError


def check_repeated_keys(overrides: list[Override]) -> None:
    """Refuse a `key=value` or `++key=value` whose key an earlier one set: `++` sets an existing key as `=` does.
    `+key` adds a key and `~key` deletes one, and Hydra says itself what it cannot apply of them; a sweep's values
    (`-m model.epochs=1,2`) are one override."""
    first: dict[str, Override] = {}
    for override in overrides:
        if override.type not in (OverrideType.CHANGE, OverrideType.FORCE_ADD):
            continue
        # with its package: `model@a=x` and `model@b=y` are two keys
        key = override.get_key_element().removeprefix("++")
        if key not in first:
            first[key] = override
            continue
        raise _repeated(key, first[key], override)


def _repeated(key: str, earlier: Override, later: Override) -> ConfigError:
    """The one line naming the key, both values and the fix."""
    values = [_value(earlier), _value(later)]
    if values[0] == values[1]:
        return ConfigError(f"{key}={values[0]} is given twice; keep one of them")
    fix = "keep one of them"
    if key == "task":  # a sweep runs one task: its record, table and best trial are that task's
        fix += "; to run each task, run one command per task"
    elif not key.startswith("hydra") and not any(mark in value for value in values for mark in "([{'\"$"):
        fix += f"; to run each value, sweep them: -m {key}={','.join(values)}"
    return ConfigError(
        f"{key} is given twice ({key}={values[0]} and {key}={values[1]}), and a run takes one value per key: {fix}"
    )


def _value(override: Override) -> str:
    """The value as typed (`1,2` for a sweep's)."""
    line = override.input_line
    return line.partition("=")[2] if line else override.get_value_element_as_str()
