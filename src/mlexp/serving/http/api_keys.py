"""API keys with usage plans, stored hashed in SQLite (WAL): the API Gateway key + usage plan of the post.

A key is 32 random bytes shown once; only its SHA-256 is stored (a random token needs no salt or
slow hash: it cannot be guessed from a dictionary). Each request is counted in one atomic upsert
that also enforces the plan, so concurrent requests — from any number of threads or processes —
never let more than `limit` through in a period.

Durability: every counted request is committed before the response leaves (WAL with
synchronous=NORMAL, so a commit is a write to the WAL file without an fsync). A killed server
loses no count; an OS crash or power cut can lose the counts since the last WAL checkpoint
(at most ~1,000 pages), i.e. a few requests may go uncounted — never counted twice.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from mlexp.errors import MlexpError
from mlexp.serving.http.json_api import ServiceError
from mlexp.serving.http.usage_period import PERIODS, period_label, seconds_to_end, utc_now

# the post's API Gateway usage plan: 2,000 requests per month
DEFAULT_LIMIT = 2000
DEFAULT_PERIOD = "month"

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    request_limit INTEGER NOT NULL,
    period TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS one_active_key_per_name ON api_keys (name) WHERE revoked_at IS NULL;
CREATE TABLE IF NOT EXISTS key_usage (
    key_id INTEGER NOT NULL REFERENCES api_keys (id),
    period TEXT NOT NULL,
    requests INTEGER NOT NULL,
    PRIMARY KEY (key_id, period)
) WITHOUT ROWID;
"""
# one statement per request: counts it and enforces the plan atomically, for an unrevoked key only
# (0 rows changed: over the plan, or revoked since its record was cached)
COUNT_REQUEST = """
INSERT INTO key_usage (key_id, period, requests)
SELECT id, ?, 1 FROM api_keys WHERE id = ? AND revoked_at IS NULL
ON CONFLICT (key_id, period) DO UPDATE SET requests = requests + 1 WHERE requests < ?
"""
MAX_LIMIT = 2**63 - 1
FIND_KEY = "SELECT id, name, request_limit, period, created_at, revoked_at FROM api_keys WHERE token_sha256 = ?"


class ApiKeyError(MlexpError):
    """A key cannot be created or revoked as asked."""


@dataclass(frozen=True)
class KeyRecord:
    """A key's name and usage plan (never its token)."""

    name: str
    limit: int
    period: str
    created_at: str
    revoked_at: str | None = None

    @property
    def plan(self) -> str:
        return f"{self.limit} requests per {self.period}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiKeys:
    """The key store of a service: create, list, revoke keys; check and count a request's key."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._known: dict[str, tuple[int, KeyRecord]] = {}  # token hash -> key id and record
        try:
            # autocommit: each statement is its own transaction; the lock lets threads share the connection
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as failed:  # a folder, or a file of something else
            raise ApiKeyError(
                f"{self.path}: not a key store ({failed}); name a key store's file, or a new one"
            ) from None
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)

    def create(self, name: str, limit: int = DEFAULT_LIMIT, period: str = DEFAULT_PERIOD) -> str:
        """A new key for `name` with its usage plan; returns the token (stored only as a hash)."""
        if not name.strip():
            raise ApiKeyError("a key needs a name: mlexp keys create <name>")
        if period not in PERIODS:
            raise ApiKeyError(f"period {period!r} is not a usage-plan period; choose one of: {', '.join(PERIODS)}")
        if limit < 1:
            raise ApiKeyError(f"limit {limit} allows no request; give --limit 1 or more (or revoke the key)")
        if limit > MAX_LIMIT:  # SQLite's integers are 64-bit
            raise ApiKeyError(f"limit {limit} is more than the key store holds; give --limit {MAX_LIMIT:,} or less")
        token = secrets.token_urlsafe(32)
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO api_keys (name, token_sha256, request_limit, period, created_at) VALUES (?,?,?,?,?)",
                    (name, token_hash(token), limit, period, utc_now().isoformat(timespec="seconds")),
                )
        except sqlite3.IntegrityError:
            raise ApiKeyError(
                f"key {name!r} exists; revoke it first (mlexp keys revoke {name}) or pick another name"
            ) from None
        return token

    def revoke(self, name: str) -> None:
        """Revoke the active key named `name`: its requests get 401 from now on."""
        with self._lock:
            changed = self._db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (utc_now().isoformat(timespec="seconds"), name),
            ).rowcount
        if not changed:
            raise ApiKeyError(f"no active key named {name!r}; see mlexp keys list")

    def list(self) -> list[KeyRecord]:
        """Every key, active and revoked, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name, request_limit, period, created_at, revoked_at FROM api_keys ORDER BY id"
            ).fetchall()
        return [KeyRecord(*row) for row in rows]

    def usage(self, name: str) -> int:
        """Requests counted in the current period for the key named `name` (its latest key)."""
        with self._lock:
            row = self._db.execute(
                "SELECT u.requests FROM api_keys k JOIN key_usage u ON u.key_id = k.id AND u.period = "
                "CASE k.period WHEN 'day' THEN ? ELSE ? END WHERE k.name = ? ORDER BY k.id DESC LIMIT 1",
                (period_label("day", utc_now()), period_label("month", utc_now()), name),
            ).fetchone()
        return int(row[0]) if row else 0

    def check(self, token: str | None) -> KeyRecord:
        """The key's record after counting this request; ServiceError 401 (no/unknown/revoked) or 429 (over plan)."""
        if not token:
            raise ServiceError(401, "missing API key: send it in the x-api-key header")
        digest = token_hash(token)
        now = utc_now()
        with self._lock:
            known = self._known.get(digest) or self._find(digest)
            key_id, record = known
            counted = self._db.execute(COUNT_REQUEST, (period_label(record.period, now), key_id, record.limit))
            if counted.rowcount == 0:
                self._find(digest)  # 401 if it was revoked meanwhile; else it is over its plan
        if counted.rowcount == 0:
            retry = seconds_to_end(record.period, now)
            raise ServiceError(
                429,
                f"usage plan of key {record.name!r} is used up ({record.plan}); retry in {retry} s",
                {"Retry-After": str(retry)},
            )
        return record

    def _find(self, digest: str) -> tuple[int, KeyRecord]:
        """The stored key with this hash (cached: a key's name and plan never change), else ServiceError 401."""
        row = self._db.execute(FIND_KEY, (digest,)).fetchone()
        if row is None:
            raise ServiceError(401, "unknown API key")
        key_id, *fields = row
        record = KeyRecord(*fields)
        if record.revoked_at is not None:
            self._known.pop(digest, None)
            raise ServiceError(401, "this API key was revoked")
        self._known[digest] = (key_id, record)
        return key_id, record

    def close(self) -> None:
        with self._lock:
            self._db.close()
