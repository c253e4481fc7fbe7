"""The folders a command's config group options come from: the project's conf/, then the folders Hydra's config search
path adds for the command, in Hydra's order: `--config-dir` (`-cd`), then each entry of `hydra.searchpath` (the
command's override, else conf/config.yaml's). Hydra composes `model=my_net` from the first folder holding
model/my_net.yaml, so the checks before it, their own compositions and `mlexp --help` read the same folders.

A command names its folders once, before its checks (mlexp.cli; the Python API's mlexp.cli_in_process).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from mlexp.errors import ConfigError

SEARCHPATH_KEY = "hydra.searchpath"
# Hydra's flags that choose the config: the primary config's folder and name, and a folder searched after it
CONFIG_FLAGS = ("--config-path", "--config-name", "--config-dir")


@dataclass(frozen=True)
class ConfigFolder:
    """A folder of config groups, and its name as the command or conf/ wrote it (for messages)."""

    path: Path
    shown: str


@dataclass(frozen=True)
class _CommandFolders:
    config_dir: ConfigFolder | None = None
    searchpath: tuple[str, ...] | None = None  # the command's hydra.searchpath=[...]; None: conf/config.yaml's


_command = _CommandFolders()


def use_command_folders(config_dir: str | None, overrides: Sequence[str]) -> None:
    """Name the command's folders: its `--config-dir` (None without one) and its overrides' `hydra.searchpath=[...]`.
    A config dir that is no folder is refused, as Hydra refuses it once the checks have passed."""
    global _command
    folder = None
    if config_dir is not None:
        folder = ConfigFolder(Path(os.path.abspath(config_dir)), config_dir)  # as Hydra reads it
        if not folder.path.is_dir():
            raise ConfigError(
                f"--config-dir={config_dir}: {folder.path} is not a folder; give the folder that holds your own "
                "config groups (<folder>/<group>/<option>.yaml)"
            )
    _command = _CommandFolders(folder, _searchpath_override(overrides))


def forget_command_folders() -> None:
    """Back to conf/ and conf/config.yaml's search path alone (the Python API, after each command)."""
    global _command
    _command = _CommandFolders()


def config_folders(conf_dir: Path) -> list[ConfigFolder]:
    """`conf_dir`, then the command's other folders of config groups, in the order Hydra searches them."""
    folders = [ConfigFolder(conf_dir, f"{conf_dir.name}/")]
    if _command.config_dir is not None:
        folders.append(_command.config_dir)
    entries = _command.searchpath if _command.searchpath is not None else _searchpath_of(conf_dir / "config.yaml")
    folders += [folder for folder in map(_entry_folder, entries) if folder is not None]
    return folders


def command_folders(conf_dir: Path) -> list[ConfigFolder]:
    """The folders of config groups the command adds to what conf/ searches itself (`--config-dir`, a command-line
    `hydra.searchpath`): what a copy of the project's conf/ (a SageMaker job's code archive) does not hold."""
    if _command.config_dir is None and _command.searchpath is None:
        return []
    return [folder for folder in config_folders(conf_dir)[1:] if folder.shown not in _listed_in(conf_dir)]


def _listed_in(conf_dir: Path) -> set[str]:
    """How conf/config.yaml's own search path entries are shown."""
    return {folder.shown for folder in map(_entry_folder, _searchpath_of(conf_dir / "config.yaml")) if folder}


def option_file(conf_dir: Path, group: str, option: str) -> Path | None:
    """The file Hydra composes for `group=option`: the first folder's that has it; None when none has."""
    for folder in config_folders(conf_dir):
        path = folder.path / group / f"{option}.yaml"
        if path.is_file():
            return path
    return None


@contextlib.contextmanager
def initialized(conf_dir: Path) -> Iterator[None]:
    """Hydra's compose API over `conf_dir` and the command's `--config-dir`: hydra.initialize_config_dir's, with the
    folder Hydra's command line adds where it adds it (`hydra.searchpath` is Hydra's to read as it composes)."""
    from hydra import version
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    backup = get_gh_backup()
    version.setbase("1.3")
    search_path = create_config_search_path(str(conf_dir))
    if _command.config_dir is not None:
        search_path.prepend("command-line", f"file://{_command.config_dir.path}", SearchPathQuery(provider="schema"))
    Hydra.create_main_hydra2(task_name="app", config_search_path=search_path)
    try:
        yield
    finally:
        restore_gh_from_backup(backup)


def _searchpath_override(overrides: Sequence[str]) -> tuple[str, ...] | None:
    """The command's `hydra.searchpath=[...]`, as Hydra reads it: the first override of that key."""
    if not any(SEARCHPATH_KEY in override for override in overrides):
        return None  # the common case, without parsing every override a second time
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.get_key_element() == SEARCHPATH_KEY:
            value = override.value()
            return tuple(str(entry) for entry in value) if isinstance(value, list) else ()
    return None


def _searchpath_of(primary: Path) -> tuple[str, ...]:
    """The primary config's own `hydra.searchpath`."""
    try:
        text = primary.read_text(encoding="utf-8")
    except OSError:
        return ()
    if "searchpath" not in text:
        return ()  # the common case, read at every check without YAML's pure-Python parser (1.4 ms a call)
    entries = ((yaml.safe_load(text) or {}).get("hydra") or {}).get("searchpath") or []
    return tuple(str(entry) for entry in entries) if isinstance(entries, list) else ()


def _entry_folder(entry: str) -> ConfigFolder | None:
    """The folder of a search path entry: `file://<folder>` (or a bare folder), `pkg://<package>`; None for one that
    is no folder on this machine (a zipped package, an interpolation, a `structured://`)."""
    scheme, sep, where = entry.partition("://")
    if not sep:
        scheme, where = "file", entry
    if "${" in where:
        return None
    if scheme == "file":
        return ConfigFolder(Path(os.path.abspath(where)), where)
    if scheme == "pkg":
        try:
            found = resources.files(where.replace("/", ".").rstrip("."))
        except (ValueError, ModuleNotFoundError, TypeError):
            return None
        return ConfigFolder(Path(str(found)), entry) if isinstance(found, Path) else None
    return None


def config_flags(argv: Sequence[str]) -> list[str]:
    """The flags among `argv` that choose the config (`--config-dir=...`, `--config-name=...`, `--config-path=...`),
    as mlexp.cli_arguments.spelled_out writes them, for a command printed to run a trial again: without them it
    composes another config.

    `argv` is spelled out, as mlexp.cli leaves sys.argv[1:] (the Python API's has no flags).
    """
    return [arg for arg in argv if arg.partition("=")[0] in CONFIG_FLAGS]
