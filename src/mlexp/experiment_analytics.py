"""Experiment analytics as SageMaker's `ExperimentAnalytics`: the trials of an experiment as a pandas DataFrame.

Each metric gives the columns SageMaker's `ExperimentAnalytics.dataframe()` names `<metric> - Min`, `- Max`,
`- Avg`, `- StdDev`, `- Last` and `- Count` (Studio's charts call the last value `loss_TRAIN_last`: here it is
`train_loss - Last`). StdDev is the sample standard deviation (n - 1), the one pandas' `.std()` gives on
`metric_history()`, so both agree; it is NaN for a single value. NaN values count but take no part in the rest.
Each metric's history is read once per run and kept for `metric_history()` and the charts.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.entities import Metric, Run
from mlflow.exceptions import MlflowException

from mlexp.errors import MlexpError, did_you_mean
from mlexp.paths import project_root
from mlexp.tracking import TrackingStore, tags
from mlexp.tracking.store import NoStore, StoreUnreachable

STATISTICS = ("Min", "Max", "Avg", "StdDev", "Last", "Count")
TRIAL_COLUMNS = ["TrialName", "RunId", "Status", "StartTime", "EndTime", "Objective", "ObjectiveValue"]
COMPONENT_COLUMNS = ["DisplayName", "ComponentType", "TrialName", "Trials", "RunId", "Status", "StartTime", "EndTime"]
HISTORY_COLUMNS = ["trial", "run_id", "metric", "step", "value", "timestamp"]
PAGE = 1000
INTEGER = re.compile(r"[+-]?\d+")


class AnalyticsError(MlexpError):
    """The trials asked for cannot be read: the experiment, sweep, search or column is not in the store, or the store
    is not there (nothing recorded yet, a server that is down or refuses the request)."""


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
        # compare renders these frames for the command line: imported when called, not at import
        from mlexp.compare import find_sweep

        self.root = Path(root).resolve() if root is not None else None
        self.store = _store(tracking_uri, self.root)
        try:
            self.client = self.store.answering_client()
        except (NoStore, StoreUnreachable) as error:  # one error type for a notebook to catch
            raise AnalyticsError(str(error)) from None
        self.sweep = find_sweep(self.client, sweep) if sweep else None
        if sweep and self.sweep is None:
            from mlexp.compare import sweep_names

            raise AnalyticsError(
                f"no sweep named or with id {sweep!r} in {self.store.uri}; {_known(sweep, sweep_names(self.client))}"
            )
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
        found = self.client.get_experiment_by_name(name)
        if found is None:
            names = [e.name for e in self.client.search_experiments() if not e.name.endswith(tags.SWEEPS_SUFFIX)]
            raise AnalyticsError(
                f"no trials in experiment {name!r} of {self.store.uri}: there is no such experiment; "
                f"run `mlexp task=...` first or check the name; {_known(name, names)}"
            )
        self.experiment_id = str(found.experiment_id)
        query = f"tags.`{tags.KIND}` = 'trial'"
        if self.sweep:
            query += f" and tags.`{tags.SWEEP_ID}` = '{self.sweep.sweep_id}'"
        # an experiment may hold several tasks' trials (a shared tracking.experiment_name): task= keeps its own
        of_task = f" and tags.`{tags.TASK}` = '{task}'" if task else ""
        if search:
            query += f" and {search}"
        try:
            self.trials = self._search(query + of_task)
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

    def _check_holds_task(self, query: str, task: str, scope: str) -> None:
        """Raise when the trials `query` finds ran other tasks only: task= beside another task's experiment or sweep."""
        others = sorted({run.data.tags.get(tags.TASK, "?") for run in self._search(query)})
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
        params = _param_names(self.trials, all_params)
        choices = _choice_names(self.trials, params, all_params)
        frame = self._frame(self.trials, self._leading(), TRIAL_COLUMNS, params, choices)
        return self._sorted(frame, sort_by or "ObjectiveValue", ascending)

    def ranked(self) -> list[Run]:
        """The trials best first by the objective, in `dataframe()`'s order (no metric history read)."""
        params = _param_names(self.trials, False)
        choices = _choice_names(self.trials, params, False)
        records = [{**row, **_settings(run, choices, params)} for run, row in zip(self.trials, self._leading())]
        frame = pd.DataFrame.from_records(records, columns=[*TRIAL_COLUMNS, *choices, *params])
        for name in [*choices, *params]:
            frame[name] = _typed(frame[name])
        frame.attrs.update(params=params, choices=choices)
        by_id = {run.info.run_id: run for run in self.trials}
        return [by_id[run_id] for run_id in self._sorted(frame, "ObjectiveValue", None)["RunId"]]

    def _leading(self) -> list[dict[str, Any]]:
        return [
            {
                "TrialName": _name(run),
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
        names = {run.info.run_id: _name(run) for run in ranked}
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
                "DisplayName": _name(run),
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
        params = sorted({p for stage_runs in by_stage.values() for p in _param_names(stage_runs, all_params)})
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
                records += [(_name(run), run.info.run_id, metric, m.step, m.value, m.timestamp) for m in points]
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
            names[run_id] = _name(self.client.get_run(run_id))
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
            row = {**row, **_settings(run, choices, params)}
            for metric in sorted(run.data.metrics):
                row.update(self._statistics(run, metric))
            records.append(row)
        stats = [column(m, s) for m in metrics for s in STATISTICS]
        frame = pd.DataFrame.from_records(records, columns=[*columns, *choices, *params, *stats])
        for time in ("StartTime", "EndTime"):
            frame[time] = pd.to_datetime(frame[time], unit="ms", utc=True)
        for param in [*choices, *params]:
            frame[param] = _typed(frame[param])
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

    def _statistics(self, run: Run, metric: str) -> dict[str, float | int]:
        values = np.array([m.value for m in self.history(run.info.run_id, metric)], dtype=float)
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

    def _sorted(self, frame: pd.DataFrame, sort_by: str, ascending: bool | None) -> pd.DataFrame:
        """Finished rows with a value by `sort_by`, then the rest (failed, killed, unscored) in search order.

        Rows tied on `sort_by` follow their choices' and parameters' values, ascending: the same order on every
        read, and a report sweep whose figure grows with its parameter (churn's profit by budget) reads by it."""
        key = find_column(frame, sort_by)
        if ascending is None:
            objective = {"ObjectiveValue", *(column(self.objective, s) for s in ("Min", "Max", "Avg", "Last"))}
            ascending = key not in objective or self.direction != "maximize"
        scored = (frame["Status"] == "FINISHED") & frame[key].notna()
        ties = [c for c in [*frame.attrs.get("choices", []), *frame.attrs.get("params", [])] if c != key]
        ranked = (
            frame[scored]
            .sort_values(
                [key, *ties],
                ascending=[ascending, *(True for _ in ties)],
                kind="stable",
                na_position="last",
                key=_numbers_before_text,
            )
            .index
        )
        return frame.loc[[*ranked, *frame.index[~scored]]].reset_index(drop=True)


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


def experiment_of_task(task: str, root: Path | None = None) -> str:
    """The experiment a task's trials go to: `tracking.experiment_name`, else the task's name."""
    from hydra import compose, initialize_config_dir

    from mlexp.config import make_composable

    conf_dir = (root or project_root()) / "conf"
    known = sorted(p.stem for p in (conf_dir / "task").glob("*.yaml"))
    if task not in known:
        raise AnalyticsError(
            f"task={task!r} is not a task; {did_you_mean(task, known)}choose one of: {', '.join(known)}"
        )
    make_composable()
    # a context restores Hydra's global state on exit: a notebook may compose again afterwards
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose("config", overrides=[f"task={task}"])
    return str(cfg.tracking.experiment_name or task)


def _store(tracking_uri: str | None, root: Path | None = None) -> TrackingStore:
    """The store the CLI would use; a URI given outright needs no project folder."""
    configured = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if root is not None:
        return TrackingStore.resolve(tracking_uri, root)
    try:
        root = project_root()
    except FileNotFoundError as error:
        if not configured:
            # `mlexp compare` reads the project's conf/ too (the task's headline metrics): in Python, a store alone
            raise AnalyticsError(f"{error}; in Python, analytics(..., tracking_uri=...) reads a store alone") from error
        root = Path.cwd()
    return TrackingStore.resolve(tracking_uri, root)


def _name(run: Run) -> str:
    return str(run.info.run_name or run.info.run_id[:8])


def _param_names(runs: list[Run], all_params: bool) -> list[str]:
    """All parameters, or those `mlexp compare` shows: the ones whose value differs between the runs."""
    from mlexp.compare import TrialRow, varying_params

    if all_params:
        return sorted({p for run in runs for p in run.data.params})
    rows = [TrialRow(run.info.run_id, _name(run), run.info.status, dict(run.data.params), {}) for run in runs]
    return varying_params(rows)


def _choices(run: Run) -> dict[str, str]:
    """The option of each config group the trial composed: `{"model": "tfidf_naive_bayes", ...}`."""
    prefix = tags.CHOICE_PREFIX  # a swept group is a column of its own: its sub-keys' blanks only hint at it
    return {key.removeprefix(prefix): value for key, value in run.data.tags.items() if key.startswith(prefix)}


def _settings(run: Run, choices: Sequence[str], params: Sequence[str]) -> dict[str, str | None]:
    """A trial's values of the table's choice and parameter columns (None where it has none)."""
    chosen = _choices(run)
    return {**{g: chosen.get(g) for g in choices}, **{p: run.data.params.get(p) for p in params}}


def _choice_names(runs: list[Run], params: list[str], all_params: bool) -> list[str]:
    """The config groups shown as columns: those whose option differs between the runs (every one, with all_params),
    but not one whose `<group>.name` param already says the option (`features` beside `features.name`)."""
    from mlexp.compare import NOT_COMPARED, TrialRow, varying_params

    rows = [TrialRow(run.info.run_id, _name(run), run.info.status, _choices(run), {}) for run in runs]
    if all_params:
        groups = sorted({g for row in rows for g in row.params})
    else:  # how a trial ran (task=, sweep=, compute=...) is not what it tried, as for their params
        groups = [g for g in varying_params(rows) if not f"{g}.".startswith(NOT_COMPARED)]

    def named(group: str) -> bool:
        key = f"{group}.name"
        return key in params and all(run.data.params.get(key) == _choices(run).get(group) for run in runs)

    return [g for g in groups if not named(g)]


def _typed(values: pd.Series) -> pd.Series:
    """Parameters as MLflow keeps them (text) become integers or floats when every value is one."""
    present = [v for v in values if v is not None]
    if present and all(INTEGER.fullmatch(v) for v in present):
        return pd.to_numeric(values).astype("Int64")
    try:
        return pd.to_numeric(values).astype("float64") if present else values
    except (ValueError, TypeError):
        return values


def _numbers_before_text(values: pd.Series) -> pd.Series:
    """A column of text values in the order a reader expects: numbers by value ("5" before "10"), then text."""
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return values

    def order(value: object) -> tuple[int, float, str]:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return (2, 0.0, "")
        try:
            number = float(str(value))
        except ValueError:
            return (1, 0.0, str(value))
        return (0, number, "") if not math.isnan(number) else (1, 0.0, str(value))

    return values.map(order)


def _known(typed: str, names: list[str]) -> str:
    """The closest of the names the store holds (sweeps are named `<sweep file>-<time>`: one typed without its time
    gets the newest of that file), and the names, the newest first, up to ten."""
    if not names:
        return "the store holds none"
    close = [n for n in names if n.startswith(f"{typed}-")][:1] or difflib.get_close_matches(typed, names, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return f"{hint}the store holds: {shown}"
