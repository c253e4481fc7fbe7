"""A run's composition that failed, explained in one line where the checks can: Hydra's own report is a block that
ends in advice about stack traces."""

from __future__ import annotations

import copy
import shlex
from pathlib import Path
from typing import Any

from hydra import compose
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from mlexp.config.composition_attempt import CompositionAttempt
from mlexp.config.group_options import check_group_options, config_groups
from mlexp.config.known_keys import check_in_order, check_key
from mlexp.config.missing_schema import missing_schema
from mlexp.config.search_path import initialized
from mlexp.config.value_checks import check_value, error_applying
from mlexp.errors import ConfigError

_ABSENT = object()


def compose_or_explain(conf_dir: Path, overrides: list[str], *, sweep_values: bool) -> DictConfig:
    """conf/ composed with `overrides`; one that fails raises its one-line ConfigError when the checks explain it
    (explain_failed_composition), else Hydra's own exception."""
    attempt = CompositionAttempt(overrides)
    try:
        with initialized(conf_dir), attempt.watching():
            return compose("config", overrides=overrides)
    except HydraException:
        explain_failed_composition(conf_dir, overrides, sweep_values=sweep_values, attempt=attempt)
        raise


def _composed(conf_dir: Path, overrides: list[str], attempt: CompositionAttempt | None) -> DictConfig:
    """conf/ composed with `overrides` as Hydra's compose API does: from the failed composition's `attempt` when they
    choose what it chose."""
    cfg = attempt.composed(overrides) if attempt is not None else None
    if cfg is not None:
        return cfg
    with initialized(conf_dir):
        return compose("config", overrides=overrides)


def explain_failed_composition(
    conf_dir: Path, overrides: list[str], *, sweep_values: bool, attempt: CompositionAttempt | None = None
) -> None:
    """Why a run's composition failed, in one line: a group option or key that does not exist, a value its key cannot
    take (`model.epochs=abc`), an override Hydra cannot apply (`+model.epochs=3` to a key that exists), or with
    `sweep_values` False several values without -m. Hydra's own report is a block that ends in advice about stack
    traces; what none of these explains is left to it. The group choices are composed once, for all the checks, or
    taken from the failed composition's `attempt` when it composed them."""
    choices, keys = check_group_options(conf_dir, overrides)
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
        cfg: DictConfig | None = _composed(conf_dir, choices, attempt)
    except HydraException as error:
        task = next((str(o.value()) for o in parsed if o.key_or_group == "task" and isinstance(o.value(), str)), None)
        problem = missing_schema(error, conf_dir, task)
        if problem is not None:
            raise problem from None
        cfg = None  # Hydra reports what it cannot compose itself (a swept group choice is said below)
    if cfg is not None:
        if keys is not None:  # no value swept: the overrides apply in order, a list's before an index into it
            check_in_order(cfg, plain)
        for override in plain:
            if override.is_sweep_override():
                continue
            if swept_group and OmegaConf.select(cfg, override.key_or_group, default=_ABSENT) is _ABSENT:
                if override.type == OverrideType.CHANGE:
                    swept = [o for o in parsed if o not in plain and o.is_sweep_override()]
                    _check_key_in_swept_options(conf_dir, choices, swept, override)
                continue
            check_value(cfg, override)  # applied to `cfg`: the forms offered below fit the run's other values
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
        with initialized(conf_dir):
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
        check_value(cfg, override)


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
        with initialized(conf_dir):
            cfg = compose("config", overrides=[*choices, *first])
    except HydraException:
        return  # Hydra reports what it cannot compose itself
    check_key(cfg, key)  # in none of the options: the key's own line, with the closest key


def _has_key(conf_dir: Path, choices: list[str], key: str) -> bool:
    try:
        with initialized(conf_dir):
            cfg = compose("config", overrides=choices)
    except HydraException:
        return False
    return OmegaConf.select(cfg, key, default=_ABSENT) is not _ABSENT


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
            fits = error_applying(copy.deepcopy(cfg), OverridesParser.create().parse_override(form)) is None
        except HydraException:  # a value with quotes of its own: no form to offer
            fits = False
        if fits:
            forms.append(shlex.quote(form))
    also = f"; for one value that is a list or text, write {' or '.join(forms)}" if forms else ""
    return ConfigError(f"{line} gives several values, and a run takes one: to sweep them add -m{also}")
