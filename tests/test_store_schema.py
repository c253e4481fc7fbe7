"""A new SQLite store is a copy of MLflow's schema made once per version (mlexp.tracking.schema_template): the same
store MLflow makes itself, without its migrations; any problem with the template leaves them to MLflow."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from mlexp.tracking import schema_template
from mlexp.tracking.store import TrackingStore

MIGRATING = "Creating initial MLflow database tables"  # MLflow's log line as it runs its migrations


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "mlexp"


def made_store(project: Path, caplog: pytest.LogCaptureFixture) -> tuple[Path, bool]:
    """A store made as every command makes one; whether MLflow ran its migrations for it."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mlflow.store.db.utils"):
        client = TrackingStore.resolve(None, project).client()
    client.create_experiment("after")  # the copy takes writes like any store
    return project / "mlflow.db", MIGRATING in caplog.text


def contents(db: Path) -> dict[str, object]:
    """Schema and rows, the Default experiment's times left out (they are when it was made). A table's lines are
    compared as a set: MLflow's own migrations write a re-created table's constraints in no fixed order."""
    with sqlite3.connect(db) as connection:
        schema = sorted(
            (kind, name, sorted(sql.split(", \n")))
            for kind, name, sql in connection.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        )
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = {table: sorted(map(repr, connection.execute(f'SELECT * FROM "{table}"'))) for table in tables}
        rows["experiments"] = sorted(
            map(repr, connection.execute("SELECT experiment_id, name, artifact_location, lifecycle_stage, workspace"
                                         " FROM experiments WHERE name != 'after'"))
        )  # fmt: skip
        rows.pop("experiment_tags")
        journal = connection.execute("PRAGMA journal_mode").fetchone()[0]
    return {"schema": schema, "rows": rows, "journal": journal}


def test_a_store_from_the_template_is_the_store_mlflow_makes_and_skips_its_migrations(
    tmp_path, cache, caplog, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no-template-here"))
    (tmp_path / "no-template-here").write_text("a file: no cache folder can be made under it")
    by_mlflow, migrated = made_store(tmp_path / "by-mlflow", caplog)
    assert migrated
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache.parent))

    first, migrated_first = made_store(tmp_path / "first", caplog)  # MLflow makes the template, then it is copied
    second, migrated_second = made_store(tmp_path / "second", caplog)
    assert migrated_first and not migrated_second
    [template] = cache.glob("mlflow-schema.*.db")
    assert "mlflow" + __import__("mlflow").__version__ in template.name
    assert template.stat().st_mode & 0o777 == 0o600 and cache.stat().st_mode & 0o777 == 0o700

    expected = contents(by_mlflow)
    for db in (first, second):
        found = contents(db)
        assert found["schema"] == expected["schema"]
        assert found["journal"] == expected["journal"] == "wal"
        # the Default experiment is MLflow's own, where MLflow puts it without the template (from this process)
        assert found["rows"] == expected["rows"]


def test_a_template_others_can_write_or_a_damaged_one_is_made_again(tmp_path, cache, caplog):
    made_store(tmp_path / "first", caplog)
    [template] = cache.glob("mlflow-schema.*.db")
    assert schema_template._usable(template)
    template.chmod(0o620)  # its group may write it: its SQL (a trigger) could act on every new store
    assert not schema_template._usable(template)
    template.chmod(0o600)
    cache.chmod(0o777)  # anyone may replace it
    assert not schema_template.copy_schema(tmp_path / "open-folder.db")
    cache.chmod(0o700)

    template.write_bytes(b"not a database")
    _, migrated = made_store(tmp_path / "damaged", caplog)
    assert migrated  # MLflow made this store, and the template again
    assert schema_template._usable(template) and template.stat().st_mode & 0o777 == 0o600
    _, migrated = made_store(tmp_path / "repaired", caplog)
    assert not migrated


def test_a_file_with_anything_in_it_is_never_written_over(tmp_path, cache, caplog):
    made_store(tmp_path / "first", caplog)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE notes (text)")
    assert not schema_template.copy_schema(other)
    with sqlite3.connect(other) as connection:
        assert [name for (name,) in connection.execute("SELECT name FROM sqlite_master")] == ["notes"]


def test_a_template_that_cannot_be_made_leaves_the_store_to_mlflow(tmp_path, cache, caplog, monkeypatch):
    import sqlalchemy.exc

    def disk_full(database: Path) -> None:  # as MLflow fails making it on a full disk: SQLAlchemy's error, no OSError
        full = sqlite3.OperationalError("database or disk is full")
        raise sqlalchemy.exc.OperationalError("CREATE TABLE", None, full)

    monkeypatch.setattr(schema_template, "_migrate", disk_full)
    _, migrated = made_store(tmp_path / "project", caplog)  # failed with the project store's name before
    assert migrated and not list(cache.glob("mlflow-schema.*.db*partial"))
