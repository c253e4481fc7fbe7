"""The post's charts, drawn from aggregates so that millions of trips render in a second.

The post plots `plt.scatter(range(n), np.sort(duration_second))`, one dot per trip (7-10
minutes for a month). Sorted, the trips with one duration value occupy consecutive indexes,
so that scatter is exactly a set of horizontal runs: value v from index a to index b. We
draw each run as a line as thick as the scatter's dots, with round ends, plus a dot at its
start: the same picture, from one row per distinct value (thousands, not millions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter
from numpy.typing import ArrayLike

# plt.scatter's default marker: 36 points², a dot 6 points across
DOT_AREA = 36.0
DOT_WIDTH = 6.0
TIME_TICKS = {1: "1 s", 60: "1 min", 3600: "1 h", 86400: "1 day", 7 * 86400: "1 week"}


def sorted_runs(counts: pd.DataFrame) -> pd.DataFrame:
    """From trips per duration value to the sorted scatter's runs: value, first index, last index."""
    valid = counts.dropna(subset=["duration_second"]).sort_values("duration_second")
    trips = valid["trips"].to_numpy(np.int64)
    # trips before each value (no rows at all: no runs, as when every trip is flagged)
    first = np.cumsum(trips) - trips
    return pd.DataFrame(
        {"index": first, "last_index": first + trips - 1, "duration_second": valid["duration_second"].to_numpy()}
    )


def sorted_durations(
    runs: pd.DataFrame,
    path: Path,
    title: str,
    figure_size: Sequence[float],
    thresholds: Mapping[str, float] | None = None,
) -> Path:
    """The post's sorted `duration_second` scatter (index on x), every trip drawn, with the enabled rules'
    `thresholds` (seconds, by label) as horizontal lines and hours on a second y axis."""
    fig = Figure(figsize=(figure_size[0], figure_size[1]))
    ax = fig.subplots()
    values = runs["duration_second"].to_numpy(float)
    start, end = runs["index"].to_numpy(float), runs["last_index"].to_numpy(float)
    # every run as one piece of a single line, broken by NaN (one path, not a path per run: 20,000 runs
    # would cost 20,000 Path objects, most of the chart's time)
    xs = np.column_stack([start, end, np.full_like(start, np.nan)]).ravel()
    ys = np.column_stack([values, values, np.full_like(values, np.nan)]).ravel()
    ax.plot(xs, ys, linewidth=DOT_WIDTH, color="C0", solid_capstyle="round")
    ax.scatter(start, values, s=DOT_AREA, color="C0")
    ax.autoscale()
    trips = int(end[-1] + 1) if len(end) else 0
    ax.set(xlabel="index", ylabel="duration_second", title=f"{title}: {trips:,} trips sorted by duration_second")
    ax.ticklabel_format(style="plain", axis="both", useOffset=False)
    _threshold_lines(ax, thresholds or {}, bool(len(values)))
    hours = ax.secondary_yaxis("right", functions=(_hours, _seconds))
    hours.set_ylabel("hours")
    return _save(fig, path)


def _hours(seconds: ArrayLike) -> ArrayLike:
    return np.asarray(seconds) / 3600


def _seconds(hours: ArrayLike) -> ArrayLike:
    return np.asarray(hours) * 3600


def _threshold_lines(ax: Axes, thresholds: Mapping[str, float], has_data: bool) -> None:
    """A dotted line per threshold; one outside the trips' range is only named, so that a day-long cut
    does not flatten the chart after cleaning (its trips all last under a day)."""
    low, high = ax.get_ylim()
    for number, (label, seconds) in enumerate(thresholds.items(), start=1):
        shown = low <= seconds <= high or not has_data
        where = f"{seconds:,.0f} s = {seconds / 3600:,.4g} h" + ("" if shown else ", off the chart")
        ax.axhline(seconds, color=f"C{number}", linestyle="--", linewidth=1.5, label=f"{label} ({where})")
    if has_data:
        ax.set_ylim(low, high)
    if thresholds:
        ax.legend(loc="upper left", fontsize="small", title="enabled rules' thresholds")


def duration_histogram(
    histogram: pd.DataFrame,
    bins_per_decade: int,
    markers: Mapping[str, float],
    note: str,
    path: Path,
    figure_size: Sequence[float],
) -> Path:
    """Trips per logarithmic bin of duration_second, with the rules' thresholds as vertical lines."""
    fig = Figure(figsize=(figure_size[0], figure_size[0] / 2))
    ax = fig.subplots()
    bins = histogram["bin"].to_numpy(float)
    low, high = 10 ** (bins / bins_per_decade), 10 ** ((bins + 1) / bins_per_decade)
    ax.bar(low, histogram["trips"].to_numpy(float), width=high - low, align="edge", color="C0", alpha=0.8)
    for number, (label, seconds) in enumerate(markers.items(), start=1):
        ax.axvline(seconds, color=f"C{number}", linestyle="--", linewidth=1.5, label=f"{label} ({seconds:,.0f} s)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    # no minor ticks and plain tick labels: a log axis' minor ticks (over a hundred here) and its mathtext
    # labels (10^3) were most of the chart's time, twice over (tight_layout draws once, savefig again)
    ax.minorticks_off()
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    shown = {s: label for s, label in TIME_TICKS.items() if len(low) and low.min() / 10 <= s <= high.max() * 10}
    ax.set_xticks(list(shown), [f"{label}\n({s:,} s)" for s, label in shown.items()])
    # the note under the title, not in the axes, where it sat on the tallest bars
    ax.set(xlabel="duration_second (log scale)", ylabel="trips (log scale)")
    ax.set_title(f"Trip durations and rule thresholds\n{note}", fontsize="medium")
    if markers:
        ax.legend(loc="upper right", fontsize="small")
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    """Written with matplotlib's object API, not pyplot: no global figure list, any backend, any thread (a stage
    draws while its next query runs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
