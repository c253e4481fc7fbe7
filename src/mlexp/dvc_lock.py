"""Stale committed locks: a dvc.lock in git whose recorded code or params no longer match the repository.

A lock records what its results were made from. Committed with results made from other code or
other values, it tells every clone those results are current while `dvc status` says otherwise:
CI fails on it (`mlexp pipelines --check`).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import yaml

from mlexp.config.params import first_difference, load


def tracked_files(root: Path) -> set[str]:
    """The files git tracks in `root` (none when it is not a git repository)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return set()
    return {name for name in listed.stdout.split("\0") if name}


def value_at(tree: Any, key: str) -> Any:
    """The value at dotted `key` of a params tree, as DVC reads it; KeyError (the class) when there is none."""
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return KeyError
        tree = tree[part]
    return tree


def _stage_dirs(lock: Path) -> dict[str, Path]:
    """Each stage's working directory, from the dvc.yaml beside the lock (paths in the lock start there)."""
    declared = lock.with_name("dvc.yaml")
    stages = (yaml.safe_load(declared.read_text()) or {}).get("stages", {}) if declared.exists() else {}
    return {name: (lock.parent / (entry or {}).get("wdir", ".")).resolve() for name, entry in stages.items()}


def stale_entries(root: Path) -> list[str]:
    """Every recorded md5 of a git-tracked dependency, and every recorded param, that differs today."""
    root = root.resolve()
    tracked = tracked_files(root)
    problems: list[str] = []
    for name in sorted(n for n in tracked if Path(n).name == "dvc.lock"):
        lock = root / name
        if not lock.exists():
            continue
        dirs = _stage_dirs(lock)
        # as params.yaml is read: DVC writes YAML 1.2, where `1e-10` is a number (YAML 1.1 reads it as text)
        for stage, entry in ((load(lock.read_text()) or {}).get("stages") or {}).items():
            base = dirs.get(stage, lock.parent)
            where = f"{name} stage {stage}"
            for dep in entry.get("deps", []):
                path = (base / dep["path"]).resolve()
                relative = str(path.relative_to(root)) if path.is_relative_to(root) else None
                recorded_md5 = dep.get("md5")
                if (
                    relative in tracked
                    and path.is_file()
                    and hashlib.md5(path.read_bytes()).hexdigest() != recorded_md5
                ):
                    problems.append(f"{where}: {relative} changed since the lock recorded it")
            for params_name, recorded in (entry.get("params") or {}).items():
                params_path = base / params_name
                current = load(params_path.read_text()) if params_path.exists() else {}
                for key, value in recorded.items():
                    today = value_at(current, key)
                    if today is KeyError:
                        problems.append(f"{where}: {params_name} has no {key} any more")
                    elif first_difference(today, value, key):
                        problems.append(f"{where}: {key} in {params_name} is {today!r}, the lock recorded {value!r}")
    return problems
