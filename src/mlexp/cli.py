"""The `mlexp` command: a Hydra app for trials and sweeps, plus `compare` and `params`."""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import os
import shlex
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
import yaml
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from mlexp import multirun, tasks
from mlexp.cli_arguments import (
    HELP_FLAGS,
    asks_for_shell_completion,
    check_command_word,
    check_modes,
    check_printable,
    check_spaced_equals,
    grammar_error,
    multirun_first,
    spelled_out,
)
from mlexp.config import make_composable
from mlexp.config.overrides import check_env_copy, check_override_keys, command_overrides
from mlexp.config.schema import objective_direction
from mlexp.config.search_path import config_flags, use_command_folders
from mlexp.console import warn
from mlexp.entry import INTERRUPTED_EXIT
from mlexp.errors import ConfigError, MlexpError, mlexp_error_behind
from mlexp.interrupts import stop_once
from mlexp.paths import DVC_STAGE_ENV, ROOT_ENV, RUN_FOLDERS, NoProject, project_root, resolve, store_home
from mlexp.sweeps import SWEEP_ID_ENV, SWEEP_NAME_ENV, adopt_sweep_env, record_job
from mlexp.sweeps.recorder import close_open_sweep

if TYPE_CHECKING:
    from mlexp import runner


def _composable() -> None:
    """Register schemas and tasks; a broken task plugin is one line, not a traceback."""
    try:
        make_composable()
    except MlexpError as error:
        print(f"mlexp: error: {error}", file=sys.stderr)
        sys.exit(2)


# at import: joblib sweep workers import this module to run jobs, and need it too
_composable()

# keys the runner reads itself; never merged from params.yaml
RUN_KEYS = ("stage", "params_file")


def _value_overrides(overrides: list[str], groups: set[str]) -> list[str]:
    """The overrides of config values (not group choices, nor deletions), as typed."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [
        line
        for line, o in zip(overrides, parsed, strict=True)
        if o.key_or_group not in groups and o.key_or_group not in RUN_KEYS and not o.is_delete()
    ]


def _fail(message: str, multirun: bool, error: BaseException | None = None) -> float:
    """Report a job that failed; a single run exits 2 for a config refused before its trial opened (`error` a
    ConfigError: a usage error, as Hydra's composition errors), 1 for everything else."""
    print(f"mlexp: error: {message}", file=sys.stderr)
    if multirun:
        return math.nan
    if isinstance(error, ConfigError):
        _forget_run_folder(Path(HydraConfig.get().runtime.output_dir))
        sys.exit(2)
    sys.exit(1)


def _forget_run_folder(folder: Path) -> None:
    """Remove the run folder Hydra made for a run refused before its trial opened: it holds only Hydra's record of
    the refused config (.hydra/) and an empty log, and one would pile up per mistyped command. A folder the run
    wrote anything else to stays."""
    if not folder.is_dir() or any(p.name != ".hydra" and p.suffix != ".log" for p in folder.iterdir()):
        return
    root = project_root().resolve()
    if folder.resolve() in (Path.cwd(), *Path.cwd().parents):  # hydra.job.chdir=true: the job runs in it
        os.chdir(HydraConfig.get().runtime.cwd)
    shutil.rmtree(folder, ignore_errors=True)
    for parent in folder.resolve().parents:  # outputs/<task>/ and outputs/ when this run was their only one
        if parent == root or root not in parent.parents or any(parent.iterdir()):
            break
        parent.rmdir()


def _job(cfg: DictConfig, checked: bool = False) -> float:
    """Hydra's task function; `checked`: the config's values passed check_config before the job began."""
    from mlexp import console

    console.quiet_third_party()  # a sweep job may run in a joblib worker: a process of its own
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return _run_job(cfg, checked)
    adopt_sweep_env(Path(hydra_cfg.sweep.dir))
    # parallel trials' lines would interleave unlabelled: each carries its trial's name
    with console.prefixed(_trial_name(hydra_cfg.job.num)):
        return _run_job(cfg)


def _warn_of_a_sweep_without_m(choices: dict[str, str], overrides: list[str]) -> None:
    if choices.get("sweep") not in (None, "none"):
        again = shlex.join(["mlexp", "-m", *config_flags(sys.argv[1:]), *overrides])
        warn(f"sweep={choices['sweep']} without -m runs one trial; the sweep runs with: {again}")


def _trial_name(number: int) -> str:
    return f"{os.environ.get(SWEEP_NAME_ENV, 'sweep')}-trial-{number}"


def _run_job(cfg: DictConfig, checked: bool = False) -> float:
    # imported here: MLflow and MXNet take seconds to load, which --help and --cfg don't need
    from mlexp import runner
    from mlexp.config.input_paths import from_launch_folder

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra")}
    overrides = command_overrides(hydra_cfg)
    job = runner.JobContext(choices=choices, overrides=overrides, checked=checked)
    number = hydra_cfg.job.num if multirun else 0
    if not multirun:
        _warn_of_a_sweep_without_m(choices, overrides)
    try:
        cfg = _with_params_file(cfg, choices, overrides)
        if multirun or not cfg.params_file:
            # sweep jobs never share folders, not even DVC's: parallel jobs would overwrite each other
            _use_run_folder(cfg, Path(hydra_cfg.runtime.output_dir), overrides)
        if hydra_cfg.job.chdir:  # the job runs in its run folder: a relative input is still the launch folder's
            from_launch_folder(cfg, tasks.get(cfg.task.name).inputs, Path(hydra_cfg.runtime.cwd))
        if multirun:
            job = _sweep_job(job, number)
        result = runner.run(cfg, job)
    except runner.TrialFailed as failed:
        where = "" if failed.user_error else "; traceback in the trial's artifact error.txt"
        message = f"{failed} (trial {failed.run_id} marked FAILED{where})"
        record_job(number, "FAILED", failed.run_id, message)
        return _fail(message, multirun)
    except MlexpError as error:
        record_job(number, "FAILED", None, str(error))
        return _fail(str(error), multirun, error)
    except InterpolationResolutionError as error:
        # one of mlexp's resolvers refused, or a ${...} read before the runner's checks (params_file=${oops})
        from mlexp.config.validate import unresolvable_refusal

        refusal = mlexp_error_behind(error) or unresolvable_refusal(error, in_job=True)
        if refusal is None:  # a resolver that failed otherwise: its traceback is the report
            raise
        record_job(number, "FAILED", None, str(refusal))
        return _fail(str(refusal), multirun, refusal)
    except Exception as error:
        record_job(number, "FAILED", None, f"{type(error).__name__}: {error}")
        raise
    record_job(number, "FINISHED", result.run_id, result.kept, objective=result.objective)
    _print_next_steps(cfg, result, multirun)
    if result.kept:  # the trial succeeded; only its records' way to the store is pending: not an error
        warn(str(result.kept))
    return result.objective


def _with_params_file(cfg: DictConfig, choices: dict[str, str | None], overrides: list[str]) -> DictConfig:
    """The config with the task's values from params_file= (a DVC stage's) under the command line's; else `cfg`."""
    if not cfg.params_file:
        return cfg
    from mlexp.config.params import apply_params_file

    given = _value_overrides(overrides, set(choices))
    task = tasks.get(cfg.task.name)
    return apply_params_file(cfg, resolve(cfg.params_file), given, task.bounds, task.constraints)


def _use_run_folder(cfg: DictConfig, output_dir: Path, overrides: list[str]) -> None:
    """Plain runs write under their own Hydra folder; only DVC stage runs (params_file=) write data/<task>.

    A folder the user names on the command line (paths.models=...) is kept.
    """
    chosen = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    for folder in RUN_FOLDERS:
        if f"paths.{folder}" not in chosen:
            cfg.paths[folder] = str(output_dir / folder)


def _sweep_job(job: runner.JobContext, number: int) -> runner.JobContext:
    """Tag the trial with its sweep: the sweep callback set the sweep's id and name for every job."""
    return replace(
        job,
        sweep_id=os.environ.get(SWEEP_ID_ENV),
        sweep_name=os.environ.get(SWEEP_NAME_ENV, "sweep"),
        trial_name=_trial_name(number),
    )


def _print_next_steps(cfg: DictConfig, result: runner.TrialResult, multirun: bool) -> None:
    metric = cfg.task.objective.metric
    if math.isnan(result.objective):
        if cfg.compute.target == "sagemaker":  # a dry run or a job not waited for: the job's lines said where to look
            return
        if cfg.stage is None:  # a whole trial without the objective (e.g. documents without ground truth)
            print(f"trial done: no {metric} to report  ({_where_reports_are(cfg)})")
            return
        where = _where_stage_reports_are(cfg)
        print(f"stage {cfg.stage} done." + (f"  ({where})" if where else ""))
        if os.environ.get(DVC_STAGE_ENV):  # a stage DVC runs: the pipeline's last one says where to look next, once
            return
        if not multirun and (following := _next_stage_command(cfg)):
            print(f"  next stage:      {following}")
    else:
        print(f"trial done: {metric} = {result.objective:.6g}  ({_where_reports_are(cfg)})")
    if multirun:  # the sweep's table has every trial's headline metrics
        return
    if not math.isnan(result.objective):  # under the objective's line (a stage run alone says only where it wrote)
        _print_headline(metric, result.headline)
    if result.kept:  # no store ids to link to yet
        return
    from mlexp.next_steps import command_line_columns, compare_command, print_ui_link, serving_only

    if serving_only(cfg):  # no trial to compare: the deploy stage said where the model is served
        return

    direction = objective_direction(cfg)
    scope = f"experiment={cfg.tracking.experiment_name}" if cfg.tracking.experiment_name else f"task={cfg.task.name}"
    print(f"  compare trials:  {compare_command(scope, result.tracking_uri)}")
    columns = command_line_columns(cfg)  # the view of every trial adds what this one set
    print_ui_link(
        result.tracking_uri,
        result.experiment_id,
        metric,
        direction,
        headline_metrics=list(cfg.task.headline_metrics),
        params=columns.params,
        choices=columns.choices,
    )


def _print_headline(objective: str, headline: dict[str, float]) -> None:
    """The task's other headline metrics under the objective's line (a validation objective's test figures among
    them), wrapped to the terminal; the same values as the trial's reports/metrics.json."""
    shown = [f"{name} = {value:.6g}" for name, value in headline.items() if name != objective]
    width = max(60, shutil.get_terminal_size().columns - 1)
    line = "  also:"
    for number, item in enumerate(shown):
        item += "," if number < len(shown) - 1 else ""
        if len(line) + 1 + len(item) > width and line.strip() != "also:":  # a metric is never cut in two
            print(line)
            line = " " * 7
        line += " " + item
    if shown:
        print(line)


def _where_reports_are(cfg: DictConfig) -> str:
    """The trial's reports folder; in a DVC experiment's temporary copy (deleted when it ends), how to get them."""
    root = Path(cfg.paths.root)
    if store_home(root) == root:
        return f"reports: {cfg.paths.reports}"
    name = os.environ.get("DVC_EXP_NAME") or "<experiment>"  # DVC names the experiment it runs in a copy
    return f"reports: in DVC experiment {name}; `dvc exp apply {name}` brings them into the workspace"


def _where_stage_reports_are(cfg: DictConfig) -> str:
    """The reports of a stage run alone: its own folder in the reports if it wrote one; else the folders it wrote."""
    from mlexp.next_steps import stage_outputs

    reports = Path(cfg.paths.reports)
    if store_home(Path(cfg.paths.root)) != Path(cfg.paths.root):
        return _where_reports_are(cfg)  # a DVC experiment's temporary copy: how to get them
    if (reports / cfg.stage).is_dir():
        return f"reports: {reports / cfg.stage}"
    if reports.is_dir() and any(reports.iterdir()):
        return _where_reports_are(cfg)
    written = [str(folder) for folder in stage_outputs(cfg) if folder.is_dir()]
    return f"wrote: {', '.join(written)}" if written else ""


def _next_stage_command(cfg: DictConfig) -> str | None:
    """The command that runs the task's next stage on this stage's outputs (None after the last stage)."""
    from mlexp.next_steps import next_stage_command

    hydra_cfg = HydraConfig.get()
    overrides = command_overrides(hydra_cfg)
    return next_stage_command(cfg, overrides, Path(hydra_cfg.runtime.cwd), flags=config_flags(sys.argv[1:]))


def _is_tuning_job(argv: list[str], overrides: list[str]) -> bool:
    """`mlexp -m ... compute=sagemaker`: a SageMaker tuning job runs the sweep, not Hydra's launcher on this machine.

    Hydra's own flags (--cfg, --info, completion) still only print.
    """
    args = get_args_parser().parse_args(argv)
    if not args.multirun or args.cfg or args.info or args.shell_completion or args.hydra_help:
        return False
    return picks_sagemaker(overrides)


def picks_sagemaker(overrides: list[str]) -> bool:
    """Whether the overrides send the trials to SageMaker (compute=sagemaker or compute.target=sagemaker)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return any(
        o.key_or_group in ("compute", "compute.target")
        and not o.is_sweep_override()
        and o.get_value_element_as_str() == "sagemaker"
        for o in parsed
    )


def _run_tuning_job(conf_dir: Path, overrides: list[str]) -> int:
    """Run the sweep as one tuning job (mlexp.sagemaker.tuning_job); errors are one line, as for trials."""
    from botocore.exceptions import BotoCoreError, ClientError
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from mlexp.sagemaker import tuning_job

    try:
        return tuning_job.run(conf_dir, overrides)
    except KeyboardInterrupt:
        # tuning_job.run has already said how to record or stop a tuning job it started
        print("mlexp: interrupted (Ctrl-C)", file=sys.stderr)
        return INTERRUPTED_EXIT
    except (BotoCoreError, ClientError) as error:
        # AWS refused a request or could not be reached: its own message names the operation and the reason
        print(f"mlexp: error: {str(error).splitlines()[0] if str(error) else type(error).__name__}", file=sys.stderr)
        return 1
    except (MlexpError, HydraException, OmegaConfBaseException) as error:
        from mlexp.config.missing_schema import missing_schema, task_given

        if (unstored := missing_schema(error, conf_dir, task_given(overrides))) is not None:
            print(f"mlexp: error: {unstored}", file=sys.stderr)
            return 2
        # Hydra's first line names where composing failed; the next line (or OmegaConf's cause) says why
        lines = [line.strip() for line in str(error).splitlines() if line.strip()][:2]
        cause = error.__cause__
        # an MlexpError's line already says what its cause is; Hydra's and OmegaConf's may not
        if not isinstance(error, MlexpError) and cause is not None and str(cause).strip() and len(lines) < 2:
            lines.append(str(cause).strip().splitlines()[0])
        print(f"mlexp: error: {' '.join(lines) or type(error).__name__}", file=sys.stderr)
        return 2 if not isinstance(error, MlexpError) or isinstance(error, ConfigError) else 1


def _run_single(conf_dir: Path, overrides: list[str]) -> bool:
    """`mlexp <overrides>` as hydra.main runs it, composing the config once; False if hydra.main must run it.

    hydra.main composes twice for one run: once to read hydra.mode (Hydra.get_mode), once to run. Here the run's
    composition gives the mode too, and the override keys are checked in it (their one-line errors, exit status 2); a
    composition that fails is explained from what it composed before the values (mlexp.config.composition_attempt).
    The rest is Hydra.run's: callbacks, run_job (run folder, logging, .hydra/), Hydra's error report.
    """
    from hydra import version
    from hydra._internal.callbacks import Callbacks
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path, run_and_report
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.utils import run_job
    from hydra.types import HydraContext

    from mlexp.config.composition_attempt import CompositionAttempt
    from mlexp.config.overrides import check_keys_in

    version.setbase("1.3")
    # hydra.main's job name is its task function's module's: `cli`
    app = run_and_report(lambda: Hydra.create_main_hydra2("cli", create_config_search_path(str(conf_dir))))
    try:

        def composed() -> DictConfig:
            return app.compose_config("config", overrides, run_mode=RunMode.RUN, with_log_configuration=True)

        cfg, attempt, swept = None, CompositionAttempt(overrides), multirun.sweep_lines(overrides)
        if not swept:  # a sweep's values fail a run's composition before it composes anything
            with contextlib.suppress(Exception), attempt.watching():
                cfg = composed()
        if cfg is None:
            # a wrong key or value: the checks' one line, from what the failed composition learned; else hydra.main,
            # as before: its own report, or a sweep when hydra.mode=MULTIRUN comes with sweep values
            multirun.exit_if_run_explained(app, conf_dir, overrides, attempt, swept)
            return False
        try:
            check_keys_in(cfg, conf_dir, overrides)
        except MlexpError as error:
            print(f"mlexp: error: {error}", file=sys.stderr)
            sys.exit(2)
        if cfg.hydra.mode == RunMode.MULTIRUN:
            return False  # conf/ asks for a sweep: hydra.main runs it
        checked = _refuse_before_the_writer(cfg)
        # one trial in this process: the tracking writer imports MLflow while the trial's task loads MXNet
        from mlexp.tracking.journal_writer import start_early

        start_early(project_root())
        tasks.get(cfg.task.name).start_hashing_inputs(cfg)  # its MD5 while the runner and the task import
        if cfg.hydra.mode is None:
            # as hydra.main: the override `hydra.mode=RUN`, recorded among the run's Hydra overrides
            cfg.hydra.mode = RunMode.RUN
            cfg.hydra.overrides.hydra.append("hydra.mode=RUN")

        def run() -> None:
            callbacks = Callbacks(cfg)
            callbacks.on_run_start(config=cfg, config_name="config")
            context = HydraContext(config_loader=app.config_loader, callbacks=callbacks)
            ret = run_job(
                hydra_context=context,
                task_function=functools.partial(_job, checked=checked),
                config=cfg,
                job_dir_key="hydra.run.dir",
                job_subdir_key=None,
            )
            callbacks.on_run_end(config=cfg, config_name="config", job_return=ret)
            _ = ret.return_value  # raises the job's exception, for Hydra's report

        run_and_report(run)
        return True
    finally:
        GlobalHydra.instance().clear()


def _refuse_before_the_writer(cfg: DictConfig) -> bool:
    """The runner's checks of the config, before the tracking writer starts: a `${...}` that resolves nowhere or to a
    `???` nothing fills (named first: a value out of range may only be its consequence), a params_file= the run cannot
    apply, a mistyped value: each exits as the run would, without a writer process loading MLflow for nothing (and
    staying for minutes). They run with hydra.job.env_set applied, as the job's do (AWS_PROFILE=... for the credential
    rules). What fails otherwise here is the run's to report, as it does. True when check_config passed: the job, whose
    config differs only by its run folders (and a relative input made absolute from this folder), need not run it
    again."""
    from hydra.core.utils import env_override

    from mlexp.config.validate import check_config, check_resolvable

    choices = {group: option for group, option in cfg.hydra.runtime.choices.items() if not group.startswith("hydra")}
    overrides = command_overrides(cfg.hydra)
    try:
        env_set = {str(key): str(value) for key, value in (cfg.hydra.job.get("env_set") or {}).items()}
        with env_override(env_set):
            # the file's values may fill a `???`: the job's values are known once it is read, which this names first
            reads_file = OmegaConf.is_interpolation(cfg, "params_file") or cfg.params_file is not None
            check_resolvable(_job_values(cfg, overrides, not reads_file), in_job=not reads_file)
            checked = _with_params_file(cfg, choices, overrides)
            if reads_file:
                check_resolvable(_job_values(checked, overrides, False), in_job=True)
            check_config(checked, choices)
    except MlexpError as error:
        _warn_of_a_sweep_without_m(choices, overrides)  # as the run said it before refusing
        print(f"mlexp: error: {error}", file=sys.stderr)
        sys.exit(2 if isinstance(error, ConfigError) else 1)
    except Exception:  # e.g. an interpolation the run resolves first, and reports its own way
        return False
    return True


def _job_values(cfg: DictConfig, overrides: list[str], run_folders: bool) -> DictConfig:
    """The values the job resolves: the config without Hydra's node and, with `run_folders`, with the folders the job
    writes to in place of conf/'s (where is Hydra's to say when the job starts; any folder resolves alike)."""
    values = OmegaConf.masked_copy(cfg, [str(key) for key in cfg if key != "hydra"])
    if run_folders:
        _use_run_folder(values, Path("<run folder>"), overrides)
    return values


def _versions() -> str:
    """mlexp's version and those of the tools a trial's records depend on (Hydra's --version gives only Hydra's)."""
    from importlib.metadata import PackageNotFoundError, version

    from mlexp import __version__

    found = []
    for name, package in (("Hydra", "hydra-core"), ("MLflow", "mlflow"), ("DVC", "dvc")):
        try:
            found.append(f"{name} {version(package)}")
        except PackageNotFoundError:
            found.append(f"{name} not installed")
    return f"mlexp {__version__} ({', '.join(found)})"


def main() -> None:
    try:
        try:
            _main()
        finally:
            sys.stdout.flush()  # here, not at exit, where a broken pipe is only reported
    except yaml.MarkedYAMLError as error:  # a config file edited wrong: Hydra and the checks load it as they compose
        mark = error.problem_mark or error.context_mark
        where = f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}" if mark else "a config file"
        print(
            f"mlexp: error: {where}: not valid YAML ({error.problem or error.context}); fix that line", file=sys.stderr
        )
        sys.exit(2)
    except BrokenPipeError:
        # the reader of the output went away (`mlexp compare ... | head`): stop as Unix tools do, without a traceback,
        # and without Python's second one when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


def _main() -> None:
    from mlexp.console import quiet_third_party

    quiet_third_party()  # before Hydra, its launchers and sweepers, and MLflow load
    # charts are files here; in a notebook (mlexp.run) the kernel's own backend stays
    os.environ.setdefault("MPLBACKEND", "Agg")
    argv = sys.argv[1:]
    from mlexp import commands

    if argv and argv[0] in commands.COMMANDS:
        sys.exit(commands.run(argv[0], argv[1:]))
    named = [arg for arg in argv if arg in commands.COMMANDS]
    if named and {"--help", "-h"} & set(argv):  # `mlexp --help compare`: that command's help
        sys.exit(commands.run(named[0], ["--help"]))
    try:
        conf_dir = project_root() / "conf"
        if not (conf_dir / "config.yaml").is_file():  # only $MLEXP_ROOT can name such a folder
            raise NoProject(
                f"{ROOT_ENV}={os.environ.get(ROOT_ENV)} names {conf_dir.parent}, which has no conf/config.yaml; set "
                f"{ROOT_ENV} to your project folder (the one holding conf/), or unset it and run inside the project"
            )
        # pinned: a job that Hydra runs in a run folder outside the project (hydra.job.chdir=true) still finds it
        os.environ[ROOT_ENV] = str(conf_dir.parent)
    except NoProject as error:
        if "--version" in argv:
            print(_versions())
            sys.exit(0)
        if set(HELP_FLAGS) & set(argv):  # the general usage needs no project; its tasks and options are a project's
            from mlexp.usage import USAGE

            print(f"{USAGE.rstrip()}\n\n(outside a project: {error})")
            sys.exit(0)
        print(f"mlexp: error: {error}", file=sys.stderr)
        sys.exit(2)
    try:
        argv = sys.argv[1:] = multirun_first(spelled_out(argv))  # Hydra parses sys.argv again
        check_spaced_equals(argv)
        check_modes(argv)
        if asks_for_shell_completion(argv):  # Hydra's, over the project's conf/; its words are no overrides
            hydra.main(version_base="1.3", config_path=str(conf_dir), config_name="config")(_job)()
            sys.exit(0)
        check_command_word(argv, list(commands.COMMANDS), conf_dir)
        if "--version" in argv:  # before argparse, whose --version action prints Hydra's alone
            print(_versions())
            sys.exit(0)
        parsed = get_args_parser().parse_args(argv)
        overrides = parsed.overrides
        # the checks read the group options Hydra composes from: conf/'s, and those of the folders the command adds
        use_command_folders(parsed.config_dir, overrides)
        if any(arg in HELP_FLAGS for arg in argv):
            from mlexp.usage import help_text

            print(help_text(conf_dir, overrides))
            sys.exit(0)
        # one trial (no flags): the keys are checked in the config the run composes, not in a composition of their own
        single = not any(arg.startswith("-") for arg in argv)
        check_env_copy(overrides)
        check_override_keys(conf_dir, overrides, keys=not single)
        if any(arg.split("=")[0] in ("--cfg", "--info") for arg in argv):
            job_package = parsed.package if parsed.cfg == "job" else None
            check_printable(conf_dir, overrides, resolve="--resolve" in argv, job_package=job_package)
    except MlexpError as error:
        print(f"mlexp: error: {error}", file=sys.stderr)
        sys.exit(2)
    except OverrideParseException as error:  # Hydra's grammar: its reason, without the traceback it comes with
        print(f"mlexp: error: {grammar_error(error)}", file=sys.stderr)
        sys.exit(2)
    stop_once()  # a second Ctrl-C must not interrupt the closing of what the first one stopped
    if _is_tuning_job(argv, overrides):
        sys.exit(_run_tuning_job(conf_dir, overrides))
    try:
        if multirun.runs_here(argv, overrides):
            multirun.run_multirun(conf_dir, overrides, _job)
        elif not single or not _run_single(conf_dir, overrides):
            app = hydra.main(version_base="1.3", config_path=str(conf_dir), config_name="config")
            app(_job)()
    except KeyboardInterrupt:
        # a sequential trial said "interrupted: trial … marked KILLED"; this line names the sweep and its killed trials
        sweep = close_open_sweep("KILLED")
        print(f"mlexp: interrupted (Ctrl-C){f'; sweep {sweep} marked KILLED' if sweep else ''}", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT)
    except BaseException:
        # Hydra reports its own errors and exits; a sweep it stopped must not stay RUNNING
        close_open_sweep("FAILED")
        raise
    finally:
        from mlexp.tracking.journal_writer import close_writers

        close_writers()
    # MLflow, MXNet and pandas leave millions of objects; skip collecting them at exit (seconds)
    gc.freeze()


if __name__ == "__main__":
    main()
