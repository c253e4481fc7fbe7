"""Every task's declared ranges against its own conf/: each option's defaults fall inside them, and each range names
a key some option of the task has (a misspelt key would never be checked)."""

from __future__ import annotations

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import REPO
from mlexp import tasks
from mlexp.config import make_composable
from mlexp.config.bounds import check_bounds

TASKS = sorted(path.stem for path in (REPO / "conf" / "task").glob("*.yaml"))


def _options(task: str) -> list[list[str]]:
    """The task's own defaults, then each option conf/task/<task>.yaml lets each of its groups take."""
    choices = yaml.safe_load((REPO / "conf" / "task" / f"{task}.yaml").read_text())["task"].get("choices") or {}
    return [[]] + [[f"{group}={option}"] for group, options in choices.items() for option in options]


@pytest.mark.parametrize("task", TASKS)
def test_every_option_passes_its_bounds_and_every_bound_names_a_key_of_the_task(task):
    make_composable()
    bounds = tasks.get(task).bounds
    assert bounds, f"{task} declares no ranges"
    absent = object()
    found: set[str] = set()
    for overrides in _options(task):
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=[f"task={task}", *overrides])
        check_bounds(cfg, bounds)
        found |= {key for key in bounds if OmegaConf.select(cfg, key, default=absent) is not absent}
    assert sorted(set(bounds) - found) == []
