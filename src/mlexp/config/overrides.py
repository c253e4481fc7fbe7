"""The command line's overrides as a run reads them, and their checks before it composes its config.

Hydra rejects an unknown key or group option, but with its config search path and without the closest match; these
checks run first and say in one line what exists: the group options (group_options), then the keys in the config
those choices compose (known_keys). Why a composition failed anyway is failed_composition's.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from hydra import compose
from hydra.conf import HydraConf
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from mlexp.config.group_options import check_group_options, config_groups
from mlexp.config.known_keys import check_in_order, check_named
from mlexp.config.search_path import config_folders, initialized
from mlexp.errors import ConfigError


def command_overrides(hydra: DictConfig | HydraConf) -> list[str]:
    """The command line's overrides as typed (`hydra.overrides.task` of the config's `hydra` node): Hydra keeps them
    unescaped, so reading them through OmegaConf would resolve a `${...}` in one, or fail on it."""
    overrides = OmegaConf.to_container(hydra.overrides.task, resolve=False)
    assert isinstance(overrides, list)
    return [str(override) for override in overrides]


def sweeper_params(hydra: DictConfig | HydraConf) -> list[str]:
    """The sweep file's own search space (`hydra.sweeper.params`) as the override strings Hydra's sweepers make of
    it, before the command line's."""
    params = hydra.sweeper.get("params") or {}
    return [f"{key}={value}" for key, value in params.items()]


def check_env_copy(overrides: list[str]) -> None:
    """hydra.job.env_copy naming a variable this environment lacks: Hydra copies each with os.environ[name] in every
    composition, and its KeyError ended the command (a single run, a sweep, --cfg) in a traceback."""
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.key_or_group != "hydra.job.env_copy" or override.is_sweep_override() or override.is_delete():
            continue
        value = override.value()
        if not isinstance(value, list):  # a value that is no list: Hydra's own check says it does not fit
            continue
        # an interpolation (${oc.env:V}) is Hydra's to resolve
        missing = [str(name) for name in value if "${" not in str(name) and str(name) not in os.environ]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise ConfigError(
                f"{override.input_line}: {', '.join(missing)} {verb} not set in this environment, and Hydra copies "
                f"each variable env_copy lists from it; export {missing[0]}=<value> first, or give the job a value "
                f"with hydra.job.env_set.{missing[0]}=<value>"
            )


def check_override_keys(conf_dir: Path, overrides: list[str], *, keys: bool = True) -> None:
    """Fail in one line when an override names a group option, a task's group or a key the config lacks.

    With keys=False only the group options are checked: the caller composes the config itself and checks the
    keys in it with check_keys_in (one composition per run, not two).
    """
    choices, values = check_group_options(conf_dir, overrides)
    if values is None or not keys:
        return
    passed = _passed_marker(conf_dir, choices, values)
    if passed is not None and passed.exists():
        return  # these keys passed with these choices and this conf/: no second composition (a third of a second)
    try:
        with initialized(conf_dir):
            cfg = compose("config", overrides=choices)
    except HydraException:
        return  # Hydra reports what it cannot compose itself
    check_in_order(cfg, plain_overrides(conf_dir, overrides))
    if passed is not None:
        try:
            passed.parent.mkdir(parents=True, exist_ok=True)
            passed.touch()
        except OSError:
            pass  # a read-only project checks again next time


def plain_overrides(conf_dir: Path, overrides: list[str]) -> list[Override]:
    """The overrides of the config's keys (`model.epochs=3`), in the command's order: not group choices, not Hydra's
    own settings."""
    groups = config_groups(conf_dir)
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [o for o in parsed if o.key_or_group.split("/")[0] not in groups and not o.key_or_group.startswith("hydra")]


def check_keys_in(cfg: DictConfig, conf_dir: Path, overrides: list[str]) -> None:
    """The key check of check_override_keys against a config already composed with these overrides.

    The group options were checked before the composition (check_override_keys with keys=False), not again here.
    """
    _, values = check_group_options(conf_dir, overrides, check_options=False)
    for key in values or []:
        check_named(cfg, key)


def _passed_marker(conf_dir: Path, choices: list[str], keys: list[str]) -> Path | None:
    """A file whose existence says these keys exist under these group choices, for this conf/ and these schemas.

    Values do not matter (model.epochs=10 and =20 check alike); any change to a YAML file in conf/ or to
    the config schemas' source makes a new marker. None for a command that searches folders besides conf/
    (`--config-dir`, `hydra.searchpath`): it composes its check each time, not hashing what may be a large folder.
    """
    import mlexp

    if len(config_folders(conf_dir)) > 1:
        return None

    package = Path(mlexp.__file__).parent
    digest = hashlib.sha256(json.dumps([sorted(choices), sorted(keys)]).encode())
    sources = [*sorted(conf_dir.rglob("*.yaml")), *sorted((package / "config").glob("*.py"))]
    sources += sorted(package.glob("tasks/*/config.py"))
    try:
        for source in sources:
            stat = source.stat()
            digest.update(f"{source}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    except OSError:
        return None
    return conf_dir.parent / ".mlexp" / "checked_overrides" / digest.hexdigest()[:24]
