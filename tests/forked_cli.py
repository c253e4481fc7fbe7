"""The real `mlexp` command in a forked copy of an interpreter that has already imported its libraries.

Run as `python -m mlexp.cli`, every command of the suite paid 3-4 s of imports (MXNet, pandas, Hydra,
matplotlib) before its work: about half of the suite's time. A server process started once per test process
imports them and forks a child per command. The child is a new process with the command's working folder,
environment, arguments and standard streams, and runs `mlexp.cli` as `python -m` does (`runpy`, as `__main__`),
so exit codes, output files, atexit handlers, writers and workers it starts are the real command's.

What a fork cannot show is the interpreter's own start-up, so a command keeps a fresh interpreter when that
could change what it does: an environment that differs from the server's in what Python or the numeric
libraries read when they load (PYTHON*, thread counts, MXNet, matplotlib settings), or an argument setting
thread counts, which MXNet reads only when it loads. Whatever the imports printed is written to each child's
stderr first, so a test of quiet output still sees import-time warnings. The start-up path itself keeps its
own tests (`conftest.start_cli`, test_startup.py).
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

LOADED_ON_START = ("OMP_", "MKL_", "OPENBLAS_", "MXNET_", "PYTHON", "MPL", "KMP_")


def read_on_start(env: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if name.startswith(LOADED_ON_START)}


def _preload() -> str:
    """Import what a tiny trial's command imports (never MLflow: the command leaves it to its writer)."""
    with tempfile.TemporaryFile() as noise:
        saved = os.dup(2)
        os.dup2(noise.fileno(), 2)
        try:
            _import_the_commands_libraries()
            sys.stderr.flush()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        noise.seek(0)
        import_noise = noise.read().decode(errors="replace")
    if "mlflow" in sys.modules:
        raise RuntimeError("the CLI server loaded mlflow, which the command itself never imports")
    return import_noise


def _import_the_commands_libraries() -> None:
    import matplotlib.pyplot  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import scipy.stats  # noqa: F401

    import mlexp.charts  # noqa: F401
    import mlexp.cli  # noqa: F401
    import mlexp.runner  # noqa: F401
    import mlexp.tasks.tabular_regression.stages  # noqa: F401
    from mlexp.seeding import import_mxnet

    import_mxnet()


def _redirect(fd: int, path: str, flags: int) -> None:
    target = os.open(path, flags, 0o644)
    os.dup2(target, fd)
    os.close(target)


def _run_child(request: dict[str, Any], import_noise: str, replies: int) -> None:
    """In the forked child: become the command, then leave the interpreter as the command would."""
    os.close(replies)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    write = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    _redirect(0, os.devnull, os.O_RDONLY)
    _redirect(1, request["stdout"], write)
    _redirect(2, request["stderr"], write)
    sys.path[0] = request["cwd"]  # as `python -m` puts the working folder first
    sys.argv = ["mlexp", *request["args"]]
    sys.stderr.write(import_noise)
    sys.modules.pop("mlexp.cli")  # as under `python -m`, where the module runs as __main__ only
    code: object = 0
    try:
        runpy.run_module("mlexp.cli", run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        code = stop.code
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = -signal.SIGINT if isinstance(sys.exc_info()[1], KeyboardInterrupt) else 1
    _exit(code)


def _exit(code: object) -> None:
    """Leave as the interpreter would (join threads, atexit, flush) but without tearing down the imported
    modules: that touches every object the server made, copying each page the fork shared (~0.5 s)."""
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    threading._shutdown()  # type: ignore[attr-defined]  # what Py_FinalizeEx does first: join non-daemon threads
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    if code == -signal.SIGINT:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code or 0)


def serve() -> None:
    replies = os.dup(1)
    _redirect(1, os.devnull, os.O_WRONLY)  # what an import prints must not reach the replies
    import_noise = _preload()
    sys.stdout.flush()
    gc.freeze()  # the children's collections leave the imported objects alone, and their pages shared
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run_child(request, import_noise, replies)
        os.write(replies, (json.dumps({"pid": pid}) + "\n").encode())
        _, status = os.waitpid(pid, 0)
        os.write(replies, (json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n").encode())


class ForkedCli:
    """One server per test process; `run` is subprocess.run of `python -m mlexp.cli` with captured text output."""

    def __init__(self) -> None:
        self.env = read_on_start(os.environ)
        self.server = subprocess.Popen(
            [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        atexit.register(self.server.kill)

    def can_run(self, args: Sequence[str], env: Mapping[str, str]) -> bool:
        return read_on_start(env) == self.env and not any("num_threads" in arg for arg in args)

    def run(self, args: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float):
        with tempfile.TemporaryDirectory() as folder:
            out, err = Path(folder, "stdout"), Path(folder, "stderr")
            request = {"args": list(args), "cwd": str(cwd), "env": dict(env), "stdout": str(out), "stderr": str(err)}
            assert self.server.stdin and self.server.stdout
            self.server.stdin.write(json.dumps(request) + "\n")
            pid = json.loads(self.server.stdout.readline())["pid"]
            timed_out = threading.Event()
            timer = threading.Timer(timeout, lambda: (timed_out.set(), os.kill(pid, signal.SIGKILL)))
            timer.start()
            try:
                returncode = json.loads(self.server.stdout.readline())["returncode"]
            finally:
                timer.cancel()
            if timed_out.is_set():
                raise subprocess.TimeoutExpired(["mlexp", *args], timeout, out.read_text(), err.read_text())
            return subprocess.CompletedProcess(["mlexp", *args], returncode, out.read_text(), err.read_text())


if __name__ == "__main__":
    serve()
