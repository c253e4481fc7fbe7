"""A new SQLite store starts as a copy of MLflow's schema, which MLflow makes once per version on this machine.

MLflow makes a new SQLite store by running every one of its schema migrations (about 60 alembic steps, each its own
commit): seconds of CPU and a stream of disk syncs that every project's first command waited for. What they make
depends only on the versions of MLflow, SQLAlchemy and alembic, so MLflow's own start-up makes it once, in a store in
mlexp's cache folder whose Default experiment is then removed, and a new store is a copy of that. Opening the copy,
MLflow finds its schema current, migrates nothing and creates the store's Default experiment itself, as on any store
without one (with the artifact location it always gives it). Any problem with the template (no home folder, a cache
someone else can write, a damaged file, a full disk) leaves the store to MLflow's migrations, as without it; deleting
the file is always safe.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from importlib import metadata
from pathlib import Path

from filelock import FileLock

from mlexp.user_cache import cache_folder, make_private_folder, owned_privately

VERSIONED = ("mlflow", "sqlalchemy", "alembic")  # what MLflow's schema and its SQL text depend on
DEFAULT_EXPERIMENT_ID = 0


def template_file() -> Path | None:
    """The template for this MLflow, SQLAlchemy and alembic; None without a home folder or one of them."""
    try:
        versions = "-".join(f"{name}{metadata.version(name)}" for name in VERSIONED)
        return cache_folder() / f"mlflow-schema.{versions}.db"
    except (RuntimeError, KeyError, metadata.PackageNotFoundError):
        return None


def copy_schema(db: Path) -> bool:
    """Give the new store `db` (no file yet, or an empty one) MLflow's schema; False when it has to be migrated as
    MLflow does it alone. A file with anything in it is never written over."""
    if db.exists() and db.stat().st_size:
        return False
    template = template_file()
    if template is None or not make_private_folder(template.parent):
        return False
    try:
        if not _usable(template):
            _make(template)
        source = sqlite3.connect(f"file:{template}?mode=ro", uri=True)
        copy = sqlite3.connect(db)
        with contextlib.closing(source), contextlib.closing(copy):
            source.backup(copy)
    except Exception:  # a full disk fails inside MLflow's SQLAlchemy, not as OSError: any failure is no template
        with contextlib.suppress(OSError):
            db.unlink()  # empty or partial: MLflow creates it again
        return False
    return True


def _usable(template: Path) -> bool:
    """The user's private file, holding MLflow's schema version (a file that is not MLflow's store fails here)."""
    try:
        info = template.lstat()
        if not (stat.S_ISREG(info.st_mode) and owned_privately(info)):
            return False
        with contextlib.closing(sqlite3.connect(f"file:{template}?mode=ro", uri=True)) as connection:
            return connection.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1
    except (OSError, sqlite3.Error):
        return False


def _make(template: Path) -> None:
    """MLflow's start-up on a new store, less the Default experiment; one process at a time makes it."""
    with FileLock(f"{template}.lock", timeout=300):
        if _usable(template):  # another process made it while this one waited
            return
        partial = template.with_name(f"{template.name}.{os.getpid()}.partial")
        partial.unlink(missing_ok=True)
        try:
            _migrate(partial)
            os.chmod(partial, 0o600)
            os.replace(partial, template)  # readers see no file or the whole one
        finally:
            partial.unlink(missing_ok=True)


def _migrate(database: Path) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(f"sqlite:///{database}", database.parent.as_uri())
    store.engine.dispose()
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute("DELETE FROM experiment_tags WHERE experiment_id = ?", (DEFAULT_EXPERIMENT_ID,))
        connection.execute("DELETE FROM experiments WHERE experiment_id = ?", (DEFAULT_EXPERIMENT_ID,))
        connection.commit()
