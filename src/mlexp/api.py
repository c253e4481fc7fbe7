"""Trials and sweeps from Python (a notebook) with the command line's configs, checks, tracking and folders.

trial = mlexp.run("tabular_regression", ["model.l1_size=64"])
trials = mlexp.sweep("tabular_regression", sweep="abalone_architectures")   # best first
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from mlexp.cli_in_process import SweepDone, command_line, run_sweep, run_trial
from mlexp.errors import ConfigError
from mlexp.sweep_failed import SweepFailed
from mlexp.trial_handle import Trial

Root = str | os.PathLike[str] | None


def run(task: str, overrides: Sequence[str] = (), *, root: Root = None) -> Trial:
    """Run one trial, as `mlexp task=<task> <overrides>` does; returns it, FINISHED.

    Args:
        task: the task's name, e.g. "tabular_regression".
        overrides: the command line's `key=value` overrides, e.g. ["model.l1_size=64", "seed=7"].
        root: the project folder (holding conf/); default: $MLEXP_ROOT, else the folder around the working directory.

    Raises:
        ConfigError: an override names no key or option, or a value the schema refuses (the command's message).
        TrialFailed: a stage failed; the trial is stored FAILED and the error carries its run_id.
    """
    args = [f"task={task}", *_without_argument(_listed(overrides), "task", task, "run")]
    with command_line(root, args) as conf_dir:
        done = run_trial(conf_dir, args)
        trial = Trial.load(_tracking_uri(done.cfg), done.run_id)
        from mlexp.next_steps import serving_only

        if not serving_only(done.cfg):  # a run that only served a model is no trial the comparison lists
            _link_comparison(trial, cfg=done.cfg)
    return trial


def sweep(task: str, sweep: str | None = None, overrides: Sequence[str] = (), *, root: Root = None) -> list[Trial]:
    """Run a sweep, as `mlexp -m task=<task> sweep=<sweep> <overrides>` does; returns its trials, best first.

    Args:
        task: the task's name.
        sweep: a conf/sweep option ("grid", "tpe", "abalone_architectures", ...); None: Hydra's grid over the
            overrides' comma-separated values, one trial at a time.
        overrides: the command line's overrides, sweeps included, e.g. ["model.l1_size=16,64"].
        root: the project folder, as for run().

    Raises:
        ConfigError: a wrong override or sweep configuration, before any trial runs.
        SweepFailed: a job failed or no trial reached the objective; it carries the sweep id, the failed jobs and
            the trials, best first.
    """
    given = _without_argument(_listed(overrides), "task", task, "sweep")
    if sweep is not None:
        given = _without_argument(given, "sweep", sweep, "sweep")
    args = [f"task={task}", *([f"sweep={sweep}"] if sweep is not None else []), *given]
    with command_line(root, ["-m", *args]) as conf_dir:
        done = run_sweep(conf_dir, args)
        trials = _sweep_trials(done)
    if done.failed:
        raise SweepFailed(_failure(done), done.sweep_id, done.failed_jobs, trials)
    return trials


def _listed(overrides: Sequence[str]) -> list[str]:
    if isinstance(overrides, str):
        raise TypeError(f"overrides is a list of 'key=value' strings: write [{overrides!r}]")
    return [str(override) for override in overrides]


def _without_argument(overrides: list[str], key: str, value: str, function: str) -> list[str]:
    """`overrides` without `key=<value>`, which the function's argument already gives (a command line's overrides
    reused in a notebook); `key=<another value>` is refused, naming the argument."""
    kept = []
    for override in overrides:
        name, _, given = override.partition("=")
        if name.removeprefix("++") != key:  # `++task=` sets it as `task=` does
            kept.append(override)
        elif given != value:
            raise ConfigError(
                f"{override} in overrides contradicts mlexp.{function}'s argument {key}={value!r}; the argument gives "
                f"{key}: drop {override!r} from overrides, or pass {key}={given!r}"
            )
    return kept


def _tracking_uri(cfg: DictConfig) -> str:
    from mlexp.tracking import TrackingStore

    return TrackingStore.resolve(cfg.tracking.uri, Path(cfg.paths.root)).uri


def _sweep_trials(done: SweepDone) -> list[Trial]:
    """The trials tagged with the sweep's id, best first by the objective (as `mlexp compare sweep=...`)."""
    from mlflow.tracking import MlflowClient

    from mlexp import compare

    uri = _tracking_uri(done.cfg)
    experiment = done.cfg.tracking.experiment_name or done.cfg.task.name
    rows = compare.find_trials(MlflowClient(uri), experiment, done.sweep_id)
    if not rows:
        return []
    loaded = {row.run_id: Trial.load(uri, row.run_id) for row in rows}
    first = loaded[rows[0].run_id]
    trials = [loaded[row.run_id] for row in compare.best_first(rows, first.objective, first.direction)]
    _link_comparison(*trials, cfg=done.cfg, sweep=(done.sweep_id, done.name), params=compare.varying_params(rows))
    return trials


def _link_comparison(
    *trials: Trial, cfg: DictConfig, sweep: tuple[str, str] | None = None, params: Sequence[str] = ()
) -> None:
    """The link the command prints after a trial or a sweep: its trials best first, in the MLflow UI."""
    from mlexp.tracking import ui_link

    first = trials[0]
    sweep_id, sweep_name = sweep or (None, None)
    try:
        link = ui_link.publish_comparison(
            first.tracking_uri,
            first.experiment_id,
            objective=first.objective,
            direction=first.direction,
            sweep_id=sweep_id,
            sweep_name=sweep_name,
            metric_columns=list(cfg.task.headline_metrics),
            param_columns=params,
        )
    except ui_link.NoUiAddress:
        return  # a store without a UI address: the trial is complete without a link
    for trial in trials:
        trial.ui_link, trial.ui_start_command = link


def _failure(done: SweepDone) -> str:
    """The command's last line for a failed sweep, with the first failed job's error."""
    if done.failed_jobs:
        first = done.failed_jobs[0]
        return f"{len(done.failed_jobs)} job(s) of sweep {done.name} failed; job {first.number}: {first.error}"
    return f"no trial of sweep {done.name} finished with a {done.cfg.task.objective.metric}"
