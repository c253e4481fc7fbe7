"""The posts' comparison charts as matplotlib figures: shown in a notebook, and saved as PNG by `mlexp compare`.

Figures are built without pyplot, so a notebook kernel keeps no figure list between calls and the charts
draw the same under any backend (mlexp.charts selects Agg for the command line).
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib import rcParams
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from mlexp.experiment_analytics.columns import column, find_column
from mlexp.experiment_analytics.trials import ExperimentAnalytics


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
# a param's value in a line's label is cut to this many characters (a list of rule names is one long line)
LABEL_VALUE_CHARS = 24
# inches a character of a title (12 pt) and of an axis label (10 pt) takes, and the inches of a figure's side the
# tick labels and the other axis's label take: a title or label longer than its side is wrapped
TITLE_CHAR, LABEL_CHAR, AXIS_MARGIN = 0.105, 0.09, 1.3
# a metric whose positive values span more than this factor is drawn on a log scale: epoch 1's loss would
# otherwise flatten the gap between trials at the end
LOG_SPAN = 10.0
# params that repeat a trial rather than try something (the seed of the sweep's repeats): in the table and on a
# curve's label, never drawn against the metric as if a hyperparameter
REPEAT_PARAMS = ("seed",)
# metrics a trial logs for the step it chose (early stopping, the epochs picked on validation): circled on its line
CHOSEN_STEP_METRICS = ("best_step", "best_epoch", "best_iteration")
BETTER = {"minimize": "lower is better", "maximize": "higher is better"}


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


def metric_by_step(
    series: Mapping[str, Sequence[tuple[int, float]]],
    metric: str,
    step_label: str = "step",
    chosen: Mapping[str, int] | None = None,
    chosen_label: str = "chosen step",
) -> Figure:
    """One line per trial: `metric` against its step (the post's loss-by-epoch chart), the legend beside it.

    Args:
        series: each line's points by its legend label, in the legend's order (best first).
        step_label: what a step is (an epoch, a boosting round), when the caller knows.
        chosen: a step to circle on some lines (the one the trial kept), by label; `chosen_label` names it.
    """
    chosen = chosen or {}
    circled = {label: step for label, step in chosen.items() if any(s == step for s, _ in series.get(label, ()))}
    legend_labels = [*series, *([chosen_label] if circled else [])]
    columns = max(1, math.ceil(len(legend_labels) / LEGEND_ROWS))
    rows = math.ceil(len(legend_labels) / columns)
    label_chars = max((len(str(label)) for label in legend_labels), default=0)
    legend_width = columns * (label_chars * LEGEND_CHAR + 0.7)
    height = max(4.5, rows * LEGEND_ROW + 1.0)
    fig = Chart(figsize=(7 + legend_width, height), layout="tight")
    ax = fig.add_subplot()
    styles = line_styles(len(series))
    for (label, points), style in zip(series.items(), styles):
        steps, values = zip(*sorted(points)) if points else ((), ())
        ax.plot(steps, values, label=label, color=style["color"], linestyle=style["linestyle"], marker=style["marker"])
        if label in circled:
            value = dict(points)[circled[label]]
            ax.plot([circled[label]], [value], marker="o", markersize=11, fillstyle="none", color=style["color"])
    drawn = [v for points in series.values() for _, v in points if math.isfinite(v)]
    if drawn and min(drawn) > 0 and max(drawn) > LOG_SPAN * min(drawn):
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole: no tick at 1.5
    ax.set_xlabel(step_label)
    ax.set_ylabel(wrapped(metric, _label_chars(height)))
    ax.set_title(wrapped(f"{metric} by step, per trial", _title_chars(7)))
    if series:  # outside the axes, so it covers no line; the layout shrinks the axes to make room for it
        handles, _ = ax.get_legend_handles_labels()
        if circled:
            handles.append(Line2D([], [], marker="o", markersize=11, fillstyle="none", color="grey", linestyle=""))
        ax.legend(
            handles,
            legend_labels,
            fontsize="small",
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0,
            ncols=columns,
        )
    return fig


# a category's label under its point: wrapped to this many characters a line (fewer past 8 categories, which share
# the widest figure), at most this many lines
TICK_WIDTH, CROWDED_TICK_WIDTH, TICK_LINES = 22, 16, 4


def param_vs_metric(
    values: Sequence[float | str],
    scores: Sequence[float],
    param: str,
    metric: str,
    direction: str | None = None,
) -> Figure:
    """Scatter of one hyperparameter against a metric (the post's l1_size vs MSLE chart).

    Args:
        direction: `minimize` or `maximize` when `metric` is the objective: the y label says which way is
            better and the best trial is starred; otherwise (a reported metric) neither.
    """
    numeric = all(isinstance(v, (int, float)) for v in values)
    labels = [] if numeric else sorted({str(v) for v in values})
    # a category needs room for its label: a list of rule names is one long line
    width, height = min(16.0, max(6.0, 1.8 * len(labels))), 4.5
    fig = Chart(figsize=(width, height), layout="tight")
    ax = fig.add_subplot()
    xs = list(values) if numeric else [labels.index(str(v)) for v in values]
    ax.scatter(xs, scores)
    if not numeric:
        tick_width = TICK_WIDTH if len(labels) <= 8 else CROWDED_TICK_WIDTH
        ax.set_xticks(range(len(labels)), [tick_label(label, tick_width) for label in labels], fontsize="small")
        ax.set_xlim(-0.5, len(labels) - 0.5)
    ylabel = wrapped(metric, _label_chars(height))
    known = [(score, i) for i, score in enumerate(scores) if math.isfinite(score)]
    if direction in BETTER and known:
        ylabel += f"\n({BETTER[direction]})"
        best = min(known)[1] if direction == "minimize" else min((-s, i) for s, i in known)[1]
        ax.scatter([xs[best]], [scores[best]], marker="*", s=260, color="C3", zorder=3, label="best trial")
        # beside the axes: inside, "best" still covered points of a crowded sweep (6 of 30 random 40-trial charts)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.3)
    ax.set_xlabel(wrapped(param, _title_chars(width) + 10))
    ax.set_ylabel(ylabel)
    ax.set_title(wrapped(f"{param} vs {metric}", _title_chars(width)))
    return fig


def tick_label(value: str, width: int = TICK_WIDTH) -> str:
    """`value` wrapped to `width` characters a line; past TICK_LINES lines, cut with an ellipsis."""
    lines = textwrap.wrap(value, width) or [value]
    if len(lines) > TICK_LINES:
        lines = [*lines[: TICK_LINES - 1], lines[TICK_LINES - 1][: width - 1] + "…"]
    return "\n".join(lines)


def wrapped(text: str, width: int) -> str:
    """`text` in lines of at most `width` characters, broken after a space, `_`, `.` or `,`: a metric's name
    (`cold_users_normalized_discounted_cumulative_gain_at_10`) has no spaces, and breaks between its words."""
    lines: list[str] = []
    line = ""
    for piece in re.split(r"(?<=[\s_.,])", text):
        if line and len(line) + len(piece.rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        line += piece
    lines.append(line.rstrip())
    # a piece longer than a line alone (no break in it) is cut where it must
    return "\n".join(part for line in lines for part in textwrap.wrap(line, width) or [line])


def _title_chars(inches: float) -> int:
    return max(20, int((inches - AXIS_MARGIN) / TITLE_CHAR))


def _label_chars(inches: float) -> int:
    return max(16, int((inches - AXIS_MARGIN) / LABEL_CHAR))


def is_repeat(param: str) -> bool:
    """A param that repeats a trial (a seed: `seed`, `model.seed`), not one a trial tries."""
    return param.rsplit(".", 1)[-1] in REPEAT_PARAMS


def compared_params(frame: pd.DataFrame, params: Sequence[str], choices: Sequence[str] = ()) -> list[str]:
    """The `choices` (config groups' options, `model`) and `params` to draw against a metric, the choices first:
    those varying among the rows, less repeats and followers.

    A follower's value is fixed by another's in every row, and would repeat its chart. A config group's sub-keys
    (`model.C`, set by one classifier only; `features.users`) follow what names the group's option, its choice
    (`model`) or its `<group>.name` param, wherever that fixes them, even with one trial per option; the namer
    never follows them. Between other params, of two that fix each other the one with the shorter values stays,
    and only a leader whose values recur (tried with several seeds or with other params) shows it: with one trial
    per value, every param fixes the others, and all are drawn."""
    text = {p: frame[p].map(lambda v: "" if _missing(v) else str(v)) for p in [*choices, *params] if p in frame.columns}
    varying = [p for p in text if not is_repeat(p) and text[p].nunique() > 1]
    # what names a group's option, by the prefix of the group's keys (a nested `model/optimizer`: `model.optimizer.`)
    groups = {p: p.removesuffix("name") for p in params if p.endswith(".name")}
    groups |= {group: group.replace("/", ".") + "." for group in choices}

    def owns(namer: str, key: str) -> bool:
        """`key` is a sub-key of the config group whose option `namer` names."""
        return namer in groups and key != namer and key.startswith(groups[namer])

    def fixes(leader: str, follower: str) -> bool:
        """Each value of `leader` comes with one value of `follower`, in every row."""
        pairs = pd.DataFrame({"leader": text[leader], "follower": text[follower]})
        return bool((pairs.groupby("leader")["follower"].nunique() <= 1).all())

    def follows(follower: str, leader: str) -> bool:
        if owns(follower, leader):
            return False
        if owns(leader, follower):
            return fixes(leader, follower)
        # a leader with a value of its own in every row fixes every other param trivially (a random sweep's
        # samples): only values shared by rows show that one param follows another
        if text[leader].nunique() == len(frame) or not fixes(leader, follower):
            return False
        mutual = text[follower].nunique() < len(frame) and fixes(follower, leader)
        return not mutual or reads(leader) < reads(follower)

    def reads(param: str) -> tuple[int, str]:
        return max(len(v) for v in text[param]), param

    return [p for p in varying if not any(follows(p, other) for other in varying if other != p)]


def line_labels(frame: pd.DataFrame, params: Sequence[str], choices: Sequence[str] = ()) -> dict[str, str]:
    """Each row's legend label by its RunId: the choices and params its charts compare and its repeat (seed),
    `l1_size=16, l1_activation=tanh` or `model=tfidf_linear`; the trial's name where those do not tell it apart."""
    compared = compared_params(frame, params, choices)
    shown = [p for p in choices if p in compared]
    shown += [p for p in params if p in compared or (is_repeat(p) and frame[p].nunique(dropna=False) > 1)]
    prefix = _common_prefix(shown)
    labels = {
        row["RunId"]: ", ".join(f"{p[len(prefix) :]}={_short(row[p])}" for p in shown) for _, row in frame.iterrows()
    }
    counts = pd.Series(list(labels.values())).value_counts()
    names = dict(zip(frame["RunId"], frame["TrialName"]))
    named = {
        run_id: label if label and counts[label] == 1 else f"{label} ({names[run_id]})" if label else names[run_id]
        for run_id, label in labels.items()
    }
    # single runs are named to the second: two alike from one second would still share a label, and a line
    named_counts = pd.Series(list(named.values())).value_counts()
    return {run_id: f"{text} [{run_id[:8]}]" if named_counts[text] > 1 else text for run_id, text in named.items()}


def _group(param: str) -> str:
    return param.rsplit(".", 1)[0] if "." in param else ""


def _common_prefix(params: Sequence[str]) -> str:
    """The dotted group every param shares (`model.` of `model.l1_size` and `model.l1_activation`), if any."""
    groups = {_group(p) for p in params}
    return f"{groups.pop()}." if len(groups) == 1 and "" not in groups else ""


def _short(value: object) -> str:
    text = "" if _missing(value) else str(value)
    return text if len(text) <= LABEL_VALUE_CHARS else text[: LABEL_VALUE_CHARS - 1] + "…"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def curves(data: pd.DataFrame, metric: str, trials: pd.DataFrame | None = None) -> Figure:
    """`metric` by step, one line per trial, from `metric_history()` or from the trials of `analytics()`.

    Lines are labelled with the params that vary between the trials, in the trials' order (best first), when the
    trials are known: `data` itself from `analytics()`, or `trials=` beside a `metric_history()`."""
    if "step" in data.columns:
        history = data
    else:
        trials = data
        reader = ExperimentAnalytics(data.attrs.get("experiment"), tracking_uri=data.attrs.get("tracking_uri"))
        history = reader.metric_history([metric])
        history = history[history["run_id"].isin(data["RunId"])]
    shown = history[history["metric"] == metric]
    names = shown.drop_duplicates("run_id").set_index("run_id")["trial"]
    order = list(names.index)
    labels: dict[str, str] = {}
    chosen: dict[str, int] = {}
    chosen_label = "chosen step"
    if trials is not None:
        known = trials[trials["RunId"].isin(order)]
        order = [*known["RunId"], *(run_id for run_id in order if run_id not in set(known["RunId"]))]
        labels = line_labels(known, trials.attrs.get("params", []), trials.attrs.get("choices", []))
        chosen_metric = next((m for m in CHOSEN_STEP_METRICS if column(m, "Last") in known.columns), None)
        if chosen_metric:
            chosen_label = f"{chosen_metric} (circled)"
            steps = known.set_index("RunId")[column(chosen_metric, "Last")]
            chosen = {labels[run_id]: int(step) for run_id, step in steps.items() if pd.notna(step)}
    series = {}
    for run_id in order:
        points = shown[shown["run_id"] == run_id]
        # two trials of one name stay two lines
        name = names[run_id] if (names == names[run_id]).sum() == 1 else f"{names[run_id]} ({str(run_id)[:8]})"
        series[labels.get(run_id, name)] = list(zip(points["step"].tolist(), points["value"].tolist()))
    return metric_by_step(series, metric, chosen=chosen, chosen_label=chosen_label)


def scatter(frame: pd.DataFrame, param: str, metric: str) -> Figure:
    """`param` (or a config group's choice, `model`) against `metric` (its last value), one point per trial of
    `analytics()` that has the metric; for the objective, which way is better and the best trial starred."""
    y = find_column(frame, metric)
    x = find_column(frame, param)
    shown = frame[frame[y].notna()]
    values = ["" if pd.isna(v) else v for v in shown[x].tolist()]
    if param in frame.attrs.get("choices", []):  # options are names, one on each tick, even a numbered file's `1`
        values = [str(v) for v in values]
    direction = frame.attrs.get("direction") if metric == frame.attrs.get("objective") else None
    return param_vs_metric(values, shown[y].tolist(), param, metric, direction)
