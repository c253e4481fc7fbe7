"""The `mlexp` command's Hydra app run inside a Python process: one trial or one sweep, without sys.argv or sys.exit.

It runs the command's own job (mlexp.cli._job) through Hydra's own machinery — Hydra.run for a trial, the steps of
Hydra.multirun for a sweep — so configs, checks, tracking, run folders, launchers, sweepers and the sweep callback are
the command's. Where the command prints an error and exits, the error is raised instead, typed, with its one line.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from hydra._internal.callbacks import Callbacks
from hydra._internal.hydra import Hydra
from hydra._internal.utils import create_config_search_path
from hydra.core.global_hydra import GlobalHydra
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, run_job
from hydra.errors import HydraException
from hydra.types import HydraContext, RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from mlexp.config import make_composable
from mlexp.config.overrides import check_override_keys, command_overrides
from mlexp.config.search_path import forget_command_folders, use_command_folders
from mlexp.errors import ConfigError, MlexpError
from mlexp.paths import ROOT_ENV, project_root
from mlexp.process_state import left_as_found
from mlexp.sweep_failed import FailedJob
from mlexp.sweeps import SWEEP_ID_ENV, SWEEP_JOBS_ENV, SWEEP_NAME_ENV, SweepEndedFailed, job_outcomes

# the command's Hydra job name (the name of its module): the same hydra.job.name and log file, <run folder>/cli.log
JOB_NAME = "cli"
CONFIG = "config"


@dataclass(frozen=True)
class TrialDone:
    """A trial that finished: its job's composed config and its run id."""

    cfg: DictConfig
    run_id: str


@dataclass(frozen=True)
class SweepDone:
    """A sweep that ran to its end: its config, its record's id and name, and whether its callback failed it."""

    cfg: DictConfig
    sweep_id: str
    name: str
    failed_jobs: list[FailedJob]
    failed: bool  # failed jobs, or no trial scored by the objective


@contextmanager
def command_line(root: str | os.PathLike[str] | None, argv: Sequence[str]) -> Iterator[Path]:
    """Inside: `mlexp <argv>` run from `root` (default: as the command finds it), its overrides checked; yields conf/.

    After: the process as it was (working directory, environment, sys.argv, logging, Hydra's globals).
    """
    make_composable()  # a broken task plugin raises its ConfigError here; importing mlexp.cli would exit
    env = {ROOT_ENV: str(Path(root).expanduser().resolve())} if root is not None else {}
    # sys.argv as the command's: trials and sweeps record `mlexp <argv>` as the command that reproduces them
    with left_as_found(env, ["mlexp", *argv]):
        from mlexp.console import quiet_third_party
        from mlexp.tracking.journal_writer import close_writers

        try:
            quiet_third_party()
            conf_dir = project_root() / "conf"
            os.environ[ROOT_ENV] = str(conf_dir.parent)  # as the command's: found from a run folder Hydra moved to
            overrides = [arg for arg in argv if arg != "-m"]
            use_command_folders(None, overrides)  # a hydra.searchpath=[...] among them: its folders' options too
            # a trial checks the keys in the config it composes (run_trial): one composition, as the command's
            check_override_keys(conf_dir, overrides, keys="-m" in argv)
            yield conf_dir
        finally:
            forget_command_folders()
            close_writers()  # the command's tracking writer ends with it, as it does after `mlexp`


def run_trial(conf_dir: Path, overrides: list[str]) -> TrialDone:
    """Run one trial as `mlexp <overrides>` does; raise the command's errors, typed."""

    # the command's job records its outcome (run id, one-line error) in this folder; it returns only the objective
    jobs = Path(tempfile.mkdtemp(prefix="mlexp-trial-"))
    os.environ[SWEEP_JOBS_ENV] = str(jobs)
    try:
        done = _run_composed_once(conf_dir, [*overrides, "hydra.mode=RUN"])
        outcomes = job_outcomes(jobs)
    except SystemExit as stop:
        _raise_reported(stop, job_outcomes(jobs))
    except (HydraException, OmegaConfBaseException) as error:
        raise _config_error(error, conf_dir, overrides) from error
    finally:
        del os.environ[SWEEP_JOBS_ENV]
        shutil.rmtree(jobs, ignore_errors=True)
    assert done.cfg is not None
    if not outcomes[0]["run_id"] and outcomes[0]["error"]:  # it ended well; its writer stopped before storing it
        from mlexp.tracking.journal_writer import TrackingError

        raise TrackingError(str(outcomes[0]["error"]))
    return TrialDone(done.cfg, str(outcomes[0]["run_id"]))


def run_sweep(conf_dir: Path, overrides: list[str]) -> SweepDone:
    """Run a sweep as `mlexp -m <overrides>` does (Hydra.multirun's steps, keeping the sweep's id); raise typed."""
    from mlexp import cli
    from mlexp.sweeps.recorder import close_open_sweep

    if cli.picks_sagemaker(overrides):
        raise ConfigError(
            "a sweep on SageMaker runs as one tuning job, started from the command line: "
            f"mlexp -m {' '.join(overrides)}"
        )
    hydra = _hydra(conf_dir)
    failed = False
    try:
        cfg = hydra.compose_config(
            CONFIG, [*overrides, "hydra.mode=MULTIRUN"], with_log_configuration=True, run_mode=RunMode.MULTIRUN
        )
        callbacks = Callbacks(cfg)
        try:
            callbacks.on_multirun_start(config=cfg, config_name=CONFIG)
        except SystemExit as stop:
            _raise_reported(stop, [])
        sweep_id = os.environ.get(SWEEP_ID_ENV)
        if sweep_id is None:
            raise ConfigError("the sweep has no record: keep hydra.callbacks.sweep_recorder in conf/config.yaml")
        name, jobs = os.environ.get(SWEEP_NAME_ENV, "sweep"), Path(os.environ[SWEEP_JOBS_ENV])
        _stop_idle_joblib_workers()
        context = HydraContext(config_loader=hydra.config_loader, callbacks=callbacks)
        sweeper = Plugins.instance().instantiate_sweeper(config=cfg, hydra_context=context, task_function=cli._job)
        sweeper.sweep(arguments=command_overrides(cfg.hydra))
        try:
            callbacks.on_multirun_end(config=cfg, config_name=CONFIG)
        except SweepEndedFailed:
            failed = True  # failed jobs or no scored trial: it printed them and closed the record FAILED
        except SystemExit as stop:  # recording the results failed
            _raise_reported(stop, [])
    except KeyboardInterrupt:
        close_open_sweep("KILLED")
        raise
    except (HydraException, OmegaConfBaseException) as error:
        close_open_sweep("FAILED")
        raise _config_error(error, conf_dir, overrides) from error
    except BaseException:
        close_open_sweep("FAILED")
        raise
    finally:
        _stop_idle_joblib_workers()
    failed_jobs = [FailedJob.from_outcome(o) for o in job_outcomes(jobs) if o["status"] != "FINISHED"]
    return SweepDone(cfg, sweep_id, name, failed_jobs, failed)


def _run_composed_once(conf_dir: Path, overrides: list[str]) -> JobReturn:
    """Hydra.run's steps with the override keys checked in the run's own composition (as `mlexp`'s _run_single)."""
    from mlexp import cli
    from mlexp.config.overrides import check_keys_in

    hydra = _hydra(conf_dir)
    try:
        cfg = hydra.compose_config(CONFIG, overrides, with_log_configuration=True, run_mode=RunMode.RUN)
    except (HydraException, OmegaConfBaseException):
        GlobalHydra.instance().clear()  # the check composes through Hydra's compose API, which starts Hydra anew
        check_override_keys(conf_dir, overrides)  # a wrong key: the command's one line, not Hydra's
        raise
    check_keys_in(cfg, conf_dir, overrides)
    callbacks = Callbacks(cfg)
    callbacks.on_run_start(config=cfg, config_name=CONFIG)
    done = run_job(
        hydra_context=HydraContext(config_loader=hydra.config_loader, callbacks=callbacks),
        task_function=cli._job,
        config=cfg,
        job_dir_key="hydra.run.dir",
        job_subdir_key=None,
    )
    callbacks.on_run_end(config=cfg, config_name=CONFIG, job_return=done)
    _ = done.return_value  # the job's exception, as Hydra.run raises it
    return done


def _hydra(conf_dir: Path) -> Hydra:
    """Hydra as hydra.main starts it for the command: conf/ as the primary config folder, plugins' search paths."""
    return Hydra.create_main_hydra2(JOB_NAME, create_config_search_path(str(conf_dir)))


def _raise_reported(stop: SystemExit, outcomes: Sequence[Mapping[str, object]]) -> NoReturn:
    """The error the command printed before exiting: it is the exception being handled when it called sys.exit."""
    from mlexp import runner

    error = stop.__context__
    if isinstance(error, runner.TrialFailed):
        # the job's outcome holds the command's line, which says the trial is marked FAILED and where the traceback is
        message = str(outcomes[0]["error"]) if outcomes else str(error)
        raise runner.TrialFailed(message, error.run_id, error.user_error) from error.__cause__
    if isinstance(error, MlexpError):
        raise error from None
    if error is not None:  # the sweep's record could not be opened or closed: the store's error
        raise MlexpError(f"{type(error).__name__}: {error}") from error
    raise MlexpError(f"mlexp stopped with exit status {stop.code}; its output above says why") from None


def _config_error(error: BaseException, conf_dir: Path, overrides: list[str]) -> ConfigError:
    """Hydra's or OmegaConf's refusal as the command says it: a schema no code stored with its fix, else its line."""
    from mlexp.config.missing_schema import missing_schema, task_given

    return missing_schema(error, conf_dir, task_given(overrides)) or ConfigError(_one_line(error))


def _one_line(error: BaseException) -> str:
    """Hydra's message and, for a value refused by a schema, OmegaConf's reason (the lines the command prints)."""
    lines = [_first_line(error)]
    if isinstance(error.__cause__, OmegaConfBaseException):
        lines.append(_first_line(error.__cause__))
    return ": ".join(lines)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _stop_idle_joblib_workers() -> None:
    """joblib keeps its worker processes for the next call; a sweep needs its own.

    Workers inherit the environment when they start: the sweep's id and the project root must be set by then, and a
    later sweep must not reuse workers that hold an earlier one's (nor keep MXNet loaded in idle processes).
    """
    if "joblib.externals.loky" not in sys.modules:
        return
    from joblib.externals.loky import get_reusable_executor

    # idle workers leave on their own; killed ones leak semaphores (a warning when the kernel exits)
    get_reusable_executor(reuse=True).shutdown(wait=True)
