"""Sweep configurations refused before any trial starts, each with the fix."""

from __future__ import annotations

import copy
import re

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mlexp.config.overrides import command_overrides
from mlexp.config.schema import objective_direction
from mlexp.config.validate import check_compute
from mlexp.errors import ConfigError


def _sweep_overrides(overrides: list[str]) -> list[str]:
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [o.key_or_group for o in parsed if o.is_sweep_override()]


def check_sweep_values(config: DictConfig) -> None:
    """Each listed value of a swept key must fit the key (`model.l1_size=8,abc`): one line now, not Hydra's report
    after the sweep's record has opened. Only plain `key=a,b` sweeps of keys the config has are checked, against
    the config every job shares: not group choices, keys under a swept group (or any, when the task is swept),
    `+`/`++`/`~` overrides, keys the config lacks (a wrong key was refused before, in mlexp.config.overrides), nor
    `${...}` values (they may name another swept key, which only each job's config holds)."""
    parser = OverridesParser.create()
    overrides = parser.parse_overrides(command_overrides(config.hydra))
    groups = set(config.hydra.runtime.choices)
    swept_groups = {o.key_or_group for o in overrides if o.is_sweep_override() and o.key_or_group in groups}
    if "task" in swept_groups:
        return  # each task composes its own config
    absent = object()
    for override in overrides:
        key = override.key_or_group
        plain = override.type == OverrideType.CHANGE and override.package is None
        if not (plain and override.is_discrete_sweep()) or key.startswith("hydra") or key in groups or "/" in key:
            continue
        if key.split(".")[0] in swept_groups:
            continue
        if OmegaConf.select(config, key, default=absent, throw_on_resolution_failure=False) is absent:
            continue
        trial = copy.deepcopy(config)  # one per key: each value replaces the one before
        for value in override.sweep_string_iterator():
            typed = re.sub(r"\\(.)", r"\1", value)  # as typed: Hydra escapes ${…} and the like in sweep values
            if "${" in typed:
                continue
            try:
                ConfigLoaderImpl._apply_overrides_to_config(parser.parse_overrides([f"{key}={value}"]), trial)
            except (HydraException, OmegaConfBaseException) as error:
                cause = str(error.__cause__ or error).strip().splitlines()[0]
                raise ConfigError(
                    f"{override.input_line}: the value {typed} does not fit {key} ({cause}); "
                    f"give {key} values it accepts"
                ) from error


def check_sweep(config: DictConfig) -> None:
    """Refuse combinations that would waste or block a sweep: say which and what to do instead."""
    task = config.task.name
    overrides = command_overrides(config.hydra)
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
    check_sweep_values(config)
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
