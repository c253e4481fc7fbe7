"""Hydra's joblib launcher, made so that one dead worker process (killed, out of memory) loses no other trial.

joblib's loky pool breaks when a worker process dies: it kills the other workers and the whole Parallel
call raises TerminatedWorkerError, so queued jobs never run and jobs running on healthy workers are cut.
This launcher runs the jobs as Hydra's does, one job per dispatch (a dead worker's batch is its own job),
takes results as they come, and on a broken pool runs again every job without an outcome except the one(s)
whose worker died first: those are recorded KILLED, and the sweep ends FAILED naming them, with the command
that runs them again. A cut job that already recorded its outcome (finished, or failed) is done: it never
runs twice. A job that raises an ordinary exception is recorded FAILED and the sweep goes on (the sweep's
end lists it and exits non-zero); Optuna's sweeper is told each failed job as a failed Optuna trial.

Hydra runs it as hydra_plugins.mlexp_joblib_launcher (Hydra takes launchers only from that package), which
registers it as `hydra/launcher=mlexp_joblib`, the launcher conf/sweep/* pick.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import shlex
import shutil
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra_plugins.hydra_joblib_launcher._core import execute_job
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from joblib import Parallel, delayed
from joblib.externals.loky import process_executor
from joblib.externals.loky.process_executor import TerminatedWorkerError
from omegaconf import open_dict

from mlexp.config.search_path import config_flags
from mlexp.interrupts import only_during_jobs
from mlexp.sweeps import SWEEP_EXPERIMENT_ENV, SWEEP_ID_ENV, SWEEP_JOBS_ENV, SWEEP_NAME_ENV, SWEEP_STORE_ENV, record_job
from mlexp.sweeps.compose_cache import caching
from mlexp.sweeps.workers import exit_without_collecting, joblib_arguments, parallel_jobs

log = logging.getLogger(__name__)

STARTED_DIR = ".mlexp_started"  # in the sweep's folder: <job>.pid, written by a job as it starts on a worker
MAX_UNEXPLAINED = 3  # pools broken with no job's worker seen dead: past this, the cut jobs count as dead
CANCELLED_NOTE = "cancelled when another worker of the sweep died; the job ran again as a new trial"
NOT_RUN_NOTE = "not run: the worker pool kept breaking"

# pid -> exit code of the workers that had already exited when loky killed the rest of a broken pool
_DEAD_WORKERS: dict[int, int] = {}


def _remember_dead_workers(kill_workers: Callable[..., None]) -> Callable[..., None]:
    """Wrap loky's kill_workers: the workers dead before it runs are the ones that broke the pool.

    loky kills every other worker with SIGKILL too, so afterwards a dead worker does not say whether it
    broke the pool or was killed for it; only this moment does.
    """

    @functools.wraps(kill_workers)
    def kill_workers_remembering(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            processes = list(self.processes.items())
            _DEAD_WORKERS.update((pid, p.exitcode) for pid, p in processes if p.exitcode is not None)
        except Exception:  # a private loky API: if it changed, the cut jobs that started all count as dead
            pass
        kill_workers(self, *args, **kwargs)

    return kill_workers_remembering


# private in loky: without it no worker is seen dead, so every cut job that started counts as dead (none runs twice)
_MANAGER = getattr(process_executor, "_ExecutorManagerThread", None)
if _MANAGER is not None and not hasattr(_MANAGER.kill_workers, "__wrapped__"):
    _MANAGER.kill_workers = _remember_dead_workers(_MANAGER.kill_workers)


def run_job_on_worker(started: str, number: int, *arguments: Any) -> tuple[int, JobReturn]:
    """In a worker: say which process runs job `number`, then run it as Hydra's joblib launcher does.

    Without a Hydra singleton state (None: the job runs in the launching process, whose state it is), it runs as
    Hydra's basic launcher runs a job: no copy of every Hydra singleton and no new plugin discovery per job.
    """
    Path(started, f"{number}.pid").write_text(f"{os.getpid()}\n")
    overrides, context, config, task_function, state = arguments
    if state is not None:  # a worker process (its warm-up, which does the same, may not have run in it)
        exit_without_collecting()
        with only_during_jobs():
            return number, execute_job(number, *arguments)
    setup_globals()
    sweep_config = context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{number}"
        sweep_config.hydra.job.num = number
    job = run_job(  # it sets HydraConfig itself, twice
        hydra_context=context,
        config=sweep_config,
        task_function=task_function,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )
    return number, job


def launch(launcher: JoblibLauncher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """Run the jobs as Hydra's launcher does; after a broken pool, again every job without an outcome but the dead."""
    setup_globals()
    config, task_function, context = launcher.config, launcher.task_function, launcher.hydra_context
    assert config is not None and task_function is not None and context is not None
    # each job's config: Hydra's composition once per shape of overrides, not once per job (mlexp.sweeps.compose_cache)
    context = launcher.hydra_context = replace(context, config_loader=caching(context.config_loader))
    context.config_loader.groups_of(config)  # here, once: the workers get it with the loader
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    started = sweep_dir / STARTED_DIR
    started.mkdir(parents=True, exist_ok=True)
    arguments = joblib_arguments(config)
    in_process = parallel_jobs(config) == 1
    # unlike Hydra's launcher, no "Joblib.Parallel(...)" line: library noise the console hides
    log.info(f"Launching jobs, sweep output dir : {sweep_dir}")
    overrides = {initial_job_idx + i: list(o) for i, o in enumerate(job_overrides)}
    for number, job in overrides.items():
        log.info(f"\t#{number} : {' '.join(filter_overrides(job))}")

    results: dict[int, JobReturn] = {}
    unexplained = 0  # broken pools whose dead worker ran none of the jobs (it died while idle, or loading)
    pending = list(overrides)
    try:
        while pending:
            for number in pending:
                (started / f"{number}.pid").unlink(missing_ok=True)
            _DEAD_WORKERS.clear()
            # joblib runs one job at a time in this process: Hydra's singletons are this process's already
            state = None if in_process else Singleton.get_state()
            jobs = (
                delayed(run_job_on_worker)(str(started), n, overrides[n], context, config, task_function, state)
                for n in pending
            )
            try:
                for number, result in Parallel(**arguments, return_as="generator_unordered")(jobs):
                    results[number] = _kept_going(number, result)
            except TerminatedWorkerError:
                _settle(Path(str(config.paths.root)))  # the cut trials' writers stop; their runs end KILLED
                for number in pending:  # ended before the pool broke, result lost on the way: never run twice
                    if number not in results and (done := _recorded(number, overrides[number])):
                        results[number] = done
                cut = [n for n in pending if n not in results]
                dead = _dead_jobs(started, cut)
                unexplained += not dead
                gave_up = unexplained >= MAX_UNEXPLAINED  # a job may kill its worker before it says it started
                if gave_up:  # the jobs that had started count as killed, the others as not run
                    dead = [n for n in cut if (started / f"{n}.pid").exists()]
                again = [] if gave_up else [n for n in cut if n not in dead]
                print(f"mlexp: {_break_line(dead, again, unexplained if gave_up else 0)}", file=sys.stderr)
                for number in dead:
                    results[number] = _died(number, overrides[number], started)
                for number in sorted(set(cut) - set(dead) - set(again)):
                    results[number] = _not_run(number, overrides[number])
                _forget_cancelled(again)
            pending = [n for n in pending if n not in results]
    finally:
        shutil.rmtree(started, ignore_errors=True)
    if "optuna" in str(config.hydra.sweeper.get("_target_", "")):
        return [_failed_for_optuna(n, results[n]) for n in overrides]
    return [results[n] for n in overrides]


def _break_line(dead: list[int], again: list[int], gave_up_after: int) -> str:
    """What a broken pool did: whose worker died and what runs again, or (`gave_up_after` breaks) that it stops."""
    jobs = ", ".join(map(str, dead))
    if gave_up_after:
        counted = f"; job(s) {jobs}, which had started, count as killed" if dead else ""
        return (
            f"a worker process died; the pool broke {gave_up_after} times with no job's worker seen dead: the sweep "
            f"runs no more jobs{counted}"
        )
    died = f"the worker process of job(s) {jobs}" if dead else "a worker process"
    if not again:
        return f"{died} died; every other job of the sweep had already ended"
    others = "other " if dead else ""  # no job's worker seen dead: every cut job is one of them
    return f"{died} died; running the sweep's {len(again)} {others}unfinished job(s) again on new workers"


def _failed_for_optuna(number: int, result: JobReturn) -> JobReturn:
    """A job mlexp counts failed (objective NaN) as Optuna's sweeper takes it: a FAILED job, an Optuna FAIL.

    Optuna refuses a NaN objective in a way that stops its sweeper; a failed job it records and goes on.
    """
    value = result._return_value
    if result.status == JobStatus.COMPLETED and isinstance(value, float) and math.isnan(value):
        result.status = JobStatus.FAILED
        result.return_value = JobFailed(f"job {number} failed; the sweep's end lists it")
    return result


def _kept_going(number: int, result: JobReturn) -> JobReturn:
    """A job whose exception escaped Hydra's job: recorded FAILED, the sweep goes on (its end lists it)."""
    if result.status != JobStatus.FAILED or not os.environ.get(SWEEP_JOBS_ENV):
        return result
    error = result._return_value
    print(f"[job {number}] " + "".join(traceback.format_exception(error)), file=sys.stderr, end="")
    if not (Path(os.environ[SWEEP_JOBS_ENV]) / f"{number}.json").exists():
        record_job(number, "FAILED", None, f"{type(error).__name__}: {error}")
    result.status, result.return_value = JobStatus.COMPLETED, math.nan
    return result


def _recorded(number: int, overrides: list[str]) -> JobReturn | None:
    """The result of a job that recorded its outcome (mlexp.cli) before its result reached this process."""
    path = Path(os.environ.get(SWEEP_JOBS_ENV, "."), f"{number}.json")
    if not os.environ.get(SWEEP_JOBS_ENV) or not path.exists():
        return None
    try:
        outcome = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    objective = outcome.get("objective") if outcome["status"] == "FINISHED" else None
    value = math.nan if objective is None else float(objective)
    return JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=value)


def _dead_jobs(started: Path, cut: list[int]) -> list[int]:
    """The cut jobs whose worker broke the pool; all that had started when loky did not say which."""
    running = {n: _pid(started / f"{n}.pid") for n in cut if (started / f"{n}.pid").exists()}
    if not _DEAD_WORKERS:
        return sorted(running)  # never run a job twice that may have killed its worker
    return sorted(n for n, pid in running.items() if pid in _DEAD_WORKERS)


def _how_it_died(pid: int | None) -> str:
    """`killed by SIGKILL: kill -9, or out of memory`, `exited with status 3`, or unknown."""
    code = _DEAD_WORKERS.get(pid) if pid else None
    if code is None:
        return "killed, or out of memory"
    if code >= 0:
        return f"exited with status {code}"
    name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
    return f"killed by {name}" + (": kill -9, or out of memory" if -code == signal.SIGKILL else "")


def _died(number: int, overrides: list[str], started: Path) -> JobReturn:
    """The job of a dead worker: outcome KILLED with the command that runs it again; its trial is already stored."""
    pid = _pid(started / f"{number}.pid")
    worker = f"worker process {pid}" if pid else "worker process"
    message = f"trial {_trial(number)} was killed: its {worker} died ({_how_it_died(pid)}); run it again with: "
    return _lost(number, overrides, "KILLED", message + _rerun(overrides))


def _not_run(number: int, overrides: list[str]) -> JobReturn:
    """A queued job left when the pool broke too often: never started, recorded with the command that runs it."""
    return _lost(number, overrides, "FAILED", f"{NOT_RUN_NOTE}; run it with: {_rerun(overrides)}")


def _lost(number: int, overrides: list[str], status: str, message: str) -> JobReturn:
    print(f"mlexp: job {number}: {message}", file=sys.stderr)
    if not os.environ.get(SWEEP_JOBS_ENV):  # no sweep record counts outcomes: let Hydra fail the sweep
        return JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=WorkerDied(message))
    run_ids = _trial_runs(_trial(number))
    record_job(number, status, run_ids[0] if run_ids else None, message)
    return JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=math.nan)


def _trial(number: int) -> str:
    return f"{os.environ.get(SWEEP_NAME_ENV, 'sweep')}-trial-{number}"


def _rerun(overrides: list[str], argv: Sequence[str] | None = None) -> str:
    """The command that runs a job again as one trial: the sweep's flags that chose its config (`argv`: the sweep's
    command line, default sys.argv's) and the job's own values, without the settings that shape the sweep.

    `sweep=<file>` and `sweep.*` choose how many jobs run and how; `hydra.launcher`/`hydra.sweeper` Hydra's. A single
    run needs none of them, and given `sweep=<file>` it warns that it is no sweep and offers `mlexp -m`, which would
    run the whole sweep again.
    """
    flags = config_flags(sys.argv[1:] if argv is None else argv)
    return shlex.join(["mlexp", *flags, *(o for o in overrides if not _shapes_the_sweep(o))])


def _shapes_the_sweep(override: str) -> bool:
    """The sweep file and Hydra's launcher and sweeper: not `hydra.job.env_set.*` or `hydra.searchpath`, which the
    job's own run needs as much."""
    key = override.lstrip("+~").partition("=")[0].partition("@")[0].strip()
    sweep_only = ("sweep.", "hydra.launcher", "hydra.sweeper", "hydra/launcher", "hydra/sweeper")
    return key == "sweep" or key.startswith(sweep_only)


def _forget_cancelled(numbers: list[int]) -> None:
    """Delete the cut trials of jobs that run again: each job keeps one trial, the one that ends."""
    for number in numbers:
        for run_id in _trial_runs(_trial(number)):
            _delete_trial(run_id)


def _settle(root: Path) -> None:
    """Wait for the cut trials' writers to stop, and store what they left."""
    sweep_id = os.environ.get(SWEEP_ID_ENV)
    if sweep_id:
        from mlexp.tracking.journal_apply import settle

        settle(root, group=sweep_id)


class JobFailed(Exception):
    """A sweep job mlexp recorded as failed, told to Optuna's sweeper."""


class WorkerDied(Exception):
    """A sweep job's worker process died: the job has no result (raised only when no sweep record counts it)."""


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def _trial_runs(trial: str) -> list[str]:
    """The store's runs of the sweep's trial named `trial` (none when the job died before it opened one)."""
    uri, experiment, sweep_id = (os.environ.get(k) for k in (SWEEP_STORE_ENV, SWEEP_EXPERIMENT_ENV, SWEEP_ID_ENV))
    if not (uri and experiment and sweep_id):
        return []
    from mlexp.tracking import TrackingStore, tags

    client = TrackingStore(uri, None).client()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    query = f"tags.`{tags.SWEEP_ID}` = '{sweep_id}' and "
    query += f"tags.`{tags.KIND}` = 'trial' and attributes.run_name = '{trial}'"
    return [run.info.run_id for run in client.search_runs([found.experiment_id], query)]


def _delete_trial(run_id: str) -> None:
    """Delete a cut trial and its unfinished components (MLflow can restore them).

    A FINISHED trial stays (it is a result), and so does a trial that registered a model version (deploy=registry):
    the version names its run. A finished component stays: later trials may reuse it (shared Pre-processing is
    found by its files).
    """
    from mlexp.tracking import TrackingStore, tags

    uri = os.environ[SWEEP_STORE_ENV]
    client = TrackingStore(uri, None).client()
    run = client.get_run(run_id)
    if run.info.status == "FINISHED":
        return
    components = client.search_runs([run.info.experiment_id], f"tags.`{tags.MLFLOW_PARENT_RUN_ID}` = '{run_id}'")
    owners = ", ".join(f"'{r}'" for r in [run_id, *(c.info.run_id for c in components)])
    if client.search_model_versions(f"run_id IN ({owners})"):
        return
    client.set_tag(run_id, tags.ERROR, CANCELLED_NOTE)
    for component in components:
        if component.info.status != "FINISHED":
            client.delete_run(component.info.run_id)
    client.delete_run(run_id)
