"""Where the tracking writer listens, and how a command reaches it: the first command that needs one starts it.

One writer serves every mlexp command of a user with the same code and the same store settings, whatever
the project: it keeps MLflow imported and its stores open between commands, so only the first trial after
an idle spell pays for them. Anything that could change what the writer does — the Python and mlexp it
runs, MLflow's installation, the environment (credentials, proxies, certificates; all variables but a list
that cannot matter, such as PWD or thread counts) — is part of its key: a command whose environment differs
gets a writer of its own. Set MLEXP_WRITER_SCOPE to any value for a private one. A writer that cannot be
reached is not fatal: the trial then records from its own process.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

from filelock import FileLock, Timeout

from mlexp.errors import MlexpError

IDLE_ENV = "MLEXP_WRITER_IDLE_S"  # how long a writer with nothing to do waits for the next command
DEFAULT_IDLE_S = 600.0
START_WAIT_S = 60.0
SCOPE_ENV = "MLEXP_WRITER_SCOPE"  # any value: a writer of its own for the commands that set it
CONNECT_TIMEOUT_S = 10.0
# The key is the whole environment but what cannot change the writer's work: a credential or setting nobody
# thought of (DATABRICKS_*, GOOGLE_APPLICATION_CREDENTIALS, REQUESTS_CA_BUNDLE, ...) then gets its own writer.
_IGNORED_PREFIXES = (
    "MLEXP_",  # mlexp's per-command and per-sweep variables (the writer's own two are keyed below)
    "PYTEST_",
    "DVC_",
    "HYDRA_",
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "MXNET_",
    "KMP_",
    "LOKY_",
    "JOBLIB_",
    "SSH_",
    "XDG_SESSION",
    "TERM",
)
_IGNORED = {"PWD", "OLDPWD", "SHLVL", "_", "COLUMNS", "LINES", "MPLBACKEND", "DISPLAY", "PS1", "PROMPT_COMMAND"}
_IGNORED |= {"MLFLOW_TRACKING_URI", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"}  # in the journal; set by mlexp
# set by joblib in each worker (its MAX_NUM_THREADS_VARS and TBB's ENABLE_IPC), and by MLflow in a process that
# imports it: a parallel sweep's jobs must reach the writer their command uses, not start one of their own
_IGNORED |= {"BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS", "NUMEXPR_NUM_THREADS", "ENABLE_IPC"}
_IGNORED |= {"_MLFLOW_TELEMETRY_SESSION_ID"}
_KEYED = {SCOPE_ENV, IDLE_ENV}


class WriterUnreachable(MlexpError):
    """The tracking writer could not be started or reached: nothing was recorded yet."""


def idle_s() -> float:
    return float(os.environ.get(IDLE_ENV, DEFAULT_IDLE_S))


def writers_dir() -> Path:
    """This user's folder of writer sockets, locks and logs (only the user may enter it)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(runtime, "mlexp-writer") if runtime else Path(f"/tmp/mlexp-writer-{os.getuid()}")
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    except OSError as error:
        raise WriterUnreachable(f"{folder} cannot hold the tracking writer's socket: {error}") from error
    if info.st_uid != os.getuid() or not stat.S_ISDIR(info.st_mode) or info.st_mode & 0o077:
        raise WriterUnreachable(
            f"{folder} must be a folder only you can enter (it holds your tracking writer's socket): "
            f"remove it, or `chmod 700 {folder}` if it is yours"
        )
    return folder


def _code_stamp() -> str:
    """Changes when the code the writer runs changes (mlexp's tracking package, top-level modules, a sweep's
    summary and the task declarations it reads, such as a sweep file's report, not the tasks' stages; the installed
    packages, MLflow's folder among them): a writer never runs code older than the command's."""
    package = Path(__file__).resolve().parents[1]
    modules = [*package.glob("*.py"), *(package / "tracking").rglob("*.py"), package / "sweeps" / "summary.py"]
    modules += (package / "experiment_analytics").rglob("*.py")  # a sweep's summary ranks its trials with it
    modules += [package / "tasks" / "__init__.py", *(package / "tasks").glob("*/__init__.py")]
    newest = max((path.stat().st_mtime_ns for path in modules), default=0)
    mlflow = importlib.util.find_spec("mlflow")
    installed = Path(mlflow.origin).parents[1] if mlflow and mlflow.origin else package
    return f"{package}:{newest}:{installed.stat().st_mtime_ns}"


def writer_settings() -> list[tuple[str, str]]:
    """The environment variables that are part of the writer's key."""
    return sorted(
        (name, value)
        for name, value in os.environ.items()
        if name in _KEYED or not (name in _IGNORED or name.startswith(_IGNORED_PREFIXES))
    )


def writer_key() -> str:
    text = repr((sys.executable, _code_stamp(), writer_settings()))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def socket_path() -> Path:
    return writers_dir() / f"{writer_key()}.sock"


def start_lock(path: Path) -> FileLock:
    """Held to connect, to start a writer, and by a writer deciding to exit: no command reaches one that is leaving."""
    return FileLock(str(path.with_suffix(".lock")), timeout=START_WAIT_S)


def connect(root: Path) -> socket.socket:
    """A connection to the writer, started now (in a session of its own: Ctrl-C does not reach it) if none runs."""
    path = socket_path()
    try:
        with start_lock(path):
            connection = _try_connect(path)
            if connection is None:
                connection = _wait_for(path, _start(path, root))
    except (Timeout, OSError) as error:  # a writer stuck in a store call, a full disk, a folder not ours
        raise WriterUnreachable(
            f"the tracking writer could not be reached ({type(error).__name__}: {error})"
        ) from error
    connection.settimeout(None)
    return connection


def _try_connect(path: Path) -> socket.socket | None:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(CONNECT_TIMEOUT_S)  # a writer whose backlog is full does not hold the command forever
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
