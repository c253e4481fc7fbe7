"""Checks of command-line overrides that Hydra's own messages leave vague.

Hydra rejects an unknown key, but without saying which keys exist; this check runs
first and names them, with the closest match.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig

from mlexp.errors import ConfigError


def config_groups(conf_dir: Path) -> dict[str, list[str]]:
    """Each config group in conf/ and its options (the YAML files in its folder)."""
    return {
        folder.name: sorted(p.stem for p in folder.glob("*.yaml"))
        for folder in sorted(conf_dir.iterdir())
        if folder.is_dir() and folder.name != "hydra"
    }


def check_override_keys(conf_dir: Path, overrides: list[str]) -> None:
    """Fail with the valid keys when a `key=value` override names a key the config lacks."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    groups = set(config_groups(conf_dir))
    choices, values = [], []
    for override in parsed:
        key = override.key_or_group
        if key.split("/")[0] in groups or key.startswith("hydra"):
            if override.is_sweep_override():
                return  # one composition cannot stand for several; Hydra checks each job
            choices.append(override.input_line or f"{key}={override.get_value_element_as_str()}")
        elif not override.is_add() and not override.is_force_add() and not override.is_delete():
            values.append(key)
    if not values:
        return
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg = compose("config", overrides=choices)
    except HydraException:
        return  # Hydra reports a bad group option itself, with the available options
    for key in values:
        _check_key(cfg, key)


def _check_key(cfg: DictConfig, key: str) -> None:
    node: DictConfig = cfg
    walked: list[str] = []
    for part in key.split("."):
        if isinstance(node, DictConfig) and part in node:
            walked.append(part)
            node = node[part]
            continue
        where = ".".join(walked) or "the config"
        if not isinstance(node, DictConfig):
            raise ConfigError(f"{key}: {where} is a value, not a section; check the key's spelling")
        known = sorted(str(k) for k in node)
        close = difflib.get_close_matches(part, known, n=1)
        prefix = ".".join(walked) + "." if walked else ""
        hint = f"did you mean {prefix}{close[0]}? " if close else ""
        raise ConfigError(
            f"{key} is not a key of {where}; {hint}valid keys: {', '.join(known)} "
            f"(to add a new key on purpose, write +{key}=...)"
        )
