"""The registry entry a run's deploy settings name: deploy.model_name (else the task's name) at deploy.alias (else
`champion`), and the command that registers one there. A config without those keys (a deploy target that has none,
a test's) takes the defaults."""

from __future__ import annotations

import shlex
from typing import Any

DEFAULT_ALIAS = "champion"
# MLflow's answers for a model or alias the registry does not hold (any other error: the registry did not answer)
NOT_REGISTERED = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def registered_name(cfg: Any) -> tuple[str, str]:
    """(model name, alias) of the registry entry `cfg` serves or registers."""
    deploy = cfg.get("deploy") or {}
    return str(deploy.get("model_name") or cfg.task.name), str(deploy.get("alias") or DEFAULT_ALIAS)


def registration_command(cfg: Any) -> str:
    """`mlexp task=<task> deploy=registry ...`: the registration a service of `cfg` would find (same store, name and
    alias), ready to paste into a shell."""
    name, alias = registered_name(cfg)
    given = [f"tracking.uri={hydra_value(cfg.tracking.uri)}"] if cfg.tracking.get("uri") else []
    given += [f"deploy.model_name={hydra_value(name)}"] if name != cfg.task.name else []
    given += [f"deploy.alias={hydra_value(alias)}"] if alias != DEFAULT_ALIAS else []
    return shlex.join(["mlexp", f"task={cfg.task.name}", "deploy=registry", *given])


def hydra_value(value: str) -> str:
    """`value` as an override that Hydra reads back as this text: plain when it does (`shop`), else quoted
    (`"my,shop"`: plain, Hydra reads a list; `"null"`: plain, None)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    escaped = "'" + value.replace("\\'", "\\\\'").replace("'", "\\'") + "'"
    for given in (value, f'"{value}"', f"'{value}'", escaped):
        try:
            if parser.parse_override(f"key={given}").value() == value:
                return given
        except HydraException:
            continue
    return value  # none of these reads back as it (a rarer mix of quotes and backslashes): as it is
