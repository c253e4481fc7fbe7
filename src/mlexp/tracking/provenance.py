"""What makes a trial reproducible: code version, environment and command line."""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

KEY_PACKAGES = (
    "mlexp",
    "hydra-core",
    "omegaconf",
    "mlflow",
    "dvc",
    "mxnet",
    "numpy",
    "pandas",
    "scikit-learn",
    "xgboost-cpu",
    "gluoncv",
    "gekko",
    "duckdb",
    "sagemaker",
)


def git_state(root: Path, sweep_id: str | None = None) -> dict[str, str]:
    """Commit and dirty flag of the project checkout ("unknown" outside git).

    A sweep's trials run the code its command loaded: with `sweep_id`, looked up once per sweep and process.
    """
    if sweep_id:
        return dict(_sweep_git_state(root, sweep_id))
    return _git_state(root)


@functools.lru_cache(maxsize=4)
def _sweep_git_state(root: Path, sweep_id: str) -> dict[str, str]:
    return _git_state(root)


def _git_state(root: Path) -> dict[str, str]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD") or "unknown"
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git.commit": commit, "git.dirty": str(bool(status)).lower()}


def package_versions(names: Iterable[str] = KEY_PACKAGES) -> dict[str, str]:
    """The installed versions of `names`; looked up once per process (a sweep's trials share them)."""
    return dict(_versions(tuple(names)))


@functools.lru_cache(maxsize=8)
def _versions(names: tuple[str, ...]) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[f"version.{name}"] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    versions["version.python"] = sys.version.split()[0]
    return versions


def command_line() -> str:
    return " ".join(["mlexp", *sys.argv[1:]])
