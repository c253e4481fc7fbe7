"""`mlexp --help`: usage, tasks, config groups and the composed config.

Printed by mlexp rather than Hydra's help, which formats every config group twice
(seconds) and lists Hydra's internal schema groups.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mlexp import tasks
from mlexp.config.bounds import out_of_bounds
from mlexp.config.failed_composition import compose_or_explain
from mlexp.config.group_options import conf_file, config_groups
from mlexp.config.overrides import check_override_keys
from mlexp.config.task_groups import TASK_GROUPS

USAGE = """mlexp: declarative ML experiments (Hydra config, MLflow tracking, DVC pipelines)

  Run a task:        mlexp task=<task> [key=value ...]
  Sweep:             mlexp -m task=<task> model.<key>=a,b [sweep=grid|random|tpe]
  One stage (DVC):   mlexp task=<task> stage=<stage>   (each task's stages are listed below)
  Print config:      mlexp --cfg job task=<task>
  Compare trials:    mlexp compare task=<task> | experiment=<name> | sweep=<sweep name or id> [tracking=server]
  Delete:            mlexp delete experiment=<name> [--force]   (trials, artifacts, sweeps, registered versions)
  Compile params:    mlexp params [--check]   (params.yaml for DVC, from conf/)
  DVC pipelines:     mlexp pipelines [--check] (dvc.yaml files, from the tasks' stage declarations)
  Moved project:     mlexp relocate           (point mlflow.db at this folder's mlartifacts/)
  Raw data copy:     mlexp data <dataset> <output file>
  Summary:           mlexp summary            (headline metrics of every task's DVC pipeline)
  Store kept trials: mlexp sync [--discard <store>]   (records a killed trial left in .mlexp/journal)
  Service API keys:  mlexp keys create <name> | list | revoke <name>   (deploy=local services)
  Human review:      mlexp review add <name> | list | export | ...     (text_classification's service)
  SageMaker:         mlexp predict <task or endpoint> [--file request.json] | mlexp undeploy <task or endpoint>
  A command's help:  mlexp <command> --help
  Versions:          mlexp --version
  Hydra's options:   mlexp --hydra-help"""


def _task_lines(conf_dir: Path) -> list[str]:
    """Each task in conf/task/ with its stages (from the registry, no stage module imported) and description."""
    registered = tasks.load_all()
    lines = []
    for path in sorted((conf_dir / "task").glob("*.yaml")):
        task = registered.get(path.stem)
        if task is None:
            stages = f"(no package registers this task: install it, entry point group {tasks.ENTRY_POINT_GROUP})"
        else:
            # every task can deploy (deploy=registry at least); it runs only when deploy is not none
            deploys = "deploy" in task.stages or task.has_registered_model()
            stages = " → ".join(s for s in task.stages if s != "deploy") + (" [→ deploy]" if deploys else "")
        description = ((conf_file(path) or {}).get("task") or {}).get("description", "")
        lines.append(f"  {path.stem:<22} {stages}")
        if description:
            lines.append(f"  {'':<22} {description}")
    return lines


def _group_lines(conf_dir: Path) -> list[str]:
    lines = []
    for group, options in config_groups(conf_dir).items():
        if not options:  # a folder of data files beside conf/'s groups (recommendation_schemas), not a group
            continue
        owners = TASK_GROUPS.get(group)
        noun = "task" if owners and len(owners) == 1 else "tasks"
        only = f"   ({noun} {', '.join(sorted(owners))} only)" if owners else ""
        lines.append(f"  {group}: {', '.join(options)}{only}")
    return lines


def _range_lines(cfg: DictConfig) -> list[str]:
    """The task's declared ranges (Task.bounds) of the keys this composition has, with their values."""
    task = tasks.load_all().get(cfg.task.name)
    absent = object()
    lines = []
    for key, bound in sorted((task.bounds if task else {}).items()):
        value = OmegaConf.select(cfg, key, default=absent, throw_on_resolution_failure=False)
        if value is not absent:
            outside = "  <- out of range: refused" if out_of_bounds(key, value, bound) else ""
            lines.append(f"  {key}: {bound}   (now {'null' if value is None else value}){outside}")
    return lines or ["  (none declared)"]


def _constraint_lines(cfg: DictConfig) -> list[str]:
    """The task's declared rules across keys (Task.constraints) that this composition's keys take part in, in words,
    with the values they now have."""
    task = tasks.load_all().get(cfg.task.name)
    lines = []
    for constraint in task.constraints if task else ():
        values = constraint.values(cfg)
        if values is None:
            continue
        if constraint.asks_store:  # the help asks no server, which may never answer
            verdict = "  (judged against the tracking store when a trial starts)"
        else:
            verdict = "  <- broken: refused" if constraint.refusal(values) else ""
        lines.append(f"  {constraint.rule}   (now {constraint.shown(values)}){verdict}")
    return lines or ["  (none declared)"]


def help_text(conf_dir: Path, overrides: list[str]) -> str:
    """The overview (commands, tasks, config groups); with overrides (`task=<task>` …) also that composition's
    config, ranges and rules, which alone would push the overview off a terminal's screen."""
    check_override_keys(conf_dir, overrides)
    overview = [
        USAGE,
        "",
        "Tasks (task=<name>) and their stages ([→ deploy]: when deploy is not none):",
        *_task_lines(conf_dir),
        "",
        "Config groups (group=option):",
        *_group_lines(conf_dir),
        "",
    ]
    if not overrides:
        return "\n".join(
            [
                *overview,
                "A task's config, its ranges and its rules across keys: mlexp --help task=<task> [key=value ...]",
            ]
        )
    # a value its key cannot take (model.epochs=abc): the line a run gives, not Hydra's traceback
    cfg = compose_or_explain(conf_dir, overrides, sweep_values=True)
    return "\n".join(
        [
            *overview,
            f"== Config (task={cfg.task.name}) ==",
            OmegaConf.to_yaml(cfg),
            f"== Ranges (task={cfg.task.name}): a value outside one is refused before a trial opens ==",
            *_range_lines(cfg),
            "",
            f"== Rules across keys (task={cfg.task.name}): a config breaking one is refused before a trial opens ==",
            *_constraint_lines(cfg),
            "",
            "Override any key with key=value; `--info defaults` shows what a composition pulled in.",
        ]
    )
