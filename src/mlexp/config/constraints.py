"""Rules across a task's settings (`dataset.val_fraction + dataset.test_fraction` below 1): values each within
their range (mlexp.config.bounds) can still be wrong together. Refused in one line before a trial opens, not by a
stage after the trial's work began.

A task declares them in its Task (`constraints=(Constraint(...),)`); the runner checks a trial's config, and the
sweep check the config every job shares and each combination of listed values that touches a constraint's keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mlexp.errors import ConfigError

_ABSENT = object()


@dataclass(frozen=True)
class Constraint:
    """`holds(*values)` must be true of the values of `keys`, each as plain Python (None, a number, a string, a list
    or a dict), in the order of `keys`.

    `rule` says in words what must hold, `fix` what to change (or makes those words from the values, when they
    depend on them). A key the composed config lacks (an option of the task without it) means the rule does not
    apply; `holds` is given null values and judges them itself.

    `context` names those of `keys` that are no value to change but where the rule looks (paths.root: the schemas),
    whether it applies (compute.target and stage: whether an input path is read here) or where the values came from
    (params_file: the fix names the file's keys): judged, not shown in the refusal.

    `asks_store`: judging it asks the tracking store (model.init_from=runs:/...), a request a server may never answer:
    a run and the sweep check judge it, `mlexp --help` lists it unjudged.
    """

    keys: tuple[str, ...]
    holds: Callable[..., bool]
    rule: str
    fix: str | Callable[..., str]
    # keyword-only: the subclasses' own fields (ReadInput's input) are given by position after `fix`
    context: tuple[str, ...] = field(default=(), kw_only=True)
    asks_store: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        if unknown := [key for key in self.context if key not in self.keys]:
            raise ValueError(f"context {unknown} names no key of the constraint on {self.keys}")

    def values(self, cfg: DictConfig) -> tuple[Any, ...] | None:
        """The keys' values in `cfg`; None when a key is absent (or ???, Hydra's missing value), or is a ${...} that
        cannot resolve here (only a job can judge it)."""
        found = []
        for key in self.keys:
            try:
                value = OmegaConf.select(cfg, key, default=_ABSENT)
            except OmegaConfBaseException:
                return None
            if value is _ABSENT:
                return None
            found.append(_plain(value))
        return tuple(found)

    def explanation(self, values: Sequence[Any]) -> str | None:
        """The rule `values` of the keys break and the fix, in words; None when it holds, or cannot be judged."""
        try:
            if self.holds(*values):
                return None
        except (TypeError, ValueError, IndexError, KeyError):
            return None  # a value of another shape ([1] for [shortest, longest]): the stage reading it reports it
        fix = self.fix(*values) if callable(self.fix) else self.fix
        return f"{self.rule}; {fix}"

    def shown(self, values: Sequence[Any]) -> str:
        """The keys with `values`, as the command line writes them, less the context."""
        shown = zip(self.keys, values, strict=True)
        return ", ".join(f"{key}={shown_value(value)}" for key, value in shown if key not in self.context)

    def refusal(self, values: Sequence[Any]) -> ConfigError | None:
        """The one-line error for `values` of the keys that break the rule; None when it holds, or cannot be judged."""
        explanation = self.explanation(values)
        return None if explanation is None else ConfigError(f"{self.shown(values)}: {explanation}")

    def broken_by(self, cfg: DictConfig) -> ConfigError | None:
        """The error when `cfg` breaks the rule; None when it holds or does not apply."""
        values = self.values(cfg)
        return None if values is None else self.refusal(values)


def check_constraints(cfg: DictConfig, constraints: Iterable[Constraint]) -> None:
    """Raise the first constraint `cfg` breaks."""
    for constraint in constraints:
        error = constraint.broken_by(cfg)
        if error is not None:
            raise error


def leave_a_training_share(*held_out: float) -> bool:
    """Whether the shares a split holds out (validation, test) leave some of the data to train on."""
    return sum(held_out) < 1


def _plain(value: Any) -> Any:
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True, enum_to_str=True)
    return value.value if isinstance(value, Enum) else value


def shown_value(value: Any) -> str:
    """A value as it is written on the command line: null, [1, 2], {a: 1}."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(shown_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {shown_value(item)}" for key, item in value.items()) + "}"
    return str(value)
