"""The ranges a task's numeric settings must fall in (`model.epochs` at least 1): refused in one line before a trial
opens, not as an IndexError three stages later.

A task declares them in its Task (`bounds={"model.epochs": at_least(1)}`); the runner checks a trial's config and
the sweep check each listed value, so a sweep refuses `model.epochs=0,5` before its record opens.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from mlexp.errors import ConfigError


@dataclass(frozen=True)
class Bound:
    """low <= value <= high; `open_low`/`open_high` exclude the end itself (a learning rate above 0)."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def holds(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or (value < self.high if self.open_high else value <= self.high)

    def __str__(self) -> str:
        if self.low is not None and self.high is not None and not (self.open_low or self.open_high):
            return f"between {shown_end(self.low)} and {shown_end(self.high)}"
        low = None if self.low is None else f"{'above' if self.open_low else 'at least'} {shown_end(self.low)}"
        high = None if self.high is None else f"{'below' if self.open_high else 'at most'} {shown_end(self.high)}"
        return " and ".join(part for part in (low, high) if part)


LARGEST_INTEGER = 2**63 - 1  # a signed 64-bit integer: what NumPy, MXNet, XGBoost and the stores take


def shown_end(end: float) -> str:
    """An end of a range as written: a whole number in full (a seed's 4294967295, not 4.29497e+09)."""
    return str(int(end)) if float(end).is_integer() and abs(end) < 1e16 else f"{end:g}"


def at_least(low: float) -> Bound:
    return Bound(low=low)


def above(low: float) -> Bound:
    return Bound(low=low, open_low=True)


def between(low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> Bound:
    return Bound(low, high, open_low, open_high)


def out_of_bounds(key: str, value: object, bound: Bound | None) -> ConfigError | None:
    """The one-line error for `key=value` outside `bound`; None when it holds (or is not a number: the schema's)."""
    if bound is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    too_large = isinstance(value, int) and not -LARGEST_INTEGER - 1 <= value <= LARGEST_INTEGER
    if bound.holds(value):
        if not too_large:
            return None
        # within an open-ended range, past what a library takes: an OverflowError in a stage, or a C int that wraps
        return ConfigError(f"{key}={value} is out of range: it must be {bound} and at most {LARGEST_INTEGER}")
    if not math.isfinite(value):
        return ConfigError(f"{key}={value} is not a finite number: it must be {bound}")
    # a whole number without the .0 a float setting adds (`model.learning_rate=0` was echoed as 0.0)
    shown = shown_end(value) if float(value).is_integer() else str(value)
    return ConfigError(f"{key}={shown} is out of range: it must be {bound}")


def interval_out_of_bounds(
    key: str,
    start: float,
    end: float,
    bound: Bound | None,
    *,
    whole: bool = False,
    tags: Iterable[str] = (),
    sweep_file: str | None = None,
) -> ConfigError | None:
    """The error for an `interval(start, end)` a search would sample outside `bound`. A float interval leaves its end
    out (start <= value < end), so an end equal to an open upper bound still fits; Optuna's whole-number interval
    (int(interval(...))) samples its end too. `whole`: the key takes whole numbers, and its ends are judged as the
    integers int(interval(...)) makes of them, held to the 64-bit bound as a value given alone is; `tags`: the
    interval's (`log`), kept in the range an error offers instead; `sweep_file`: the sweep file the search is
    written in (as_written), if any."""
    if bound is None:
        return None
    if isinstance(start, int) and isinstance(end, int):
        return out_of_bounds(key, start, bound) or out_of_bounds(key, end, bound)
    upper = Bound(high=bound.high) if bound.high is not None else None
    refused = out_of_bounds(key, start, bound) or out_of_bounds(key, end, upper)
    if refused is None and whole:
        endless = endless_integer_range(key, start, end, tags, bound=bound, sweep_file=sweep_file)
        return endless or interval_out_of_bounds(key, int(start), int(end), bound)
    return refused


def as_written(key: str, value: str, sweep_file: str | None = None) -> str:
    """A fixed search as the user writes it where the refused one was: an override in shell quotes, or the line of
    the sweep file's hydra.sweeper.params (a YAML key, whose value Hydra reads as an override's)."""
    if sweep_file is None:
        return f"'{key}={value}'"
    return f"`{key}: {value}` in conf/sweep/{sweep_file}.yaml"


def tagged(search: str, tags: Iterable[str]) -> str:
    """`search` inside Hydra's tag(...), as a tagged search is written; as it is without tags."""
    return f"tag({', '.join(sorted(tags))}, {search})" if tags else search


def endless_integer_range(
    key: str,
    start: float,
    end: float,
    tags: Iterable[str] = (),
    *,
    bound: Bound | None = None,
    sweep_file: str | None = None,
) -> ConfigError | None:
    """The error for a search of whole numbers with an end that is no number (`int(interval(1, inf))`, or
    `interval(1, inf)` of a key that takes whole numbers), even inside an open-ended range: no whole number is
    infinite, and Hydra's int(...) fails on it as it reads the override; None when both ends are finite. The example
    puts a round number in the place of each endless end, inside `bound`, the key's range in the run's task; without
    it (an override refused before the task is known), inside the range of the key in every task that bounds it."""
    if math.isfinite(start) and math.isfinite(end):
        return None
    least, greatest = whole_ends([bound] if bound is not None else bounds_in_every_task(key))
    if math.isfinite(start):
        low = start
    else:
        low = clamped(round_past(end if math.isfinite(end) else 0, up=False), least, greatest)
    high = end if math.isfinite(end) else clamped(round_past(low, up=True), least, greatest)
    if low > high:  # the given end lies outside the key's range too (-inf, -5 for a size): an example inside it
        low = clamped(0, least, greatest)
        high = clamped(round_past(low, up=True), least, greatest)
    endless = [(side, value) for side, value in (("lower", start), ("upper", end)) if not math.isfinite(value)]
    needs = f"a finite {endless[0][0]} bound" if len(endless) == 1 else "finite bounds"
    example = as_written(key, tagged(f"int(interval({shown_end(low)}, {shown_end(high)}))", tags), sweep_file)
    return ConfigError(
        f"an integer range needs {needs} (no whole number is {' or '.join(str(value) for _, value in endless)}); "
        f"give {'one' if len(endless) == 1 else 'them'}, e.g. {example}"
    )


def endless_integer_choice(
    key: str, values: Iterable[float], tags: Iterable[str] = (), *, listed: bool = False, sweep_file: str | None = None
) -> ConfigError | None:
    """The error for whole numbers chosen among values one of which is no number (`int(choice(1, inf))`): Hydra's
    int(...) fails on it as it reads the override. The example puts a round number past the finite values in the
    place of each; `listed`: the choice was written as a list (`int(1),int(inf)`), and the example is one too. None
    when every value is finite."""
    values = list(values)
    endless = list(dict.fromkeys(str(value) for value in values if not math.isfinite(value)))
    if not endless:
        return None
    finite = [value for value in values if math.isfinite(value)]
    low, high = round_past(min(finite, default=0), up=False), round_past(max(finite, default=0), up=True)
    shown = [shown_end(value if math.isfinite(value) else low if value < 0 else high) for value in values]
    example = ",".join(dict.fromkeys(shown)) if listed else f"int(choice({', '.join(dict.fromkeys(shown))}))"
    return ConfigError(
        f"integer choices must be finite (no whole number is {' or '.join(endless)}); give finite ones, e.g. "
        f"{as_written(key, tagged(example, tags), sweep_file)}"
    )


def bounds_in_every_task(key: str) -> list[Bound]:
    """The ranges the registered tasks give `key` (none when no task bounds it)."""
    from mlexp import tasks  # here: the registry imports the tasks, whose bounds import this module

    return [task.bounds[key] for task in tasks.load_all().values() if key in task.bounds]


def whole_ends(bounds: list[Bound]) -> tuple[int | None, int | None]:
    """The least and the greatest whole number that every one of `bounds` holds; None for a side none of them ends."""
    lows = [math.floor(b.low) + 1 if b.open_low else math.ceil(b.low) for b in bounds if b.low is not None]
    highs = [math.ceil(b.high) - 1 if b.open_high else math.floor(b.high) for b in bounds if b.high is not None]
    return max(lows, default=None), min(highs, default=None)


def clamped(value: float, least: float | None, greatest: float | None) -> float:
    """`value` moved to the nearer of `least` and `greatest` when it lies beyond it."""
    if least is not None:
        value = max(value, least)
    return value if greatest is None else min(value, greatest)


def round_past(end: float, *, up: bool) -> float:
    """A round number (100, 1000, ...; or -100, ...) beyond `end`, for an example range."""
    past = 100.0 if up else -100.0
    while past <= end if up else past >= end:
        past *= 10
    return past


def within(key: str, keys: set[str]) -> bool:
    """Whether `key` is one of `keys` or lies under one (`model.figure_size.0` under `model.figure_size`, every
    `model.*` under a group `model`): where a value given for those keys comes from."""
    parts = key.split(".")
    return any(".".join(parts[:n]) in keys for n in range(1, len(parts) + 1))


def check_bounds(cfg: DictConfig, bounds: Mapping[str, Bound]) -> None:
    """Raise the first key of `cfg` outside its bound; a null value (the default of an optional key) passes."""
    for error in bound_errors(cfg, bounds):
        raise error


def bound_errors(cfg: DictConfig, bounds: Mapping[str, Bound]) -> list[ConfigError]:
    """Every key of `cfg` outside its bound, in the order of `bounds`."""
    errors = []
    for key, bound in bounds.items():
        # a ${...} that cannot resolve here (an environment variable only a job gets) is each job's to judge
        value = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
        error = out_of_bounds(key, value, bound) or _too_short(cfg, key, value, bounds)
        if error is not None:
            errors.append(error)
    return errors


def _too_short(cfg: DictConfig, key: str, value: object, bounds: Mapping[str, Bound]) -> ConfigError | None:
    """The error for a list with no item where a bound is declared (`model.figure_size=[12]`, whose `.1` is read),
    found here rather than as an IndexError in a stage."""
    parent, _, index = key.rpartition(".")
    if value is not None or not index.isdigit():
        return None
    items = OmegaConf.select(cfg, parent, default=None, throw_on_resolution_failure=False)
    if not OmegaConf.is_list(items) or len(items) > int(index):
        return None
    needed = 1 + max(
        int(k.rpartition(".")[2]) for k in bounds if k.rpartition(".")[0] == parent and k.rpartition(".")[2].isdigit()
    )
    has = f"{len(items)} item{'s' if len(items) != 1 else ''}" if items else "no items"
    shown = OmegaConf.to_container(items)
    return ConfigError(f"{parent}={shown} has {has}; it takes {needed}, each {bounds[key]}")
