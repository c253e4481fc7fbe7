"""One trial: validate → seed → open trial → run the task's stages → close the trial."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mlexp import tasks
from mlexp.config.validate import check_choices
from mlexp.errors import ConfigError, MlexpError
from mlexp.seeding import seed_everything
from mlexp.tracking import Tracker, TrackingStore, Trial, tags
from mlexp.tracking.provenance import command_line, git_state, package_versions

# config that describes the machine or how the run was launched, not the experiment: kept as tags
NOT_PARAMS = ("paths", "hydra", "stage", "params_file")


@dataclass(frozen=True)
class JobContext:
    """What the runner needs to know about the Hydra job it runs in."""

    choices: dict[str, str | None]
    overrides: list[str]
    sweep_run_id: str | None = None
    sweep_id: str | None = None
    trial_name: str | None = None


class TrialFailed(MlexpError):
    """A stage raised; the trial is stored as FAILED with the error."""

    def __init__(self, message: str, run_id: str, user_error: bool) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.user_error = user_error


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: node}


def all_stages(task: tasks.Task) -> list[str]:
    """The task's stages in order; every task can deploy (to the registry at least)."""
    return [*(s for s in task.stages if s != "deploy"), "deploy"]


def stages_to_run(cfg: DictConfig, task: tasks.Task) -> list[str]:
    if cfg.stage is not None:
        return [cfg.stage]
    names = all_stages(task)
    return names if cfg.deploy.target != "none" else names[:-1]


def _run_stage(cfg: DictConfig, task: tasks.Task, stage: str, trial: Trial, tracker: Tracker) -> None:
    if stage in task.stages:
        task.stage(stage)(cfg, tracker)
        return
    if cfg.deploy.target == "registry":  # a task without its own deploy stage gets the registry
        from mlexp.serving import registry

        registry.deploy(cfg, tracker, dict(trial.client.get_run(trial.run_id).data.metrics))
        return
    raise ConfigError(f"deploy={cfg.deploy.target!r} is not available for task {cfg.task.name!r}; use registry")


def _marker(cfg: DictConfig, stage: str) -> Path:
    return Path(cfg.paths.root) / ".mlexp" / "trials" / cfg.task.name / f"{stage}.json"


def _open_trial(cfg: DictConfig, task: tasks.Task, job: JobContext, store: TrackingStore) -> tuple[Trial, bool]:
    """Open a new trial, or (for one DVC stage) continue the trial of the stage before it."""
    client = store.client()
    experiment_id = store.experiment_id(cfg.tracking.experiment_name or cfg.task.name)
    if cfg.stage is not None:
        names = all_stages(task)
        previous = names[names.index(cfg.stage) - 1] if names.index(cfg.stage) > 0 else None
        marker = _marker(cfg, previous) if previous else None
        if marker is not None and marker.exists():
            run_id = json.loads(marker.read_text())["run_id"]
            trial = Trial.resume(client, run_id, cfg.tracking.metric_buffer, tuple(cfg.task.curves))
            if cfg.stage not in trial.component_stages():
                return trial, False
            trial.close()
    run_tags = {
        tags.TASK: cfg.task.name,
        tags.OBJECTIVE: cfg.task.objective.metric,
        tags.DIRECTION: str(getattr(cfg.task.objective.direction, "value", cfg.task.objective.direction)),
    }
    if job.sweep_run_id:
        run_tags[tags.MLFLOW_PARENT_RUN_ID] = job.sweep_run_id
    if job.sweep_id:
        run_tags[tags.SWEEP_ID] = job.sweep_id
    name = job.trial_name or f"{cfg.task.name}-{datetime.now():%Y%m%d-%H%M%S}"
    return Trial.open(client, experiment_id, name, run_tags, cfg.tracking.metric_buffer, tuple(cfg.task.curves)), True


def _record_provenance(trial: Trial, cfg: DictConfig, job: JobContext) -> None:
    resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert isinstance(resolved, dict)
    trial.log_params(flatten({k: v for k, v in resolved.items() if k not in NOT_PARAMS}))
    trial.set_tags(
        {
            **git_state(Path(cfg.paths.root)),
            **package_versions(),
            "mlexp.seed": cfg.seed,
            "mlexp.command": command_line(),
            "mlexp.overrides": " ".join(job.overrides),
            **{f"mlexp.choice.{group}": option for group, option in job.choices.items() if option},
            **{f"paths.{key}": value for key, value in resolved["paths"].items()},
            "mlexp.stage": cfg.stage or "all",
            "mlexp.params_file": cfg.params_file or "",
        }
    )
    trial.client.log_text(trial.run_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    trial.client.log_text(trial.run_id, "\n".join(job.overrides) + "\n", "overrides.txt")
    trial.tracker.flush()  # params visible in the UI while the stages run


def _write_metrics(cfg: DictConfig, trial: Trial) -> dict[str, float]:
    """The task's headline metrics, as logged on the trial run, into reports/<task>/metrics.json.

    A DVC stage re-run alone logs only its own metrics: the values of the stages DVC kept
    (say, the AUC of an unchanged model) stay as the file had them.
    """
    logged = trial.client.get_run(trial.run_id).data.metrics
    wanted = [cfg.task.objective.metric, *cfg.task.headline_metrics]
    path = Path(cfg.paths.reports) / "metrics.json"
    kept = json.loads(path.read_text()) if cfg.stage is not None and path.exists() else {}
    headline: dict[str, float] = {}
    for name in dict.fromkeys(wanted):
        if name in logged:
            headline[name] = float(logged[name])
        elif name in kept:
            headline[name] = float(kept[name])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(headline, indent=2) + "\n")
    return headline


def run(cfg: DictConfig, job: JobContext) -> float:
    """Run the trial and return its objective value (what Hydra sweepers optimise)."""
    task = tasks.get(cfg.task.name)
    check_choices(cfg, job.choices, all_stages(task))
    seed_everything(cfg.seed, cfg.compute.num_threads, mxnet=task.uses_mxnet)
    store = TrackingStore.resolve(cfg.tracking.uri, Path(cfg.paths.root))
    trial, is_new = _open_trial(cfg, task, job, store)
    if is_new:
        _record_provenance(trial, cfg, job)
    stages = stages_to_run(cfg, task)
    current = stages[0]
    try:
        for current in stages:
            with trial.component(task.component_name(current), current) as tracker:
                _run_stage(cfg, task, current, trial, tracker)
        objective = _finish(cfg, task, trial, stages)
    except BaseException as error:
        trial.close(error)
        user_error = isinstance(error, MlexpError)
        text = str(error) if user_error else f"{type(error).__name__}: {error}"
        raise TrialFailed(f"stage {current!r} failed: {text}", trial.run_id, user_error) from error
    trial.close()
    if cfg.stage is not None:
        marker = _marker(cfg, cfg.stage)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"run_id": trial.run_id}) + "\n")
    return objective


def _finish(cfg: DictConfig, task: tasks.Task, trial: Trial, stages: list[str]) -> float:
    """After the task's last stage has run (alone under DVC, or in a full run), report the headline metrics."""
    if all_stages(task)[-2] not in stages:
        return math.nan
    headline = _write_metrics(cfg, trial)
    return headline.get(cfg.task.objective.metric, math.nan)
