"""The posts' comparison charts as matplotlib figures: shown in a notebook, and saved as PNG by `mlexp compare`.

Figures are built without pyplot, so a notebook kernel keeps no figure list between calls and the charts
draw the same under any backend (mlexp.charts selects Agg for the command line).
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib import rcParams
from matplotlib.figure import Figure

from mlexp.experiment_analytics import ExperimentAnalytics, find_column


class Chart(Figure):
    """A figure a notebook displays as PNG without pyplot's inline backend."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=110)
        return buffer.getvalue()


# past the colour cycle's colours the lines change style too: no two trials look alike
LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = (".", "x", "+", "1")  # and past colours x styles, the markers
# the legend beside the plot: a column holds this many trials before another column starts; the figure grows to
# hold them (a "small" entry is about LEGEND_ROW inches tall, a character of its label about LEGEND_CHAR wide)
LEGEND_ROWS, LEGEND_ROW, LEGEND_CHAR = 30, 0.18, 0.07


def line_styles(count: int) -> list[dict[str, str]]:
    """A colour, line style and marker for each of `count` lines, no two alike."""
    colors = rcParams["axes.prop_cycle"].by_key().get("color") or ["C0"]
    styled = len(colors) * len(LINE_STYLES)
    return [
        {
            "color": colors[i % len(colors)],
            "linestyle": LINE_STYLES[i // len(colors) % len(LINE_STYLES)],
            "marker": MARKERS[i // styled % len(MARKERS)],
        }
        for i in range(count)
    ]


def metric_by_step(series: Mapping[str, Sequence[tuple[int, float]]], metric: str) -> Figure:
    """One line per trial: `metric` against its step (the post's loss-by-epoch chart), the legend beside it."""
    columns = max(1, math.ceil(len(series) / LEGEND_ROWS))
    rows = math.ceil(len(series) / columns)
    label_chars = max((len(str(label)) for label in series), default=0)
    legend_width = columns * (label_chars * LEGEND_CHAR + 0.7)
    fig = Chart(figsize=(7 + legend_width, max(4.5, rows * LEGEND_ROW + 1.0)), layout="tight")
    ax = fig.add_subplot()
    for (label, points), style in zip(series.items(), line_styles(len(series))):
        steps, values = zip(*sorted(points)) if points else ((), ())
        ax.plot(steps, values, label=label, color=style["color"], linestyle=style["linestyle"], marker=style["marker"])
    ax.set(xlabel="step (epoch)", ylabel=metric, title=f"{metric} by step, per trial")
    if series:  # outside the axes, so it covers no line; the layout shrinks the axes to make room for it
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, ncols=columns)
    return fig


# a category's label under its point: wrapped to this many characters a line (fewer past 8 categories, which share
# the widest figure), at most this many lines
TICK_WIDTH, CROWDED_TICK_WIDTH, TICK_LINES = 22, 16, 4


def param_vs_metric(values: Sequence[float | str], scores: Sequence[float], param: str, metric: str) -> Figure:
    """Scatter of one hyperparameter against a metric (the post's l1_size vs MSLE chart)."""
    numeric = all(isinstance(v, (int, float)) for v in values)
    labels = [] if numeric else sorted({str(v) for v in values})
    # a category needs room for its label: a list of rule names is one long line
    fig = Chart(figsize=(min(16.0, max(6.0, 1.8 * len(labels))), 4.5), layout="tight")
    ax = fig.add_subplot()
    if numeric:
        ax.scatter(values, scores)
    else:
        ax.scatter([labels.index(str(v)) for v in values], scores)
        width = TICK_WIDTH if len(labels) <= 8 else CROWDED_TICK_WIDTH
        ax.set_xticks(range(len(labels)), [tick_label(label, width) for label in labels], fontsize="small")
        ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.set(xlabel=param, ylabel=metric, title=f"{param} vs {metric}")
    return fig


def tick_label(value: str, width: int = TICK_WIDTH) -> str:
    """`value` wrapped to `width` characters a line; past TICK_LINES lines, cut with an ellipsis."""
    lines = textwrap.wrap(value, width) or [value]
    if len(lines) > TICK_LINES:
        lines = [*lines[: TICK_LINES - 1], lines[TICK_LINES - 1][: width - 1] + "…"]
    return "\n".join(lines)


def curves(data: pd.DataFrame, metric: str) -> Figure:
    """`metric` by step, one line per trial, from `metric_history()` or from the trials of `analytics()`."""
    if "step" in data.columns:
        history = data
    else:
        trials = ExperimentAnalytics(data.attrs.get("experiment"), tracking_uri=data.attrs.get("tracking_uri"))
        history = trials.metric_history([metric])
        history = history[history["run_id"].isin(data["RunId"])]
    shown = history[history["metric"] == metric]
    names = shown.drop_duplicates("run_id").set_index("run_id")["trial"]
    series = {}
    for run_id, points in shown.groupby("run_id", sort=False):
        # two trials of one name stay two lines
        label = names[run_id] if (names == names[run_id]).sum() == 1 else f"{names[run_id]} ({str(run_id)[:8]})"
        series[label] = list(zip(points["step"].tolist(), points["value"].tolist()))
    return metric_by_step(series, metric)


def scatter(frame: pd.DataFrame, param: str, metric: str) -> Figure:
    """`param` against `metric` (its last value), one point per trial of `analytics()` that has the metric."""
    y = find_column(frame, metric)
    x = find_column(frame, param)
    shown = frame[frame[y].notna()]
    values = ["" if pd.isna(v) else v for v in shown[x].tolist()]
    return param_vs_metric(values, shown[y].tolist(), param, metric)
