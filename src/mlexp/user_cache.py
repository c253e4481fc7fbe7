"""mlexp's folder in the user's cache ($XDG_CACHE_HOME/mlexp, or ~/.cache/mlexp): what is made once per machine.

Files there are read back into this process (compiled code, a database schema), so only a folder and files no one
else may write are trusted.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

CACHE_ENV = "XDG_CACHE_HOME"


def cache_folder() -> Path:
    """$XDG_CACHE_HOME/mlexp, or ~/.cache/mlexp when it is unset or relative (the XDG spec's default).

    Raises RuntimeError or KeyError without a home folder (Path.home()).
    """
    base = Path(os.environ.get(CACHE_ENV) or "")
    if not base.is_absolute():
        base = Path.home() / ".cache"
    return base / "mlexp"


def make_private_folder(folder: Path) -> bool:
    """Create `folder` readable by the user only if it is missing; whether it is a private folder now."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return False
    return private_folder(folder)


def private_folder(folder: Path) -> bool:
    try:
        info = folder.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and owned_privately(info)


def owned_privately(info: os.stat_result) -> bool:
    """The user's own, and no one else may write it: what is read from it is as safe as the user's own files."""
    return info.st_uid == os.getuid() and not info.st_mode & 0o022
