"""Checks Hydra cannot make alone: that the chosen group options and stage fit the task."""

from __future__ import annotations

from collections.abc import Mapping

from omegaconf import DictConfig

from mlexp.errors import ConfigError

# groups every task has; the others (engine, optimizer, ...) belong to the tasks that list them
SHARED_GROUPS = ("task", "dataset", "preprocessing", "model", "sweep", "compute", "deploy", "tracking")


def check_choices(cfg: DictConfig, choices: Mapping[str, str | None], stages: list[str]) -> None:
    """Fail with the valid options when a group option or stage does not belong to the task."""
    task = cfg.task.name
    for group, chosen in choices.items():
        if chosen is not None and group not in SHARED_GROUPS and group not in cfg.task.choices:
            raise ConfigError(f"task {task!r} has no {group} options; remove {group}={chosen}")
    for group, allowed in cfg.task.choices.items():
        chosen = choices.get(group)
        if chosen is not None and chosen not in allowed:
            raise ConfigError(
                f"{group}={chosen!r} is not a {group} option of task {task!r}; "
                f"choose one of: {', '.join(sorted(allowed))}"
            )
    if cfg.stage is not None and cfg.stage not in stages:
        raise ConfigError(f"stage={cfg.stage!r} is not a stage of task {task!r}; choose one of: {', '.join(stages)}")
