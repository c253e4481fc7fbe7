"""The registry entry a run's deploy settings name: deploy.model_name (else the task's name) at deploy.alias (else
`champion`). A config without those keys (a deploy target that has none, a test's) takes the defaults."""

from __future__ import annotations

from typing import Any

DEFAULT_ALIAS = "champion"


def registered_name(cfg: Any) -> tuple[str, str]:
    """(model name, alias) of the registry entry `cfg` serves or registers."""
    deploy = cfg.get("deploy") or {}
    return str(deploy.get("model_name") or cfg.task.name), str(deploy.get("alias") or DEFAULT_ALIAS)
