"""Experiment analytics as SageMaker's `ExperimentAnalytics`: the trials of an experiment as a pandas DataFrame.

Each metric gives the columns SageMaker's `ExperimentAnalytics.dataframe()` names `<metric> - Min`, `- Max`,
`- Avg`, `- StdDev`, `- Last` and `- Count` (Studio's charts call the last value `loss_TRAIN_last`: here it is
`train_loss - Last`). StdDev is the sample standard deviation (n - 1), the one pandas' `.std()` gives on
`metric_history()`, so both agree; it is NaN for a single value. NaN values count but take no part in the rest.

`store` finds the store, experiment and sweep; `trials` reads their trials once (`ExperimentAnalytics`); `columns`
makes the DataFrame's columns and `ranking` orders its rows. This module holds the notebook's two calls.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from mlexp.experiment_analytics.trials import ExperimentAnalytics


def analytics(
    experiment: str | None = None,
    *,
    task: str | None = None,
    sweep: str | None = None,
    search: str | None = None,
    sort_by: str | None = None,
    ascending: bool | None = None,
    components: bool = False,
    all_params: bool = False,
    tracking_uri: str | None = None,
    root: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """The trials of an experiment (or of a sweep, or matching `search`) as a DataFrame, best first.

    Args:
        experiment: the MLflow experiment's name; else the one `task` records into, else the sweep's.
        sweep: a sweep's name or id, as `mlexp compare sweep=` takes.
        search: an MLflow filter ANDed with the others, e.g. "params.`model.l1_size` = '16'".
        sort_by: a column (a metric alone means its last value); default the objective. Ascending unless
            `ascending` says otherwise or the column is the objective's in a maximised task; failed, killed and
            unscored trials come last.
        components: one row per trial component (stage run) instead of per trial.
        all_params: every parameter, not only those whose value differs between the rows.
        tracking_uri: the MLflow store; default as the CLI's (`MLFLOW_TRACKING_URI`, else the project's).
        root: the project folder, as `mlexp.run(root=...)`; default found as the command finds it.
    """
    trials = ExperimentAnalytics(
        experiment, task=task, sweep=sweep, search=search, tracking_uri=tracking_uri, root=root
    )
    if components:
        return trials.components(sort_by, ascending, all_params)
    return trials.dataframe(sort_by, ascending, all_params)


def metric_history(
    experiment: str | None = None,
    *,
    task: str | None = None,
    sweep: str | None = None,
    search: str | None = None,
    metrics: Sequence[str] | None = None,
    tracking_uri: str | None = None,
    root: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Every logged value of the trials' metrics (all, or `metrics`): trial, run_id, metric, step, value, timestamp."""
    trials = ExperimentAnalytics(
        experiment, task=task, sweep=sweep, search=search, tracking_uri=tracking_uri, root=root
    )
    return trials.metric_history(metrics)
