"""One trial: validate → seed → open trial → run the task's stages → close the trial."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig
from omegaconf._utils import get_omega_conf_dumper

from mlexp import tasks
from mlexp.config.params import flatten
from mlexp.config.schema import objective_direction
from mlexp.config.task_groups import unselected_groups
from mlexp.config.validate import all_stages, check_config, resolved_config
from mlexp.console import warnings_kept
from mlexp.errors import ConfigError, MlexpError
from mlexp.interrupts import announce_killed
from mlexp.paths import RUN_FOLDERS
from mlexp.reused_stages import link_kept_stages
from mlexp.run_names import claimed
from mlexp.seeding import seed_everything
from mlexp.shared_component import SHARED_STAGE, shared_preprocessing
from mlexp.thread_limits import trial_threads
from mlexp.tracking import Tracker, TrackingStore, Trial, sagemaker_mirror, tags
from mlexp.tracking.journal_writer import TrialKept, record_writer, trial_state
from mlexp.tracking.provenance import command_line, git_state, package_versions
from mlexp.tracking.tracker import RunWriter
from mlexp.tracking.trial_state import TrialState
from mlexp.trial_continuation import Marker, marker_path, pipeline_run_id, read_marker, write_marker

# config that describes the machine or how the run was launched, not the experiment: kept as tags
NOT_PARAMS = ("paths", "hydra", "stage", "params_file")


@dataclass(frozen=True)
class JobContext:
    """What the runner needs to know about the Hydra job it runs in."""

    choices: dict[str, str | None]
    overrides: list[str]
    sweep_id: str | None = None
    sweep_name: str | None = None
    trial_name: str | None = None
    # check_config passed on this config before the job began (the command's single run): not run twice
    checked: bool = False


@dataclass(frozen=True)
class TrialResult:
    """A finished trial: where it is stored and its objective value (NaN before the last stage)."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    objective: float
    # the writer process stopped after the trial ended: its records are whole in a journal, not yet in the store
    kept: str = ""
    # the task's headline metrics the trial reached (reports/metrics.json), the objective among them
    headline: dict[str, float] = field(default_factory=dict)


class TrialFailed(MlexpError):
    """A stage raised; the trial is stored as FAILED with the error."""

    def __init__(self, message: str, run_id: str, user_error: bool) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.user_error = user_error


def stages_to_run(cfg: DictConfig, task: tasks.Task) -> list[str]:
    if cfg.stage is not None:
        return [cfg.stage]
    names = all_stages(task)
    return names if cfg.deploy.target != "none" else names[:-1]


def _run_stage(cfg: DictConfig, task: tasks.Task, stage: str, trial: Trial, tracker: Tracker) -> None:
    if stage == "deploy" and cfg.deploy.target == "sagemaker":  # one endpoint path for every task's model
        from mlexp.sagemaker import endpoint

        endpoint.deploy_trial(cfg, tracker)
        return
    if stage in task.stages:
        task.stage(stage)(cfg, tracker)
        return
    if cfg.deploy.target == "registry":  # a task without its own deploy stage gets the registry
        from mlexp.serving import registry

        registry.deploy(cfg, tracker, dict(trial.client.get_run(trial.run_id).data.metrics))
        return
    raise ConfigError(f"deploy={cfg.deploy.target!r} is not available for task {cfg.task.name!r}; use registry")


def _continued_trial(
    cfg: DictConfig, task: tasks.Task, store: TrackingStore, experiment_name: str, pipeline_run: str | None
) -> tuple[str, TrialState] | None:
    """The trial an earlier stage of this pipeline run opened, if this stage may join it: its run id and state.

    The marker is local and the tracking writer reads the trial's state, so (with a writer running) this
    process decides without importing MLflow.
    """
    if cfg.stage is None or pipeline_run is None or all_stages(task).index(cfg.stage) == 0:
        return None
    root = Path(cfg.paths.root)
    marker = read_marker(marker_path(root, store.uri, experiment_name, task.name, pipeline_run))
    if marker is None or marker.pipeline_run != pipeline_run:
        print(f"stage {cfg.stage}: the stages before it did not run in this pipeline run; it opens a new trial")
        return None
    state = trial_state(root, store, marker.run_id, experiment_name)
    if state is None:
        print(f"stage {cfg.stage}: trial {marker.run_id} is not in {store.uri}; opening a new trial")
        return None
    if state.status != "FINISHED" or "FAILED" in state.components.values():
        print(f"stage {cfg.stage}: trial {state.name} ended {state.status}; opening a new trial")
        return None
    if not state.in_experiment or cfg.stage in state.components:
        return None
    return marker.run_id, state


def _open_trial(cfg: DictConfig, job: JobContext, writer: RunWriter, experiment_id: str) -> Trial:
    run_tags = {
        tags.TASK: cfg.task.name,
        tags.OBJECTIVE: cfg.task.objective.metric,
        tags.DIRECTION: objective_direction(cfg),
    }
    if job.sweep_id:
        run_tags[tags.SWEEP_ID] = job.sweep_id
        run_tags[tags.SWEEP_NAME] = job.sweep_name or ""
    stamped = f"{cfg.task.name}-{datetime.now():%Y%m%d-%H%M%S}"
    name = job.trial_name or claimed(Path(cfg.paths.root), "trials", stamped)
    return Trial.open(
        writer,
        experiment_id,
        name,
        run_tags,
        cfg.tracking.metric_buffer,
        tuple(cfg.task.curves),
        metric_flush_s=cfg.tracking.metric_flush_s,
    )


def open_recorded_trial(
    cfg: DictConfig, job: JobContext, writer: RunWriter, experiment_name: str, resolved: dict[str, Any]
) -> Trial:
    """A new trial with its provenance (config, git, versions, command) recorded; an error while recording goes
    on as it is, with the trial closed FAILED (else its journal stays open, and a sweep waits on it for ever)."""
    trial = _open_trial(cfg, job, writer, writer.experiment_id(experiment_name))
    try:
        _record_provenance(trial, cfg, job, resolved)
    except BaseException as error:
        trial.close(error)
        raise
    return trial


def _record_provenance(trial: Trial, cfg: DictConfig, job: JobContext, resolved: dict[str, Any]) -> None:
    skipped = {*NOT_PARAMS, *unselected_groups(resolved)}
    trial.log_params(flatten({k: v for k, v in resolved.items() if k not in skipped}))
    trial.set_tags(
        {
            **git_state(Path(cfg.paths.root), job.sweep_id),
            **package_versions(),
            "mlexp.seed": cfg.seed,
            "mlexp.command": command_line(),
            "mlexp.overrides": " ".join(job.overrides),
            **{f"{tags.CHOICE_PREFIX}{group}": option for group, option in job.choices.items() if option},
            **{f"paths.{key}": value for key, value in resolved["paths"].items()},
            "mlexp.stage": cfg.stage or "all",
            "mlexp.params_file": cfg.params_file or "",
        }
    )
    # OmegaConf.to_yaml's own dump of the container resolved above: the same text without resolving twice
    config_yaml = yaml.dump(
        resolved, Dumper=get_omega_conf_dumper(), default_flow_style=False, allow_unicode=True, sort_keys=False
    )
    trial.writer.log_text(trial.run, config_yaml, "config.yaml")
    trial.writer.log_text(trial.run, "\n".join(job.overrides) + "\n", "overrides.txt")
    trial.tracker.flush()  # params visible in the UI while the stages run


def _write_metrics(cfg: DictConfig, trial: Trial) -> dict[str, float]:
    """The task's headline metrics, as logged on the trial run, into reports/<task>/metrics.json.

    A DVC stage re-run alone logs only its own metrics: the values of the stages DVC kept
    (say, the AUC of an unchanged model) stay as the file had them.
    """
    logged = trial.logged_metrics()
    wanted = [cfg.task.objective.metric, *cfg.task.headline_metrics]
    path = Path(cfg.paths.reports) / "metrics.json"
    kept = _kept_metrics(path) if cfg.stage is not None else {}
    headline: dict[str, float] = {}
    for name in dict.fromkeys(wanted):
        if name in logged:
            headline[name] = float(logged[name])
        elif name in kept:
            headline[name] = float(kept[name])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(headline, indent=2) + "\n")
    return headline


def _kept_metrics(path: Path) -> dict[str, float]:
    """The metrics an earlier stage run wrote; none when the file is missing or broken (this run rewrites it)."""
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return kept if isinstance(kept, dict) else {}


def _check_before_trial(cfg: DictConfig, task: tasks.Task) -> None:
    """Refuse what can only fail later, before a trial is opened and stages run for nothing."""
    sagemaker_mirror.check_before_trial(bool(cfg.tracking.sagemaker_mirror))  # no AWS region or credentials
    if cfg.deploy.target == "sagemaker":  # no model to deploy, or no role/region/credentials/bucket: nothing runs
        from mlexp.sagemaker import endpoint

        endpoint.check(cfg, task)
    if cfg.deploy.target in ("registry", "sagemaker") and "alias" in cfg.deploy:
        _check_alias(cfg.deploy.alias)
    if cfg.deploy.target == "local" and cfg.deploy.get("source") == "champion" and cfg.stage in (None, "deploy"):
        _check_champion_exists(cfg)
    folders = [Path(cfg.paths[name]) for name in RUN_FOLDERS]
    for name, folder in zip(RUN_FOLDERS, folders, strict=True):
        # else the stage writing there fails after its work is done
        existing = next((path for path in (folder, *folder.parents) if path.exists()), folder)
        if existing.exists() and not existing.is_dir():
            what = "is a file" if existing == folder else f"lies under {existing}, which is a file"
            raise ConfigError(f"paths.{name}={folder} {what}, not a folder; point paths.{name} at a folder")
    if cfg.stage is None or cfg.stage not in task.stages:  # the runner's own deploy stage declares no inputs
        return

    def under(path: Path) -> str | None:
        return next((n for n, f in zip(RUN_FOLDERS, folders, strict=True) if path == f or f in path.parents), None)

    missing = [path for path in tasks.declared_inputs(task, cfg.stage, cfg) if under(path) and not path.exists()]
    if missing:
        read = list(dict.fromkeys(str(under(path)) for path in missing))
        written = {under(path) for path in tasks.declared_outputs(task, cfg.stage, cfg)}
        keys = " ".join(f"paths.{name}=<run folder>/{name}" for name in read)
        # a folder the stage also writes to would be the earlier run's, overwritten: a copy of it is
        also = [f"paths.{name}" for name in read if name in written]
        copy = f" (it writes into {' and '.join(also)} too: give a copy of the run's folder)" if also else ""
        raise ConfigError(
            f"stage={cfg.stage} reads {missing[0]}, which no earlier stage wrote there: run the pipeline with "
            f"`dvc repro` (its stages use data/<task>, models/<task>), or point this stage at an earlier run's "
            f"folder: {keys}{copy}"
        )


def _check_alias(alias: object) -> None:
    """MLflow's own rules for a registry alias, before training rather than when the model is registered after it.
    The registry step loads MLflow in this process anyway."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_model_alias_name, _validate_model_alias_name_reserved

    try:
        _validate_model_alias_name(None if alias is None else str(alias))
        _validate_model_alias_name_reserved(str(alias))
    except MlflowException as error:
        raise ConfigError(f"deploy.alias={alias!r}: {error.message} Give it a name such as champion") from None


def _check_champion_exists(cfg: DictConfig) -> None:
    """deploy=local serving the registry's champion: without one, a whole trial failed once it had trained. Asked of
    a SQLite store only (not created to ask it): a server or database is asked by the deploy stage."""
    from mlexp.serving.registered_name import NOT_REGISTERED, registered_name, registration_command
    from mlexp.tracking.store import sqlite_path

    store = TrackingStore.resolve(cfg.tracking.uri, Path(cfg.paths.root))
    db = sqlite_path(store.uri)
    if db is None:
        return
    name, alias = registered_name(cfg)
    if db.exists():
        from mlflow.exceptions import MlflowException

        try:
            store.client().get_model_version_by_alias(name, alias)
            return
        except MlflowException as error:
            if error.error_code not in NOT_REGISTERED:
                return
    raise ConfigError(
        f"deploy=local serves deploy.source=champion, and registered model {name!r} has no alias {alias!r} in "
        f"{store.uri} yet: register one first ({registration_command(cfg)}), or serve another "
        "model: deploy.source=trial|best|<trial run id>"
    )


def run(cfg: DictConfig, job: JobContext) -> TrialResult:
    """Run the trial; its objective value is what Hydra sweepers optimise."""
    resolved = resolved_config(cfg)
    task = tasks.get(cfg.task.name) if job.checked else check_config(cfg, job.choices)
    _check_before_trial(cfg, task)
    if cfg.compute.target == "sagemaker":  # the stages run in a training job; only this path loads the SDK
        from mlexp.sagemaker.training_job import run_training_job

        return run_training_job(cfg, job)
    store = TrackingStore.resolve(cfg.tracking.uri, Path(cfg.paths.root))
    experiment_name = cfg.tracking.experiment_name or cfg.task.name
    store.check_not_moved_early(experiment_name)
    pipeline_run = pipeline_run_id() if cfg.stage is not None else None
    continued = _continued_trial(cfg, task, store, experiment_name, pipeline_run)
    writer = record_writer(Path(cfg.paths.root), store, job.sweep_id or "")  # after: a refusal leaves no journal
    if continued is not None:
        trial = Trial.resume(
            writer,
            *continued,
            cfg.tracking.metric_buffer,
            tuple(cfg.task.curves),
            metric_flush_s=cfg.tracking.metric_flush_s,
        )
    else:
        trial = open_recorded_trial(cfg, job, writer, experiment_name, resolved)
    stages = stages_to_run(cfg, task)
    current = stages[0]
    try:
        with trial_threads(cfg.compute.num_threads):
            # after the trial opened: the writer process creates its runs while MXNet loads here
            seed_everything(
                cfg.seed,
                cfg.compute.num_threads,
                mxnet=task.loads_mxnet(stages),
                small_operators=task.small_mxnet_operators,
            )
            for current in stages:
                if current == SHARED_STAGE:
                    _run_or_reuse_preprocessing(cfg, task, trial)
                else:
                    _run_component(cfg, task, current, trial)
        if pipeline_run is not None:  # the stages DVC kept: linked to the components that made their outputs
            link_kept_stages(cfg, task, trial)
        headline = _finish(cfg, task, trial, stages)
        objective = headline.get(cfg.task.objective.metric, math.nan)
    except KeyboardInterrupt as interrupt:
        trial.close(interrupt)
        print(f"\ninterrupted: trial {trial.run_id} marked KILLED", file=sys.stderr)
        announce_killed(trial.run_id)
        raise
    except BaseException as error:
        trial.close(error)
        user_error = isinstance(error, MlexpError)
        text = str(error) if user_error else f"{type(error).__name__}: {error}"
        raise TrialFailed(f"stage {current!r} failed: {text}", trial.run_id, user_error) from error
    try:
        if job.sweep_id and pipeline_run is None:
            # a sweep's next trial need not wait for this one's records: the sweep waits for them all at its end
            trial.close(wait=False)
            # no id yet: the writer creates the run later (trial.run is the journal's `ref-…` name, never the store's)
            return TrialResult("", "", store.uri, objective, headline=headline)
        trial.close()
    except TrialKept as kept:
        if pipeline_run is not None:
            raise  # the pipeline's next stage joins this trial by its store id, which only the store gives
        return TrialResult("", "", store.uri, objective, kept=str(kept), headline=headline)
    experiment_id = trial.experiment_id
    if pipeline_run is not None:
        write_marker(
            marker_path(Path(cfg.paths.root), store.uri, experiment_name, task.name, pipeline_run),
            Marker(trial.run_id, pipeline_run),
        )
    return TrialResult(trial.run_id, experiment_id, store.uri, objective, headline=headline)


def _run_component(cfg: DictConfig, task: tasks.Task, stage: str, trial: Trial) -> str:
    """Run one stage as a component of the trial; returns its run as the trial's writer names it."""
    with trial.component(task.component_name(stage), stage) as tracker:
        _run_stage(cfg, task, stage, trial, tracker)
    return tracker.run


def _run_or_reuse_preprocessing(cfg: DictConfig, task: tasks.Task, trial: Trial) -> None:
    """Pre-processing runs once per (data, config, code): later trials reuse and link to its component, and repeat
    the warnings it printed."""
    with shared_preprocessing(cfg, task) as shared:
        published = shared.published_run(trial) if shared else None
        if shared is not None and published is not None:
            shared.reuse(cfg, trial, published)
            return
        if shared is None:
            _run_component(cfg, task, SHARED_STAGE, trial)
            return
        with warnings_kept() as printed:
            component = _run_component(cfg, task, SHARED_STAGE, trial)
        shared.publish(cfg, trial, component, dict(trial.metrics), printed)


def _finish(cfg: DictConfig, task: tasks.Task, trial: Trial, stages: list[str]) -> dict[str, float]:
    """After the task's last stage has run (alone under DVC, or in a full run), report the headline metrics; none
    before it."""
    if all_stages(task)[-2] not in stages:
        return {}
    return _write_metrics(cfg, trial)
