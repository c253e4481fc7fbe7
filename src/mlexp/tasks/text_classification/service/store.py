"""The durable feedback store: feedback records, the human review queue, decisions, reviewer accounts."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from mlexp.errors import DataError
from mlexp.tasks.text_classification.service.database import Database
from mlexp.tasks.text_classification.service.records import (
    FeedbackRecord,
    PendingItem,
    ReviewDecision,
    to_jsonl,
    utc_after,
    utc_now,
)

_ID = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", "postgres": "BIGSERIAL PRIMARY KEY"}
_REAL = {"sqlite": "REAL", "postgres": "DOUBLE PRECISION"}
_FEEDBACK_COLUMNS = "source, classifier, text, predicted_class, score, time, feedback"
_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS feedback (id {id}, source TEXT NOT NULL, classifier TEXT NOT NULL,
       text TEXT NOT NULL, predicted_class TEXT NOT NULL, score {real} NOT NULL, time TEXT NOT NULL, feedback TEXT)""",
    """CREATE TABLE IF NOT EXISTS decisions (feedback_id BIGINT PRIMARY KEY REFERENCES feedback(id),
       reviewer TEXT NOT NULL, time TEXT NOT NULL, final_label TEXT NOT NULL, channel TEXT NOT NULL,
       output TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS skips (feedback_id BIGINT NOT NULL REFERENCES feedback(id), reviewer TEXT NOT NULL,
       time TEXT NOT NULL, PRIMARY KEY (feedback_id, reviewer))""",
    "CREATE TABLE IF NOT EXISTS reviewers (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # the item a reviewer is looking at, hidden from the others until `until` (UTC, utc_now's format)
    """CREATE TABLE IF NOT EXISTS leases (feedback_id BIGINT PRIMARY KEY REFERENCES feedback(id),
       reviewer TEXT NOT NULL, until TEXT NOT NULL)""",
]
# a record waits for review unless a reviewer decided it or the user liked the prediction
_WAITING = "NOT EXISTS (SELECT 1 FROM decisions d WHERE d.feedback_id = f.id) AND COALESCE(f.feedback, '') <> 'like'"
# the largest id a store holds (SQLite INTEGER, PostgreSQL BIGINT); a larger one cannot even be queried
_MAX_ID = 2**63 - 1


def _pending_query(reviewer: str | None, limit: int) -> tuple[str, tuple[Any, ...]]:
    """The review queue's SELECT: waiting records, skipped ones last, none leased to another reviewer."""
    leased = "NOT EXISTS (SELECT 1 FROM leases l WHERE l.feedback_id = f.id AND l.reviewer <> ? AND l.until > ?)"
    skipped = "CASE WHEN s.feedback_id IS NULL THEN 0 ELSE 1 END"
    statement = f"""SELECT f.id, {", ".join("f." + c.strip() for c in _FEEDBACK_COLUMNS.split(","))}, {skipped}
        FROM feedback f LEFT JOIN skips s ON s.feedback_id = f.id AND s.reviewer = ?
        WHERE {_WAITING} {"AND " + leased if reviewer is not None else ""}
        ORDER BY {skipped}, f.id LIMIT ?"""
    values = (reviewer, reviewer, utc_now(), limit) if reviewer is not None else ("", limit)
    return statement, values


def _record(row: tuple[Any, ...]) -> FeedbackRecord:
    source, classifier, text, predicted_class, score, time, feedback = row
    return FeedbackRecord(source, classifier, text, predicted_class, float(score), time, feedback)


class FeedbackStore:
    """Feedback records and review decisions in SQLite (a path) or PostgreSQL (a postgresql:// URL)."""

    def __init__(self, location: str | Path):
        self.db = Database(location)
        kind = "postgres" if self.db.postgres else "sqlite"
        schema = [statement.format(id=_ID[kind], real=_REAL[kind]) for statement in _SCHEMA]
        self.db.write(lambda connection: [self.db.execute(connection, s) for s in schema]).result()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- feedback -------------------------------------------------------------------------------------------
    def add_async(self, records: Iterable[FeedbackRecord]) -> Future[list[int]]:
        """Queue records; the future gives their ids once they are committed (then, and only then, acknowledge)."""
        rows = [
            (r.source, r.classifier, r.text, r.predicted_class, float(r.score), r.time, r.feedback) for r in records
        ]
        statement = f"INSERT INTO feedback ({_FEEDBACK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"

        def insert(connection: Any) -> list[int]:
            return [int(self.db.execute(connection, statement, row).fetchone()[0]) for row in rows]

        return self.db.write(insert)

    def add(self, records: Iterable[FeedbackRecord]) -> list[int]:
        """Store records durably; returns their ids."""
        return self.add_async(records).result()

    def feedback(self) -> list[PendingItem]:
        """Every stored feedback record, oldest first."""
        rows = self.db.read(f"SELECT id, {_FEEDBACK_COLUMNS} FROM feedback ORDER BY id")
        return [PendingItem(int(row[0]), _record(row[1:])) for row in rows]

    def get(self, feedback_id: int) -> FeedbackRecord:
        if not 0 < feedback_id <= _MAX_ID:  # ids count from 1 in a 64-bit column: a larger one is no record either
            raise DataError(f"no feedback record {feedback_id} in the store")
        rows = self.db.read(f"SELECT {_FEEDBACK_COLUMNS} FROM feedback WHERE id = ?", (feedback_id,))
        if not rows:
            raise DataError(f"no feedback record {feedback_id} in the store")
        return _record(rows[0])

    # --- the review queue -----------------------------------------------------------------------------------
    def pending(self, reviewer: str | None = None, limit: int = 20) -> list[PendingItem]:
        """Records waiting for review, oldest first; those `reviewer` skipped come after the rest, and those leased to
        another reviewer are left out (reviewer None: every waiting record)."""
        statement, values = _pending_query(reviewer, limit)
        return [PendingItem(int(row[0]), _record(row[1:8])) for row in self.db.read(statement, values)]

    def lease_next(self, reviewer: str, limit: int, lease_s: float) -> list[PendingItem]:
        """`reviewer`'s queue, its first item leased to them for `lease_s` seconds: no other reviewer is shown it
        meanwhile. One job on the writer thread, so two reviewers asking at once never get the same item."""
        statement, values = _pending_query(reviewer, limit)
        upsert = """INSERT INTO leases (feedback_id, reviewer, until) VALUES (?, ?, ?) ON CONFLICT (feedback_id)
                    DO UPDATE SET reviewer = excluded.reviewer, until = excluded.until"""

        def lease(connection: Any) -> list[PendingItem]:
            rows = list(self.db.execute(connection, statement, values))
            # one item at a time: the reviewer's earlier lease (if any) is given back
            self.db.execute(connection, "DELETE FROM leases WHERE reviewer = ?", (reviewer,))
            # an item this reviewer skipped is not held: it is theirs to see again, but free for anyone else
            if rows and not rows[0][8]:
                self.db.execute(connection, upsert, (int(rows[0][0]), reviewer, utc_after(lease_s)))
            return [PendingItem(int(row[0]), _record(row[1:8])) for row in rows]

        return list(self.db.write(lease).result())

    def progress(self, reviewer: str | None = None) -> dict[str, int]:
        """How many records wait, how many are reviewed, and how many by `reviewer`."""
        waiting = self.db.read(f"SELECT COUNT(*) FROM feedback f WHERE {_WAITING}")[0][0]
        reviewed = self.db.read("SELECT COUNT(*) FROM decisions")[0][0]
        mine = self.db.read("SELECT COUNT(*) FROM decisions WHERE reviewer = ?", (reviewer or "",))[0][0]
        return {"pending": int(waiting), "reviewed": int(reviewed), "reviewed_by_you": int(mine)}

    def decide(
        self,
        feedback_id: int,
        reviewer: str,
        final_label: str,
        *,
        channel: str = "review-page",
        time: str | None = None,
    ) -> ReviewDecision:
        """Store a reviewer's final label for a record (a later decision on the same record replaces it)."""
        decision = ReviewDecision(feedback_id, reviewer, time or utc_now(), final_label, self.get(feedback_id), channel)
        values = (feedback_id, reviewer, decision.time, final_label, channel, json.dumps(decision.a2i_output()))
        statement = """INSERT INTO decisions (feedback_id, reviewer, time, final_label, channel, output)
                       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (feedback_id) DO UPDATE SET reviewer = excluded.reviewer,
                       time = excluded.time, final_label = excluded.final_label, channel = excluded.channel,
                       output = excluded.output"""

        def store(connection: Any) -> None:
            self.db.execute(connection, statement, values)
            self.db.execute(connection, "DELETE FROM leases WHERE feedback_id = ?", (feedback_id,))

        self.db.write(store).result()
        return decision

    def skip(self, feedback_id: int, reviewer: str) -> None:
        """Put a record at the back of `reviewer`'s queue."""
        self.get(feedback_id)
        statement = "INSERT INTO skips (feedback_id, reviewer, time) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
        values = (feedback_id, reviewer, utc_now())

        def store(connection: Any) -> None:
            self.db.execute(connection, statement, values)
            # a skipped item is given back at once: another reviewer may know the answer
            self.db.execute(connection, "DELETE FROM leases WHERE feedback_id = ? AND reviewer = ?", values[:2])

        self.db.write(store).result()

    def decisions(self) -> list[ReviewDecision]:
        """Every review decision, in the order the records arrived."""
        rows = self.db.read(
            f"""SELECT d.feedback_id, d.reviewer, d.time, d.final_label, d.channel,
                {", ".join("f." + c.strip() for c in _FEEDBACK_COLUMNS.split(","))}
                FROM decisions d JOIN feedback f ON f.id = d.feedback_id ORDER BY d.feedback_id"""
        )
        return [ReviewDecision(int(r[0]), r[1], r[2], r[3], _record(r[5:]), r[4]) for r in rows]

    def a2i_output(self, feedback_id: int) -> dict[str, Any]:
        """The stored output.json of a record's decision."""
        rows = self.db.read("SELECT output FROM decisions WHERE feedback_id = ?", (feedback_id,))
        if not rows:
            raise DataError(f"feedback record {feedback_id} has no review decision")
        return dict(json.loads(rows[0][0]))

    # --- reviewer accounts and the session secret ----------------------------------------------------------
    def set_reviewer(self, name: str, password_hash: str) -> None:
        statement = """INSERT INTO reviewers (name, password_hash, created) VALUES (?, ?, ?)
                       ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash"""
        values = (name, password_hash, utc_now())
        self.db.write(lambda connection: self.db.execute(connection, statement, values) and None).result()

    def remove_reviewer(self, name: str) -> bool:
        statement = "DELETE FROM reviewers WHERE name = ?"
        return bool(self.db.write(lambda connection: self.db.execute(connection, statement, (name,)).rowcount).result())

    def reviewer_hash(self, name: str) -> str | None:
        rows = self.db.read("SELECT password_hash FROM reviewers WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def reviewers(self) -> list[str]:
        return [str(row[0]) for row in self.db.read("SELECT name FROM reviewers ORDER BY name")]

    def session_secret(self) -> str:
        """The key that signs reviewers' session cookies, made once per store so sign-ins outlive a restart."""
        statement = "INSERT INTO meta (key, value) VALUES ('session_secret', ?) ON CONFLICT (key) DO NOTHING"
        candidate = secrets.token_hex(32)
        self.db.write(lambda connection: self.db.execute(connection, statement, (candidate,)) and None).result()
        return str(self.db.read("SELECT value FROM meta WHERE key = 'session_secret'")[0][0])


def export_reviews(store: str | Path | FeedbackStore, out: Path) -> int:
    """Write every review decision as JSONL (one line per decision, the format retraining reads); returns the count."""
    opened = store if isinstance(store, FeedbackStore) else FeedbackStore(store)
    try:
        lines = [decision.review_line() for decision in opened.decisions()]
    finally:
        if opened is not store:
            opened.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_text(to_jsonl(lines), encoding="utf-8")
    temporary.replace(out)  # a reader never sees half a file
    return len(lines)
