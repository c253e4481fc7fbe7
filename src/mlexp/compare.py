"""Compare trials from the MLflow store alone: a table best-first and the post's charts."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from mlexp import charts, plot
from mlexp.experiment_analytics.columns import column, varying
from mlexp.experiment_analytics.store import MAX_TRIALS
from mlexp.tracking import tags


@dataclass
class TrialRow:
    run_id: str
    name: str
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    run_tags: dict[str, str] = field(default_factory=dict)

    def value(self, metric: str) -> float:
        return self.metrics.get(metric, math.nan)


def find_trials(client: MlflowClient, experiment_name: str, sweep_id: str | None = None) -> list[TrialRow]:
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    query = f"tags.`{tags.KIND}` = 'trial'"
    if sweep_id:
        query += f" and tags.`{tags.SWEEP_ID}` = '{sweep_id}'"
    runs = client.search_runs([experiment.experiment_id], filter_string=query, max_results=MAX_TRIALS)
    return [
        TrialRow(
            run_id=run.info.run_id,
            name=run.info.run_name or run.info.run_id[:8],
            status=run.info.status,
            params=dict(run.data.params),
            metrics=dict(run.data.metrics),
            run_tags=dict(run.data.tags),
        )
        for run in runs
    ]


def is_scored(row: TrialRow, metric: str) -> bool:
    """A finished trial with a value of `metric` to rank it by."""
    return row.status == "FINISHED" and not math.isnan(row.value(metric))


def best_first(rows: list[TrialRow], metric: str, direction: str) -> list[TrialRow]:
    """Finished trials ordered by the objective, then the rest (failed, killed, unscored) in their order."""
    sign = -1.0 if direction == "maximize" else 1.0

    def key(row: TrialRow) -> tuple[int, float]:
        return (0, sign * row.value(metric)) if is_scored(row, metric) else (1, 0.0)

    return sorted(rows, key=key)


def varying_params(rows: list[TrialRow]) -> list[str]:
    return varying([row.params for row in rows])


def format_table(table: pd.DataFrame, headline: list[str]) -> str:
    """The trials of `analytics()` in their order: the config groups whose option varies (`model`), varying params,
    then the objective's and headline metrics' values.

    A headline metric no trial logged (a sweep that runs one stage of the task) is left out; the objective never is."""
    logged = [m for m in headline if column(m, "Last") in table.columns and table[column(m, "Last")].notna().any()]
    metrics = list(dict.fromkeys([table.attrs["objective"], *logged]))
    params = [*table.attrs.get("choices", []), *table.attrs["params"]]
    header = ["#", "trial", "status", *params, *metrics]
    columns = [
        [str(i + 1) for i in range(len(table))],
        list(table["TrialName"]),
        list(table["Status"]),
        *(_params_shown(list(table[p])) for p in params),
        *(_numbers_shown([row.get(column(m, "Last"), math.nan) for _, row in table.iterrows()]) for m in metrics),
    ]
    body = [list(cells) for cells in zip(*columns)] if len(table) else []
    widths = [max(len(cell) for cell in cells) for cells in zip(header, *body)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in [header, *body]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


SHOWN_DIGITS = 6


def distinct_digits(values: list[float], least: int = SHOWN_DIGITS) -> int:
    """The fewest significant digits, at least `least`, that keep the distinct values apart on screen.

    Two trials at 0.03179261 and 0.03179264 both read 0.0317926 in 6 digits, which looks like a tie."""
    distinct = {v for v in values if math.isfinite(v)}
    for digits in range(least, 18):
        if len({f"{v:.{digits}g}" for v in distinct}) == len(distinct):
            return digits
    return 17


def _numbers_shown(values: list[float]) -> list[str]:
    digits = distinct_digits([v for v in values if not pd.isna(v)])
    return ["" if pd.isna(v) else _shortest(v, digits) for v in values]


def _shortest(value: float, digits: int) -> str:
    """`value` in `digits` significant digits, or Python's shortest exact text when that is shorter (0.3, not
    0.29999999999999999 in 17 digits)."""
    text = f"{value:.{digits}g}"
    exact = repr(float(value))
    return exact if len(exact) < len(text) else text


def _params_shown(values: list[object]) -> list[str]:
    """Params as MLflow stored them, but floats sampled to 16 digits (0.0462258900102083) shown in as few digits as
    keep the column's values apart (6 at least); ints, and floats written in that many digits, as written."""
    numbers = [_float(v) for v in values]
    digits = distinct_digits([n for n in numbers if n is not None])
    return [_param(value, number, digits) for value, number in zip(values, numbers, strict=True)]


def _float(value: object) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        return float(str(value))
    except ValueError:
        return None


def _param(value: object, number: float | None, digits: int) -> str:
    if pd.isna(value):
        return ""
    text = str(value)
    if number is None:
        return text
    compact = _shortest(number, digits)
    return compact if math.isfinite(number) and float(compact) != number and "." in text else text


def write_charts(table: pd.DataFrame, history: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Metric-by-step per finished trial for each curve, and each config-group choice (`model_vs_<objective>.png`)
    and param varying among scored trials vs the objective.

    A seed (a repeat) and a param that follows another (a config group's sub-keys, fixed by its choice) get no chart
    of their own (`plot.compared_params`); they stay in the table. The folder's charts of an earlier comparison
    that this one does not draw are removed: its own earlier run's, whose trials varied other params (`mlexp compare`
    gives a sweep a folder of its own beside its experiment's)."""
    written = _drawn(table, history, out_dir)
    if out_dir.is_dir():
        for stale in out_dir.glob("*.png"):
            if stale not in written and (stale.name.endswith("_by_step.png") or "_vs_" in stale.name):
                stale.unlink()
    return written


def _drawn(table: pd.DataFrame, history: pd.DataFrame, out_dir: Path) -> list[Path]:
    metric = table.attrs["objective"]
    finished = table[table["Status"] == "FINISHED"]
    written: list[Path] = []
    if finished.empty:
        return written
    first = finished.iloc[0]
    shown = history[history["run_id"].isin(finished["RunId"])]
    for curve in table.attrs["metrics"]:
        count = first[column(curve, "Count")]
        if pd.notna(count) and count > 1:  # logged at more than one step: a training curve
            figure = plot.curves(shown, curve, trials=finished)
            written.append(charts.save_figure(figure, out_dir / f"{curve}_by_step.png"))
    scored = finished[finished["ObjectiveValue"].notna()]
    for compared in plot.compared_params(scored, table.attrs["params"], table.attrs.get("choices", [])):
        # a nested group's choice (`model/optimizer`) names no folder
        path = out_dir / f"{re.sub(r'[./]', '_', compared)}_vs_{metric}.png"
        written.append(charts.save_figure(plot.scatter(scored, compared, metric), path))
    return written
