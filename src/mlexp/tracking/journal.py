"""A trial's tracking journal: the records a trial makes, on local disk before they reach the MLflow store.

One folder per trial process under `<project>/.mlexp/journal/<id>/`:
  header.json   the store (tracking URI, artifact root) and the process that writes the journal
  ops.jsonl     one JSON record per line, appended and flushed as the trial makes it
  state.json    how many records reached the store, and the store's ids for the journal's runs
  artifacts/    copies of the files the trial logged, taken when it logged them
  owner.lock    held by the trial's process while it runs; writer.lock by the process that applies it
A process killed mid-trial leaves complete lines behind (a torn last line is ignored); whoever applies
the journal next (the writer process, `mlexp sync`, or the next mlexp command) resumes from state.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from mlexp.paths import store_home

JOURNAL_DIR = Path(".mlexp") / "journal"
REF_PREFIX = "ref-"  # a run the journal created, named before the store gave it an id
EXPERIMENT_PREFIX = "@"  # an experiment by name, created in the store if missing
JOURNAL_REF_TAG = "mlexp.journal_ref"  # on every run a journal creates: a replay finds a run it created unsaid
NEW_PREFIX = ".new-"  # a journal being made
REMOVED_PREFIX = ".removed-"  # a journal being deleted: out of every reader's sight, in one rename


def journals_root(root: Path) -> Path:
    """Beside the store the journals are for: a DVC experiment's temporary copy is deleted with what it holds."""
    return store_home(root) / JOURNAL_DIR


def new_ref() -> str:
    return REF_PREFIX + uuid.uuid4().hex


def is_ref(value: str) -> bool:
    return value.startswith((REF_PREFIX, EXPERIMENT_PREFIX))


@dataclass
class JournalState:
    """What of a journal has reached the store: records applied, the store's run and experiment ids."""

    applied: int = 0
    ids: dict[str, str] = field(default_factory=dict)
    open_runs: list[str] = field(default_factory=list)
    error: str = ""

    def to_json(self) -> str:
        return json.dumps({"applied": self.applied, "ids": self.ids, "open_runs": self.open_runs, "error": self.error})


class Journal:
    """One trial process's journal folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.owner: FileLock | None = None

    @classmethod
    def create(cls, root: Path, uri: str, artifact_root: str | None, group: str = "") -> Journal:
        """A new journal, owned by this process until `release` (the lock is taken before anyone can see it).

        `group` names what the trial belongs to (a sweep's id): whoever ends the group waits for its journals.
        """
        name = uuid.uuid4().hex
        # made out of sight and shown in one rename, locked and with its header: a visible folder without
        # header.json is then always a leftover, never a journal being made (the lock follows the rename)
        journal = cls(journals_root(root) / (NEW_PREFIX + name))
        (journal.folder / "artifacts").mkdir(parents=True)
        journal.owner = FileLock(str(journal.owner_lock))
        journal.owner.acquire()
        header = {"uri": uri, "artifact_root": artifact_root, "pid": os.getpid(), "group": group}
        (journal.folder / "header.json").write_text(json.dumps(header) + "\n")
        journal.folder = journal.folder.rename(journal.folder.with_name(name))
        return journal

    def release(self) -> None:
        if self.owner is not None:
            self.owner.release()
            self.owner = None

    @property
    def ops_path(self) -> Path:
        return self.folder / "ops.jsonl"

    @property
    def owner_lock(self) -> Path:
        return self.folder / "owner.lock"

    @property
    def writer_lock(self) -> Path:
        return self.folder / "writer.lock"

    def header(self) -> dict[str, Any]:
        return dict(json.loads((self.folder / "header.json").read_text()))

    def read_ops(self, start: int = 0) -> list[dict[str, Any]]:
        """Complete records from number `start` on; a torn last line (a killed writer) is left out."""
        if not self.ops_path.exists():
            return []
        records = []
        with self.ops_path.open("rb") as handle:
            for number, line in enumerate(handle):
                if number < start:
                    continue
                if not line.endswith(b"\n"):
                    break
                records.append(json.loads(line))
        return records

    def state(self) -> JournalState:
        path = self.folder / "state.json"
        if not path.exists():
            return JournalState()
        data = json.loads(path.read_text())
        return JournalState(data["applied"], data["ids"], data["open_runs"], data.get("error", ""))

    def save_state(self, state: JournalState) -> None:
        """Replace state.json in one rename: a reader never sees half of it."""
        partial = self.folder / "state.json.partial"
        partial.write_text(state.to_json())
        partial.replace(self.folder / "state.json")

    def keep_artifact(self, local_path: str) -> str:
        """A copy of a logged file or folder, taken now: the trial may change or delete it before it is stored."""
        source = Path(local_path)
        target = self.folder / "artifacts" / uuid.uuid4().hex[:12] / source.name
        target.parent.mkdir(parents=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
        return str(target)

    def hide(self) -> None:
        """Take the journal out of every reader's sight in one rename; call it while holding its locks."""
        hidden = self.folder.with_name(REMOVED_PREFIX + self.folder.name)
        self.folder.rename(hidden)
        self.folder = hidden

    def remove(self) -> None:
        """Delete the journal: hidden first (see `hide`), so nobody finds it half deleted."""
        if not self.folder.name.startswith(REMOVED_PREFIX):
            with contextlib.suppress(FileNotFoundError):
                self.hide()
        shutil.rmtree(self.folder, ignore_errors=True)


class JournalFile:
    """The trial process's appending end of a journal: each record is one flushed line."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._handle = journal.ops_path.open("a", encoding="utf-8")
        self.count = 0
        # a Tracker's flusher thread appends too: two records written at once would make one torn line
        self._lock = threading.Lock()

    def append(self, op: str, **args: Any) -> int:
        """Append one record; returns how many records the journal holds."""
        line = json.dumps({"op": op, **args}) + "\n"
        with self._lock:
            self._handle.write(line)
            self._handle.flush()  # in the OS's hands: a killed process loses nothing written so far
            self.count += 1
            return self.count

    def close(self) -> None:
        if not self._handle.closed:
            os.fsync(self._handle.fileno())
            self._handle.close()
