"""The tracking writer: a long-lived process that keeps MLflow loaded and applies trials' journals to their stores.

The first mlexp command that records a trial starts it (`writer_address.connect`); it listens on a Unix
socket and serves every later command of the same user and settings, whatever the project, until it has
had nothing to do for MLEXP_WRITER_IDLE_S (600 s). MLflow's import and each store's set-up are paid once,
not per trial. Each command holds one connection and sends JSON lines; those that wait get one back:
  {"cmd": "project", "root": <folder>}                 store what killed trials of this project left behind
  {"cmd": "follow", "journal": <folder>}               apply this journal's records as they are appended
  {"cmd": "sync", "journal": <folder>, "upto": n}      reply once records 1..n are in the store: the store's ids
  {"cmd": "finish", "journal": <folder>, "upto": n}    as sync, then delete the journal
  {"cmd": "finish_later", "journal": <folder>}         the trial ended: delete the journal once it is stored
  {"cmd": "experiment_tag", "uri": ..., "experiment_id": ..., "key": ..., "value": ...}   replies when set (a saved
                                                       view keeps the columns of the one it replaces)
  {"cmd": "sweep_end", "end": {...}}                   rank a sweep's trials, close its record: what to print
  {"cmd": "trial_state", "uri": ..., "run_id": ..., "experiment": <name>}   replies with the trial's status,
                                                       components and metrics (for the DVC stage that continues it)
  {"cmd": "producers", "uri": ..., "experiment": <name>, "wanted": [...]}   replies with the components that made
                                                       the outputs of the stages a partial `dvc repro` kept
A connection that closes while it follows journals it did not finish is a command whose process died:
the writer stores what they hold and ends their unfinished runs KILLED.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from mlexp.database_driver import missing_driver
from mlexp.errors import one_line
from mlexp.tracking import ui_link
from mlexp.tracking.journal import Journal
from mlexp.tracking.journal_apply import FOLDER_GONE, JournalApplier, StoreWriters, replay_orphans, unreached
from mlexp.tracking.producers import Wanted, read_producers
from mlexp.tracking.sagemaker_mirror import failure_line
from mlexp.tracking.store import TrackingStore, bound_store_retries, sqlite_path, store_failure
from mlexp.tracking.trial_state import read_trial_state
from mlexp.tracking.writer_address import idle_s, start_lock

POLL_S = 0.05
LOCK_WAIT_S = 10


class Follower:
    """One journal this process applies, holding its writer lock meanwhile."""

    def __init__(self, folder: str, writers: StoreWriters) -> None:
        self.journal = Journal(Path(folder))
        self.lock = FileLock(str(self.journal.writer_lock))
        self.lock.acquire(timeout=LOCK_WAIT_S)  # held elsewhere (a replay): refused, said at the trial's next sync
        try:
            self.applier = JournalApplier(self.journal, writers)
        except BaseException:
            self.lock.release()  # the writer lives on: a lock it kept would keep `mlexp sync` from the journal
            raise
        self.closing = False  # the trial has ended and does not wait: drop the journal once it is stored

    def reply(self) -> dict[str, Any]:
        state = self.applier.state
        # the SageMaker mirror's failures of this journal's trial: the trial says them, its records are stored
        failures = self.applier.writer.mirror.failures
        mirror = [failure_line(run, failures[run]) for run in state.ids.values() if run in failures]
        return {"ids": state.ids, "applied": state.applied, "error": state.error, "mirror": mirror}

    def release(self, remove: bool) -> None:
        try:
            if remove:
                self.journal.hide()  # while the lock is held: a replayer never finds it half deleted
        finally:
            self.lock.release()
        if remove:
            self.journal.remove()

    def store_all(self) -> None:
        """Its command is gone: store what the journal holds, end what the trial left open, let it go.

        A trial that still runs (it gave up waiting for this writer and closed its connection) keeps its journal:
        nothing is ended KILLED; `mlexp sync` or the next command stores it once the trial is done.
        """
        owner = FileLock(str(self.journal.owner_lock))
        try:
            owner.acquire(timeout=0)
        except (Timeout, *FOLDER_GONE):
            self.give_up("its trial still runs, or the journal is gone")
            return
        try:
            stored = False
            try:
                self.applier.advance()
                if not self.applier.state.error:
                    self.applier.kill_open_runs()
                    stored = True
            except Exception as error:  # the journal stays for `mlexp sync`; the writer goes on with the others
                _say(f"{self.journal.folder} is kept: {type(error).__name__}: {error}")
            self.release(remove=stored)
        finally:
            owner.release()

    def give_up(self, why: str) -> None:
        """Stop applying the journal and leave it where it is, for a replay (`mlexp sync`, the next command)."""
        _say(f"{self.journal.folder} is left for a replay: {why}")
        with contextlib.suppress(Exception):
            self.lock.release()


@dataclass
class Connection:
    """One command's connection: what it sent so far and the journals it follows."""

    socket: socket.socket
    pending: bytes = b""
    followed: dict[str, Follower] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # for the command's user, with the next reply to its trial

    def reply(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the command is gone: the connection's end says the rest
            self.socket.sendall((json.dumps(message) + "\n").encode())


class Writer:
    def __init__(self, listener: socket.socket, path: Path) -> None:
        self.listener, self.path = listener, path
        self.socket_file = _file(path)
        self.writers = StoreWriters()
        self.connections: dict[socket.socket, Connection] = {}
        self.finishing: list[Follower] = []  # finished later by commands that are gone
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ)
        self.idle_since = time.monotonic()

    def serve(self) -> None:
        while True:
            for key, _ in self.selector.select(POLL_S):
                try:
                    if key.fileobj is self.listener:
                        self._accept()
                    else:
                        self._read(self.connections[key.fileobj])  # type: ignore[index]
                except Exception as error:  # never the end of the writer every command shares
                    _say(f"{type(error).__name__}: {error}")
            self._advance()
            if self.connections or self.finishing:
                self.idle_since = time.monotonic()
            elif time.monotonic() - self.idle_since > idle_s() and self._leave():
                return

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        self.connections[sock] = Connection(sock)
        self.selector.register(sock, selectors.EVENT_READ)

    def _read(self, connection: Connection) -> None:
        try:
            chunk = connection.socket.recv(1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            self._closed(connection)
            return
        connection.pending += chunk
        *lines, connection.pending = connection.pending.split(b"\n")
        for line in lines:
            if line.strip():
                self._command(line, connection)

    def _command(self, line: bytes, connection: Connection) -> None:
        """Carry out one command; one that fails is answered (if it expects an answer), never fatal to the writer."""
        command: dict[str, Any] = {}
        try:
            command = json.loads(line)
            self._handle(command, connection)
        except Exception as error:
            text = one_line(error)
            _say(f"command {line[:200]!r} failed: {text}")
            if command.get("cmd") in ("sync", "finish", "experiment_tag", "sweep_end", "trial_state", "producers"):
                connection.reply({"ids": {}, "applied": 0, "error": text})

    def _closed(self, connection: Connection) -> None:
        self.selector.unregister(connection.socket)
        connection.socket.close()
        del self.connections[connection.socket]
        for follower in connection.followed.values():
            if follower.closing:
                self.finishing.append(follower)
            else:
                _guarded(follower, follower.store_all)

    def _advance(self) -> None:
        for connection in list(self.connections.values()):
            for folder, follower in list(connection.followed.items()):
                if not _guarded(follower, follower.applier.advance):
                    del connection.followed[folder]
                    connection.refused[folder] = follower.applier.state.error
                elif follower.closing and (follower.applier.ended or follower.applier.state.error):
                    _guarded(follower, functools.partial(follower.release, remove=not follower.applier.state.error))
                    del connection.followed[folder]
        for follower in list(self.finishing):
            _guarded(follower, follower.store_all)
            self.finishing.remove(follower)

    def _handle(self, command: dict[str, Any], connection: Connection) -> None:
        kind = command["cmd"]
        if kind == "project":
            _report(functools.partial(self._replay, command["root"], connection), "a killed trial's journal")
            return
        if kind == "sweep_end":
            # seconds of queries and charts: in a thread, so that other commands' journals go on being stored
            threading.Thread(target=lambda: connection.reply(_sweep_end(command["end"])), daemon=True).start()
            return
        if kind == "trial_state":
            # a server store may answer slowly: the other trials' journals go on being stored meanwhile
            client = self.writers.get(command["uri"], None).client()
            threading.Thread(target=lambda: connection.reply(_trial_state(client, command)), daemon=True).start()
            return
        if kind == "producers":
            client = self.writers.get(command["uri"], None).client()
            threading.Thread(target=lambda: connection.reply(_producers(client, command)), daemon=True).start()
            return
        if kind == "experiment_tag":
            try:
                self._tag_experiment(command)
                connection.reply({"error": ""})
            except Exception as error:  # a read-only store: the link still filters and sorts
                _say(f"the UI view was not saved: {type(error).__name__}: {error}")
                connection.reply({"error": one_line(error)})
            return
        folder = command["journal"]
        if kind == "follow":
            try:
                connection.followed[folder] = Follower(folder, self.writers)
            except Exception as error:  # the store cannot be opened: said to the trial at its next sync
                connection.refused[folder] = missing_driver(error) or one_line(error)
            return
        follower = connection.followed.get(folder)
        if kind == "finish_later":
            if follower is not None:
                follower.closing = True
            return
        if follower is None:
            refusal = connection.refused.get(folder, "this journal is not followed")
            connection.reply({"ids": {}, "applied": 0, "error": refusal})
            return
        follower.applier.advance(command["upto"])
        reply = follower.reply()
        if not reply["error"]:  # the store answers: the next command's replay asks it again for the journals kept
            self.writers.unanswered.pop(follower.applier.writer.store.uri, None)
        if kind == "finish" and not reply["error"]:
            del connection.followed[folder]
            follower.release(remove=True)
        elif reply["error"]:
            # refused: the journal stays, and its lock goes, so that `mlexp sync` can store it once the store is fixed
            del connection.followed[folder]
            connection.refused[folder] = reply["error"]
            follower.give_up(reply["error"])
        reply["notes"], connection.notes = connection.notes, []
        connection.reply(reply)  # last: anything that fails before it is answered once, by _command

    def _replay(self, root: str, connection: Connection) -> None:
        """Store what the project's killed trials left; a store that does not answer keeps them, said in one line."""
        connection.notes += unreached(replay_orphans(Path(root), self.writers, check_first=True))

    def _tag_experiment(self, command: dict[str, Any]) -> None:
        client = self.writers.get(command["uri"], None).client()
        if command["key"].startswith(ui_link.SAVED_VIEW_TAG):
            ui_link.set_view_tag(client, command["experiment_id"], command["key"], command["value"])
        else:
            client.set_experiment_tag(command["experiment_id"], command["key"], command["value"])

    def _leave(self) -> bool:
        """Stop listening, unless a command is connecting right now (it holds the start lock while it does)."""
        try:
            with start_lock(self.path).acquire(timeout=0):
                if self.selector.select(0):
                    return False
                if _same_file(self.path, self.socket_file):
                    self.path.unlink()
                    log = self.path.with_suffix(".log")
                    with contextlib.suppress(OSError):
                        if not log.stat().st_size:
                            log.unlink()  # nothing to read in it
                self.listener.close()
                return True
        except Timeout:
            return False


_SUMMARIES = threading.Lock()  # one sweep's end at a time: matplotlib's shared state (fonts, caches) is not thread-safe


def _sweep_end(end: dict[str, Any]) -> dict[str, Any]:
    """A sweep's summary, done here where MLflow and the store are loaded; the sweep's process prints it."""
    from mlexp.sweeps.summary import SweepEnd, summarise

    try:
        with _SUMMARIES:
            return summarise(SweepEnd(**end)).to_reply() | {"error": ""}
    except Exception as error:
        text = one_line(error)
        _say(f"the summary of sweep {end.get('name')} failed: {text}")
        return {"error": text}


def _trial_state(client: Any, command: dict[str, Any]) -> dict[str, Any]:
    try:
        state = read_trial_state(client, command["run_id"], command["experiment"])
        return {"state": state.to_reply() if state else None, "error": ""}
    except Exception as error:
        return {"error": store_failure(error, command["uri"])}


def _producers(client: Any, command: dict[str, Any]) -> dict[str, Any]:
    try:
        wanted = [Wanted(**want) for want in command["wanted"]]
        found = read_producers(client, command["experiment"], wanted)
        return {"producers": {stage: producer.to_reply() for stage, producer in found.items()}, "error": ""}
    except Exception as error:
        return {"error": store_failure(error, command["uri"])}


def _file(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_dev, info.st_ino


def _same_file(path: Path, identity: tuple[int, int]) -> bool:
    """Whether `path` is still the file it was (a newer writer may have replaced a removed socket)."""
    try:
        return _file(path) == identity
    except OSError:
        return False


def _guarded(follower: Follower, action: Callable[[], object]) -> bool:
    """Do `action` for one journal; a journal that breaks it (deleted, torn) is left for a replay, not fatal."""
    try:
        action()
    except Exception as error:
        follower.applier.state.error = follower.applier.state.error or f"{type(error).__name__}: {error}"
        follower.give_up(f"{type(error).__name__}: {error}")
        return False
    return True


def _say(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} mlexp tracking writer: {message}", file=sys.stderr, flush=True)


def _report(action: Callable[[], object], what: str) -> None:
    try:
        action()
    except Exception as error:
        _say(f"{what}: {type(error).__name__}: {error}")


def _listen(path: Path) -> socket.socket:
    """Listen at `path`; the command that started this process holds the start lock, so a file there is stale."""
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    listener.setblocking(False)
    return listener


def _warm(root: Path, writers: StoreWriters) -> None:
    """Import MLflow and open the project's default store now, before a trial needs it."""
    store = TrackingStore.resolve(None, root)
    db = sqlite_path(store.uri)
    if db is None or db.exists():  # a fresh database is created under the trial's lock, not here
        writers.get(store.uri, store.artifact_root)
    else:
        import mlflow.tracking  # noqa: F401


def main() -> None:
    path, root = Path(sys.argv[1]), Path(sys.argv[2])
    listener = _listen(path)  # first: the command that started this process goes on as soon as it connects
    bound_store_retries()
    from mlexp.console import quiet_third_party

    quiet_third_party()
    writer = Writer(listener, path)
    _report(lambda: _warm(root, writer.writers), "the store could not be opened")
    writer.serve()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # everything is stored: skip tearing down MLflow's modules (a second or more)


if __name__ == "__main__":
    main()
