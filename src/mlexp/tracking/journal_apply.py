"""Apply a journal's records to its MLflow store, and replay the journals of trials whose process was killed."""

from __future__ import annotations

import contextlib
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from filelock import FileLock, Timeout

from mlexp.database_driver import missing_driver
from mlexp.errors import one_line
from mlexp.tracking import tags as mlexp_tags
from mlexp.tracking.journal import EXPERIMENT_PREFIX, JOURNAL_REF_TAG, Journal, journals_root
from mlexp.tracking.store import (
    QUICK_CHECK,
    UNREACHABLE,
    TrackingStore,
    retried_status,
    retries_bounded_here,
    sqlite_path,
    store_failure,
    unreachable,
)
from mlexp.tracking.store_writer import StoreWriter

REF = re.compile(r"ref-[0-9a-f]{32}")
EXPERIMENT_KEYS = frozenset(
    {mlexp_tags.TRIALS_EXPERIMENT_ID}
)  # tags whose value may name an experiment for the store to resolve
KILLED_NOTE = "the trial's process stopped before the trial ended; its journal was replayed into the store"
RECHECK_S = 60  # a store that did not answer a replay the command did not ask for is not asked again before this


@dataclass
class StoreWriters:
    """One StoreWriter per store: creating an MLflow client (engine, schema check) is paid once per process.

    The tracking writer lives across commands and projects: a SQLite file replaced or deleted since its
    client opened it is opened anew (records must not go to a deleted file), and only the `keep` stores
    used last stay open.
    """

    # by store and artifact root: a client made without the root must not create a trial's experiments
    writers: dict[tuple[str, str | None], StoreWriter] = field(default_factory=dict)  # the one used last at the end
    files: dict[tuple[str, str | None], tuple[int, int] | None] = field(default_factory=dict)
    keep: int = 16
    # server stores that did not answer a check: when (time.monotonic()) and why; each command's replay asks again
    # only after RECHECK_S, so that a sweep's jobs do not each wait for the same dead server
    unanswered: dict[str, tuple[float, str]] = field(default_factory=dict)

    def get(self, uri: str, artifact_root: str | None) -> StoreWriter:
        key = (uri, artifact_root)
        writer = self.writers.pop(key, None)
        if writer is not None and self.files[key] != _database_file(uri):
            _forget_engine(uri)
            writer = None
        if writer is None:
            store = TrackingStore(uri, artifact_root)
            writer = StoreWriter(store.client(), store)
            self.files[key] = _database_file(uri)
        self.writers[key] = writer
        for old in list(self.writers)[: -self.keep]:
            del self.writers[old], self.files[old]
            _forget_engine(old[0])
        return writer


def _database_file(uri: str) -> tuple[int, int] | None:
    """Which file a SQLite store is (device, inode); None for other stores or no file."""
    db = sqlite_path(uri)
    try:
        info = db.stat() if db is not None else None
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if info is not None else None


def _forget_engine(uri: str) -> None:
    """Close MLflow's cached engine and store of a SQLite store (MLflow keeps both per process, by URI)."""
    if sqlite_path(uri) is None:
        return
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    engine = SqlAlchemyStore._engine_map.pop(uri, None)
    if engine is not None:
        engine.dispose()
    _tracking_store_registry._get_store_with_resolved_uri.cache_clear()


class JournalApplier:
    """Applies one journal's records in order, keeping state.json up to date."""

    def __init__(self, journal: Journal, writers: StoreWriters, resuming: bool = False) -> None:
        """`resuming`: another process applied this journal before and may have died right after creating a run."""
        self.journal = journal
        header = journal.header()
        self.writer = writers.get(header["uri"], header.get("artifact_root"))
        self.state = journal.state()
        self.ended = False
        self._may_exist = resuming  # the next run to create may be in the store already

    def advance(self, upto: int | None = None) -> int:
        """Apply the records not applied yet (up to record number `upto`); returns how many were applied."""
        if self.state.error:
            return 0
        ops = self.journal.read_ops(self.state.applied)
        if upto is not None:
            ops = ops[: max(0, upto - self.state.applied)]
        try:
            for op in ops:
                self._apply(op)
                self.state.applied += 1
                if op["op"] == "create_run":  # saved at once: a replay after a kill must not create it twice
                    self.journal.save_state(self.state)
        except Exception as error:  # the store refused, or could not be reached: keep the journal, say why
            self.state.error = store_failure(error, self.writer.store.uri, writing=True)
        if ops:
            self.journal.save_state(self.state)
        return len(ops)

    def kill_open_runs(self) -> list[str]:
        """End the runs the trial never ended (its process was killed) as KILLED; returns their ids."""
        killed = []
        for ref in list(self.state.open_runs):
            run = self.state.ids.get(ref, ref)
            self.writer.log_batch(run, tags=[(mlexp_tags.ERROR, KILLED_NOTE)])
            self.writer.set_status(run, "KILLED")
            self.state.open_runs.remove(ref)
            killed.append(run)
        self.journal.save_state(self.state)
        return killed

    def _real(self, value: str, experiments: bool = True) -> str:
        if experiments and value.startswith(EXPERIMENT_PREFIX):
            if value not in self.state.ids:
                self.state.ids[value] = self.writer.experiment_id(value[len(EXPERIMENT_PREFIX) :])
            return self.state.ids[value]
        return self.state.ids.get(value, value) if REF.fullmatch(value) else value

    def _pairs(self, pairs: list[list[str]]) -> list[tuple[str, str]]:
        # a value naming an experiment ("@name") only under the keys made for it: a user's "@alice" stays as it is
        return [(key, self._real(value, experiments=key in EXPERIMENT_KEYS)) for key, value in pairs]

    def _apply(self, op: dict[str, Any]) -> None:
        kind = op["op"]
        if kind == "end":
            self.ended = True
            return
        if kind == "create_run":
            experiment, ref = self._real(op["experiment"]), op["ref"]
            run = self.writer.find_run(experiment, JOURNAL_REF_TAG, ref) if self._may_exist else None
            # only the first run after a resume can have been created unsaid (each creation saves the state), however
            # many other records are re-applied before it: they were after the last saved state too
            self._may_exist = False
            if run is None:
                tags = {**dict(self._pairs(op["tags"])), JOURNAL_REF_TAG: ref}
                run = self.writer.create_run(experiment, op["run_name"], tags)
            self.state.ids[ref] = run
            self.state.open_runs.append(op["ref"])
            return
        run = self._real(op["run"])
        if kind == "log_batch":
            metrics = [(m[0], float(m[1]), int(m[2]), int(m[3])) for m in op["metrics"]]
            self.writer.log_batch(run, metrics, self._pairs(op["params"]), self._pairs(op["tags"]))
        elif kind == "log_text":
            self.writer.log_text(run, op["text"], op["path"])
        elif kind == "log_artifact":
            self.writer.log_artifact(run, op["path"], op["artifact_path"])
        elif kind == "log_dataset":
            self.writer.log_dataset(run, op["name"], op["digest"], op["source"], op["context"])
        elif kind == "set_status":
            self.writer.set_status(run, op["status"], op["terminated"])
            if op["terminated"]:
                self.state.open_runs = [r for r in self.state.open_runs if self.state.ids.get(r, r) != run]
            elif op["run"] not in self.state.open_runs:
                self.state.open_runs.append(op["run"])
        else:
            raise ValueError(f"unknown journal record {kind!r}")


# what taking a lock in a journal folder raises when the folder is removed meanwhile: filelock makes sure the
# folder exists (mkdir: FileExistsError, then it is gone) and opens the lock file in it (FileNotFoundError)
FOLDER_GONE = (FileNotFoundError, FileExistsError)
HIDDEN_AGE_S = 60  # a journal being made or deleted (hidden) this long ago was left by a killed process


def orphaned(root: Path) -> list[Journal]:
    """Journals no live process writes or applies: their trial's process was killed, or the store refused them."""
    found = []
    for folder in sorted(journals_root(root).glob("*/")):
        if not folder.name.startswith(".") and (folder / "header.json").exists():
            found.append(Journal(folder))
    return found


@dataclass(frozen=True)
class Replayed:
    """One journal replayed: its folder, the runs it ended as KILLED, or why the store refused it; its store."""

    folder: Path
    killed: list[str]
    error: str
    uri: str = ""
    # False: kept untried because its store did not answer a check moments ago (RECHECK_S), which that command said
    asked: bool = True


def replay_orphans(root: Path, writers: StoreWriters | None = None, *, check_first: bool = False) -> list[Replayed]:
    """Store what killed trials left in their journals; their unfinished runs end KILLED.

    Several processes may replay at once (each sweep worker's writer does at start-up): a journal is applied
    by whoever takes its locks, and deleted while they are held. A store that cannot be reached is tried once: its
    other journals are kept untried. `check_first` (a replay the command did not ask for) first asks each server
    store whether it answers at all, under QUICK_CHECK's bound, and keeps its journals for later if it does not.
    """
    writers = writers or StoreWriters()
    replayed = []
    down: dict[str, str] = {}  # store: why it could not be reached
    not_asked: set[str] = set()  # stores a recent check found down: not asked again, nor said again
    for journal in orphaned(root):
        uri = store_of(journal)
        if check_first and uri not in down and uri not in not_asked:
            reason, asked = _unanswered(uri, writers)
            if reason:
                down[uri] = reason
            if reason and not asked:
                not_asked.add(uri)
        try:
            result = _kept(journal, uri, down[uri], uri not in not_asked) if uri in down else _replay(journal, writers)
        except Exception as error:  # one bad journal does not keep the others from the store
            result = Replayed(journal.folder, [], missing_driver(error) or one_line(error), uri)
        if result is not None:
            replayed.append(result)
            if unreachable(result.error):
                down[uri] = result.error
    _remove_stubs(root)
    return replayed


def _unanswered(uri: str, writers: StoreWriters) -> tuple[str, bool]:
    """Why the server store `uri` could not be reached (within QUICK_CHECK's bound), "" if it answered or is local;
    and whether it was asked now (not when a check found it down less than RECHECK_S ago)."""
    if urlparse(uri).scheme in ("", "file", "sqlite"):
        return "", True
    checked = writers.unanswered.get(uri)
    if checked is not None and time.monotonic() - checked[0] < RECHECK_S:
        return checked[1], False
    with retries_bounded_here(QUICK_CHECK):
        try:
            writers.get(uri, None).client().search_experiments(max_results=1)
            reason = ""
        except Exception as error:
            reason = store_failure(error, uri)  # under the bound: the timeout it names is the one waited
            if not unreachable(reason) and (status := retried_status(error)) is not None:
                # a server that fails even this harmless read on every try (a 429) would make each journal wait
                # minutes of retries: kept for later like one that is down
                reason = f"{UNREACHABLE} {uri} (it answered HTTP {status} to every try)"
    if unreachable(reason):
        writers.unanswered[uri] = (time.monotonic(), reason)
        return reason, True
    writers.unanswered.pop(uri, None)
    return "", True  # it answered (a refusal of this request is the replay's to say)


def _kept(journal: Journal, uri: str, reason: str, asked: bool) -> Replayed | None:
    """A journal kept untried: its store could not be reached. None if a live process holds it (it stores it)."""
    return None if _busy(journal) else Replayed(journal.folder, [], reason, uri, asked)


def unreached(replayed: list[Replayed]) -> list[str]:
    """One line per store that could not be reached: the journals kept for it wait for `mlexp sync`."""
    kept: dict[str, list[Replayed]] = {}
    for entry in replayed:
        if unreachable(entry.error) and entry.asked:  # a store not asked again was said by the command that asked
            kept.setdefault(entry.error, []).append(entry)
    lines = []
    for reason, entries in kept.items():
        count, them = (f"{len(entries)} trial journals", "them") if len(entries) > 1 else ("1 trial journal", "it")
        lines.append(f"mlexp: {count} kept: {reason}; `mlexp sync` sends {them} once the server answers")
    return lines


# a sweep hears of a store that is down from its first trial's writer, then from its own replay at its end
_SAID: set[str] = set()


def say_once(lines: list[str]) -> None:
    """Print each line on stderr, unless this process said it already."""
    for line in lines:
        if line not in _SAID:
            print(line, file=sys.stderr)
            _SAID.add(line)


def store_of(journal: Journal) -> str:
    """The store a journal is for, as its header names it; "" for a journal whose header cannot be read."""
    try:
        return str(journal.header()["uri"])
    except (OSError, ValueError, KeyError):
        return ""


def discard(root: Path, folders: list[Path]) -> tuple[list[Path], list[Path]]:
    """Delete the journals in `folders` with the records in them: (discarded, busy). A journal whose trial still
    runs, or that a writer is storing, is busy and stays; one stored meanwhile is neither."""
    discarded, busy = [], []
    for folder in folders:
        journal = Journal(folder)
        state = _hide_unless_busy(journal)
        if state == "busy":
            busy.append(folder)
        elif state == "hidden":
            journal.remove()
            discarded.append(folder)
    _remove_stubs(root)
    return discarded, busy


def _hide_unless_busy(journal: Journal) -> str:
    """Hide `journal` under its owner's and its writer's locks: "hidden"; "busy" when a process holds either; "gone"
    when it was stored (or removed) meanwhile."""
    with contextlib.ExitStack() as held:
        for path in (journal.owner_lock, journal.writer_lock):
            lock = FileLock(str(path))
            try:
                lock.acquire(timeout=0)
            except FOLDER_GONE:
                return "gone"
            except Timeout:
                return "busy"
            held.callback(lock.release)
        if not (journal.folder / "header.json").exists():
            return "gone"  # stored by a replay meanwhile: only its locks are left, for _remove_stubs
        journal.hide()  # under both locks: no replayer finds it half deleted
        return "hidden"


def _replay(journal: Journal, writers: StoreWriters) -> Replayed | None:
    owner, writer = FileLock(str(journal.owner_lock)), FileLock(str(journal.writer_lock))
    try:
        owner.acquire(timeout=0)
    except (Timeout, *FOLDER_GONE):
        return None  # its trial is still running, or the journal is gone
    removed = False
    try:
        try:
            writer.acquire(timeout=0)
        except (Timeout, *FOLDER_GONE):
            return None  # another process is applying it
        try:
            if not (journal.folder / "header.json").exists():
                shutil.rmtree(journal.folder, ignore_errors=True)  # another replayer stored it: only our locks left
                return None
            applier = JournalApplier(journal, writers, resuming=True)
            applier.state.error = ""  # try again: the store may be back
            applier.advance()
            killed = [] if applier.state.error else applier.kill_open_runs()
            result = Replayed(journal.folder, killed, applier.state.error, applier.writer.store.uri)
            if not applier.state.error:
                journal.hide()
                removed = True
            return result
        finally:
            writer.release()
    finally:
        owner.release()
        if removed:
            journal.remove()


def _remove_stubs(root: Path) -> None:
    """Delete folders holding only lock files (a replayer locked a journal as it was removed) and hidden leftovers."""
    now = time.time()
    for folder in journals_root(root).glob("*/"):
        try:
            if folder.name.startswith("."):
                if now - folder.stat().st_mtime > HIDDEN_AGE_S:
                    shutil.rmtree(folder, ignore_errors=True)
            elif not (folder / "header.json").exists() and not _busy(Journal(folder)):
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue  # removed meanwhile


def _busy(journal: Journal) -> bool:
    """Whether a live process still writes or applies the journal."""
    for path in (journal.owner_lock, journal.writer_lock):
        lock = FileLock(str(path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True
        except FOLDER_GONE:
            return False  # its writer stored it and removed the folder since it was listed
        lock.release()
    return False


def _in_group(journal: Journal, group: str | None) -> bool:
    try:
        return group is None or journal.header().get("group") == group
    except (OSError, ValueError):
        return False  # removed meanwhile: stored


def _writing(journal: Journal) -> bool:
    """Whether a writer process holds the journal: it is storing it now."""
    lock = FileLock(str(journal.writer_lock))
    try:
        lock.acquire(timeout=0)
    except (Timeout, *FOLDER_GONE):
        return True
    lock.release()
    return False


def settle(root: Path, group: str | None = None, wait_s: float = 30) -> list[Replayed]:
    """Wait for the trials and writers of the project's journals (of `group`) to stop, then store what is left.

    A sweep calls this before it reads or marks its trials: their writers may still be storing them. Past
    `wait_s` it waits only while a writer still stores a journal; what is left then is said on stderr.
    """
    deadline = time.monotonic() + wait_s
    while True:
        busy = [journal for journal in orphaned(root) if _in_group(journal, group) and _busy(journal)]
        if not busy or (time.monotonic() >= deadline and not any(_writing(journal) for journal in busy)):
            break
        time.sleep(0.05)
    # checked first: this process (a sweep's) runs with MLflow's own retries, minutes for a server that is down
    replayed = replay_orphans(root, check_first=True)
    say_once(unreached(replayed))
    said = {entry.folder for entry in replayed if unreachable(entry.error)}
    left = [journal.folder for journal in orphaned(root) if _in_group(journal, group) and journal.folder not in said]
    if left:
        folders = " ".join(str(folder) for folder in left)
        print(f"{len(left)} trial(s) still being stored: run `mlexp sync` ({folders})", file=sys.stderr)
    return replayed
