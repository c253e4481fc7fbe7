"""Sweep configurations refused before any trial starts, each with the fix."""

from __future__ import annotations

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from mlexp.config.schema import objective_direction
from mlexp.config.validate import check_compute
from mlexp.errors import ConfigError


def _sweep_overrides(overrides: list[str]) -> list[str]:
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [o.key_or_group for o in parsed if o.is_sweep_override()]


def check_sweep(config: DictConfig) -> None:
    """Refuse combinations that would waste or block a sweep: say which and what to do instead."""
    task = config.task.name
    overrides = list(config.hydra.overrides.task)
    sweeper = str(config.hydra.sweeper.get("_target_", ""))
    if config.deploy.target == "registry":
        from mlexp import tasks

        tasks.get(task).check_registrable()
    if config.deploy.target == "local":
        from mlexp import tasks

        serve = (
            f"mlexp task={task} stage=deploy deploy=local deploy.source=best"
            if "deploy" in tasks.get(task).stages
            else "register it with deploy=registry and serve it with `mlflow models serve`"
        )
        raise ConfigError(
            f"deploy=local serves one model until stopped and would block the sweep; sweep without it, then serve "
            f"the best trial: {serve}"
        )
    if config.deploy.target == "sagemaker":
        # parallel trials would race on one endpoint's UpdateEndpoint, which SageMaker refuses while one runs
        raise ConfigError(
            f"deploy=sagemaker updates one endpoint and would race between the sweep's trials; sweep with "
            f"deploy=registry, then deploy the champion: mlexp task={task} stage=deploy deploy=sagemaker"
        )
    check_compute(config)
    if "optuna" in sweeper.lower() and objective_direction(config) == "report":
        raise ConfigError(
            f"task {task}'s objective {config.task.objective.metric} is reporting-only (direction: report): a search "
            "has nothing to optimise; run a grid (`-m` with comma-separated values, or the task's own sweep)"
        )
    if "optuna" in sweeper.lower():
        if not config.hydra.sweeper.get("params") and not _sweep_overrides(overrides):
            raise ConfigError(
                f"sweep={config.sweep.name} has no search space, so every trial would be the same; give one, "
                "e.g. 'model.learning_rate=tag(log, interval(0.001, 0.1))' 'model.l1_size=choice(16, 32, 64)'"
            )
        return
    if any(o.split("=", 1)[0].lstrip("+~") == "sweep.max_jobs" for o in overrides):
        raise ConfigError(
            "sweep.max_jobs caps random and Bayesian searches; a grid runs every combination of its values. "
            "Drop sweep.max_jobs, or search with sweep=random or sweep=tpe"
        )
