"""Structured-config schemas and the checks run on a composed config before any work."""

import os
from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf

from mlexp.config.schema import register_schemas
from mlexp.config.task_groups import declare_group
from mlexp.errors import ConfigError
from mlexp.paths import project_root


def make_composable() -> None:
    """Everything conf/ needs to compose: mlexp's resolvers, the tasks and every schema.

    Every process that composes a config calls it: the CLI at import (so joblib sweep workers and DVC stages,
    which run `mlexp`, too), the Python API, `mlexp params`, and a SageMaker tuning job's submission (a SageMaker
    job's entry point reads a config already resolved).
    """
    from mlexp import tasks

    OmegaConf.register_new_resolver("mlexp_root", lambda: str(project_root()), replace=True)
    OmegaConf.register_new_resolver("mlexp_tracking_server", tracking_server, replace=True)
    OmegaConf.register_new_resolver("by_sweep", by_sweep, replace=True)
    # tasks first: the root schema holds the config groups they declare
    tasks.load_all()
    register_schemas()


def tracking_server() -> str:
    """`tracking=server`'s URL from $MLEXP_TRACKING_SERVER; without it the run stops, never a private store."""
    url = os.environ.get("MLEXP_TRACKING_SERVER")
    if not url:
        raise ConfigError(
            "tracking=server needs the team's MLflow server: export MLEXP_TRACKING_SERVER=http://<host>:<port> "
            "or add tracking.uri=http://<host>:<port>"
        )
    return url


def by_sweep(sweep_name: Any, per_sweep: Any, default: Any) -> str:
    """`${by_sweep:${sweep.name},{<sweep>:<value>,...},<default>}`: `<value>` in the sweep named, else `<default>`.

    A sweep file cannot set a task's keys (task.objective) itself: the task's config is merged after it. So the
    task's config names the sweeps that rank their trials otherwise, each beside the reason (conf/task/*.yaml).
    The value is a string, as the objective's metric and direction are; a value holding `,` is quoted: `'a, b'`.
    """
    if not isinstance(per_sweep, Mapping):
        raise ConfigError(
            f"${{by_sweep:...}}: its second argument is {per_sweep!r}, not a mapping; "
            "write ${by_sweep:${sweep.name},{<sweep>:<value>,...},<default>}"
        )
    return str(per_sweep.get(sweep_name, default))


__all__ = ["by_sweep", "declare_group", "make_composable", "register_schemas"]
