"""Whether the keys an override names exist: an unknown key in one line with the closest one and the keys that do,
a setting mlexp reads that `~` would delete, a name `+` would add to a section of fixed settings, an item a list
lacks."""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections.abc import Sequence
from typing import Any

from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mlexp.config.task_groups import foreign_key, unselected_groups
from mlexp.config.value_checks import error_applying
from mlexp.errors import ConfigError

_ABSENT = object()


def check_in_order(cfg: DictConfig, overrides: Sequence[Override]) -> None:
    """check_named of each override's key on `cfg` as the overrides before it leave it, the order Hydra applies them
    in: an item set by its index (`model.figure_size.2=3`) is one of the list the command gave
    (`model.figure_size=[4,4,4]`), not conf/'s. `cfg` is not changed."""
    cfg = copy.deepcopy(cfg)
    for override in overrides:
        sign = "~" if override.is_delete() else "++" if override.is_force_add() else "+" if override.is_add() else ""
        check_named(cfg, sign + override.key_or_group)
        if not override.is_sweep_override():
            error_applying(cfg, override)  # a value that does not fit is the value checks' to say


def check_named(cfg: DictConfig, key: str) -> None:
    """check_key of `key` as the command wrote it, prefix and all; for `~key` (a deletion), that the key is not a
    setting of a config schema: mlexp reads every one of those, so deleting one fails the run later (a traceback, or
    Hydra's 'Error merging override'); for `+key` or `++key` (an addition), that its section is not a schema's fixed
    settings, where a new key is ignored or refused by the code that reads the section. `cfg` may have the override
    applied already: the schema of the key's parent says it."""
    name = key.lstrip("~+")
    sign = key[: len(key) - len(name)]
    if not sign:
        check_key(cfg, key)
        return
    holding = list_holding(cfg, name)
    if holding is not None and sign == "~":  # Hydra deletes no item of a list (a TypeError and its traceback)
        named = f"sets a list's item by its index ({name}=<value>) but " if _has(cfg, name) else ""
        raise ConfigError(
            f"{key}: Hydra {named}cannot delete an item of a list; give the whole list instead: {holding}=[...]"
        )
    if holding is not None:
        _check_indexes(cfg, key)
    if sign.startswith("+"):
        _check_addable(cfg, sign, name)
        return
    setting = schema_field(cfg, name)
    if setting is not None:  # not a free-form section's entry (anomaly's model.rules), which may go
        unset = " or null" if setting.default is None else ""
        raise ConfigError(
            f"{key}: {name} is a setting mlexp reads, so it cannot be deleted; give it a value ({name}=<value>{unset})"
        )


def _has(cfg: DictConfig, key: str) -> bool:
    """Whether `key` names a value of `cfg`; an index that is no number names none."""
    try:
        return OmegaConf.select(cfg, key, default=_ABSENT, throw_on_resolution_failure=False) is not _ABSENT
    except OmegaConfBaseException:
        return False


def _check_addable(cfg: DictConfig, sign: str, key: str) -> None:
    """`+key` (or `++key`: `sign`) must not reach into a schema's section by a name it does not declare
    (`+model.foo`, or `+model.rules.fast` where the model has no rules), even with the addition applied. A new
    top-level key is Hydra's way to name a value other keys interpolate (`+base=8 model.l1_size=${base}`): left
    alone."""
    parts = key.split(".")
    node: object = cfg.get(parts[0]) if isinstance(cfg, DictConfig) else None
    for index, part in enumerate(parts[1:], start=1):
        fields = schema_fields(node)
        if fields is None:
            return  # a free-form section from here on (anomaly's model.rules)
        if part not in fields:
            section = ".".join(parts[:index])
            known = sorted(fields)
            close = difflib.get_close_matches(part, known, n=1)
            hint = f"did you mean {section + '.' if section else ''}{close[0]}? " if close else ""
            raise ConfigError(
                f"{sign}{key}: {section or 'the config'} holds a fixed set of settings, and {part} is not one of them "
                f"(the code that reads them would ignore or refuse it); {hint}its settings: {', '.join(known)}"
            )
        node = node.get(part) if isinstance(node, DictConfig) else None


def schema_field(cfg: DictConfig, key: str) -> dataclasses.Field[Any] | None:
    """The schema's declaration of `key` (its type, its default): None when its section is free-form or lacks it."""
    parent_key, _, name = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key, default=None) if parent_key else cfg
    return (schema_fields(parent) or {}).get(name)


def schema_fields(node: object) -> dict[str, dataclasses.Field[Any]] | None:
    """The settings of the config schema behind `node`; None for a free-form section (or not a section)."""
    schema = OmegaConf.get_type(node) if isinstance(node, DictConfig) else None
    if schema is None or not dataclasses.is_dataclass(schema):
        return None
    return {f.name: f for f in dataclasses.fields(schema)}


def check_key(cfg: DictConfig, key: str, *, addable: bool = True) -> None:
    """Fail in one line, naming the keys that exist and the closest one, when `key` is not in `cfg`; `addable`: an
    override could add it with `+`, and the line says so."""
    node: DictConfig = cfg
    walked: list[str] = []
    parts = key.split(".")
    for index, part in enumerate(parts):
        if isinstance(node, ListConfig):  # Hydra sets one item by its index: model.word_ngrams.0=2
            _check_index(node, ".".join(walked), part, key)
            walked.append(part)
            if index == len(parts) - 1:
                return
            node = node[int(part)]
            continue
        if isinstance(node, DictConfig) and part in node:
            walked.append(part)
            if index == len(parts) - 1:
                return  # the key exists; its value (maybe an interpolation the override replaces) is not resolved
            node = node[part]
            continue
        # a key whose value is ???, which `in` does not count: it exists (validate.check_given names the ???)
        if isinstance(node, DictConfig) and part in node.keys():  # noqa: SIM118
            return
        where = ".".join(walked) or "the config"
        if not isinstance(node, DictConfig):
            task = OmegaConf.select(cfg, "task.name", default=None)
            error = foreign_key(key, str(task)) if len(walked) == 1 and task is not None else None
            if error is not None:
                raise error
            raise ConfigError(f"{key}: {where} is a value, not a section; check the key's spelling")
        # other tasks' groups are in the schema (null) but mean nothing with this task: they are no keys to suggest
        foreign = unselected_groups(node) if not walked else set()
        known = sorted(str(k) for k in node if k not in foreign)
        prefix = ".".join(walked) + "." if walked else ""
        # `l1_size=64` for model.l1_size: the section left out is the likelier slip than a misspelling
        # not task.name: it names the task, and a task of that name is refused (task.objective.metric is a setting)
        found = [f"{prefix}{path}" for name in known for path in _paths_to(node, name, part)]
        below = [path for path in found if path != "task.name"][:3]
        # else the suggestion comes from the part that failed: the whole key never resembles a child's name
        close = below or [prefix + match for match in difflib.get_close_matches(part, known, n=1)]
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        # a schema's section takes no new key (check_named): `+` only adds to a free-form one (anomaly's model.rules)
        add = f" (to add a new key on purpose, write +{key}=...)" if addable and schema_fields(node) is None else ""
        raise ConfigError(f"{key} is not a key of {where}; {hint}valid keys: {', '.join(known)}{add}")


def list_holding(cfg: DictConfig, key: str) -> str | None:
    """The key of the list `key` names an item in (`model.figure_size` for `model.figure_size.1`), else None."""
    parts = key.split(".")
    for end in range(1, len(parts)):
        holder = ".".join(parts[:end])
        if isinstance(OmegaConf.select(cfg, holder, default=None, throw_on_resolution_failure=False), ListConfig):
            return holder
    return None


def _check_indexes(cfg: DictConfig, line: str) -> None:
    """Each index the key of `line` (`+key` or `++key`) gives must be one of its list's items. A key a section lacks
    ends the walk: adding it is the section's to allow (_check_addable)."""
    node: object = cfg
    walked: list[str] = []
    for part in line.lstrip("+").split("."):
        if isinstance(node, ListConfig):
            _check_index(node, ".".join(walked), part, line)
            node = node._get_node(int(part))
        elif isinstance(node, DictConfig) and part in node.keys():  # noqa: SIM118 (`in node` skips a ??? value)
            node = node._get_node(part)
        elif isinstance(node, DictConfig):
            return
        else:
            raise ConfigError(f"{line}: {'.'.join(walked)} is a value, not a section; check the key's spelling")
        walked.append(part)
        if isinstance(node, (DictConfig, ListConfig)) and (node._is_interpolation() or node._is_missing()):
            return  # not resolved to look: the value the command gives may replace it


def _check_index(items: ListConfig, where: str, part: str, line: str) -> None:
    """`part` of `line`'s key must be the index of one of the list's items. Hydra sets an item a list has, with or
    without `++`, but adds none: with `+`, not even one it has ("An item is already at")."""
    adding = line.startswith("+") and not line.startswith("++")
    if part.isascii() and part.isdigit() and int(part) < len(items) and not adding:
        return
    if not items:
        raise ConfigError(f"{line}: {where} is an empty list, with no item to set; give the whole list: {where}=[...]")
    size = f"{where} is a list of {len(items)} item{'s' if len(items) != 1 else ''}"
    one, indexes = ("one", f"0 to {len(items) - 1}: ") if len(items) > 1 else ("it", "")
    if adding:
        raise ConfigError(
            f"{line}: {size}, and Hydra adds no item to a list; set {one} by its index, without + ({indexes}{where}.0="
            f"<value>), or give the whole list: {where}=[...]"
        )
    raise ConfigError(
        f"{line}: {size}; name {one} by its index ({indexes}{where}.0), or give the whole list: {where}=[...]"
    )


def _paths_to(node: DictConfig, section: str, key: str, depth: int = 3) -> list[str]:
    """The dotted paths from `section` of `node` down to a key named `key`, at most `depth` sections deep; an
    interpolated section is not resolved to look."""
    child = node._get_node(section)
    if depth == 0 or not isinstance(child, DictConfig) or child._is_interpolation() or child._is_missing():
        return []
    names = [str(name) for name in child.keys()]  # noqa: SIM118 (`in child` skips a ??? value)
    return [f"{section}.{key}"] * (key in names) + [
        f"{section}.{found}" for name in names for found in _paths_to(child, name, key, depth - 1)
    ]
