"""Which MLflow store a trial goes to, and its one-time set-up.

The embedded default is a SQLite file plus an artifact folder in the project root.
Creating the database or an experiment is done under a file lock: parallel sweep
jobs racing to run MLflow's schema migration fail with "table already exists".
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sqlite3
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from filelock import FileLock

from mlexp.database_driver import missing_driver
from mlexp.errors import ConfigError, MlexpError, one_line
from mlexp.paths import experiment_folder, store_home
from mlexp.tracking import tags
from mlexp.tracking.host_check import refused_host
from mlexp.tracking.schema_template import copy_schema

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

DEFAULT_DB = "mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"
# marks model-training experiments (MLflow 3.17's UI mode itself comes from the link: see ui_link)
EXPERIMENT_TAGS = {tags.EXPERIMENT_KIND: tags.MODEL_TRAINING}


class StoreUnreachable(MlexpError):
    """A tracking server did not answer: refused, timed out or not found."""


class NoStore(MlexpError):
    """A command that only reads names a local store that does not exist."""


_BOUNDED_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
# whether a store answers at all, before work that can wait for it (replaying kept journals for a command that came to
# do something else): two tries of 5 s, so a server that hangs costs ~10 s, one that refuses none
QUICK_CHECK = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
_SET_BY_MLEXP: dict[str, str] = {}  # variables bound_store_retries set, and to what: not the user's settings


def _set_by_user(name: str) -> bool:
    return name in os.environ and _SET_BY_MLEXP.get(name) != os.environ[name]


def bound_store_retries() -> None:
    """A store that is down fails a request in seconds, not the minutes of MLflow's default retries: for the whole
    process (a command that only talks to the store) and the processes it starts. A value the user set is kept."""
    for name, value in _BOUNDED_RETRIES.items():
        if name not in os.environ:
            os.environ[name] = _SET_BY_MLEXP[name] = value


@contextlib.contextmanager
def retries_bounded_here(bound: dict[str, str] = _BOUNDED_RETRIES) -> Iterator[None]:
    """`bound` (bound_store_retries' by default) for this thread's store calls inside the block: what follows it, and
    other threads' calls meanwhile (a large model's download through a server that proxies S3), keep the patience
    they had; the environment is not changed (mlexp.tracking.mlflow_settings). The variables the user set apply."""
    from mlexp.tracking.mlflow_settings import mlflow_settings_here

    with mlflow_settings_here({name: value for name, value in bound.items() if not _set_by_user(name)}):
        yield


# `host:port` without `http://`: MLflow reads it as a folder (its file store), or as an unknown scheme
_HOST_PORT = re.compile(r"(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]+)(/.*)?")
# MLflow's own schemes: `file:5000` is a path, not a host
_URI_SCHEMES = frozenset({"file", "sqlite", "http", "https", "databricks", "postgresql", "mysql", "mssql", "arn"})
UNREACHABLE = "cannot reach the tracking server"
WHERE_THE_ADDRESS_IS = "tracking.uri, $MLEXP_TRACKING_SERVER or $MLFLOW_TRACKING_URI"


def _first_line(error: BaseException) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


def _refused_status(error: BaseException) -> int | None:
    """401 or 403 when a server with authentication (`mlflow server --app-name basic-auth`) did not take the
    request's credentials; MLflow keeps the status in its error code (UNAUTHENTICATED, PERMISSION_DENIED). A proxy
    that answers 401 with a JSON body of its own is not told apart from other errors."""
    status = getattr(error, "get_http_status_code", lambda: None)()
    return status if status in (401, 403) else None


# urllib3's words when MLflow's retries on an answer's status (408, 429, 5xx) ran out
_TOO_MANY = re.compile(r"too many (?P<status>[0-9]{3}) error responses")
# a gateway's "the server behind me is not there": the store is down whatever the request. A 500 to every try of a
# read says the same (nothing is served); to a write it may be about that one request (a run it cannot take), which
# must not keep the other trials' records from the store. A 429 is the store answering: slow down.
_GATEWAY_DOWN = ("502", "503", "504")


def _chain(error: BaseException) -> list[BaseException]:
    """`error` and what it was raised from: MLflow re-raises what `requests` raised as a plain MlflowException."""
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def retried_status(error: BaseException) -> str | None:
    """The HTTP status a server answered to every try of a request, when MLflow's retries on it ran out."""
    from requests import exceptions

    found = next((_TOO_MANY.search(str(e)) for e in _chain(error) if isinstance(e, exceptions.RetryError)), None)
    return found["status"] if found is not None else None


def _network_failure(error: BaseException, *, writing: bool = False) -> str | None:
    """Why a request to a tracking server got no answer it could use ("Connection refused"); None if it got one."""
    from requests import exceptions

    chain = _chain(error)
    status = retried_status(error)
    if status in _GATEWAY_DOWN or (status is not None and status.startswith("5") and not writing):
        return f"it answered HTTP {status} to every try"
    if not any(isinstance(e, (exceptions.ConnectionError, exceptions.Timeout)) for e in chain):
        return None
    # a read that timed out on each try ends as requests' ConnectionError, around urllib3's ReadTimeoutError
    if any(isinstance(e, (exceptions.Timeout, TimeoutError)) or _timed_out(e) for e in chain):
        from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_TIMEOUT  # as MLflow read it: this thread's bound

        return f"no answer within {MLFLOW_HTTP_REQUEST_TIMEOUT.get()} s"
    # the innermost socket error says it best: "Connection refused", "Name or service not known"
    reasons = [e.strerror for e in chain if isinstance(e, OSError) and e.strerror]
    return reasons[-1] if reasons else "no connection"


def _timed_out(error: BaseException) -> bool:
    """Whether urllib3 gave up on reading an answer (not its NewConnectionError, a ConnectTimeoutError by descent)."""
    from urllib3.exceptions import MaxRetryError, ReadTimeoutError

    reasons = [arg.reason for arg in error.args if isinstance(arg, MaxRetryError)]
    return isinstance(error, ReadTimeoutError) or any(isinstance(reason, ReadTimeoutError) for reason in reasons)


def store_failure(error: BaseException, uri: str, *, writing: bool = False) -> str:
    """Why a store did not take a request, in one short line: a server that could not be reached is said as such
    (not as urllib's page of retries), a refusal of the request's address or credentials names the fix (`writing`: the
    request recorded a trial, so the account lacks the right to write), else the error's first line."""
    reason = _network_failure(error, writing=writing)
    if reason is not None:
        return f"{UNREACHABLE} {uri} ({reason})"
    if (status_of_every_try := retried_status(error)) is not None:  # a write's 500, a 429: MLflow's page of retries
        return f"the tracking server {uri} answered HTTP {status_of_every_try} to every try of the request"
    if (driver := missing_driver(error)) is not None:
        return driver
    status = _refused_status(error)
    if status == 403 and (host_refusal := refused_host(error, uri)) is not None:
        return host_refusal
    if status is not None:
        fix = (
            "sign in with MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) in the "
            "environment"
            if status == 401
            else f"use an account the server lets {'write to' if writing else 'read'} its experiments"
        )
        return f"the tracking server {uri} refused the request ({_first_line(error)}); {fix}"
    return one_line(error)


def unreachable(reason: str) -> bool:
    """Whether a reason `store_failure` gave says the server could not be reached (it may run again later)."""
    return reason.startswith(UNREACHABLE)


def check_url_form(uri: str, where: str) -> None:
    """Refuse `host:port` given without a scheme (MLflow would make it a folder in the current directory)."""
    form = _HOST_PORT.fullmatch(uri)
    if form is None or form["host"].lower() in _URI_SCHEMES:
        return
    raise ConfigError(f"{where}={uri} is not a URL: give http://host:port (http://{uri} if the server speaks HTTP)")


def use_wal(db: Path) -> None:
    """Write-ahead logging on the SQLite store: readers (UI, compare) never block a sweep's writers.

    The mode is stored in the file, so this runs once per store. WAL needs a local file system.
    """
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as connection:
        if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            connection.execute("PRAGMA journal_mode=WAL")


def has_schema(db: Path) -> bool:
    """Whether MLflow's tables are in the SQLite file (read without MLflow, without creating the file)."""
    if not db.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as connection:
            return connection.execute("SELECT count(*) FROM alembic_version").fetchone()[0] > 0
    except sqlite3.Error:
        return False


def sqlite_path(uri: str) -> Path | None:
    """The database file behind a sqlite:/// URI, or None for other stores."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :])


def absolute_uri(uri: str) -> str:
    """`uri` with a relative local path (`mlruns`, `file:mlruns`) made absolute: the same store from any folder."""
    parsed = urlparse(uri)
    if parsed.scheme == "file" and not parsed.netloc and not parsed.path.startswith("/"):
        return Path(parsed.path).resolve().as_uri()
    if parsed.scheme == "" and uri not in ("", "databricks") and not uri.startswith("/"):
        return str(Path(uri).resolve())
    return uri


def mlflow_command_env(uri: str) -> str:
    """`MLFLOW_TRACKING_URI=<uri>` as a shell command line puts it before `mlflow ...` to reach this store from any
    folder (quoted: a project path may hold spaces)."""
    return f"MLFLOW_TRACKING_URI={shlex.quote(absolute_uri(uri))}"


def _named(configured_uri: str | None) -> str:
    """Where a tracking URI was given, as the user would name it."""
    if not configured_uri:
        return "$MLFLOW_TRACKING_URI"
    return "MLEXP_TRACKING_SERVER" if configured_uri == os.environ.get("MLEXP_TRACKING_SERVER") else "tracking.uri"


@dataclass(frozen=True)
class TrackingStore:
    """An MLflow tracking URI and, for local stores, where artifacts are written."""

    uri: str
    artifact_root: str | None

    @classmethod
    def resolve(cls, configured_uri: str | None, root: Path) -> TrackingStore:
        """`tracking.uri`, else $MLFLOW_TRACKING_URI, else <root>/mlflow.db (a relative sqlite path is under the
        project too; for a DVC experiment in a temporary copy, the project it copies: mlexp.paths.store_home)."""
        uri = configured_uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
        check_url_form(uri, _named(configured_uri))
        home = store_home(root)
        if not uri:
            uri = f"sqlite:///{(home / DEFAULT_DB).resolve()}"
        elif uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).is_absolute():
            # a relative sqlite path would create one database per Hydra job folder
            uri = f"sqlite:///{(home / uri[len('sqlite:///') :]).resolve()}"
        db = sqlite_path(uri)
        artifacts = (db.parent / DEFAULT_ARTIFACTS).as_uri() if db else None
        if urlparse(uri).scheme in ("", "file"):
            artifacts = None
        return cls(uri=uri, artifact_root=artifacts)

    def client(self) -> MlflowClient:
        """A client of the store; a new SQLite store gets MLflow's tables once, under the store's lock."""
        db = sqlite_path(self.uri)
        if db is None or has_schema(db):
            return self._client()
        db.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(db) + ".lock", timeout=120):
            if not has_schema(db):  # not made while this process waited for the lock
                copy_schema(db)
            client = self._client()
            # MLflow creates its tables (without the template) and the Default experiment on a client's first call;
            # two processes doing it at once collide ("table ... already exists"), so it happens here, one at a time
            client.search_experiments(max_results=1)
            use_wal(db)
            return client

    def answering_client(self) -> MlflowClient:
        """`client()`, once a tracking server has answered a first request: StoreUnreachable (one line) if not.

        A command that only reads (compare, delete) fails with the server's address instead of MLflow's traceback;
        bound_store_retries makes that seconds.
        """
        db = sqlite_path(self.uri)
        if db is not None and not db.exists():  # reading must not create an empty store (or its folder)
            raise NoStore(
                f"no tracking store at {db}: nothing has been recorded there yet; run `mlexp task=...` first, or "
                "point tracking.uri (or $MLFLOW_TRACKING_URI) at the store"
            )
        client = self.client()
        if urlparse(self.uri).scheme in ("", "file", "sqlite"):
            return client
        from mlflow.exceptions import MlflowException

        try:
            client.search_experiments(max_results=1)
        except MlflowException as error:
            if _refused_status(error) is not None:
                raise StoreUnreachable(store_failure(error, self.uri)) from error
            if _network_failure(error) is None:  # it answered (a refusal of this request is not the command's concern)
                return client
            raise StoreUnreachable(
                f"{store_failure(error, self.uri)}; check that it runs and that the address is right "
                "(tracking.uri, or $MLFLOW_TRACKING_URI)"
            ) from error
        return client

    def _client(self) -> MlflowClient:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def check_not_moved_early(self, name: str) -> None:
        """The moved-project check for a SQLite store, read with sqlite3 before MLflow is even imported."""
        db = sqlite_path(self.uri)
        if db is None or not db.exists():
            return
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
                row = connection.execute("SELECT artifact_location FROM experiments WHERE name = ?", (name,)).fetchone()
        except sqlite3.Error:  # no schema yet: MLflow creates it
            return
        if row and row[0]:
            self._check_not_moved(str(row[0]))

    def experiment_id(self, name: str) -> str:
        """The id of experiment `name`, created once (under a lock on local stores); a trial's first request to its
        store, so a server that does not answer is StoreUnreachable here, in one line."""
        db = sqlite_path(self.uri)
        if db is None:
            try:
                return self._get_or_create(name)
            except Exception as error:
                if _network_failure(error) is None:
                    raise
                raise StoreUnreachable(
                    f"{store_failure(error, self.uri)}: check that it runs and that the address is right "
                    f"({WHERE_THE_ADDRESS_IS})"
                ) from error
        db.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(db) + ".lock", timeout=120):
            experiment_id = self._get_or_create(name)
            use_wal(db)
            return experiment_id

    def _get_or_create(self, name: str) -> str:
        client = self._client()  # the caller holds the lock: MLflow may create its tables here
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            # one folder under the root whatever the name holds (`team/a`, `../x`: folders elsewhere), %-encoded, as
            # MLflow decodes the URI (`%2F..`, `#3`)
            folder = urllib.parse.quote(experiment_folder(name), safe="")
            location = f"{self.artifact_root}/{folder}" if self.artifact_root else None
            return str(client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_TAGS))
        if experiment.tags.get(tags.EXPERIMENT_KIND) is None:  # a store written before the tag existed
            client.set_experiment_tag(experiment.experiment_id, tags.EXPERIMENT_KIND, tags.MODEL_TRAINING)
        self._check_not_moved(experiment.artifact_location)
        return str(experiment.experiment_id)

    def _check_not_moved(self, artifact_location: str) -> None:
        """Refuse to write a trial's artifacts into another copy's folder (they would be lost to this one)."""
        if self.artifact_root is None or not artifact_location.startswith("file:"):
            return
        if not artifact_location.startswith(self.artifact_root + "/"):
            old_root = artifact_location.rsplit("/", 1)[0]
            raise ConfigError(
                f"this store's artifacts are in {old_root}, not in {self.artifact_root} (the project was moved or "
                "copied); run `mlexp relocate` to point the store at this project's folder"
            )
