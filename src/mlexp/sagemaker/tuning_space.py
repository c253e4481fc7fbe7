"""A sweep's search space in a SageMaker tuning job's terms: its Hydra/Optuna params as parameter ranges.

`tag(log, interval(a, b))` is a Logarithmic ContinuousParameter, `interval(a, b)` a Linear one,
`int(interval(a, b))` an IntegerParameter, `choice(...)` and comma lists a CategoricalParameter — the ranges the
local Optuna sweeper samples from, so a local sweep and a tuning job search the same space.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig

from mlexp.config.overrides import command_overrides, sweeper_params
from mlexp.errors import ConfigError

# SageMaker's limits (CreateHyperParameterTuningJob): values of one categorical range, ranges of one job
MAX_CATEGORICAL_VALUES = 30
MAX_RANGES = 30


@dataclass(frozen=True)
class Range:
    """One tuned hyperparameter: kind Continuous | Integer | Categorical, bounds or values, scaling."""

    kind: str
    low: float | int | None = None
    high: float | int | None = None
    values: tuple[str, ...] = ()
    scaling: str = "Linear"

    def parameter(self) -> Any:
        """The SDK's ParameterRange for this range."""
        from sagemaker.core.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter

        if self.kind == "Categorical":
            return CategoricalParameter(list(self.values))
        kind = ContinuousParameter if self.kind == "Continuous" else IntegerParameter
        return kind(self.low, self.high, scaling_type=self.scaling)


@dataclass(frozen=True)
class SearchSpace:
    """The tuned ranges by config key, and fixed sweep values every training job runs with."""

    ranges: dict[str, Range]
    fixed: dict[str, Any] = field(default_factory=dict)


def _hp_value(value: Any) -> str:
    """A config value as SageMaker carries hyperparameters (strings), parsed back the same way by the entry."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _sweep_arguments(cfg: DictConfig) -> list[str]:
    """The sweep's search space as override strings: the sweep file's params, then the command line's sweeps and
    its fixed values of keys the params name (the later one wins, as with the local sweeper: a sweep's fixed
    model.max_train_seconds=900 gives way to the command line's)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = cfg.hydra.sweeper.get("params") or {}
    arguments = sweeper_params(cfg.hydra)
    command_line = command_overrides(cfg.hydra)
    parsed = OverridesParser.create().parse_overrides(command_line)
    return arguments + [
        text
        for text, override in zip(command_line, parsed, strict=True)
        if override.is_sweep_override() or override.get_key_element().lstrip("+~") in params
    ]


def _optuna_range(text: str, key: str, override: Any) -> Range:
    """The range the local Optuna sweeper samples from, in the tuner's terms (its conversion, without importing Optuna).

    choice(...) and comma lists: categorical; interval: uniform, log-uniform with tag(log, ...), integers when both
    ends are (int(interval(...))); range(a, b): integers a..b, as the sweeper's IntUniformDistribution.
    """
    from hydra.core.override_parser.types import Transformer

    value = override.value()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        return Range("Categorical", values=tuple(_hp_value(v) for v in override.sweep_iterator(Transformer.encode)))
    if override.is_interval_sweep():
        scaling = "Logarithmic" if "log" in value.tags else "Linear"
        if isinstance(value.start, int) and isinstance(value.end, int):
            return Range("Integer", int(value.start), int(value.end), scaling=scaling)
        return Range("Continuous", float(value.start), float(value.end), scaling=scaling)
    numbers = (value.start, value.stop, value.step)
    if override.is_range_sweep() and not any(isinstance(n, float) for n in numbers) and value.step == 1:
        return Range("Integer", int(value.start), int(value.stop))
    raise ConfigError(
        f"{text}: a stepped range has no SageMaker tuning range; "
        f"list the values instead, e.g. '{key}=choice(...)', or run the sweep with compute=local"
    )


def _grid_range(text: str, key: str, override: Any) -> Range:
    """A grid's values (Hydra's basic sweeper) as one categorical range."""
    from hydra.core.override_parser.types import Transformer

    if override.is_interval_sweep():
        raise ConfigError(
            f"{text}: a grid needs listed values, not an interval; search it with sweep=tpe or sweep=random"
        )
    return Range("Categorical", values=tuple(_hp_value(v) for v in override.sweep_iterator(Transformer.encode)))


def search_space(cfg: DictConfig) -> SearchSpace:
    """The sweep's ranges in the tuner's terms; fixed values stay fixed. Refuses what a tuning job cannot express."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    groups = set(cfg.hydra.runtime.choices)
    optuna = "optuna" in str(cfg.hydra.sweeper.get("_target_", "")).lower()
    ranges: dict[str, Range] = {}
    fixed: dict[str, Any] = {}
    arguments = _sweep_arguments(cfg)
    for text, override in zip(arguments, OverridesParser.create().parse_overrides(arguments), strict=True):
        key = override.get_key_element().lstrip("+~")
        if key in groups and override.is_sweep_override():
            raise ConfigError(
                f"{text} sweeps over config groups, which a tuning job cannot "
                f"do (each training job runs one composed config); run one tuning job per {key}, or compute=local"
            )
        if not override.is_sweep_override():
            fixed[key] = override.value()
            ranges.pop(key, None)
            continue
        fixed.pop(key, None)
        ranges[key] = _optuna_range(text, key, override) if optuna else _grid_range(text, key, override)
    for key, found in ranges.items():
        if found.kind == "Categorical" and len(found.values) > MAX_CATEGORICAL_VALUES:
            raise ConfigError(
                f"{key} has {len(found.values)} values; a SageMaker categorical range takes at most "
                f"{MAX_CATEGORICAL_VALUES}: give an interval instead, or fewer values"
            )
    if len(ranges) > MAX_RANGES:
        raise ConfigError(f"{len(ranges)} tuned keys; a SageMaker tuning job takes at most {MAX_RANGES}")
    return SearchSpace(ranges, fixed)
