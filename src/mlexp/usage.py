"""`mlexp --help`: usage, tasks, config groups and the composed config.

Printed by mlexp rather than Hydra's help, which formats every config group twice
(seconds) and lists Hydra's internal schema groups.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mlexp.config.overrides import config_groups

USAGE = """mlexp: declarative ML experiments (Hydra config, MLflow tracking, DVC pipelines)

  Run a task:        mlexp task=<task> [key=value ...]
  Sweep:             mlexp -m task=<task> model.<key>=a,b [sweep=grid|random|tpe]
  One stage (DVC):   mlexp task=<task> stage=<prepare|train|evaluate|deploy>
  Print config:      mlexp --cfg job task=<task>
  Compare trials:    mlexp compare task=<task>
  Compile params:    mlexp params [--check]   (params.yaml for DVC, from conf/)
  Raw data copy:     mlexp data <dataset> <output file>
  Summary:           mlexp summary            (headline metrics of every task)
  Hydra's options:   mlexp --hydra-help"""


def _task_descriptions(conf_dir: Path) -> list[str]:
    lines = []
    for path in sorted((conf_dir / "task").glob("*.yaml")):
        task = (yaml.safe_load(path.read_text()) or {}).get("task", {})
        lines.append(f"  {path.stem:<22} {task.get('description', '')}")
    return lines


def help_text(conf_dir: Path, overrides: list[str]) -> str:
    groups = [f"  {group}: {', '.join(options)}" for group, options in config_groups(conf_dir).items()]
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return "\n".join(
        [
            USAGE,
            "",
            "Tasks (task=<name>):",
            *_task_descriptions(conf_dir),
            "",
            "Config groups (group=option):",
            *groups,
            "",
            f"== Config (task={cfg.task.name}) ==",
            OmegaConf.to_yaml(cfg),
            "Override any key with key=value; `--info defaults` shows what a composition pulled in.",
        ]
    )
