"""`ExperimentAnalytics`: the trials of one experiment (or sweep) read from the store once, and their DataFrames.

Each metric's history is read once per run and kept for `metric_history()` and the charts. A run of `stage=deploy`
alone is no trial (`deployment_only`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.entities import Metric, Run
from mlflow.exceptions import MlflowException

from mlexp.experiment_analytics.columns import (
    COMPONENT_COLUMNS,
    HISTORY_COLUMNS,
    STATISTICS,
    TRIAL_COLUMNS,
    choice_names,
    column,
    param_names,
    run_name,
    settings,
    statistics,
    typed,
)
from mlexp.experiment_analytics.ranking import sorted_rows
from mlexp.experiment_analytics.store import (
    AnalyticsError,
    experiment_id,
    experiment_of_task,
    sweep_of,
    tracking_store,
)
from mlexp.tracking import tags
from mlexp.tracking.store import NoStore, StoreUnreachable

PAGE = 1000


def deployment_only(run: Run) -> bool:
    """A run of `stage=deploy` alone: it served or registered a model an earlier trial made. Not a trial of the
    workflow (MLflow's own `mlflow models serve` records no run at all): its default params and missing metrics would
    rank among the trials. It stays in the store, tagged `mlexp.stage=deploy`."""
    return run.data.tags.get(tags.STAGE) == tags.SERVING_ONLY_STAGE


class ExperimentAnalytics:
    """The trials of one experiment (or sweep) read once; DataFrames of trials, components and metric histories."""

    def __init__(
        self,
        experiment: str | None = None,
        *,
        task: str | None = None,
        sweep: str | None = None,
        search: str | None = None,
        tracking_uri: str | None = None,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        self.root = Path(root).resolve() if root is not None else None
        self.store = tracking_store(tracking_uri, self.root)
        try:
            self.client = self.store.answering_client()
        except (NoStore, StoreUnreachable) as error:  # one error type for a notebook to catch
            raise AnalyticsError(str(error)) from None
        self.sweep = sweep_of(self.client, sweep, self.store.uri) if sweep else None
        if self.sweep and experiment and experiment != self.sweep.experiment:
            raise AnalyticsError(
                f"sweep {sweep!r} ran in experiment {self.sweep.experiment!r}, not {experiment!r}; name one of them"
            )
        name = (
            experiment
            or (self.sweep.experiment if self.sweep else None)
            or (task and experiment_of_task(task, self.root))
        )
        if not name:
            raise AnalyticsError(
                "name an experiment, a task or a sweep: analytics(experiment=...), task=... or sweep=..."
            )
        self.experiment = name
        self.experiment_id = experiment_id(self.client, name, self.store.uri)
        query = f"tags.`{tags.KIND}` = 'trial'"
        if self.sweep:
            query += f" and tags.`{tags.SWEEP_ID}` = '{self.sweep.sweep_id}'"
        if search:
            query += f" and {search}"
        try:
            self.trials = self._of_task(query, task) if task else self._trials(query)
            if task and not self.trials:
                self._check_holds_task(query, task, f"sweep {sweep!r}" if self.sweep else f"experiment {name!r}")
        except MlflowException as error:
            first_line = str(error).strip().splitlines()[0]
            raise AnalyticsError(
                f"search={search!r} is not an MLflow search filter ({first_line}); "
                "write e.g. \"params.`model.l1_size` = '16' and metrics.test_msle < 0.1\""
            ) from error
        labelled = [run.data.tags for run in self.trials if tags.OBJECTIVE in run.data.tags]
        # trials that ran with another sweep.objective: the most common one ranks them (the newest trial's on a tie)
        self.objectives = Counter(t[tags.OBJECTIVE] for t in labelled)
        self.objective = max(self.objectives, key=self.objectives.__getitem__) if labelled else ""
        ranking = [t for t in labelled if t[tags.OBJECTIVE] == self.objective]
        self.direction = ranking[0].get(tags.DIRECTION, "minimize") if ranking else "minimize"
        self.task = next((run.data.tags[tags.TASK] for run in self.trials if tags.TASK in run.data.tags), task or "")
        self._histories: dict[tuple[str, str], list[Metric]] = {}

    def _of_task(self, query: str, task: str) -> list[Run]:
        """The trials `query` finds that ran `task`: an experiment may hold several tasks' trials (a shared
        tracking.experiment_name), task= keeps its own."""
        if tags.quotable(task):
            return self._trials(f"{query} and tags.`{tags.TASK}` = {tags.quoted(task)}")
        # no filter can hold it: picked out of them all
        return [run for run in self._trials(query) if run.data.tags.get(tags.TASK) == task]

    def _check_holds_task(self, query: str, task: str, scope: str) -> None:
        """Raise when the trials `query` finds ran other tasks only: task= beside another task's experiment or sweep."""
        others = sorted({run.data.tags.get(tags.TASK, "?") for run in self._trials(query)})
        if others:
            raise AnalyticsError(
                f"{scope} holds no trials of task {task!r}: its trials ran {', '.join(others)}; drop task= or name "
                f"the experiment or sweep of {task}"
            )

    def dataframe(
        self, sort_by: str | None = None, ascending: bool | None = None, all_params: bool = False
    ) -> pd.DataFrame:
        """One row per trial: status, times, the objective, the (varying) config-group choices and parameters, each
        metric's statistics. Trials tied on the objective follow their choices' and parameters' order."""
        params = param_names(self.trials, all_params)
        choices = choice_names(self.trials, params, all_params)
        frame = self._frame(self.trials, self._leading(), TRIAL_COLUMNS, params, choices)
        return self._sorted(frame, sort_by or "ObjectiveValue", ascending)

    def ranked(self) -> list[Run]:
        """The trials best first by the objective, in `dataframe()`'s order (no metric history read)."""
        params = param_names(self.trials, False)
        choices = choice_names(self.trials, params, False)
        records = [{**row, **settings(run, choices, params)} for run, row in zip(self.trials, self._leading())]
        frame = pd.DataFrame.from_records(records, columns=[*TRIAL_COLUMNS, *choices, *params])
        for name in [*choices, *params]:
            frame[name] = typed(frame[name])
        frame.attrs.update(params=params, choices=choices)
        by_id = {run.info.run_id: run for run in self.trials}
        return [by_id[run_id] for run_id in self._sorted(frame, "ObjectiveValue", None)["RunId"]]

    def _leading(self) -> list[dict[str, Any]]:
        return [
            {
                "TrialName": run_name(run),
                "RunId": run.info.run_id,
                "Status": run.info.status,
                "StartTime": run.info.start_time,
                "EndTime": run.info.end_time,
                "Objective": self.objective,
                "ObjectiveValue": run.data.metrics.get(self.objective, np.nan),
            }
            for run in self.trials
        ]

    def components(
        self, sort_by: str | None = None, ascending: bool | None = None, all_params: bool = False
    ) -> pd.DataFrame:
        """One row per trial component (a stage's run): its display name, type (stage) and trial."""
        ranked = self.ranked()
        position = {run.info.run_id: i for i, run in enumerate(ranked)}
        names = {run.info.run_id: run_name(run) for run in ranked}
        runs = self._components(set(position))
        users: dict[str, list[str]] = {}  # component run id -> the trials it belongs to, best first
        for run in runs:
            users[run.info.run_id] = [run.data.tags[tags.MLFLOW_PARENT_RUN_ID]]
        for trial in self.trials:
            for shared in tags.shared_components(trial.data.tags).values():
                if shared in users and trial.info.run_id not in users[shared]:
                    users[shared].append(trial.info.run_id)
        for trials in users.values():
            trials.sort(key=lambda run_id: position.get(run_id, len(position)))
        leading = [
            {
                "DisplayName": run_name(run),
                "ComponentType": run.data.tags.get(tags.STAGE, ""),
                "TrialName": self._trial_name(run.data.tags[tags.MLFLOW_PARENT_RUN_ID], names),
                "Trials": [self._trial_name(run_id, names) for run_id in users[run.info.run_id]],
                "RunId": run.info.run_id,
                "Status": run.info.status,
                "StartTime": run.info.start_time,
                "EndTime": run.info.end_time,
            }
            for run in runs
        ]
        by_stage: dict[str, list[Run]] = {}
        for run in runs:
            by_stage.setdefault(run.data.tags.get(tags.STAGE, ""), []).append(run)
        # a stage's own parameters are compared among that stage's components only
        params = sorted({p for stage_runs in by_stage.values() for p in param_names(stage_runs, all_params)})
        frame = self._frame(runs, leading, COMPONENT_COLUMNS, params)
        if sort_by is not None:
            return self._sorted(frame, sort_by, ascending)
        first_trial = [position.get(users[run_id][0], len(position)) for run_id in frame["RunId"]]
        order = frame.assign(_trial=first_trial).sort_values(["_trial", "StartTime"], kind="stable").index
        return frame.loc[order].reset_index(drop=True)

    def metric_history(self, metrics: Sequence[str] | None = None) -> pd.DataFrame:
        """Every logged value of the trials' metrics, long form, trials best first: trial, run_id, metric, step, ..."""
        records = []
        for run in self.ranked():
            logged = sorted(run.data.metrics)
            for metric in logged if metrics is None else [m for m in metrics if m in logged]:
                points = sorted(self.history(run.info.run_id, metric), key=lambda m: (m.step, m.timestamp))
                records += [(run_name(run), run.info.run_id, metric, m.step, m.value, m.timestamp) for m in points]
        history = pd.DataFrame.from_records(records, columns=HISTORY_COLUMNS)
        history["step"] = history["step"].astype("int64")
        history["value"] = history["value"].astype("float64")
        history["timestamp"] = pd.to_datetime(history["timestamp"], unit="ms", utc=True)
        return history

    def history(self, run_id: str, metric: str) -> list[Metric]:
        """The logged values of one metric of one run, read from the store once."""
        key = (run_id, metric)
        if key not in self._histories:
            self._histories[key] = self.client.get_metric_history(run_id, metric)
        return self._histories[key]

    def _trials(self, query: str) -> list[Run]:
        """The runs `query` finds that are trials of the workflow (not a deployment alone)."""
        return [run for run in self._search(query) if not deployment_only(run)]

    def _search(self, query: str) -> list[Run]:
        runs: list[Run] = []
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], query, max_results=PAGE, page_token=token)
            runs += page
            token = page.token
            if not token:
                return runs

    def _components(self, trial_ids: set[str]) -> list[Run]:
        """The components of these trials, and the shared components they reuse from other trials."""
        # MLflow's search cannot match a tag against a list: the experiment's components, kept by parent
        found = self._search(f"tags.`{tags.KIND}` = 'component'")
        runs = [run for run in found if run.data.tags.get(tags.MLFLOW_PARENT_RUN_ID) in trial_ids]
        have = {run.info.run_id for run in runs}
        shared = {run_id for run in self.trials for run_id in tags.shared_components(run.data.tags).values()} - have
        runs += [run for run in found if run.info.run_id in shared]
        return runs

    def _trial_name(self, run_id: str, names: dict[str, str]) -> str:
        if run_id not in names:  # the trial owning a shared component, outside this selection
            names[run_id] = run_name(self.client.get_run(run_id))
        return names[run_id]

    def _frame(
        self,
        runs: list[Run],
        leading: list[dict[str, Any]],
        columns: list[str],
        params: list[str],
        choices: Sequence[str] = (),
    ) -> pd.DataFrame:
        metrics = sorted({m for run in runs for m in run.data.metrics})
        records = []
        for run, row in zip(runs, leading):
            row = {**row, **settings(run, choices, params)}
            for metric in sorted(run.data.metrics):
                row.update(statistics(run, metric, self.history(run.info.run_id, metric)))
            records.append(row)
        stats = [column(m, s) for m in metrics for s in STATISTICS]
        frame = pd.DataFrame.from_records(records, columns=[*columns, *choices, *params, *stats])
        for time in ("StartTime", "EndTime"):
            frame[time] = pd.to_datetime(frame[time], unit="ms", utc=True)
        for param in [*choices, *params]:
            frame[param] = typed(frame[param])
        for metric in metrics:
            frame[column(metric, "Count")] = frame[column(metric, "Count")].astype("Int64")
            for statistic in STATISTICS[:-1]:
                frame[column(metric, statistic)] = frame[column(metric, statistic)].astype("float64")
        frame.attrs.update(
            experiment=self.experiment,
            task=self.task,
            objective=self.objective,
            direction=self.direction,
            sweep_id=self.sweep.sweep_id if self.sweep else None,
            sweep_name=self.sweep.name if self.sweep else None,
            params=params,
            # config groups whose option differs between the rows (`model`): tags, not MLflow params
            choices=list(choices),
            metrics=metrics,
            tracking_uri=self.store.uri,
        )
        return frame

    def _sorted(self, frame: pd.DataFrame, sort_by: str, ascending: bool | None) -> pd.DataFrame:
        return sorted_rows(frame, sort_by, ascending, self.objective, self.direction)
