"""Structured-config schemas and the checks run on a composed config before any work."""

from omegaconf import OmegaConf

from mlexp.config.schema import register_schemas
from mlexp.paths import project_root


def make_composable() -> None:
    """Everything conf/ needs to compose: the project-root resolver and every schema."""
    from mlexp import tasks

    OmegaConf.register_new_resolver("mlexp_root", lambda: str(project_root()), replace=True)
    register_schemas()
    tasks.load_all()


__all__ = ["make_composable", "register_schemas"]
