"""A real PostgreSQL for tests: pgserver's binaries (a PyPI wheel) run in a temp folder, one database per caller.

Generic on purpose (the feedback store's tests and the MLflow-on-PostgreSQL tests use it):

    from postgres_server import postgres_server, create_database

    with postgres_server(tmp_path) as server:           # starts postgres, stops it on exit
        url = create_database(server, "feedback")     # postgresql://postgres:@/feedback?host=<socket dir>

or as a pytest fixture: `postgres_url = pytest.fixture(scope="module")(postgres_url_fixture)` in a test module.
The URL uses the Unix socket (pgserver listens on no TCP port); psycopg2 and SQLAlchemy (MLflow) both accept it.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL: its admin URL (database `postgres`) and where its data lives."""

    url: str
    pgdata: Path
    socket_dir: Path

    def url_of(self, database: str) -> str:
        """The URL of one database on this server."""
        return f"postgresql://postgres:@/{database}?host={self.socket_dir}"


def _ensure_readable(folder: Path) -> None:
    # run as root, pgserver runs postgres as the user `pgserver`, which must reach the folder through its parents
    if os.geteuid() == 0:
        for part in [folder, *folder.parents]:
            if part == Path("/"):
                break
            with contextlib.suppress(PermissionError):
                part.chmod(part.stat().st_mode | 0o711)


PGSERVER_MISSING = "PostgreSQL tests skipped: pgserver (PostgreSQL in a wheel) is not installed; pip install pgserver"


def require_pgserver():
    """pgserver, or a skip as the browser tests skip without chromium; in CI (CI=true) a failure instead, loudly."""
    try:
        import pgserver
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail(PGSERVER_MISSING.replace("skipped", "cannot run"))
        pytest.skip(PGSERVER_MISSING)
    return pgserver


@contextlib.contextmanager
def postgres_server(folder: Path | None = None) -> Iterator[PostgresServer]:
    """Start PostgreSQL with its data in `folder` (a new temp folder if None); stop it on exit."""
    pgserver = require_pgserver()
    with contextlib.ExitStack() as stack:
        if folder is None or os.geteuid() == 0:
            # as root, postgres runs as the user `pgserver`, which must enter every folder above its data; pytest sets
            # its base temp folder back to 0700 whenever another pytest session starts, so the data lives outside it
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pg-")))
        folder.mkdir(parents=True, exist_ok=True)
        _ensure_readable(folder)
        server = pgserver.get_server(folder / "pgdata", cleanup_mode="stop")
        try:
            info = server.get_postmaster_info()
            yield PostgresServer(server.get_uri(), Path(server.pgdata), Path(info.socket_dir))
        finally:
            server.cleanup()


def create_database(server: PostgresServer, name: str) -> str:
    """Create database `name` (letters, digits, underscores) on the server; returns its URL."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"database name {name!r}: use letters, digits and underscores")
    import psycopg2

    connection = psycopg2.connect(server.url)
    try:
        connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()
    return server.url_of(name)


def postgres_url_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Body of a fixture yielding the URL of a fresh database on a real PostgreSQL (wrap with pytest.fixture)."""
    with postgres_server(tmp_path_factory.mktemp("postgres")) as server:
        yield create_database(server, "test")


def psql(server: PostgresServer, sql: str, database: str = "postgres") -> str:
    """Run SQL through the server's own psql (debugging aid); returns its output."""
    import pgserver

    psql_binary = Path(pgserver.POSTGRES_BIN_PATH) / "psql"
    done = subprocess.run(
        [str(psql_binary), server.url_of(database)], input=sql, capture_output=True, text=True, check=True
    )
    return done.stdout
