"""A Hydra callback that groups a sweep's trials and records the sweep out of the trial rows.

Trials of a sweep are ordinary top-level runs tagged with the sweep's id and name, so the
MLflow UI compares them as rows and bars (its "Group by" and a tag filter show one sweep).
The sweep's own record — configuration, best trial, best-first table, comparison charts —
is a run in the companion experiment `<experiment>-sweeps`.

It also creates the MLflow database and experiment once, before parallel jobs start:
jobs racing to create them fail in MLflow's schema migration.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mlexp.config.overrides import command_overrides
from mlexp.config.schema import Direction, objective_direction
from mlexp.errors import MlexpError
from mlexp.interrupts import announced_killed
from mlexp.paths import experiment_folder
from mlexp.run_names import claimed
from mlexp.sweeps import (
    SWEEP_ENV,
    SWEEP_EXPERIMENT_ENV,
    SWEEP_ID_ENV,
    SWEEP_JOBS_ENV,
    SWEEP_NAME_ENV,
    SWEEP_STORE_ENV,
    SweepEndedFailed,
    job_outcomes,
    share_sweep_env,
)
from mlexp.sweeps.checks import check_sweep

if TYPE_CHECKING:
    from mlexp.sweeps.summary import SweepEnd, SweepSummary
    from mlexp.tracking.tracker import RunWriter

# Hydra builds this callback for every run, single trials too: MLflow and the chart code
# are imported only when a sweep starts or ends, so a single trial does not pay for them.


def _experiment(config: DictConfig) -> str:
    """The MLflow experiment of the task's trials."""
    return str(config.tracking.experiment_name or config.task.name)


def sweep_name(config: DictConfig) -> str:
    """`<sweep>-<month><day>-<time>`; `-m` without sweep= is Hydra's grid."""
    kind = "grid" if config.sweep.name == "none" else config.sweep.name
    return f"{kind}-{datetime.now():%m%d-%H%M%S}"


def close_open_sweep(status: str) -> str | None:
    """End a sweep record that its end callback never reached (an error or Ctrl-C in Hydra or a job); returns
    how the sweep was announced (`<name> (id <run id>)`), with its trials that ended so (`and its trials <name>, …`),
    or None when no sweep was open.

    Trials still RUNNING then end with the same status, components included: with the joblib
    launcher, Ctrl-C stops the worker processes before their own handlers reach the store (or say which trial ran).
    """
    sweep_id = os.environ.get(SWEEP_ID_ENV)
    name = os.environ.get(SWEEP_NAME_ENV, "sweep")
    uri = os.environ.get(SWEEP_STORE_ENV)
    experiment = os.environ.get(SWEEP_EXPERIMENT_ENV)
    jobs_dir = os.environ.get(SWEEP_JOBS_ENV)
    for key in SWEEP_ENV:
        os.environ.pop(key, None)
    if not sweep_id or not uri:
        return None
    from mlexp.tracking import TrackingStore, tags
    from mlexp.tracking.journal_apply import settle

    if jobs_dir:
        # the jobs' tracking writers may still be storing their trials: wait for them, store what they left
        settle(Path(jobs_dir).parents[2], group=sweep_id)

    client = TrackingStore(uri, None).client()
    found = client.get_experiment_by_name(experiment) if experiment else None
    if found is not None:
        experiment_id = found.experiment_id
        running = "attributes.status = 'RUNNING'"
        trials = client.search_runs([experiment_id], f"tags.`{tags.SWEEP_ID}` = '{sweep_id}' and {running}")
        for trial in trials:
            parent = f"tags.`{tags.MLFLOW_PARENT_RUN_ID}` = '{trial.info.run_id}' and {running}"
            for component in client.search_runs([experiment_id], parent):
                client.set_terminated(component.info.run_id, status)
            client.set_terminated(trial.info.run_id, status)
        names = {trial.info.run_id: str(trial.info.run_name) for trial in trials}
        if status == "KILLED":
            # also those Ctrl-C ended by their own process or by replaying their journal: a parallel sweep's workers
            # stop before they can say which trial they ran (a sequential sweep's trial said it, in this process).
            # A FAILED sweep names only the trials it cut short: a trial that failed said why itself.
            killed = f"tags.`{tags.SWEEP_ID}` = '{sweep_id}' and attributes.status = 'KILLED'"
            names.update(
                {trial.info.run_id: str(trial.info.run_name) for trial in client.search_runs([experiment_id], killed)}
            )
        said = announced_killed()
        ended = sorted(name for run_id, name in names.items() if run_id not in said)
    else:
        ended = []
    client.set_terminated(sweep_id, status)
    if not ended:
        return f"{name} (id {sweep_id})"
    return f"{name} (id {sweep_id}) and its trial{'s' if len(ended) > 1 else ''} {', '.join(ended)}"


@contextmanager
def _ends_sweep_on_error(what: str) -> Iterator[None]:
    """Hydra only warns when a callback raises: close the record FAILED and exit with one line instead."""
    try:
        yield
    except Exception as error:
        close_open_sweep("FAILED")
        text = str(error) if isinstance(error, MlexpError) else f"{type(error).__name__}: {error}"
        print(f"mlexp: error: {what}: {text}", file=sys.stderr)
        sys.exit(1)


class SweepRecorder(Callback):
    """Hydra only warns when a callback raises: each hook ends the sweep itself, with one clear line."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_sweep(config)
        except MlexpError as error:
            print(f"mlexp: error: {error}", file=sys.stderr)
            sys.exit(2)
        except Exception as error:  # Hydra would only warn, and run the sweep with no record
            print(
                f"mlexp: error: the sweep could not be checked ({type(error).__name__}: {error}); that is a bug of "
                "mlexp's sweep checks, not of your sweep: please report it with this line",
                file=sys.stderr,
            )
            sys.exit(2)
        from mlexp.sweeps.compose_cache import cache_running_sweep
        from mlexp.sweeps.workers import set_thread_variables, start_workers
        from mlexp.tracking.journal_writer import start_early

        # checked: a writer that starts loads MLflow while the workers start (a refused sweep starts none); any
        # failure here is the record's to report, when it opens: Hydra would only warn and run without one
        with contextlib.suppress(Exception):
            start_early(Path(config.paths.root))
        cache_running_sweep()
        set_thread_variables(config)  # before any worker starts: they inherit them
        start_workers(config)  # the workers import while this process opens the record
        with _ends_sweep_on_error("the sweep's record could not be opened"):
            self._open_record(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        with _ends_sweep_on_error("the sweep's results could not be recorded"):
            self._close_record(config)

    def _open_record(self, config: DictConfig) -> None:
        """Create the sweep's run through the tracking writer: no MLflow import here before the first trial."""
        from mlexp.tracking import TrackingStore, tags
        from mlexp.tracking.journal_writer import record_writer

        root = Path(config.paths.root)
        store = TrackingStore.resolve(config.tracking.uri, root)
        experiment = _experiment(config)
        store.check_not_moved_early(experiment)
        writer = record_writer(root, store, what="this sweep")
        name = claimed(root, "sweeps", sweep_name(config))
        run = writer.create_run(
            writer.experiment_id(experiment + tags.SWEEPS_SUFFIX),
            run_name=name,
            tags={
                tags.KIND: "sweep",
                tags.TASK: config.task.name,
                tags.SWEEP_NAME: name,
                tags.OBJECTIVE: config.task.objective.metric,
                tags.DIRECTION: objective_direction(config),
                "mlexp.sweeper": str(config.hydra.sweeper.get("_target_", "")),
                "mlexp.command": " ".join(["mlexp", *sys.argv[1:]]),
                "mlexp.overrides": " ".join(command_overrides(config.hydra)),
            },
        )
        try:
            sweep_id = writer.run_id(run)
            # set first, so that any error from here on still closes this record; joblib workers inherit them
            os.environ[SWEEP_ID_ENV] = sweep_id
            os.environ[SWEEP_NAME_ENV] = name
            os.environ[SWEEP_JOBS_ENV] = str(root / ".mlexp" / "sweeps" / sweep_id)
            os.environ[SWEEP_STORE_ENV] = store.uri
            os.environ[SWEEP_EXPERIMENT_ENV] = experiment
            share_sweep_env(Path(str(config.hydra.sweep.dir)))
            # naming the trials' experiment creates it before any job starts, even if no trial ever opens: the sweep's
            # end reads it, and jobs recording from their own process would race to create it
            writer.log_batch(
                run, tags=[(tags.SWEEP_ID, sweep_id), (tags.TRIALS_EXPERIMENT_ID, writer.experiment_id(experiment))]
            )
            writer.log_text(run, OmegaConf.to_yaml(config.sweep) + _search_space(config), "sweep.yaml")
            writer.finish()
        except BaseException as error:
            # the record's journal must not outlive this command as a run left open: the writer ends it
            _abandon(writer, run, "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
            raise
        print(f"sweep {name} (id {sweep_id}): trials tagged {tags.SWEEP_ID}={sweep_id}")

    def _close_record(self, config: DictConfig) -> None:
        sweep_id = os.environ.get(SWEEP_ID_ENV)
        name = os.environ.get(SWEEP_NAME_ENV, "sweep")
        jobs_dir = Path(os.environ.get(SWEEP_JOBS_ENV, "."))
        if sweep_id is None:
            return
        from mlexp import next_steps
        from mlexp.sweeps.summary import SweepEnd
        from mlexp.tracking import TrackingStore
        from mlexp.tracking.journal_apply import settle
        from mlexp.tracking.store import absolute_uri

        settle(Path(config.paths.root), group=sweep_id)  # the trials' writers may still be storing them

        store = TrackingStore.resolve(config.tracking.uri, Path(config.paths.root))
        metric, direction = config.task.objective.metric, objective_direction(config)
        outcomes = job_outcomes(jobs_dir)
        failed = [o for o in outcomes if o["status"] != "FINISHED"]
        print(f"\nsweep {name} (id {sweep_id}): {len(outcomes) - len(failed)}/{len(outcomes)} jobs finished")
        end = SweepEnd(  # absolute: the writer runs in a folder of its own
            uri=absolute_uri(store.uri),
            experiment=_experiment(config),
            sweep_id=sweep_id,
            name=name,
            metric=metric,
            reporting_only=direction == Direction.report.value,
            headline_metrics=list(config.task.headline_metrics),
            charts_dir=str(
                (Path(config.paths.root) / "outputs" / "sweeps" / config.task.name / experiment_folder(name)).resolve()
            ),
            failed_jobs=len(failed),
        )
        summary = _summarise(end)
        print("\n".join(summary.lines))
        next_steps.print_ui_link(
            store.uri,
            summary.experiment_id,
            metric,
            direction,
            sweep_id,
            sweep_name=name,
            headline_metrics=end.headline_metrics,
            params=summary.params,
        )
        print(f"  compare trials:  {next_steps.compare_command(f'sweep={name}', store.uri)}")
        for key in SWEEP_ENV:
            os.environ.pop(key, None)
        if failed:
            for outcome in failed:
                print(f"  job {outcome['job']}: {outcome['error']}", file=sys.stderr)
            print(f"mlexp: error: {len(failed)} job(s) of sweep {name} failed", file=sys.stderr)
            raise SweepEndedFailed
        if not summary.best:
            raise SweepEndedFailed


def _summarise(end: SweepEnd) -> SweepSummary:
    """The tracking writer this process uses ranks and closes the sweep (it has MLflow loaded); else this process.

    This process does it only when the writer never got the request: once sent, a writer that stops or does
    not answer may have done part of it, and doing it again would log the best value twice.
    """
    from mlexp import next_steps
    from mlexp.sweeps.summary import SweepSummary, summarise
    from mlexp.tracking.journal_writer import TrackingError, running_writer

    writer = running_writer()
    command = {"cmd": "sweep_end", "end": asdict(end)}
    try:
        if writer is None:
            raise TrackingError("no tracking writer")
        writer.send(**command)
    except TrackingError:
        return summarise(end)
    try:
        reply = writer.answer(command)
    except TrackingError as error:  # its own text speaks of a trial's journal, which a sweep's end has none of
        raise MlexpError(
            "the tracking writer stopped, or did not answer, while it summarised the sweep; its trials are "
            f"stored: `{next_steps.compare_command(f'sweep={end.name}', end.uri)}` ranks them"
        ) from error
    if reply.get("error"):
        raise MlexpError(f"the tracking writer could not summarise the sweep: {reply['error']}")
    return SweepSummary(**{k: v for k, v in reply.items() if k != "error"})


def _abandon(writer: RunWriter, run: str, status: str) -> None:
    """End a record that could not be opened whole; what the writer cannot store stays for `mlexp sync`."""
    with contextlib.suppress(Exception):
        writer.set_status(run, status)
        writer.finish(wait=False)


def _search_space(config: DictConfig) -> str:
    params = config.hydra.sweeper.get("params") or {}
    lines = [f"  {key}: {value}" for key, value in params.items()]
    lines += [f"  {override}" for override in command_overrides(config.hydra)]
    return "search_space:\n" + "\n".join(lines) + "\n"
