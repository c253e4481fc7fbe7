"""The tracking writer: a process that imports MLflow and applies trials' journals while the trials work.

Started by `mlexp` before it composes the config (`python -m mlexp.tracking.writer_process <project>`),
it pays for MLflow's import and the store's set-up on another core. Commands arrive on stdin, one
JSON line each; `sync` and `finish` get one JSON line back on stdout:
  {"cmd": "follow", "journal": <folder>}               apply this journal's records as they are appended
  {"cmd": "sync", "journal": <folder>, "upto": n}      reply once records 1..n are in the store: the store's ids
  {"cmd": "finish", "journal": <folder>, "upto": n}    as sync, then delete the journal
When stdin closes without `finish` (the trial's process died), it applies what the journal holds and
ends the trial's unfinished runs KILLED. At start it replays journals other killed trials left behind.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
from pathlib import Path
from typing import IO, Any

from filelock import FileLock

from mlexp.tracking.journal import Journal
from mlexp.tracking.journal_apply import JournalApplier, StoreWriters, replay_orphans
from mlexp.tracking.sagemaker_mirror import failure_line
from mlexp.tracking.store import TrackingStore, sqlite_path

POLL_S = 0.05


class Follower:
    """One journal this process applies, holding its writer lock meanwhile."""

    def __init__(self, folder: str, writers: StoreWriters) -> None:
        self.journal = Journal(Path(folder))
        self.lock = FileLock(str(self.journal.writer_lock))
        self.lock.acquire()
        self.applier = JournalApplier(self.journal, writers)
        self.closing = False  # the trial has ended and does not wait: drop the journal once it is stored

    def reply(self) -> dict[str, Any]:
        state = self.applier.state
        # the SageMaker mirror's failures of this journal's trial: the trial says them, its records are stored
        failures = self.applier.writer.mirror.failures
        mirror = [failure_line(run, failures[run]) for run in state.ids.values() if run in failures]
        return {"ids": state.ids, "applied": state.applied, "error": state.error, "mirror": mirror}

    def release(self, remove: bool) -> None:
        if remove:
            self.journal.hide()  # while the lock is held: a replayer never finds it half deleted
        self.lock.release()
        if remove:
            self.journal.remove()


def _warm(root: Path, writers: StoreWriters) -> None:
    """Import MLflow and open the default store now, before any trial needs it."""
    store = TrackingStore.resolve(None, root)
    db = sqlite_path(store.uri)
    if db is None or db.exists():  # a fresh database is created under the trial's lock, not here
        writers.get(store.uri, store.artifact_root)
    else:
        import mlflow.tracking  # noqa: F401


_REPLIES: IO[str] = sys.stdout


def _reply(message: dict[str, Any]) -> None:
    _REPLIES.write(json.dumps(message) + "\n")
    _REPLIES.flush()


def _replies_apart() -> None:
    """Replies get the pipe to the trial to themselves: what MLflow prints ("View run ...") goes to stderr."""
    global _REPLIES
    _REPLIES = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)


def _bound_store_retries() -> None:
    """A store that is down fails a request in seconds, not the minutes of MLflow's default retries."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


def serve(root: Path) -> None:
    writers = StoreWriters()
    followed: dict[str, Follower] = {}
    refused: dict[str, str] = {}
    try:
        _warm(root, writers)
        replay_orphans(root, writers)
    except Exception as error:  # a store that cannot open is reported to the trial that uses it
        print(f"mlexp tracking writer: {type(error).__name__}: {error}", file=sys.stderr)
    # commands are read from the descriptor itself: a buffered reader could hold a command select() never reports
    stdin, pending, open_ = sys.stdin.fileno(), b"", True
    while open_:
        ready, _, _ = select.select([stdin], [], [], POLL_S)
        if ready:
            chunk = os.read(stdin, 1 << 16)
            open_ = bool(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    _handle(json.loads(line), followed, writers, refused)
        for folder, follower in list(followed.items()):
            follower.applier.advance()
            if follower.closing and (follower.applier.ended or follower.applier.state.error):
                follower.release(remove=not follower.applier.state.error)
                del followed[folder]
    # the trial's process is gone without finishing: store what it recorded, end what it left open
    for follower in followed.values():
        follower.applier.advance()
        if not follower.applier.state.error:
            follower.applier.kill_open_runs()
        follower.release(remove=not follower.applier.state.error)


def _handle(
    command: dict[str, Any], followed: dict[str, Follower], writers: StoreWriters, refused: dict[str, str]
) -> None:
    if command["cmd"] == "experiment_tag":
        try:
            client = writers.get(command["uri"], None).client()
            client.set_experiment_tag(command["experiment_id"], command["key"], command["value"])
        except Exception as error:  # a read-only store: the link still filters and sorts
            print(f"mlexp tracking writer: the UI view was not saved: {error}", file=sys.stderr)
        return
    folder = command["journal"]
    if command["cmd"] == "follow":
        try:
            followed[folder] = Follower(folder, writers)
        except Exception as error:  # the store cannot be opened: said to the trial at its next sync
            refused[folder] = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        return
    follower = followed.get(folder)
    if command["cmd"] == "finish_later":
        if follower is not None:
            follower.closing = True
        return
    if follower is None:
        _reply({"ids": {}, "applied": 0, "error": refused.get(folder, "this journal is not followed")})
        return
    follower.applier.advance(command["upto"])
    _reply(follower.reply())
    if command["cmd"] == "finish" and not follower.applier.state.error:
        follower.release(remove=True)
        del followed[folder]


def main() -> None:
    # Ctrl-C reaches the whole process group: the trial ends its runs KILLED, this process stores that
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _replies_apart()
    _bound_store_retries()
    from mlexp.console import quiet_third_party

    quiet_third_party()
    serve(Path(sys.argv[1]))
    _REPLIES.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # everything is stored: skip tearing down MLflow's modules (a second or more)


if __name__ == "__main__":
    main()
