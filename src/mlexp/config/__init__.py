"""Structured-config schemas and the checks run on a composed config before any work."""

from omegaconf import OmegaConf

from mlexp.config.schema import register_schemas
from mlexp.config.task_groups import declare_group
from mlexp.paths import project_root


def make_composable() -> None:
    """Everything conf/ needs to compose: the project-root resolver, the tasks and every schema."""
    from mlexp import tasks

    OmegaConf.register_new_resolver("mlexp_root", lambda: str(project_root()), replace=True)
    # tasks first: the root schema holds the config groups they declare
    tasks.load_all()
    register_schemas()


__all__ = ["declare_group", "make_composable", "register_schemas"]
