"""Checks Hydra cannot make alone: that the chosen group options, stage and compute target fit the task, and that
every `${...}` resolves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from mlexp.config.task_groups import foreign_group
from mlexp.errors import ConfigError, a_or_an, did_you_mean, mlexp_error_behind

# where a trial can run: this machine, or a SageMaker training job (mlexp.sagemaker.training_job)
COMPUTE_TARGETS = ("local", "sagemaker")


def check_choices(cfg: DictConfig, choices: Mapping[str, str | None], stages: list[str]) -> None:
    """Fail with the valid options when a group option, stage or compute target does not fit the task."""
    task = cfg.task.name
    for group, chosen in choices.items():
        error = foreign_group(group, chosen, task) if chosen is not None else None
        if error is not None:
            raise error
    for group, allowed in cfg.task.choices.items():
        chosen = choices.get(group)
        if chosen is not None and chosen not in allowed:
            raise ConfigError(
                f"{group}={chosen!r} is not {a_or_an(group)} option of task {task!r}; "
                f"{did_you_mean(chosen, sorted(allowed))}choose one of: {', '.join(sorted(allowed))}"
            )
    if cfg.stage is not None and cfg.stage not in stages:
        raise ConfigError(
            f"stage={cfg.stage!r} is not a stage of task {task!r}; {did_you_mean(cfg.stage, stages)}"
            f"choose one of: {', '.join(stages)}"
        )
    check_compute(cfg)


def check_compute(cfg: DictConfig) -> None:
    """Refuse a compute target mlexp cannot run yet, rather than run locally while the config says otherwise."""
    target = cfg.compute.target
    if target not in COMPUTE_TARGETS:
        raise ConfigError(
            f"compute.target={target!r} is not a compute target: choose compute=local (this machine) "
            f"or compute=sagemaker (a SageMaker training job)"
        )


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The config with every `${...}` resolved. One that cannot resolve (no such key, a wrong type, an unset
    environment variable) is a wrong config, refused in one line before a trial opens; a refusal of one of
    mlexp's resolvers goes on as it is (its own line)."""
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    except InterpolationResolutionError as error:
        if mlexp_error_behind(error) is not None:
            raise
        raise unresolvable(error) from error
    assert isinstance(resolved, dict)
    return {str(key): value for key, value in resolved.items()}


def unresolvable(error: InterpolationResolutionError) -> ConfigError:
    """The one line for a `${...}` that cannot resolve: the key, OmegaConf's reason, the fix."""
    reason = str(error).strip().splitlines()[0]
    return ConfigError(f"{error.full_key}: {reason}; fix the ${{...}} it uses")
