"""One database behind the feedback store: SQLite (WAL) by default, PostgreSQL by URL, with one writer thread.

Every write goes through one thread that commits jobs in groups (one transaction, one fsync for every write queued
meanwhile) and only then resolves each caller's future: a write acknowledged to a client is on disk. Reads use a
connection per thread (SQLite's WAL lets them run beside the writer).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from mlexp.errors import ConfigError

log = logging.getLogger(__name__)

Job = Callable[[Any], Any]  # runs SQL on the writer's connection; its return value resolves the future
_STOP = object()
# jobs committed in one transaction at most: bounds the latency a burst adds to the first write in it
_GROUP = 256


def is_postgres(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


class Database:
    """Connections to one SQLite file or PostgreSQL database; `write` queues a job for the writer thread."""

    def __init__(self, location: str | Path):
        self.location = str(location)
        self.postgres = is_postgres(self.location)
        if not self.postgres:
            path = Path(self.location.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            self.path = path
        self._local = threading.local()
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer_connection = self.connect()
        self._writer = threading.Thread(target=self._write_loop, name="feedback-writer", daemon=True)
        self._writer.start()

    def connect(self) -> Any:
        """A new connection, set up for durability (acknowledged writes survive a crash)."""
        if self.postgres:
            try:
                import psycopg2
            except ImportError as missing:  # pragma: no cover - psycopg2-binary is in the lock
                raise ConfigError("service.store is a PostgreSQL URL: install psycopg2-binary") from missing
            try:
                return psycopg2.connect(self.location)
            except psycopg2.OperationalError as failed:
                first = str(failed).strip().splitlines()[0] if str(failed).strip() else type(failed).__name__
                raise ConfigError(f"service.store={self.location}: cannot connect ({first}); check the URL") from failed
        try:
            connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as failed:  # a folder, or a file of something else
            raise ConfigError(
                f"service.store={self.location}: not a SQLite store ({failed}); name a store's file, or a new one"
            ) from None
        # FULL: the WAL is fsynced at every commit, so an acknowledged record survives even a power cut
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA busy_timeout=30000")
        connection.execute("PRAGMA foreign_keys=ON")
        return connection

    def sql(self, statement: str) -> str:
        """The statement in this database's parameter style (written with `?`)."""
        return statement.replace("?", "%s") if self.postgres else statement

    def read(self, statement: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query, on this thread's own connection (opened again once if the server dropped it)."""
        try:
            return self._read(statement, parameters)
        except Exception:
            if not self._reconnect_reader():
                raise
            return self._read(statement, parameters)

    def _reconnect_reader(self) -> bool:
        connection = getattr(self._local, "connection", None)
        if not self.postgres or connection is None or not connection.closed:
            return False
        self._local.connection = None
        return True

    def _read(self, statement: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self.connect()
            if self.postgres:
                connection.autocommit = True
            self._local.connection = connection
        cursor = connection.cursor()
        try:
            cursor.execute(self.sql(statement), tuple(parameters))
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def write(self, job: Job) -> Future[Any]:
        """Queue `job` for the writer thread; the future resolves once its transaction is committed."""
        future: Future[Any] = Future()
        if not self._writer.is_alive():
            future.set_exception(RuntimeError("the feedback store is closed"))
            return future
        self._jobs.put((job, future))
        return future

    def execute(self, connection: Any, statement: str, parameters: Sequence[Any] = ()) -> Any:
        """Run one statement on the writer's connection (inside a job); returns the cursor."""
        cursor = connection.cursor()
        cursor.execute(self.sql(statement), tuple(parameters))
        return cursor

    def close(self) -> None:
        """Finish the queued writes, then stop the writer and close the connections."""
        if self._writer.is_alive():
            self._jobs.put(_STOP)
            self._writer.join()
        self._writer_connection.close()
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def _write_loop(self) -> None:
        while True:
            first = self._jobs.get()
            if first is _STOP:
                return
            group = [first]
            stop = False
            while len(group) < _GROUP:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                group.append(more)
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[tuple[Job, Future[Any]]]) -> None:
        """All jobs in one transaction; if one fails, each again in its own so only that one fails."""
        try:
            results = self._transaction([job for job, _ in group])
        except Exception:  # noqa: BLE001 - isolate the failing job below
            for job, future in group:
                try:
                    future.set_result(self._transaction([job])[0])
                except Exception as error:  # noqa: BLE001 - handed to the caller waiting on it
                    future.set_exception(error)
            return
        for (_, future), result in zip(group, results, strict=True):
            future.set_result(result)

    def _transaction(self, jobs: list[Job]) -> list[Any]:
        if self.postgres and self._writer_connection.closed:
            self._writer_connection = self.connect()  # PostgreSQL restarted: the next write reconnects
        connection = self._writer_connection
        if not self.postgres:
            connection.execute("BEGIN IMMEDIATE")
        try:
            results = [job(connection) for job in jobs]
        except BaseException:
            connection.rollback()
            raise
        connection.commit()
        return results
