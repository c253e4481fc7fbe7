"""How many values a sweep's range(...) lists, and how many jobs a grid runs, counted without listing them.

Listed, `range(1, inf)` never ends and `range(0, 1000000000)` takes hours and the memory, silently, in Hydra's basic
sweeper, in Optuna's (a choice among its values) and in mlexp's own checks of each value; counted, each is one line
before the sweep's record opens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

from hydra.core.override_parser.types import ChoiceSweep, RangeSweep

from mlexp.config.bounds import as_written, round_past, shown_end, tagged
from mlexp.errors import ConfigError, first_few

# A grid runs one trial per combination of its values. Hydra's basic sweeper lists every job's overrides and composes
# each job's config before it launches the first (15 ms a job measured on a loaded 2-core host: 2.5 minutes for
# 10,000), and the quickest trial (abalone at 300 rows, one epoch) takes a second: 10,000 jobs are hours of trials.
# Past that a grid is a slip (a range without its step), not a plan; a search samples sweep.max_jobs of any range.
MAX_GRID_JOBS = 10_000

# The values of one range that the checks of each swept value try one by one (0.4 ms each): a longer range is judged
# by its first and last values, its smallest and largest (range_ends).
MAX_LISTED_VALUES = 1_000

# Optuna's sweeper makes choice(...) and shuffle(range(...)) a categorical distribution: every value listed (by the
# sweeper, and by mlexp's check of what it makes), and weighed by TPE for each trial. Measured on a 2-core host for
# shuffle(range(0, n)), listing / 20 TPE trials / memory: 10^5 values 0.2 s / 1.8 s / 61 MB; 10^6 2.2 s / 25 s /
# 590 MB; 10^7 22 s / 7 min / 5.9 GB (a billion: hours, or out of memory). An interval samples any span at once.
MAX_CHOICE_VALUES = 100_000


def range_length(sweep: RangeSweep) -> int | None:
    """The number of values range(...) lists, as Hydra lists them; None when it lists without end (endless_range).
    A whole step of 0 raises Python's range's ValueError, as Hydra's listing of it does."""
    start, stop, step = _numbers(sweep)
    if _whole(sweep):
        return len(range(int(start), int(stop), int(step)))
    if not all(math.isfinite(number) for number in (start, stop, step)) or step == 0:
        return None
    # Hydra counts a fractional range in Decimal, from the floats as given
    return max(0, math.ceil((Decimal(stop) - Decimal(start)) / Decimal(step)))


def range_ends(sweep: RangeSweep) -> list[str] | None:
    """The first and last values of a range, as Hydra writes them in a job's override; None when it lists none, or
    none that could be counted."""
    start, _, step = _numbers(sweep)
    length = range_length(sweep)
    if not length:
        return None
    if _whole(sweep):
        return [str(start), str(start + (length - 1) * step)]
    return [str(float(start)), str(float(Decimal(start) + (length - 1) * Decimal(step)))]


def endless_range(key: str, sweep: RangeSweep, *, sweep_file: str | None = None) -> ConfigError | None:
    """The error for a range(...) that never ends: an end that is no number (`range(1, inf)`), which a grid would list
    until the memory runs out and Optuna cannot sample, or a fractional range's step of 0 (`range(1, 5, 0.0)`), which
    lists its start forever. `sweep_file`: the sweep file it is written in (as_written), if any. None for a range that
    ends, and for a step that is no number (Hydra's and Optuna's own errors)."""
    start, stop, step = _numbers(sweep)
    endless = [end for end in (start, stop) if not math.isfinite(end)]
    if not math.isfinite(step) or not (endless or (step == 0 and not _whole(sweep))):
        return None
    if endless:
        up = step >= 0
        names = [name for name, end in (("start", start), ("stop", stop)) if not math.isfinite(end)]
        needs, why = f"a finite {' and '.join(names)}", f"no count of steps reaches {' or '.join(map(str, endless))}"
        start = start if math.isfinite(start) else round_past(stop if math.isfinite(stop) else 0, up=not up)
        stop = stop if math.isfinite(stop) else round_past(start, up=up)
    else:
        needs, why = "a step other than 0", f"it would list {shown_end(start)} without end"
        whole_ends = float(start).is_integer() and float(stop).is_integer()
        step = math.copysign(1 if whole_ends or start == stop else abs(stop - start) / 10, stop - start)
    example = f"range({shown_end(start)}, {shown_end(stop)}{'' if step == 1 else f', {shown_end(step)}'})"
    example = tagged(f"shuffle({example})" if sweep.shuffle else example, sweep.tags)
    give = "them" if len(endless) == 2 else "one"
    return ConfigError(f"a range needs {needs} ({why}); give {give}, e.g. {as_written(key, example, sweep_file)}")


def _numbers(sweep: RangeSweep) -> tuple[float, float, float]:
    assert sweep.start is not None and sweep.stop is not None  # the grammar's range(stop) starts at 0
    return sweep.start, sweep.stop, sweep.step


def _whole(sweep: RangeSweep) -> bool:
    """Whether Hydra lists the range with Python's range (every number whole), not its fractional FloatRange."""
    return all(isinstance(number, int) for number in (sweep.start, sweep.stop, sweep.step))


def grid_too_large(swept: Sequence[tuple[str, int]]) -> ConfigError | None:
    """The error for a grid of more than MAX_GRID_JOBS jobs; `swept`: each swept override as written (with the sweep
    file it is in) and the number of values it lists. None for a grid of fewer."""
    jobs = math.prod(count for _, count in swept)
    if jobs <= MAX_GRID_JOBS:
        return None
    factors = " × ".join(f"{count:,} values of {source}" for source, count in swept if count > 1)
    return ConfigError(
        f"the grid would run {jobs:,} jobs ({factors}), and a grid runs at most {MAX_GRID_JOBS:,}: give fewer values "
        "(a range's step: range(start, stop, step)), or sample them with sweep=random or sweep=tpe, which run "
        "sweep.max_jobs trials"
    )


def too_many_choices(written: str, key: str, search: object, *, sweep_file: str | None = None) -> ConfigError | None:
    """The error for a search Optuna's sweeper would make a choice among more than MAX_CHOICE_VALUES values (a
    choice(...), or a shuffle(range(...))), with the number interval that samples the same span. `written`: the
    override as typed; `sweep_file`: the sweep file it is written in (as_written), if any. None for any other search."""
    if isinstance(search, RangeSweep) and search.shuffle:
        count, whole = range_length(search) or 0, _whole(search)
        values: list[object] = [float(end) for end in range_ends(search) or ()]  # its smallest and largest
    elif isinstance(search, ChoiceSweep):
        count, values = len(search.list), list(search.list)
        whole = all(isinstance(value, int) for value in values)
        written = f"{key}={first_few(values, shown=3)}"  # named by its first values, not a line of 100,000
    else:
        return None
    if count <= MAX_CHOICE_VALUES:
        return None
    problem = (
        f"{written}: Optuna's sweeper would make it a choice among {count:,} values, listed one by one, and past "
        f"{MAX_CHOICE_VALUES:,} that takes minutes and gigabytes before the first trial"
    )
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if len(numbers) < len(values):
        return ConfigError(f"{problem}; give at most {MAX_CHOICE_VALUES:,} values")
    low, high = min(numbers), max(numbers)
    step = _numbers(search)[2] if isinstance(search, RangeSweep) else 1
    if isinstance(search, RangeSweep) and whole and step != 1 and (ends := range_ends(search)):
        # Optuna samples a whole range it is not told to shuffle with its step, both ends included: the same values
        # (a log scale it does not take with a step: the tag would be dropped unsaid, so it is not offered)
        fix = as_written(key, f"range({ends[0]}, {ends[1]}, {step})", sweep_file)
        return ConfigError(f"{problem}; without shuffle(...) Optuna samples it with its step, unlisted: {fix}")
    if whole:
        interval = f"int(interval({shown_end(low)}, {shown_end(high)}))"
    else:  # Hydra reads interval(0, 1) as whole numbers: each end written as a fraction
        interval = f"interval({_fraction(low)}, {_fraction(high)})"
    tags = [tag for tag in search.tags if tag != "log" or low > 0]  # a log scale starts above 0
    fix = as_written(key, tagged(interval, tags), sweep_file)
    return ConfigError(f"{problem}; sample its span as {'an integer' if whole else 'a number'} distribution: {fix}")


def _fraction(end: float) -> str:
    shown = shown_end(end)
    return f"{shown}.0" if shown.lstrip("-").isdigit() else shown
