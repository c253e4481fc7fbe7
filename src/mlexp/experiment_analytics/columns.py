"""The columns of the trials' DataFrame: their names as SageMaker gives them, each metric's statistics, and the
config-group choices and parameters that are shown (those that differ between the rows), typed."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from mlflow.entities import Metric, Run

from mlexp.experiment_analytics.store import AnalyticsError
from mlexp.tracking import tags

STATISTICS = ("Min", "Max", "Avg", "StdDev", "Last", "Count")
TRIAL_COLUMNS = ["TrialName", "RunId", "Status", "StartTime", "EndTime", "Objective", "ObjectiveValue"]
COMPONENT_COLUMNS = ["DisplayName", "ComponentType", "TrialName", "Trials", "RunId", "Status", "StartTime", "EndTime"]
HISTORY_COLUMNS = ["trial", "run_id", "metric", "step", "value", "timestamp"]
INTEGER = re.compile(r"[+-]?\d+")
# params that say how a trial ran, not what it tried
NOT_COMPARED = ("task.", "sweep.", "tracking.", "compute.", "deploy.")


def column(metric: str, statistic: str) -> str:
    """The DataFrame column of one statistic of a metric, as SageMaker names it: `test_msle - Last`."""
    return f"{metric} - {statistic}"


def find_column(frame: pd.DataFrame, name: str) -> str:
    """`name` itself, else a metric's last value (`test_msle` → `test_msle - Last`)."""
    if name in frame.columns:
        return name
    if column(name, "Last") in frame.columns:
        return column(name, "Last")
    params = frame.attrs.get("params", [])
    others = [c for c in frame.columns if " - " not in c and c not in params]
    hint = " (parameters that never change appear with all_params=True)" if "." in name else ""
    raise AnalyticsError(
        f"{name!r} is not a column of these rows{hint}; choose a parameter ({', '.join(params) or 'none'}), "
        f"a metric ({', '.join(frame.attrs.get('metrics', [])) or 'none'}) or one of: {', '.join(others)}"
    )


def statistics(run: Run, metric: str, logged: list[Metric]) -> dict[str, float | int]:
    """A run's columns of one metric from its logged values: NaN values count but take no part in the rest."""
    values = np.array([m.value for m in logged], dtype=float)
    known = values[~np.isnan(values)]
    return {
        column(metric, "Min"): float(known.min()) if known.size else np.nan,
        column(metric, "Max"): float(known.max()) if known.size else np.nan,
        column(metric, "Avg"): float(known.mean()) if known.size else np.nan,
        column(metric, "StdDev"): float(known.std(ddof=1)) if known.size > 1 else np.nan,
        # the value MLflow shows for the run: the latest step's
        column(metric, "Last"): float(run.data.metrics[metric]),
        column(metric, "Count"): int(values.size),
    }


def run_name(run: Run) -> str:
    """A trial's or component's name in the rows: its run name, else the first characters of its id."""
    return str(run.info.run_name or run.info.run_id[:8])


def param_names(runs: list[Run], all_params: bool) -> list[str]:
    """All parameters, or those `mlexp compare` shows: the ones whose value differs between the runs."""
    if all_params:
        return sorted({p for run in runs for p in run.data.params})
    return varying([run.data.params for run in runs])


def varying(settings: Sequence[Mapping[str, str]]) -> list[str]:
    """The keys whose value (or absence) differs between the settings, but not the params of how a trial ran."""
    keys = sorted({k for setting in settings for k in setting if not k.startswith(NOT_COMPARED)})
    return [k for k in keys if len({setting.get(k) for setting in settings}) > 1]


def choice_names(runs: list[Run], params: list[str], all_params: bool) -> list[str]:
    """The config groups shown as columns: those whose option differs between the runs (every one, with all_params),
    but not one whose `<group>.name` param already says the option (`features` beside `features.name`)."""
    chosen = [_choices(run) for run in runs]
    if all_params:
        groups = sorted({g for choices in chosen for g in choices})
    else:  # how a trial ran (task=, sweep=, compute=...) is not what it tried, as for their params
        groups = [g for g in varying(chosen) if not f"{g}.".startswith(NOT_COMPARED)]

    def named(group: str) -> bool:
        key = f"{group}.name"
        return key in params and all(run.data.params.get(key) == _choices(run).get(group) for run in runs)

    return [g for g in groups if not named(g)]


def settings(run: Run, choices: Sequence[str], params: Sequence[str]) -> dict[str, str | None]:
    """A trial's values of the table's choice and parameter columns (None where it has none)."""
    chosen = _choices(run)
    return {**{g: chosen.get(g) for g in choices}, **{p: run.data.params.get(p) for p in params}}


def typed(values: pd.Series) -> pd.Series:
    """Parameters as MLflow keeps them (text) become integers or floats when every value is one."""
    present = [v for v in values if v is not None]
    if present and all(INTEGER.fullmatch(v) for v in present):
        return pd.to_numeric(values).astype("Int64")
    try:
        return pd.to_numeric(values).astype("float64") if present else values
    except (ValueError, TypeError):
        return values


def _choices(run: Run) -> dict[str, str]:
    """The option of each config group the trial composed: `{"model": "tfidf_naive_bayes", ...}`."""
    prefix = tags.CHOICE_PREFIX  # a swept group is a column of its own: its sub-keys' blanks only hint at it
    return {key.removeprefix(prefix): value for key, value in run.data.tags.items() if key.startswith(prefix)}
