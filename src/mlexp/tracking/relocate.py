"""Point a moved project's SQLite store at its artifact folder again.

MLflow stores absolute artifact URIs (`file:///old/place/mlartifacts/...`) in experiments,
runs, model versions and logged models. After the project folder is copied or moved, the
store would keep reading and writing the old folder; this rewrites the prefix in place.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mlexp.errors import MlexpError
from mlexp.tracking.store import DEFAULT_ARTIFACTS

# every column of MLflow's schema that holds an artifact URI
URI_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
    ("logged_models", "artifact_location"),
)


def old_artifact_roots(db: Path, new_root: str) -> set[str]:
    """The `file:` artifact roots the store's experiments name, other than `new_root`."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT artifact_location FROM experiments").fetchall()
    roots = set()
    for (location,) in rows:
        if location and location.startswith("file:") and not location.startswith(new_root + "/"):
            marker = f"/{DEFAULT_ARTIFACTS}/"
            if marker in location:
                roots.add(location.split(marker, 1)[0] + f"/{DEFAULT_ARTIFACTS}")
    return roots


def relocate(db: Path, new_root: str) -> dict[str, int]:
    """Rewrite every old artifact root in `db` to `new_root`; returns rows changed per table."""
    if not db.exists():
        raise MlexpError(f"{db} does not exist: nothing to relocate")
    changed: dict[str, int] = {}
    with sqlite3.connect(db) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for old_root in old_artifact_roots(db, new_root):
            for table, column in URI_COLUMNS:
                if table not in tables:
                    continue
                cursor = connection.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) WHERE substr({column}, 1, ?) = ?",
                    (new_root, len(old_root) + 1, len(old_root), old_root),
                )
                changed[table] = changed.get(table, 0) + cursor.rowcount
    return changed
