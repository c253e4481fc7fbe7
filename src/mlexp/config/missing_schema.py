"""An option's YAML that names a schema nothing stored: most often a task package whose __init__.py does not import
its config module, so the schemas that module stores in Hydra's ConfigStore never exist; or a schema name misspelt
in the option's defaults list.

Hydra says `In 'backend/fast': Could not load 'schema/backend/fast'.` and lists its search path, which points
nowhere near the fix.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml
from hydra.core.config_store import ConfigStore
from hydra.errors import MissingConfigException

from mlexp import tasks
from mlexp.config.group_options import task_choices
from mlexp.config.schema import shared_groups
from mlexp.config.search_path import config_folders
from mlexp.errors import ConfigError

_ASKED_BY = re.compile(r"In '(?P<asking>[^']+)': Could not load '(?P<schema>schema/(?P<group>.+)/(?P<option>[^/']+))'")


def missing_schema(error: BaseException, conf_dir: Path, task: str | None) -> ConfigError | None:
    """The one-line error for a composition of `task` that failed on a schema no code stored; None for other errors.

    `task` is the command's `task=`, if it names one: the task whose conf/task/<task>.yaml lists the option among its
    choices is named before it (`mlexp compare experiment=`, a run of the default task)."""
    found = _ASKED_BY.match(str(error)) if isinstance(error, MissingConfigException) else None
    if found is None:
        return None
    group, option = found["group"], found["option"]
    # the file Hydra read: conf/'s, or another folder's the command searches (--config-dir, hydra.searchpath); none
    # for a schema asking for another
    folder = next((f for f in config_folders(conf_dir) if (f.path / f"{found['asking']}.yaml").is_file()), None)
    asking = Path(folder.shown, f"{found['asking']}.yaml") if folder else Path(found["asking"])
    misnamed = folder is not None and found["asking"] != f"{group}/{option}"
    # an option's YAML names its own schema (conf/model/ssd.yaml: /schema/model/ssd): another name is a slip of the pen
    if misnamed and (close := _close_schemas(group, option)):
        return ConfigError(
            f"{asking} names the schema /{found['schema']} in its defaults list, and no code stores a schema of that "
            f"name; did you mean {' or '.join(f'/{name}' for name in close)}? correct the name in {asking}"
        )
    if misnamed and _is_stored(f"schema/{found['asking']}"):
        # nothing near the name typed (/schema/model/zzqx): the file's own schema is the likely one, not a new one
        return ConfigError(
            f"{asking} names /{found['schema']} in its defaults list, which is not a stored schema; the schema of the "
            f"file's own name is /schema/{found['asking']}: correct the name in {asking}"
        )
    chosen_group, _, chosen = found["asking"].rpartition("/")  # the option a task chooses, which asks for the schema
    owners = _tasks_choosing(conf_dir, chosen_group, chosen)
    owner = owners[0] if len(owners) == 1 else task
    in_config_py = "store it in the task's config.py with "
    if group in shared_groups():
        store_it = (
            f'{in_config_py}ConfigStore.instance().store(group="schema/{group}", name="{option}", node=<its dataclass>)'
        )
    elif owner is not None:
        store_it = f'{in_config_py}mlexp.config.declare_group("{owner}", "{group}", {{"{option}": <its dataclass>}})'
    else:  # no task= given, and no task file lists the option: no task to name
        store_it = (
            f"in the config.py of the task that chooses {chosen_group}={chosen}, store it with mlexp.config."
            f'declare_group(that task\'s name, "{group}", {{"{option}": <its dataclass>}})'
        )
    registered = tasks.TASKS.get(owner or "")
    package = registered.stages_module.rpartition(".")[0] if registered is not None else None
    where = f"the __init__.py of {package} (`from {package} import config`)" if package else "the task's __init__.py"
    return ConfigError(
        f"{asking} asks for the schema {found['schema']}, which no loaded code stores: {store_it}, and import that "
        f"module in {where}"
    )


def task_given(arguments: Sequence[str]) -> str | None:
    """The `task=` of a command's arguments, if one names it."""
    return next((a.partition("=")[2] for a in arguments if a.startswith("task=")), None)


def _close_schemas(group: str, option: str) -> list[str]:
    """The stored schemas (`schema/model/mlp_regressor`) closest to `group`/`option`: the option's near names in the
    group, or in the groups near a misspelt group's name."""
    stored: dict[str, list[str]] = {}
    try:
        schemas = list(_stored_schemas("schema"))
    except OSError:  # Hydra's answer when no code stored any schema
        return []
    for path in schemas:
        folder, _, name = path.rpartition("/")
        stored.setdefault(folder.removeprefix("schema/"), []).append(name)
    groups = [group] if group in stored else difflib.get_close_matches(group, list(stored), n=2)
    return [f"schema/{near}/{name}" for near in groups for name in difflib.get_close_matches(option, stored[near], n=3)]


def _is_stored(schema: str) -> bool:
    folder, _, name = schema.rpartition("/")
    try:
        return f"{name}.yaml" in ConfigStore.instance().list(folder)
    except OSError:  # Hydra's answer for a folder nothing is stored in
        return False


def _stored_schemas(folder: str) -> Iterator[str]:
    store = ConfigStore.instance()
    for name in store.list(folder):
        if name.endswith(".yaml"):
            yield f"{folder}/{name.removesuffix('.yaml')}"
        else:
            yield from _stored_schemas(f"{folder}/{name}")


def _tasks_choosing(conf_dir: Path, group: str, option: str) -> list[str]:
    """The tasks whose conf/task/<task>.yaml lists `group`=`option` among its choices."""
    owners = []
    for path in sorted((conf_dir / "task").glob("*.yaml")):
        try:
            choices = task_choices(conf_dir, path.stem)
        except (OSError, yaml.YAMLError, AttributeError):  # a broken task file is said when that task is run
            continue
        if option in choices.get(group, []):
            owners.append(path.stem)
    return owners
