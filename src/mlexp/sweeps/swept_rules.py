"""Rules across keys (a task's constraints, and its input paths) checked for a whole sweep before its record opens:
the config every job shares, and each combination of the swept values a rule reads."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Sequence

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from mlexp import tasks
from mlexp.config.bounds import within
from mlexp.config.constraints import Constraint
from mlexp.errors import ConfigError
from mlexp.sweeps.search_space import Swept, as_typed, listed, plain_key, sweeper_kind, swept_overrides

# swept combinations checked against a rule before the sweep opens; more are left to each job's check
MAX_COMBINATIONS = 1000


def check_swept_constraints(config: DictConfig) -> None:
    """A rule across keys (the task's constraints, and its input paths: mlexp.config.input_paths) broken by the
    config every job shares, or by a combination of swept values, would have the runner refuse those jobs after the
    sweep's record opened: one line now. Every combination of the values listed for the keys a constraint reads (a
    grid's values, a search's choice(...) and range(...): a search may sample any of them) is checked. Not judged
    here, but by the runner before each job's trial opens: a constraint whose keys a swept group choice touches (each
    option composes its own config), an interval (which of its points a search samples is not known), a `+`/`++`
    override or a `${...}` value."""
    parser = OverridesParser.create()
    swept = swept_overrides(config, parser)
    if any(entry.override.key_or_group == "task" for entry in swept):
        return  # each task composes its own config
    groups = set(config.hydra.runtime.choices)
    task = tasks.get(config.task.name)
    for constraint in (*task.constraints, *task.input_rules):
        touching = [entry for entry in swept if _touches(entry.override.key_or_group, constraint.keys)]
        if touching:
            error = _broken_combination(config, constraint, touching, groups, parser)
        else:
            error = constraint.broken_by(config)
        if error is not None:
            raise error


def _touches(swept_key: str, keys: Sequence[str]) -> bool:
    """Whether a swept key sets one of `keys`, or lies under one (`model.ks.0` under `model.ks`)."""
    return any(within(key, {swept_key}) or within(swept_key, {key}) for key in keys)


def _known_values(override: Override, groups: set[str]) -> list[str] | None:
    """The values each job gives a plain key, as the command writes them; None when they are not listed here."""
    if not plain_key(override, groups):
        return None
    if not override.is_sweep_override():
        values: list[str] | None = [override.get_value_element_as_str()]  # a sweep file's fixed value
    else:
        values = listed(override) if override.is_discrete_sweep() else None
    if values is None or any("${" in as_typed(value) for value in values):
        return None
    return values


def _broken_combination(
    config: DictConfig, constraint: Constraint, touching: list[Swept], groups: set[str], parser: OverridesParser
) -> ConfigError | None:
    """The error for the first combination of the touching overrides' values that breaks `constraint`; None also
    past MAX_COMBINATIONS (`range(64, 3000)` beside two choices took 19 s): each job's own check judges those."""
    value_lists = []
    for entry in touching:
        values = _known_values(entry.override, groups)
        if values is None:
            return None
        value_lists.append(list(dict.fromkeys(values)))
    if math.prod(len(values) for values in value_lists) > MAX_COMBINATIONS:
        return None
    choices = [
        [parser.parse_overrides([f"{entry.override.key_or_group}={value}"]) for value in values]
        for entry, values in zip(touching, value_lists, strict=True)
    ]
    trial = copy.deepcopy(config)
    for combination in itertools.product(*choices):
        try:
            for overrides in combination:  # every touching key is set again: no value of the last one stays
                ConfigLoaderImpl._apply_overrides_to_config(overrides, trial)
        except (HydraException, OmegaConfBaseException):
            return None  # a value that does not fit its key: check_sweep_values names it
        judged = constraint.values(trial)
        explanation = None if judged is None else constraint.explanation(judged)
        if judged is not None and explanation is not None:
            runs = "could run" if sweeper_kind(config) == "optuna" else "would run"  # a search samples its values
            sources = ", ".join(entry.source() for entry in touching)
            return ConfigError(f"the sweep {runs} {constraint.shown(judged)} (from {sources}): {explanation}")
    return None
