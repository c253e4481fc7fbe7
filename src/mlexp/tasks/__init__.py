"""The task registry: tasks are found by the name used in `task=<name>`."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from mlexp.errors import ConfigError

if TYPE_CHECKING:
    from mlexp.tracking.tracker import Tracker

Stage = Callable[[DictConfig, "Tracker"], None]

# The SageMaker Experiments post names trial components like this.
COMPONENT_NAMES = {
    "prepare": "Pre-processing",
    "train": "Training",
    "evaluate": "Evaluation",
    "deploy": "Deployment",
}


@dataclass(frozen=True)
class Task:
    """A task's stages, run in order; each is a plain function of (cfg, tracker).

    Stages are named, and imported from `stages_module` only when a trial runs, so
    `mlexp --help` and config validation do not pay for loading MXNet or MLflow.
    """

    name: str
    stages_module: str
    stages: tuple[str, ...]
    # component names for stages beyond the standard four, e.g. {"incentives": "Incentive analysis"}
    component_names: dict[str, str] = field(default_factory=dict)
    # the runner seeds MXNet's generator (and pays for importing it) only for tasks that use it
    uses_mxnet: bool = False

    def stage(self, name: str) -> Stage:
        function: Stage = getattr(importlib.import_module(self.stages_module), name)
        return function

    def component_name(self, stage: str) -> str:
        names = {**COMPONENT_NAMES, **self.component_names}
        return names.get(stage, stage.replace("_", " ").capitalize())


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    TASKS[task.name] = task
    return task


def load_all() -> dict[str, Task]:
    """Import every task package so each registers itself."""
    for module in pkgutil.iter_modules(__path__):
        if module.ispkg:
            importlib.import_module(f"{__name__}.{module.name}")
    return TASKS


def get(name: str) -> Task:
    tasks = load_all()
    if name not in tasks:
        raise ConfigError(f"task={name!r} is not a registered task; choose one of: {', '.join(sorted(tasks))}")
    return tasks[name]
