"""Recorded events (PutEvents), durable: SQLite in WAL mode by default, PostgreSQL by URL."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

COLUMNS = "user_id, session_id, item_id, event_type, event_value, sent_at, properties"


class EventStore:
    """Append-only table `recommendation_events`; `url` is a SQLite path or a postgresql:// URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        self._lock = threading.Lock()
        if self.postgres:
            import psycopg2

            self._connection: Any = psycopg2.connect(url)
            self._connection.autocommit = True
            serial, marker = "BIGSERIAL", "%s"
        else:
            Path(url).parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(url, check_same_thread=False, isolation_level=None)
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at each commit's checkpoint
            serial, marker = "INTEGER", "?"
        self._insert = f"INSERT INTO recommendation_events ({COLUMNS}) VALUES ({', '.join([marker] * 7)})"
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS recommendation_events (id {serial} PRIMARY KEY, user_id TEXT NOT NULL, "
                "session_id TEXT, item_id TEXT NOT NULL, event_type TEXT NOT NULL, event_value DOUBLE PRECISION, "
                "sent_at DOUBLE PRECISION NOT NULL, properties TEXT)"
            )
            cursor.execute("CREATE INDEX IF NOT EXISTS recommendation_events_user ON recommendation_events (user_id)")

    def record(self, user_id: str, session_id: str, events: list[dict[str, Any]]) -> None:
        rows = [
            (user_id, session_id, e["itemId"], e["eventType"], e.get("eventValue"), float(e["sentAt"]),
             json.dumps(e.get("properties") or {}))
            for e in events
        ]  # fmt: skip
        with self._lock:
            cursor = self._connection.cursor()
            # one transaction per request, on both databases: all its events or none, and a failed insert leaves
            # no transaction open (SQLite would refuse every later request: "cannot start a transaction within a
            # transaction"; PostgreSQL in autocommit would keep the events before the failing one)
            cursor.execute("BEGIN")
            try:
                cursor.executemany(self._insert, rows)
                cursor.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):  # the insert's (or commit's) error is the one to report
                    cursor.execute("ROLLBACK")
                raise

    def all_events(self) -> list[tuple[str, str, str, float | None, float, dict[str, Any]]]:
        """Every event, oldest first: (user, item, type, value, sent_at, properties)."""
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute(
                "SELECT user_id, item_id, event_type, event_value, sent_at, properties FROM recommendation_events "
                "ORDER BY id"
            )
            return [(u, i, t, v, s, json.loads(p or "{}")) for u, i, t, v, s, p in cursor.fetchall()]

    def close(self) -> None:
        with self._lock:
            self._connection.close()
