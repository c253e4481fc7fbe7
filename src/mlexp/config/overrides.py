"""Checks of command-line overrides that Hydra's own messages leave vague.

Hydra rejects an unknown key or group option, but with its config search path and without
the closest match; these checks run first and say in one line what exists.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import hashlib
import json
import shlex
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.conf import HydraConf
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Override, OverrideType
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mlexp import tasks
from mlexp.config.repeated_keys import TypeCheck, check_repeated_keys
from mlexp.config.task_groups import foreign_group, foreign_key, unselected_groups
from mlexp.errors import ConfigError, a_or_an, did_you_mean

_ABSENT = object()


def command_overrides(hydra: DictConfig | HydraConf) -> list[str]:
    """The command line's overrides as typed (`hydra.overrides.task` of the config's `hydra` node): Hydra keeps them
    unescaped, so reading them through OmegaConf would resolve a `${...}` in one, or fail on it."""
    overrides = OmegaConf.to_container(hydra.overrides.task, resolve=False)
    assert isinstance(overrides, list)
    return [str(override) for override in overrides]


def sweeper_params(hydra: DictConfig | HydraConf) -> list[str]:
    """The sweep file's own search space (`hydra.sweeper.params`) as the override strings Hydra's sweepers make of
    it, before the command line's."""
    params = hydra.sweeper.get("params") or {}
    return [f"{key}={value}" for key, value in params.items()]


def config_groups(conf_dir: Path) -> dict[str, list[str]]:
    """Each config group in conf/ and its options (the YAML files in its folder)."""
    return {
        folder.name: sorted(p.stem for p in folder.glob("*.yaml"))
        for folder in sorted(conf_dir.iterdir())
        if folder.is_dir() and folder.name != "hydra"
    }


def check_override_keys(conf_dir: Path, overrides: list[str], *, keys: bool = True) -> None:
    """Fail in one line when an override names a group option, a task's group or a key the config lacks.

    With keys=False only the group options are checked: the caller composes the config itself and checks the
    keys in it with check_keys_in (one composition per run, not two).
    """
    choices, values = _check_options(conf_dir, overrides)
    if values is None or not keys:
        return
    passed = _passed_marker(conf_dir, choices, values)
    if passed is not None and passed.exists():
        return  # these keys passed with these choices and this conf/: no second composition (a third of a second)
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg = compose("config", overrides=choices)
    except HydraException:
        return  # Hydra reports what it cannot compose itself
    for key in values:
        check_named(cfg, key)
    if passed is not None:
        try:
            passed.parent.mkdir(parents=True, exist_ok=True)
            passed.touch()
        except OSError:
            pass  # a read-only project checks again next time


def compose_or_explain(conf_dir: Path, overrides: list[str], *, sweep_values: bool) -> DictConfig:
    """conf/ composed with `overrides`; one that fails raises its one-line ConfigError when the checks explain it
    (explain_failed_composition), else Hydra's own exception."""
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            return compose("config", overrides=overrides)
    except HydraException:
        explain_failed_composition(conf_dir, overrides, sweep_values=sweep_values)
        raise


def explain_failed_composition(conf_dir: Path, overrides: list[str], *, sweep_values: bool) -> None:
    """Why a run's composition failed, in one line: a group option or key that does not exist, a value its key cannot
    take (`model.epochs=abc`), an override Hydra cannot apply (`+model.epochs=3` to a key that exists), or with
    `sweep_values` False several values without -m. Hydra's own report is a block that ends in advice about stack
    traces; what none of these explains is left to it. The group choices are composed once, for all the checks."""
    choices, keys = _check_options(conf_dir, overrides)
    parsed = OverridesParser.create().parse_overrides(overrides)
    groups = config_groups(conf_dir)
    plain = [o for o in parsed if o.key_or_group.split("/")[0] not in groups and not o.key_or_group.startswith("hydra")]
    swept_group = sweep_values and any(o not in plain and o.is_sweep_override() for o in parsed)
    if swept_group:  # as Hydra composes a sweep's config: a swept group choice left out (each job takes its own)
        choices = [
            o.input_line or f"{o.key_or_group}={o.get_value_element_as_str()}"
            for o in parsed
            if o not in plain and not o.is_sweep_override()
        ]
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg: DictConfig | None = compose("config", overrides=choices)
    except HydraException:
        cfg = None  # Hydra reports what it cannot compose itself (a swept group choice is said below)
    if cfg is not None:
        for key in keys or []:
            check_named(cfg, key)
        for override in plain:
            if override.is_sweep_override():
                continue
            if swept_group and OmegaConf.select(cfg, override.key_or_group, default=_ABSENT) is _ABSENT:
                if override.type == OverrideType.CHANGE:
                    swept = [o for o in parsed if o not in plain and o.is_sweep_override()]
                    _check_key_in_swept_options(conf_dir, choices, swept, override)
                continue
            _check_value(cfg, override)  # applied to `cfg`: the forms offered below fit the run's other values
    _check_hydra_values(conf_dir, choices, [o for o in parsed if o.key_or_group.startswith("hydra.")])
    if not sweep_values:
        for override in parsed:
            if override.is_sweep_override():
                raise _several_values(cfg if override in plain else None, override)


def _check_hydra_values(conf_dir: Path, choices: list[str], overrides: list[Override]) -> None:
    """Hydra's own settings (hydra.job.chdir=abc, hydra.nope=1), tried on a composition that has them."""
    settings = [o for o in overrides if not o.is_sweep_override()]
    if not settings:
        return
    given = {o.input_line for o in overrides}
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg = compose("config", overrides=[c for c in choices if c not in given], return_hydra_config=True)
    except HydraException:
        return
    for override in settings:
        key, line = override.key_or_group, override.input_line or override.key_or_group
        if override.is_delete():
            raise ConfigError(f"{line}: Hydra's settings cannot be deleted; give {key} a value instead")
        parent, name = _node(cfg, key.rsplit(".", 1)[0]), key.rsplit(".", 1)[-1]
        if override.type == OverrideType.CHANGE and isinstance(parent, DictConfig) and name not in list(parent.keys()):
            if OmegaConf.get_type(parent) is dict:  # a free-form section (env_set, sweeper.params) takes new keys
                raise ConfigError(f"{line}: {key} is not in the config yet; add it with +{line}")
            raise ConfigError(f"{line}: {key} is not one of Hydra's settings; `mlexp --cfg hydra` prints them")
        _check_value(cfg, override)


def _node(cfg: DictConfig, key: str) -> Any:
    """The node at dotted `key`, unresolved (Hydra's runtime values are interpolations or ??? while composing); None
    when the path does not exist."""
    node: Any = cfg
    for part in key.split("."):
        # keys(), not `in`: `in` answers False for a value that is ??? (hydra.runtime.output_dir while composing)
        if not isinstance(node, DictConfig) or part not in list(node.keys()):
            return None
        node = node._get_node(part)
    return node


def _check_key_in_swept_options(conf_dir: Path, choices: list[str], swept: list[Override], override: Override) -> None:
    """A fixed value whose key only some of a sweep's group options have (`-m task=tabular_regression,churn_incentives
    model.max_depth=4`): Hydra composes the sweep's config with the group's default option before each job takes its
    own, and applies the fixed values to it. Its report says to append the key with `+`, which the options that have it
    then refuse."""
    key, line = override.key_or_group, override.input_line or override.key_or_group
    for group in swept:
        name = group.key_or_group
        options = [str(v) for v in group.sweep_string_iterator()]
        have = [v for v in options if _has_key(conf_dir, [*choices, f"{name}={v}"], key)]
        if not have:
            continue
        lack = [v for v in options if v not in have]
        why = (
            f"{key} is a key of {name}={','.join(have)}, not of {name}={','.join(lack)}, and a sweep gives its fixed "
            "values to every job"
            if lack
            else f"Hydra applies a sweep's fixed values to the default {name} first, and it has no {key}"
        )
        # the command's other group choices (task=...) stay in the example: without them it ran another task
        kept = " ".join(shlex.quote(c) for c in choices if not c.startswith("hydra"))
        example = " ".join(part for part in ("mlexp -m", kept, f"{name}={have[0]}", shlex.quote(line)) if part)
        raise ConfigError(f"{line}: {why}; run one sweep per {name}, e.g. {example}")
    first = [f"{group.key_or_group}={next(iter(group.sweep_string_iterator()))}" for group in swept[:1]]
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg = compose("config", overrides=[*choices, *first])
    except HydraException:
        return  # Hydra reports what it cannot compose itself
    check_key(cfg, key)  # in none of the options: the key's own line, with the closest key


def _has_key(conf_dir: Path, choices: list[str], key: str) -> bool:
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg = compose("config", overrides=choices)
    except HydraException:
        return False
    return OmegaConf.select(cfg, key, default=_ABSENT) is not _ABSENT


def _applies(cfg: DictConfig, override: Override) -> HydraException | OmegaConfBaseException | None:
    """Hydra's error applying `override` to `cfg` (changed in place), None when it applies."""
    try:
        ConfigLoaderImpl._apply_overrides_to_config([override], cfg)
    except (HydraException, OmegaConfBaseException) as error:
        return error
    return None


def misfit(line: str, key: str, value: str, error: BaseException, *, values: str = "a value") -> ConfigError:
    """The one line for a value its key cannot take: the override, the value, the schema's reason, the fix."""
    cause = str(error.__cause__ or error).strip().splitlines()[0]
    shown = f"the value {value}" if value else "an empty value"
    return ConfigError(f"{line}: {shown} does not fit {key} ({cause}); give {key} {values} it accepts")


def _check_value(cfg: DictConfig, override: Override) -> None:
    error = _applies(cfg, override)
    if error is None:
        return
    key = override.key_or_group
    line = override.input_line or key
    if override.type != OverrideType.CHANGE:
        reason = "; ".join(part.strip().rstrip(".") for part in str(error).splitlines() if part.strip())
        raise ConfigError(f"{line}: {reason}") from None
    raise misfit(line, key, override.get_value_element_as_str(), error) from None


def _several_values(cfg: DictConfig | None, override: Override) -> ConfigError:
    """A run takes one value per key: `model.l1_size=8,16` is one line saying to add -m, and the list or text forms
    of the value that the key does take (tried on `cfg`, shell-quoted; without `cfg`, as for a group choice, none)."""
    line = override.input_line or override.key_or_group
    prefix, raw = line.split("=", 1)[0], line.split("=", 1)[-1]
    forms = []
    for form in (f"{prefix}=[{raw}]", f'{prefix}="{raw}"'):
        if cfg is None or "(" in raw:
            break
        try:
            fits = _applies(copy.deepcopy(cfg), OverridesParser.create().parse_override(form)) is None
        except HydraException:  # a value with quotes of its own: no form to offer
            fits = False
        if fits:
            forms.append(shlex.quote(form))
    also = f"; for one value that is a list or text, write {' or '.join(forms)}" if forms else ""
    return ConfigError(f"{line} gives several values, and a run takes one: to sweep them add -m{also}")


def check_keys_in(cfg: DictConfig, conf_dir: Path, overrides: list[str]) -> None:
    """The key check of check_override_keys against a config already composed with these overrides.

    The group options were checked before the composition (check_override_keys with keys=False), not again here.
    """
    _, values = _check_options(conf_dir, overrides, check_options=False)
    for key in values or []:
        check_named(cfg, key)


def _check_options(
    conf_dir: Path, overrides: list[str], *, check_options: bool = True
) -> tuple[list[str], list[str] | None]:
    """Check the group options; return the group choices and the value keys to check (None: nothing to check)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    groups = config_groups(conf_dir)
    task = _chosen_task(conf_dir, parsed) if check_options else None
    if check_options:
        check_repeated_keys(parsed, task, _type_check(conf_dir, parsed, groups, task))

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
            options = sorted(_task_choices(conf_dir, chosen).get(key) or groups[key])
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
                _check_option(conf_dir, groups, key, option, task)
        if key.split("/")[0] in groups or key.startswith("hydra"):
            swept = swept or override.is_sweep_override()
            choices.append(override.input_line or f"{key}={override.get_value_element_as_str()}")
        elif override.is_delete():
            values.append(f"~{key}")  # checked as a deletion: a key mlexp reads cannot go
        elif override.is_add() or override.is_force_add():
            values.append(f"+{key}")  # checked as an addition: a section of fixed settings takes no new one
        else:
            values.append(key)
    if swept or not values:
        return choices, None  # one composition cannot stand for several; Hydra checks each job
    return choices, values


def _type_check(conf_dir: Path, parsed: list[Override], groups: dict[str, list[str]], task: str | None) -> TypeCheck:
    """The type check a run of `key=value` meets (the schema's), for a value of a key given twice: tried on the config
    the command's group choices compose, composed once and only when a repeated key's values need it. A task that
    does not exist is that task's error first: without it, no key has a type."""

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
            with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
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
        error = _applies(copy.deepcopy(cfg), override)
        return None if error is None else misfit(f"{key}={value}", key, value, error)

    return type_error


def _passed_marker(conf_dir: Path, choices: list[str], keys: list[str]) -> Path | None:
    """A file whose existence says these keys exist under these group choices, for this conf/ and these schemas.

    Values do not matter (model.epochs=10 and =20 check alike); any change to a YAML file in conf/ or to
    the config schemas' source makes a new marker.
    """
    import mlexp

    package = Path(mlexp.__file__).parent
    digest = hashlib.sha256(json.dumps([sorted(choices), sorted(keys)]).encode())
    sources = [*sorted(conf_dir.rglob("*.yaml")), *sorted((package / "config").glob("*.py"))]
    sources += sorted(package.glob("tasks/*/config.py"))
    try:
        for source in sources:
            stat = source.stat()
            digest.update(f"{source}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    except OSError:
        return None
    return conf_dir.parent / ".mlexp" / "checked_overrides" / digest.hexdigest()[:24]


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


def conf_file(path: Path) -> Any:
    """A YAML file of conf/, read from the file: a syntax error's mark then names it (the CLI's one line says where)."""
    with path.open(encoding="utf-8") as file:
        return yaml.safe_load(file)


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
    files = [conf_dir / "config.yaml", *([conf_dir / "task" / f"{task}.yaml"] if task else [])]
    groups = set()
    for path in [path for path in files if path.exists()]:
        for entry in (conf_file(path) or {}).get("defaults", []):
            if isinstance(entry, dict):
                groups |= {str(name).removeprefix("override ").strip("/") for name in entry}
    return groups


def _check_option(conf_dir: Path, groups: dict[str, list[str]], group: str, option: str, task: str | None) -> None:
    if group == "task":
        _check_task(groups["task"], option)
        return
    if option not in groups[group]:
        allowed = _task_choices(conf_dir, task).get(group)
        of_task = f" of task {task!r}" if allowed else ""
        options = sorted(allowed or groups[group])
        raise ConfigError(
            f"{group}={option!r} is not {a_or_an(group)} option{of_task}; {did_you_mean(option, options)}"
            f"choose one of: {', '.join(options)}"
        )
    error = foreign_group(group, option, task) if task is not None else None
    if error is not None:
        raise error


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


def _task_choices(conf_dir: Path, task: str | None) -> dict[str, list[str]]:
    """The group options conf/task/<task>.yaml accepts (`task.choices`); read only to explain an error."""
    path = conf_dir / "task" / f"{task}.yaml"
    if task is None or not path.exists():
        return {}
    choices = ((conf_file(path) or {}).get("task") or {}).get("choices") or {}
    return {str(group): [str(option) for option in options] for group, options in choices.items()}


def check_named(cfg: DictConfig, key: str) -> None:
    """check_key; for `~key` (a deletion), that the key is not a setting of a config schema: mlexp reads every one
    of those, so deleting one fails the run later (a traceback, or Hydra's 'Error merging override'); for `+key` (an
    addition), that its section is not a schema's fixed settings, where a new key is ignored or refused by the code
    that reads the section. `cfg` may have the override applied already: the schema of the key's parent says it."""
    if not key.startswith(("~", "+")):
        check_key(cfg, key)
        return
    sign, key = key[0], key[1:]
    if sign == "+":
        _check_addable(cfg, key)
        return
    setting = schema_field(cfg, key)
    if setting is not None:  # not a free-form section's entry (anomaly's model.rules), which may go
        unset = " or null" if setting.default is None else ""
        raise ConfigError(
            f"~{key}: {key} is a setting mlexp reads, so it cannot be deleted; give it a value ({key}=<value>{unset})"
        )


def _check_addable(cfg: DictConfig, key: str) -> None:
    """`+key` must not reach into a schema's section by a name it does not declare (`+model.foo`, or
    `+model.rules.fast` where the model has no rules), even with the addition applied. A new top-level key is
    Hydra's way to name a value other keys interpolate (`+base=8 model.l1_size=${base}`): left alone."""
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
                f"+{key}: {section or 'the config'} holds a fixed set of settings, and {part} is not one of them (the "
                f"code that reads them would ignore or refuse it); {hint}its settings: {', '.join(known)}"
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
        if isinstance(node, DictConfig) and part in node:
            walked.append(part)
            if index == len(parts) - 1:
                return  # the key exists; its value (maybe an interpolation the override replaces) is not resolved
            node = node[part]
            continue
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
        # the suggestion comes from the part that failed: the whole key never resembles a child's name
        close = difflib.get_close_matches(part, known, n=1)
        prefix = ".".join(walked) + "." if walked else ""
        hint = f"did you mean {prefix}{close[0]}? " if close else ""
        # a schema's section takes no new key (check_named): `+` only adds to a free-form one (anomaly's model.rules)
        add = f" (to add a new key on purpose, write +{key}=...)" if addable and schema_fields(node) is None else ""
        raise ConfigError(f"{key} is not a key of {where}; {hint}valid keys: {', '.join(known)}{add}")
