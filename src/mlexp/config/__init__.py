"""Structured-config schemas and the checks run on a composed config before any work."""

import os

from omegaconf import OmegaConf

from mlexp.config.schema import register_schemas
from mlexp.config.task_groups import declare_group
from mlexp.errors import ConfigError
from mlexp.paths import project_root


def make_composable() -> None:
    """Everything conf/ needs to compose: the project-root resolver, the tasks and every schema."""
    from mlexp import tasks

    OmegaConf.register_new_resolver("mlexp_root", lambda: str(project_root()), replace=True)
    OmegaConf.register_new_resolver("mlexp_tracking_server", tracking_server, replace=True)
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


__all__ = ["declare_group", "make_composable", "register_schemas"]
