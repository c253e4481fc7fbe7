"""The trial's side of the tracking writer: records go to the journal at once, the store gets them in the background.

`JournalWriter` has the methods of `StoreWriter`, so a Trial and its Trackers record through either
alike. It names runs before the store has created them (`ref-<hex>`); `run_id()` and `client()`
wait for the writer process to catch up, which only reads of the store and the trial's end need.
Set MLEXP_TRACKING_WRITER=inline to write straight to the store from the trial's own process.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlexp.console import warn
from mlexp.database_driver import NOT_INSTALLED
from mlexp.errors import MlexpError
from mlexp.interrupts import wait_obeying_signals
from mlexp.tracking.journal import EXPERIMENT_PREFIX, Journal, JournalFile, is_ref, new_ref
from mlexp.tracking.producers import Producer, Wanted, read_producers
from mlexp.tracking.store import WHERE_THE_ADDRESS_IS, TrackingStore, absolute_uri, unreachable
from mlexp.tracking.store_writer import MetricRecord, Pair, StoreWriter
from mlexp.tracking.trial_state import TrialState, read_trial_state
from mlexp.tracking.writer_address import WriterUnreachable, connect

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

WRITER_ENV = "MLEXP_TRACKING_WRITER"  # "inline": no writer process
REPLY_WAIT_ENV = "MLEXP_TRACKING_REPLY_S"  # how long a trial waits for the store to take its records


def reply_wait_s() -> float:
    """How long a trial waits for the writer's answer: uploads take time, a store that is down should not."""
    return float(os.environ.get(REPLY_WAIT_ENV, "600"))


class TrackingError(MlexpError):
    """The store refused a trial's records, or the writer process stopped: the journal keeps them."""


class WriterStopped(TrackingError):
    """The writer process stopped (killed, crashed) before it answered: the records it had not stored are kept."""


class TrialKept(TrackingError):
    """The writer stopped after the trial ended and its journal was whole: the trial's work and records are safe.

    Not a failure of the trial: `mlexp sync` stores the journal, and so does the next trial or sweep in the project.
    """

    def __init__(self, message: str, journal: Path) -> None:
        super().__init__(message)
        self.journal = journal


class WriterConnection:
    """This process's connection to the tracking writer (see writer_address): opened once, shared by its trials."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = connect(root)
        self._replies = self.socket.makefile("r", encoding="utf-8")
        self.closed = False
        self.send(cmd="project", root=str(root))  # the writer stores what killed trials of the project left

    def send(self, **command: Any) -> None:
        if self.closed:
            raise self._stopped(command)
        try:
            self.socket.sendall((json.dumps(command) + "\n").encode())
        except OSError as error:
            self.close()
            raise self._stopped(command) from error

    def request(self, **command: Any) -> dict[str, Any]:
        self.send(**command)
        return self.answer(command)

    def answer(self, command: dict[str, Any]) -> dict[str, Any]:
        """The writer's reply to `command`, sent just before."""
        # one reply per request, read whole: nothing waits in the reader's buffer that select() would miss. In
        # slices: a Ctrl-C another thread received stops a trial waiting for a slow store, not after 10 minutes
        if not wait_obeying_signals(self._replied_within, reply_wait_s()):
            self.close()  # a late answer must not be taken for the next request's: the next trial connects again
            raise TrackingError(
                f"the tracking writer did not answer within {reply_wait_s():.0f} s (is the store down?); "
                f"the trial's records are kept in {command.get('journal')}: run `mlexp sync` to store them"
            )
        try:
            line = self._replies.readline()
        except OSError:
            line = ""
        if not line:
            self.close()
            raise self._stopped(command)
        return dict(json.loads(line))

    def _replied_within(self, seconds: float) -> bool:
        ready, _, _ = select.select([self.socket], [], [], seconds)
        return bool(ready)

    def alive(self) -> bool:
        """Open and taking commands (not let go by `close`, the writer not gone)."""
        return not self.closed

    def close(self) -> None:
        """Let it go: the writer stores what this process recorded, ending as KILLED the runs it left open."""
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError):
                self._replies.close()
                self.socket.close()

    def _stopped(self, command: dict[str, Any]) -> WriterStopped:
        return WriterStopped(
            "the tracking writer process stopped (its connection closed); the trial's records are kept in "
            f"{command.get('journal', self.root / '.mlexp' / 'journal')}: run `mlexp sync` to store them"
        )


_CONNECTIONS: dict[Path, WriterConnection] = {}


def writer_connection(root: Path) -> WriterConnection:
    """This process's connection to the writer, for project `root`; the writer starts now if none runs."""
    root = root.resolve()
    connection = _CONNECTIONS.get(root)
    if connection is None or not connection.alive():
        atexit.unregister(close_writers)  # once: a process that forgets its connections still closes them
        atexit.register(close_writers)
        connection = _CONNECTIONS[root] = WriterConnection(root)
    return connection


def start_early(root: Path) -> None:
    """Reach the writer before the trial composes its config: one that starts loads MLflow meanwhile, elsewhere."""
    if os.environ.get(WRITER_ENV) != "inline":
        with contextlib.suppress(WriterUnreachable):  # the trial says so when it records, and records inline
            writer_connection(root)


def record_writer(
    root: Path, store: TrackingStore, group: str = "", what: str = "this trial"
) -> JournalWriter | StoreWriter:
    """Records go through a journal to the writer process, or (MLEXP_TRACKING_WRITER=inline, no writer) direct.

    `what` names the records' owner in the warning printed when the writer cannot be reached.
    """
    if os.environ.get(WRITER_ENV) == "inline":
        return StoreWriter(store.client(), store)
    try:
        return JournalWriter(root, store, group)
    except WriterUnreachable as error:
        warn(f"{error}; {what} records from its own process instead")
        return StoreWriter(store.client(), store)


def trial_state(root: Path, store: TrackingStore, run_id: str, experiment_name: str) -> TrialState | None:
    """Trial `run_id` as the store holds it; None if the store has no such run.

    The writer process reads it (MLflow is loaded there), so this process need not import MLflow; it reads
    it itself only when no writer answers (MLEXP_TRACKING_WRITER=inline, a writer that stopped or is silent).
    """
    if os.environ.get(WRITER_ENV) != "inline":
        command = {"uri": absolute_uri(store.uri), "run_id": run_id, "experiment": experiment_name}
        try:
            reply = writer_connection(root).request(cmd="trial_state", **command)
        except (WriterUnreachable, TrackingError):  # stopped or silent: nothing was recorded, so read it here
            pass
        else:
            if reply.get("error"):
                raise TrackingError(
                    f"the tracking store {store.uri} could not be read ({reply['error']}); is it reachable? "
                    "The stage has not started: run it again once the store answers"
                )
            return TrialState.from_reply(reply["state"]) if reply.get("state") else None
    return read_trial_state(store.client(), run_id, experiment_name)


def find_producers(root: Path, store: TrackingStore, experiment_name: str, wanted: list[Wanted]) -> dict[str, Producer]:
    """The component that made each wanted stage's outputs (tracking.producers), by stage, read by the writer process
    (MLflow is loaded there), else here (MLEXP_TRACKING_WRITER=inline, or no writer: the trial records inline too).

    A store that cannot be searched, or a writer that stopped or went silent, is a TrackingError: unlike
    `trial_state`, no second try from this process, whose trial is recorded already and only lacks the links."""
    if os.environ.get(WRITER_ENV) != "inline":
        command = {"uri": absolute_uri(store.uri), "experiment": experiment_name, "wanted": [asdict(w) for w in wanted]}
        try:
            reply = writer_connection(root).request(cmd="producers", **command)
        except WriterUnreachable:
            pass
        else:
            if reply.get("error"):
                raise TrackingError(f"the tracking store {store.uri} could not be searched ({reply['error']})")
            return {stage: Producer.from_reply(found) for stage, found in reply["producers"].items()}
    try:
        return read_producers(store.client(), experiment_name, wanted)
    except Exception as error:
        raise TrackingError(f"the tracking store {store.uri} could not be searched ({error})") from error


def running_writer() -> WriterConnection | None:
    """An open connection of this process to the writer, if any."""
    return next((c for c in _CONNECTIONS.values() if c.alive()), None)


def close_writers() -> None:
    """Close this process's connections: the writer goes on with what they sent (trials wait for theirs at `finish`)."""
    connections = list(_CONNECTIONS.values())
    _CONNECTIONS.clear()
    for connection in connections:
        connection.close()


class JournalWriter:
    """Records a trial through its journal; the writer process applies them to `store`."""

    def __init__(self, root: Path, store: TrackingStore, group: str = "") -> None:
        self.store = store
        self.connection = writer_connection(root)  # first: a writer that cannot be reached leaves no journal behind
        # the writer runs elsewhere: the journal names its store and files so they mean the same there
        self.journal = Journal.create(root.resolve(), absolute_uri(store.uri), store.artifact_root, group)
        self.file = JournalFile(self.journal)
        self.connection.send(cmd="follow", journal=str(self.journal.folder))
        self._ids: dict[str, str] = {}
        self._said: set[str] = set()
        self.finished = False

    def experiment_id(self, name: str) -> str:
        return EXPERIMENT_PREFIX + name

    def create_run(self, experiment_id: str, run_name: str | None, tags: dict[str, str]) -> str:
        ref = new_ref()
        self._append("create_run", ref=ref, experiment=experiment_id, run_name=run_name, tags=list(tags.items()))
        return ref

    def log_batch(
        self,
        run: str,
        metrics: Sequence[MetricRecord] = (),
        params: Sequence[Pair] = (),
        tags: Sequence[Pair] = (),
    ) -> None:
        self._append("log_batch", run=run, metrics=list(metrics), params=list(params), tags=list(tags))

    def log_text(self, run: str, text: str, artifact_file: str) -> None:
        self._append("log_text", run=run, text=text, path=artifact_file)

    def log_artifact(self, run: str, local_path: str, artifact_path: str | None = None) -> None:
        self._append("log_artifact", run=run, path=self.journal.keep_artifact(local_path), artifact_path=artifact_path)

    def log_dataset(self, run: str, name: str, digest: str, source: str, context: str) -> None:
        self._append("log_dataset", run=run, name=name, digest=digest, source=source, context=context)

    def set_status(self, run: str, status: str, terminated: bool = True) -> None:
        self._append("set_status", run=run, status=status, terminated=terminated)

    def run_id(self, run: str) -> str:
        """The store's id of a run this journal created (waits for the writer to create it)."""
        if not is_ref(run):
            return run
        if run not in self._ids:
            self.sync()
        return self._ids[run]

    def experiment(self, experiment: str) -> str:
        return self.run_id(experiment)

    def client(self) -> MlflowClient:
        """An MLflow client on the store, once everything recorded so far is in it (imports MLflow here)."""
        self.sync()
        return self.store.client()

    def sync(self) -> None:
        """Wait until the store holds every record so far."""
        upto = self.file.count
        self._answer(self.connection.request(cmd="sync", journal=str(self.journal.folder), upto=upto), upto)

    def finish(self, wait: bool = True) -> None:
        """Wait until the store holds the whole journal, then drop it; or (wait=False) leave that to the writer.

        Without waiting, `journal_apply.settle(root, group)` is how to know the store holds it.
        """
        if self.finished:
            return
        self._append("end")
        self.finished = True
        self.file.close()  # flushed and synced: the journal is whole, whatever happens to the writer now
        try:
            if not wait:
                self.connection.send(cmd="finish_later", journal=str(self.journal.folder))
                return
            upto = self.file.count
            self._answer(self.connection.request(cmd="finish", journal=str(self.journal.folder), upto=upto), upto)
        except WriterStopped as stopped:
            raise TrialKept(
                "the tracking writer process stopped before it stored the "
                f"trial; the trial succeeded and its records are whole and safe in {self.journal.folder}: run "
                "`mlexp sync` to store them (the next trial or sweep in this project also does)",
                self.journal.folder,
            ) from stopped
        finally:
            self.journal.release()  # the owner's lock: from here a replay (`mlexp sync`) may store the journal

    def _append(self, op: str, **args: Any) -> None:
        if self.finished:
            raise TrackingError(f"the trial's journal {self.journal.folder} is closed; nothing more can be recorded")
        self.file.append(op, **args)

    def _answer(self, reply: dict[str, Any], upto: int) -> None:
        self._ids.update(reply.get("ids", {}))
        for line in reply.get("mirror", []):
            if line not in self._said:  # the store holds the trial; only its SageMaker copy is missing
                print(line, file=sys.stderr)
                self._said.add(line)
        if reply.get("notes"):  # earlier trials' journals the writer kept: their store does not answer
            from mlexp.tracking.journal_apply import say_once

            say_once(reply["notes"])
        if reply.get("error") and unreachable(reply["error"]):
            # no store answered: say so in one line, with where its address comes from
            raise TrackingError(
                f"{reply['error']}: check that it runs and that the address is right ({WHERE_THE_ADDRESS_IS}); the "
                f"records are kept in {self.journal.folder}: `mlexp sync` stores them once the server answers"
            )
        if reply.get("error", "").startswith(NOT_INSTALLED):  # nothing wrong with the store: install, then sync
            raise TrackingError(
                f"{reply['error']}; the trial's records are kept in {self.journal.folder}: `mlexp sync` stores them "
                f"once it is installed (they name this store; `mlexp sync --discard {shlex.quote(self.store.uri)}` "
                "drops them)"
            )
        if reply.get("error"):
            raise TrackingError(
                f"the tracking store {self.store.uri} refused the trial's records ({reply['error']}); they are "
                f"kept in {self.journal.folder}: fix the store, then run `mlexp sync`"
            )
        if int(reply.get("applied", 0)) < upto:
            raise TrackingError(
                f"the tracking writer stored {reply.get('applied', 0)} of the trial's {upto} records; they are kept "
                f"in {self.journal.folder}: run `mlexp sync` to store them"
            )
