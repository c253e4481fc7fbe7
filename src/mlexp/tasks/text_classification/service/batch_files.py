"""Batch feedback files in the post's format, {"classifier": "...", "sentences": ["...", ...]}, and the watched folder.

The folder plays the post's S3 bucket with its upload trigger: a file dropped in it is ingested, then moved to
`processed/` (or `failed/` with a `.error.txt` naming the problem) under `<UTC time>-<name>`, so every file is
handled exactly once and a later file with the same name never overwrites an earlier one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlexp.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedbackBatch:
    classifier: str
    sentences: list[str]


def parse_batch(payload: Any, max_sentences: int, origin: str = "the batch") -> FeedbackBatch:
    """Validate a decoded batch file; DataError names what is wrong."""
    if not isinstance(payload, dict):
        raise DataError(f'{origin}: expected a JSON object {{"classifier": ..., "sentences": [...]}}')
    classifier, sentences = payload.get("classifier"), payload.get("sentences")
    if not isinstance(classifier, str) or not classifier:
        raise DataError(f"{origin}: field 'classifier' is missing or not a string")
    if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
        raise DataError(f"{origin}: field 'sentences' must be a list of strings")
    kept = [s for s in sentences if s.strip()]
    if not kept:
        raise DataError(f"{origin}: 'sentences' holds no text")
    if len(kept) > max_sentences:
        raise DataError(f"{origin}: {len(kept)} sentences, over the limit of {max_sentences}; split the file")
    return FeedbackBatch(classifier, kept)


def read_batch_file(path: Path, max_sentences: int) -> FeedbackBatch:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as bad:
        raise DataError(f"{path.name}: not a UTF-8 JSON file ({bad})") from bad
    return parse_batch(payload, max_sentences, path.name)


def _unused_name(folder: Path, name: str) -> Path:
    """`folder/<UTC time>-<name>` (a counter added if taken): a second upload named like an earlier one keeps both."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    candidate, number = folder / f"{stamp}-{name}", 1
    while candidate.exists():
        number += 1
        candidate = folder / f"{stamp}-{number}-{name}"
    return candidate


class WatchedFolder:
    """Polls a folder for *.json batch files and hands each to `ingest` (which stores it durably) exactly once."""

    def __init__(self, folder: Path, ingest: Callable[[FeedbackBatch], int], max_sentences: int, interval_s: float):
        self.folder, self.ingest, self.max_sentences, self.interval_s = folder, ingest, max_sentences, interval_s
        for sub in ("processed", "failed"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ingested = 0

    def scan(self) -> int:
        """Ingest every complete file now in the folder; returns the number of records stored."""
        stored = 0
        # writers should drop files atomically (write elsewhere, then rename); a .part/.tmp file is still being written
        for path in sorted(self.folder.glob("*.json")):
            try:
                stored += self.ingest(read_batch_file(path, self.max_sentences))
            except DataError as bad:
                log.warning("feedback batch %s refused: %s", path.name, bad)
                kept = _unused_name(self.folder / "failed", path.name)
                (kept.parent / f"{kept.name}.error.txt").write_text(f"{bad}\n", encoding="utf-8")
                path.replace(kept)
                continue
            # moved only after the records are committed: a crash in between re-ingests the file, never loses it
            path.replace(_unused_name(self.folder / "processed", path.name))
        self.ingested += stored
        return stored

    def start(self) -> None:
        self._thread = threading.Thread(target=self._poll, name="feedback-inbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan()
            except Exception:  # a full disk or a vanished file must not end the watcher: log and retry
                log.exception("feedback inbox scan failed; retrying in %.1f s", self.interval_s)
            self._stop.wait(self.interval_s)
