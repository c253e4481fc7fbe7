"""The real `mlexp` command in a forked copy of an interpreter that has already imported its libraries.

Run as `python -m mlexp.cli`, every command of the suite paid seconds of imports before its work: about half of
the suite's time. A server process started once per test process imports the libraries every command loads
(pandas, Hydra, matplotlib, pyarrow, scipy; never MLflow, which the command leaves to its tracking writer) and
forks a child per command. The child is a new process with the command's working folder, environment,
arguments and standard streams (pipes, read to their end as subprocess.run reads them: a writer that kept
the command's pipes open would hang the test as it would hang `mlexp ... | tee`), and runs `mlexp.cli` as
`python -m` does (`runpy`, as `__main__`).

The commands that open a store themselves (STORE_COMMANDS) import MLflow as they run, 2 CPU s each: they are forked
from a second server that has imported it too, started as a command under test is (MLflow's variables left out, as
cli_env leaves them; a pytest variable set, which turns MLflow's telemetry off when it is imported, as in a command a
test runs). A store command with MLflow variables of its own is forked from the first server. Every other command
finds MLflow unloaded, as it does run fresh (a trial leaves MLflow to its tracking writer).

What a fork cannot show is the interpreter's own start-up, so:
- MXNet is not imported in the server: its fork handler turns OpenMP off and one worker thread on in every
  forked child (for DataLoader workers), which no user's command runs with. Each command imports it itself.
- A command whose environment differs from the server's in anything but the variables read at run time
  (MLEXP_, MLFLOW_, AWS_, ...) gets a fresh interpreter, as does a test that asks for one (`fresh=True`:
  forks share Python's hash seed and every library's random state).
- The server fails when its imports print anything, so no import-time warning a user would see is hidden.
- A child leaves with threads joined, atexit handlers run and streams flushed, but without tearing down the
  modules (that touches every object the server made and copies each shared page, ~0.5 s).
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import runpy
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

READ_AT_RUN_TIME = ("MLEXP_", "MLFLOW_", "AWS_", "SM_", "SAGEMAKER_", "DVC_", "PYTEST_", "HYDRA_")
# the commands that import MLflow to open a store (mlexp.commands; sync when there is one): data, summary and relocate
# never load it
STORE_COMMANDS = frozenset({"compare", "delete", "sync"})


# what importing a library in a test adds to the test process's environment (opencv through GluonCV: the first
# three; MXNet: KMP_INIT_AT_FORK): once a test imported one, every later command of that test process differed from
# the server's start and ran fresh (the suite ran 17:39). A forked command imports its own libraries, which set them.
SET_BY_IMPORTS = (
    "LD_LIBRARY_PATH",
    "QT_QPA_FONTDIR",
    "QT_QPA_PLATFORM_PLUGIN_PATH",
    "KMP_INIT_AT_FORK",
    "KMP_DUPLICATE_LIB_OK",  # scikit-learn's and threadpoolctl's
    # MLflow's import sets it and its telemetry thread may remove it later, during whichever test runs then (the
    # environment guard failed that test); the tracking writer's key ignores it too
    "_MLFLOW_TELEMETRY_SESSION_ID",
)


def read_on_start(env: Mapping[str, str]) -> dict[str, str]:
    """The part of an environment the interpreter or a library may read once, when it starts or loads."""
    return {
        name: value
        for name, value in env.items()
        if not name.startswith(READ_AT_RUN_TIME) and name not in SET_BY_IMPORTS
    }


def _mlflow_settings(env: Mapping[str, str]) -> dict[str, str]:
    """MLflow reads some of its variables when it is imported (logging, telemetry): a command forked from the server
    that imported it must have the server's (none)."""
    return {name: value for name, value in env.items() if name.startswith("MLFLOW_")}


def _preload(with_mlflow: bool) -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")  # as mlexp.cli.main sets it before anything imports matplotlib
    with tempfile.TemporaryFile() as noise:
        saved = os.dup(2)
        os.dup2(noise.fileno(), 2)
        try:
            _import_the_commands_libraries()
            if with_mlflow:
                import mlflow.tracking  # noqa: F401
            sys.stderr.flush()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        noise.seek(0)
        printed = noise.read().decode(errors="replace")
    tempfile.tempdir = None  # chosen from this process's TMPDIR: each command chooses from its own
    if printed:
        raise RuntimeError(f"importing the command's libraries printed (a fresh command would show it):\n{printed}")
    for module in ("mxnet",) if with_mlflow else ("mlflow", "mxnet"):
        if module in sys.modules:
            raise RuntimeError(f"the CLI server loaded {module}; see forked_cli.py for why it must not")


def _import_the_commands_libraries() -> None:
    import matplotlib.pyplot  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import scipy.stats  # noqa: F401

    import mlexp.charts  # noqa: F401
    import mlexp.cli  # noqa: F401
    import mlexp.runner  # noqa: F401


def _redirect(fd: int, target: int) -> None:
    os.dup2(target, fd)
    os.close(target)


def _run_child(request: dict[str, Any], stdout: int, stderr: int) -> None:
    """In the forked child: become the command, then leave the interpreter as the command would."""
    code: object = 1
    interrupted = False
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        _redirect(0, os.open(os.devnull, os.O_RDONLY))
        _redirect(1, stdout)
        _redirect(2, stderr)
        sys.path[0] = request["cwd"]  # as `python -m` puts the working folder first
        sys.argv = ["mlexp", *request["args"]]
        import mlexp
        import mlexp.tasks

        sys.modules.pop("mlexp.cli")  # as under `python -m`, where the module runs as __main__ only
        delattr(mlexp, "cli")
        mlexp.tasks._loaded = False  # task plugins are found again on this command's sys.path
        code = 0
        runpy.run_module("mlexp.cli", run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        code = stop.code
    except KeyboardInterrupt:
        sys.excepthook(*sys.exc_info())
        interrupted = True
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    finally:
        _exit(code, interrupted)


def _exit(code: object, interrupted: bool) -> None:
    try:
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        threading._shutdown()  # type: ignore[attr-defined]  # what Py_FinalizeEx does first: join threads
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        if interrupted:  # an uncaught KeyboardInterrupt ends a Python process by SIGINT
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        os._exit(code if isinstance(code, int) else 1)


def _read_to_end(pipes: dict[int, bytearray], deadline: float) -> bool:
    """Both output pipes read until every process holding them has closed them; False when time ran out."""
    with selectors.DefaultSelector() as selector:
        for fd in pipes:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    pipes[key.fd] += chunk
                else:
                    selector.unregister(key.fd)
    return True


def serve(with_mlflow: bool) -> None:
    replies = os.dup(1)
    _redirect(1, os.open(os.devnull, os.O_WRONLY))  # what an import prints must not reach the replies
    _preload(with_mlflow)
    sys.stdout.flush()
    gc.freeze()  # the children's collections leave the imported objects alone, and their pages shared
    for line in sys.stdin:
        request = json.loads(line)
        if "loaded" in request:  # which of these modules the server has imported (a test's question)
            os.write(replies, (json.dumps([m for m in request["loaded"] if m in sys.modules]) + "\n").encode())
            continue
        (out_read, out_write), (err_read, err_write) = os.pipe(), os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(replies)
            os.close(out_read)
            os.close(err_read)
            _run_child(request, out_write, err_write)
        os.close(out_write)
        os.close(err_write)
        output = {out_read: bytearray(), err_read: bytearray()}
        finished = _read_to_end(output, time.monotonic() + request["timeout"])
        if not finished:  # as subprocess.run: the command is killed, not what it started
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        for fd, path in ((out_read, request["stdout"]), (err_read, request["stderr"])):
            os.close(fd)
            Path(path).write_bytes(output[fd])
        reply = {"returncode": os.waitstatus_to_exitcode(status), "timed_out": not finished}
        os.write(replies, (json.dumps(reply) + "\n").encode())


class ForkedCli:
    """One server per test process; `run` is subprocess.run of `python -m mlexp.cli` with captured text output."""

    def __init__(self, env: Mapping[str, str], with_mlflow: bool = False) -> None:
        """`env`: the suite's environment as it started. Not the first command's: a test that changed a variable
        (HOME, PWD) would have every later command of its test process run fresh, and the server import under it.
        `with_mlflow`: the server for STORE_COMMANDS."""
        self.env = read_on_start(env)
        self.with_mlflow = with_mlflow
        self.commands = 0  # forked so far: a test can tell that a command took this path
        self.lock = threading.Lock()
        server = [sys.executable, __file__, *(["--with-mlflow"] if with_mlflow else [])]
        if with_mlflow:
            env = {n: v for n, v in env.items() if n not in _mlflow_settings(env)} | {"PYTEST_CURRENT_TEST": "server"}
        self.server = subprocess.Popen(
            server, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=env
        )
        atexit.register(self.server.kill)

    def can_run(self, args: Sequence[str], env: Mapping[str, str]) -> bool:
        if self.with_mlflow and _mlflow_settings(env):
            return False
        # compute.num_threads forks too: the trial sets the BLAS the server loaded (mlexp.thread_limits), and MXNet,
        # which the server never loads, reads the thread variables when the command imports it
        return read_on_start(env) == self.env

    def loaded(self, modules: Sequence[str]) -> list[str]:
        """Which of `modules` the server has imported."""
        with self.lock:
            assert self.server.stdin and self.server.stdout
            self.server.stdin.write(json.dumps({"loaded": list(modules)}) + "\n")
            return list(json.loads(self.server.stdout.readline()))

    def run(self, args: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float):
        command = ["mlexp", *args]
        with self.lock, tempfile.TemporaryDirectory() as folder:
            out, err = Path(folder, "stdout"), Path(folder, "stderr")
            request = {"args": list(args), "cwd": str(cwd), "env": dict(env), "timeout": timeout}
            assert self.server.stdin and self.server.stdout
            try:
                self.server.stdin.write(json.dumps(request | {"stdout": str(out), "stderr": str(err)}) + "\n")
                reply = json.loads(self.server.stdout.readline())
            except (OSError, ValueError) as error:
                raise RuntimeError(
                    f"the suite's CLI server (tests/forked_cli.py) stopped (exit {self.server.poll()}): {error}; "
                    "its imports failed or it was killed; MLEXP_TESTS_FRESH_CLI=1 runs every command fresh"
                ) from error
            self.commands += 1
            if reply["timed_out"]:
                raise subprocess.TimeoutExpired(command, timeout, out.read_bytes(), err.read_bytes())
            return subprocess.CompletedProcess(command, reply["returncode"], out.read_text(), err.read_text())


if __name__ == "__main__":
    serve(with_mlflow="--with-mlflow" in sys.argv[1:])
