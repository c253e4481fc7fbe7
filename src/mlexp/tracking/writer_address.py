"""Where the tracking writer listens, and how a command reaches it: the first command that needs one starts it.

One writer serves every mlexp command of a user with the same code and the same store settings, whatever
the project: it keeps MLflow imported and its stores open between commands, so only the first trial after
an idle spell pays for them. Anything that could change what the writer does — the Python and mlexp it
runs, credentials, proxies, MLFLOW_*/AWS_* settings — is part of its key: a command whose environment
differs there gets a writer of its own. Set MLEXP_WRITER_SCOPE to any value for a private one.
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

from filelock import FileLock

from mlexp.errors import MlexpError

IDLE_ENV = "MLEXP_WRITER_IDLE_S"  # how long a writer with nothing to do waits for the next command
DEFAULT_IDLE_S = 600.0
START_WAIT_S = 60.0
SCOPE_ENV = "MLEXP_WRITER_SCOPE"  # any value: a writer of its own for the commands that set it
# what the writer's work depends on: store clients' settings and credentials, proxies, where modules come from
_KEYED_PREFIXES = ("MLFLOW_", "AWS_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "PYTHONPATH", "HOME")
_KEYED = {SCOPE_ENV, IDLE_ENV}
# each trial names its store in its journal; mlexp sets the other one itself (in the writer too)
_NOT_KEYED = {"MLFLOW_TRACKING_URI", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"}


class WriterUnreachable(MlexpError):
    """The tracking writer could not be started or reached: nothing was recorded yet."""


def idle_s() -> float:
    return float(os.environ.get(IDLE_ENV, DEFAULT_IDLE_S))


def writers_dir() -> Path:
    """This user's folder of writer sockets, locks and logs (only the user may enter it)."""
    folder = Path(f"/tmp/mlexp-writer-{os.getuid()}")
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if info.st_uid != os.getuid() or not stat.S_ISDIR(info.st_mode) or info.st_mode & 0o077:
        raise WriterUnreachable(
            f"{folder} must be a folder only you can enter (it holds your tracking writer's socket): "
            f"remove it, or `chmod 700 {folder}` if it is yours"
        )
    return folder


def _code_stamp() -> str:
    """Changes when the code the writer runs changes (mlexp's tracking package and top-level modules, not the
    tasks'): a writer never runs code older than the command's."""
    package = Path(__file__).resolve().parents[1]
    modules = [*package.glob("*.py"), *(package / "tracking").rglob("*.py")]
    newest = max((path.stat().st_mtime_ns for path in modules), default=0)
    return f"{package}:{newest}"


def writer_key() -> str:
    settings = sorted(
        (name, value)
        for name, value in os.environ.items()
        if (name in _KEYED or name.upper().startswith(_KEYED_PREFIXES)) and name not in _NOT_KEYED
    )
    text = repr((sys.executable, _code_stamp(), settings))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def socket_path() -> Path:
    return writers_dir() / f"{writer_key()}.sock"


def start_lock(path: Path) -> FileLock:
    """Held to connect, to start a writer, and by a writer deciding to exit: no command reaches one that is leaving."""
    return FileLock(str(path.with_suffix(".lock")), timeout=START_WAIT_S)


def connect(root: Path) -> socket.socket:
    """A connection to the writer, started now (in a session of its own: Ctrl-C does not reach it) if none runs."""
    path = socket_path()
    with start_lock(path):
        connection = _try_connect(path)
        if connection is None:
            connection = _wait_for(path, _start(path, root))
    return connection


def _try_connect(path: Path) -> socket.socket | None:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):  # none yet, or one that died: its socket file stays
        connection.close()
        return None
    return connection


def _start(path: Path, root: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if env.get("PYTHONPATH"):  # the writer runs from its own folder: relative entries would point elsewhere
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    with path.with_suffix(".log").open("ab") as log:
        # its messages go to its log, never to the command's pipes: a reader of those would wait for it to exit
        return subprocess.Popen(
            [sys.executable, "-m", "mlexp.tracking.writer_process", str(path), str(root.resolve())],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=path.parent,
            env=env,
            start_new_session=True,
        )


def _wait_for(path: Path, process: subprocess.Popen[bytes]) -> socket.socket:
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        connection = _try_connect(path)
        if connection is not None:
            return connection
        if process.poll() is not None:
            break
        time.sleep(0.005)
    process.poll()
    raise WriterUnreachable(
        f"the tracking writer did not start (exit {process.returncode}); see {path.with_suffix('.log')}. "
        f"Set MLEXP_TRACKING_WRITER=inline to record from the trial's own process"
    )
