"""Each sweep job's config as Hydra composes it, with Hydra's composition run once per shape of overrides.

Hydra's launchers compose every job's config from scratch (ConfigLoader.load_sweep_config): the search path, the
defaults list and every YAML file again, about a second per job on a loaded 2-core machine. Jobs of a sweep that
differ only in the values of plain keys (`model.learning_rate=0.0123` vs `=0.0456`) compose the same defaults list
and differ only where those values go. So the first job of each shape is composed by Hydra; the next jobs of that
shape start from a copy of it and get Hydra's own steps for what differs: the values, applied by Hydra's override code
(so a wrong key or type fails as it does in Hydra), the job's `hydra.overrides.task`, `hydra.job.override_dirname`,
the working directory and copied environment variables. An override that can change the composition (a group choice,
a `hydra.` key, `+`, `++` or `~`, a dict or list value) is part of the shape: such jobs are composed as Hydra does.
"""

from __future__ import annotations

import copy
import os
import uuid
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.object_type import ObjectType
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from omegaconf import DictConfig, OmegaConf, open_dict

# (the sweep's cache, shape of the job's overrides) -> Hydra's composition of the first such job, in this process: a
# worker process keeps its own for the jobs it runs
_COMPOSED: dict[tuple[str, tuple[str, ...]], DictConfig] = {}
MAX_SHAPES = 64  # a grid over group choices has a shape per job: past this many, the oldest go


class SweepConfigCache:
    """A sweep's config loader whose `load_sweep_config` composes once per shape; the rest is the loader's.

    Its compositions are its own (`sweep`, pickled with it to the workers): a second sweep in the same process
    composes again, so it sees conf/ as it is then.
    """

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.sweep = uuid.uuid4().hex
        self.groups: frozenset[str] | None = None

    def __getattr__(self, name: str) -> Any:
        if name in ("loader", "sweep", "groups"):  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.loader, name)

    def groups_of(self, master_config: DictConfig) -> set[str]:
        """Every config group the sweep can choose, not only those its first config chose (a job may choose
        engine=athena), with the search path the sweep's config and Hydra overrides give (hydra.searchpath)."""
        if self.groups is None:
            hydra_overrides = OmegaConf.to_container(master_config.hydra.overrides.hydra)
            assert isinstance(hydra_overrides, list)
            found = self.loader.get_group_options(
                "",
                results_filter=ObjectType.GROUP,
                config_name=master_config.hydra.job.config_name,
                overrides=[str(override) for override in hydra_overrides],
            )
            self.groups = frozenset(found)
        return set(self.groups) | set(master_config.hydra.runtime.choices)

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        hydra_overrides = OmegaConf.to_container(master_config.hydra.overrides.hydra)
        assert isinstance(hydra_overrides, list)
        parsed = OverridesParser.create().parse_overrides([*map(str, hydra_overrides), *sweep_overrides])
        groups = self.groups_of(master_config)
        shape = (self.sweep, tuple(_shape(override, groups) for override in parsed))
        cached = _COMPOSED.get(shape)
        if cached is None:
            composed = self.loader.load_sweep_config(master_config, sweep_overrides)
            while len(_COMPOSED) >= MAX_SHAPES:
                del _COMPOSED[next(iter(_COMPOSED))]
            _COMPOSED[shape] = copy.deepcopy(composed)
            return composed
        cfg = copy.deepcopy(cached)
        values = [override for override in parsed if _is_value(override, groups)]
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        app = [override for override in parsed if not override.is_hydra_override()]
        cfg.hydra.overrides.task = [override.input_line for override in app]
        with open_dict(cfg.hydra):
            for key in cfg.hydra.job.env_copy:
                cfg.hydra.job.env_set[key] = os.environ[key]
        cfg.hydra.runtime.cwd = os.getcwd()
        dirname = cfg.hydra.job.config.override_dirname
        cfg.hydra.job.override_dirname = get_overrides_dirname(
            overrides=app, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys
        )
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg


def _is_value(override: Override, groups: set[str]) -> bool:
    """`key=value` that sets a plain value: it never changes which configs are composed."""
    key = override.key_or_group
    return (
        override.type == OverrideType.CHANGE
        and override.package is None
        and not override.is_sweep_override()
        and not key.startswith("hydra")
        and "/" not in key
        and key not in groups
        and isinstance(override.value(), (str, int, float, bool, type(None)))
    )


def _shape(override: Override, groups: set[str]) -> str:
    """What of an override decides the composition: a value's key only, anything else whole."""
    if _is_value(override, groups):
        return f"{override.key_or_group}=<value>"
    return str(override.input_line)


def caching(loader: Any) -> Any:
    """The loader, wrapped once (a launcher is called once per batch of jobs; its cache lasts the sweep)."""
    return loader if isinstance(loader, SweepConfigCache) else SweepConfigCache(loader)


def cache_running_sweep() -> None:
    """Route the running sweep's compositions through the cache, before Hydra makes its sweeper.

    The sweeper composes every job of a batch to check it before launching it (Sweeper.validate_batch_is_legal),
    and an in-process launcher composes every job again: both use the running Hydra's config loader. In a parallel
    sweep the sweeper's checks ran beside the workers' start-up, 1.9 s of a core for 8 jobs.
    """
    from hydra.core.global_hydra import GlobalHydra

    app = GlobalHydra.instance().hydra
    if app is not None:  # a cache of this sweep's own, even where the loader served an earlier sweep (mlexp.run)
        loader: Any = app.config_loader
        app.config_loader = caching(loader.loader if isinstance(loader, SweepConfigCache) else loader)
