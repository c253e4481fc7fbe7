"""Sweep configurations refused before any trial starts, each with the fix."""

from __future__ import annotations

import copy
import shlex
from typing import Any

from hydra import compose
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, Override, OverrideType, RangeSweep
from hydra.core.utils import env_override
from hydra.errors import HydraException
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException

from mlexp import tasks
from mlexp.config.bounds import check_bounds, within
from mlexp.config.group_options import config_groups
from mlexp.config.known_keys import check_key
from mlexp.config.overrides import command_overrides
from mlexp.config.schema import objective_direction
from mlexp.config.search_path import initialized
from mlexp.config.validate import check_compute, check_model_name, how_to_allow, unresolvable_refusal
from mlexp.config.value_checks import misfit
from mlexp.errors import ConfigError, a_or_an, did_you_mean, first_few
from mlexp.paths import NoProject, project_root
from mlexp.sweeps import SWEEP_ENV
from mlexp.sweeps.search_space import (
    VALUE_PREFIXES,
    Swept,
    as_typed,
    check_search_space,
    listed,
    plain_key,
    sweeper_kind,
    swept_overrides,
)
from mlexp.sweeps.sweep_size import range_ends
from mlexp.sweeps.swept_rules import check_swept_constraints


def check_sweep_values(config: DictConfig) -> None:
    """Each listed value of a swept key must fit the key (`model.l1_size=8,abc`): one line now, not Hydra's report
    after the sweep's record has opened. Checked against the config every job shares: `key=a,b`, `+key=a,b` and
    `++key=a,b` sweeps, on the command line or in the sweep's `hydra.sweeper.params`. A `+` must add a key the
    config lacks (or holds as null); a sweep file's key must be one this task's config has (the command line's
    keys were checked before, in mlexp.config.overrides). Not checked: group choices, keys under a swept group (or
    any, when the task is swept), `~` overrides, packages, nor `${...}` values (they may name another swept key,
    which only each job's config holds)."""
    parser = OverridesParser.create()
    swept = swept_overrides(config, parser)
    groups = set(config.hydra.runtime.choices)
    swept_groups = {s.override.key_or_group for s in swept if s.override.key_or_group in groups}
    if "task" in swept_groups:
        return  # each task composes its own config
    absent = object()
    for entry in swept:
        override, key = entry.override, entry.override.key_or_group
        if (
            not (plain_key(override, groups, adding=True) and override.is_discrete_sweep())
            or key.split(".")[0] in swept_groups
        ):
            continue
        search = override.value()
        values = listed(override)
        if values is None and isinstance(search, RangeSweep):
            values = range_ends(search)  # too long to try each: its smallest and largest values
        if values is None:
            continue
        exists = OmegaConf.select(config, key, default=absent, throw_on_resolution_failure=False) is not absent
        if not exists:
            _check_file_key(entry, config)
            continue  # `+key`: Hydra adds it, any value
        # the key's own range, and its items' (`model.figure_size.0` of a swept `model.figure_size=[0,12],[12,12]`)
        bounds = {k: b for k, b in tasks.get(config.task.name).bounds.items() if within(k, {key})}
        trial = copy.deepcopy(config)  # one per key: another key's values (a parent's null) must not be in the way
        # Hydra's `+` adds to a key that is null (else only a dict or list value, merged)
        taken = override.is_add() and OmegaConf.select(config, key, throw_on_resolution_failure=False) is not None
        line, prefix = override.input_line or key, VALUE_PREFIXES[override.type]
        for value in values:
            typed = as_typed(value)
            if "${" in typed:
                continue
            if override.is_add():  # `+` adds to a null key once: each value to a copy of its own
                trial = copy.deepcopy(config)
            try:
                ConfigLoaderImpl._apply_overrides_to_config(parser.parse_overrides([f"{prefix}{key}={value}"]), trial)
            except (HydraException, OmegaConfBaseException) as error:
                if taken:
                    raise ConfigError(
                        f"{entry.where()}{line}: {key} is in the config already, so + cannot add it; sweep it "
                        f"without the +: {line.lstrip('+')}"
                    ) from error
                raise misfit(f"{entry.where()}{line}", key, typed, error, values="values") from error
            try:
                check_bounds(trial, bounds)
            except ConfigError as refused:
                raise ConfigError(f"{entry.where()}{line}: {refused}") from None


def _check_file_key(entry: Swept, config: DictConfig) -> None:
    """A key of the sweep file's search space that this task's config lacks: the file was written for another task."""
    if entry.sweep_file is None or entry.override.type != OverrideType.CHANGE:
        return  # the command line's keys were checked before the sweep began; `+`/`++` adds the key
    task = config.task.name
    try:
        check_key(config, entry.override.key_or_group, addable=False)
    except ConfigError as error:
        raise ConfigError(
            f"{entry.where()}{error}; sweep={entry.sweep_file} searches keys task {task} does not have: choose "
            f"a sweep made for task {task}, or give the search on the command line"
        ) from None


def _literal(override: Override) -> bool:
    """Whether every value the override gives is a plain value: no `${...}`, dict or list, which could add a key
    or change what another `${...}` names."""
    if override.is_sweep_override() and not override.is_choice_sweep():
        return True  # an interval or a range: numbers (a long range is not listed)
    values = listed(override) if override.is_sweep_override() else [str(override.value())]
    if values is None:
        return False  # a glob: a group's options
    return all("${" not in as_typed(v) and not v.lstrip().startswith(("{", "[")) for v in values)


def _first_unresolvable(node: DictConfig | ListConfig) -> ConfigError | None:
    """The refusal of the first `${...}` under `node` that resolves nowhere, every value looked at (not only up to the
    first error of any kind, which may be a job's to judge)."""
    keys: list[Any] = list(node.keys()) if isinstance(node, DictConfig) else list(range(len(node)))
    for key in keys:
        if OmegaConf.is_missing(node, key):
            continue
        try:
            value = node[key]
        except InterpolationResolutionError as error:
            refusal = unresolvable_refusal(error)
            if refusal is not None:
                return refusal
            continue
        # an alias of another node is walked where that node is (through the alias, a cycle would never end)
        if isinstance(value, (DictConfig, ListConfig)) and not OmegaConf.is_interpolation(node, key):
            found = _first_unresolvable(value)
            if found is not None:
                return found
    return None


def check_shared_interpolations(config: DictConfig) -> None:
    """A `${...}` that resolves nowhere in a key no job changes would fail every job, each in its own line after the
    sweep's record opened: refuse it now, in the line a single run gives. Judged only when every swept override is a
    plain value of a key (a group choice, `+`/`++`/`~`, or a `${...}`, dict or list value may add or change what
    it names), with the swept keys unset (what reads one is each job's to judge) and the environment a job gets
    (hydra.job.env_set, the thread variables); a type error or a refusal of one of mlexp's resolvers is left to
    the jobs."""
    from mlexp.sweeps.workers import thread_variables  # only when a sweep starts: a single run never needs it

    swept = [s.override for s in swept_overrides(config, OverridesParser.create())]
    groups = set(config.hydra.runtime.choices)
    if not all(plain_key(o, groups) and _literal(o) for o in swept):
        return
    shared = OmegaConf.masked_copy(config, [str(key) for key in config if key != "hydra"])  # as a job's, no hydra
    try:
        for override in swept:
            OmegaConf.update(shared, override.key_or_group, MISSING, merge=False)
        env_set = {str(k): str(v) for k, v in (config.hydra.job.get("env_set") or {}).items()}
    except OmegaConfBaseException:
        return  # a swept key this cannot unset, or an env_set that does not resolve: the jobs judge
    try:
        threads = thread_variables(config)
    except OmegaConfBaseException:
        threads = {}  # a ${...} in compute.num_threads or the job count: the walk names it
    # what a job's environment has and this process has not yet: the sweep's own variables (set when its record
    # opens; any value resolves), the thread share, and hydra.job.env_set, which Hydra applies last
    with env_override({**dict.fromkeys(SWEEP_ENV, ""), **threads, **env_set}):
        refusal = _first_unresolvable(shared)
    if refusal is not None:
        raise refusal


def check_shared_bounds(config: DictConfig) -> None:
    """A value no job changes, out of its key's range (`model.epochs=-1` beside `model.l1_size=8,16`), would fail
    every job: one line now. Swept keys are checked value by value (check_sweep_values, check_search_space)."""
    swept = {entry.override.key_or_group for entry in swept_overrides(config, OverridesParser.create())}
    if "task" in swept:
        return  # each task composes its own config
    bounds = tasks.get(config.task.name).bounds
    check_bounds(config, {key: bound for key, bound in bounds.items() if not within(key, swept)})


def check_swept_choices(config: DictConfig) -> None:
    """A sweep runs one task, and each listed option of a swept group must be one of that task's (`model=a,b`):
    refused now, not as a failed job after the sweep's record has opened."""
    groups = set(config.hydra.runtime.choices)
    task = config.task.name
    for entry in swept_overrides(config, OverridesParser.create()):
        group = entry.override.key_or_group
        values = listed(entry.override) if group in groups else None
        pattern = entry.override.value()
        globbed = False
        if values is None and group in groups and isinstance(pattern, Glob):
            globbed = True
            # Hydra's glob matches every option of the group, other tasks' too: each of those jobs would fail
            try:
                every = config_groups(project_root() / "conf").get(group, [])
            except (NoProject, OSError):
                every = []
            values = [str(option) for option in pattern.filter(every)]
        if group == "task":
            raise ConfigError(
                f"{entry.line()}: a sweep runs one task (its record, table and best trial are that task's); run one "
                "sweep per task"
            )
        allowed = config.task.choices.get(group) if values else None
        if allowed is None:
            continue
        choices = sorted(allowed)
        foreign = [value for value in values or () if value not in choices]
        if foreign and globbed:
            others = first_few(foreign, shown=3)
            raise ConfigError(
                f"{entry.line()}: the glob matches every task's {group} options, and {others} are not options of "
                f"task {task!r}; list its own instead: {group}={','.join(choices)}"
            )
        if foreign:
            raise ConfigError(
                f"{entry.line()}: {group}={foreign[0]!r} is not {a_or_an(group)} option of task {task!r}; "
                f"{did_you_mean(foreign[0], choices)}choose among: {', '.join(choices)}"
                f"{_how_to_allow_swept(config, group, foreign[0], list(allowed))}"
            )


def _how_to_allow_swept(config: DictConfig, group: str, option: str, allowed: list[str]) -> str:
    """A single run's hint (how_to_allow) for a swept option the task does not run, judged on the config the option's
    job would compose: the sweep's own config holds the group's default, as Hydra composes it without swept choices."""
    try:
        composed = _job_config(config, [f"task={config.task.name}", f"{group}={option}"])
    except (NoProject, HydraException, OmegaConfBaseException):
        return ""  # an option that does not compose with the task is no variant of the task's own
    return how_to_allow(composed, group, option, allowed)


def _job_config(config: DictConfig, overrides: list[str]) -> DictConfig:
    """The config a job of the sweep would compose with `overrides`: through the running Hydra's loader, as its launcher
    composes one (the command's --config-dir and hydra.searchpath included); a tuning job's check runs after its Hydra
    has stopped, with conf/'s own folders alone (it refuses the command's others), and composes from conf/."""
    from hydra.core.global_hydra import GlobalHydra

    app = GlobalHydra.instance().hydra
    if app is not None:
        return app.config_loader.load_sweep_config(config, overrides)
    with initialized(project_root() / "conf"):
        return compose("config", overrides=overrides)


def check_sweep(config: DictConfig) -> None:
    """Refuse combinations that would waste or block a sweep: say which and what to do instead."""
    task = config.task.name
    overrides = command_overrides(config.hydra)
    sweeper = sweeper_kind(config)
    check_swept_choices(config)
    check_model_name(config)  # once for the sweep, not as each of its trials fails
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
            f"deploy=registry, then deploy the champion: {_deploy_champion_command(config, overrides)}"
        )
    check_compute(config)
    if config.tracking.sagemaker_mirror:  # each trial would be refused without the mirror's region or credentials
        from mlexp.tracking.sagemaker_mirror import check_before_trial

        check_before_trial(True)
    check_search_space(config)  # before the values are listed: a range without a step lists none
    check_sweep_values(config)
    check_shared_interpolations(config)
    check_shared_bounds(config)
    check_swept_constraints(config)
    if sweeper == "optuna" and objective_direction(config) == "report":
        raise ConfigError(
            f"task {task}'s objective {config.task.objective.metric} is reporting-only (direction: report): a search "
            "has nothing to optimise; run a grid (`-m` with comma-separated values, or the task's own sweep)"
        )
    if sweeper == "optuna":
        if not config.hydra.sweeper.get("params") and not swept_overrides(config, OverridesParser.create()):
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


def _deploy_champion_command(config: DictConfig, overrides: list[str]) -> str:
    """The command that deploys the task's champion to SageMaker after the sweep: the sweep's own `deploy.*` and
    tracking overrides as typed (the role, the endpoint, the store the champion is registered in), all but
    deploy.source; without a role in them or the config, a placeholder (deploy=sagemaker refuses to start without
    one)."""
    parser = OverridesParser.create()
    carried, role_given = [], False
    for line in overrides:
        override = parser.parse_override(line)
        key = override.key_or_group
        # deploy.source: the command deploys the champion; a swept value has no single one to carry
        if override.is_sweep_override() or key == "deploy.source":
            continue
        if key.startswith(("deploy.", "tracking.")) or key == "tracking":
            carried.append(shlex.quote(line))
            role_given = role_given or key == "deploy.role_arn"
    if not role_given and not OmegaConf.select(
        config, "deploy.role_arn", default=None, throw_on_resolution_failure=False
    ):
        carried.append("deploy.role_arn=arn:aws:iam::<account>:role/<role>")
    return " ".join(["mlexp", f"task={config.task.name}", "stage=deploy", "deploy=sagemaker", *carried])
