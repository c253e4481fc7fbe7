"""A quiet console: libraries' known noise silenced at its source, parallel trials' lines labelled."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import pytest

from conftest import TINY, cli_env
from mlexp.console import JOBLIB_LAUNCHER_LOGGER, OPTUNA_SWEEPER_LOGGER, PrefixedLines, quiet_third_party

HEADER_WARNING = "resolving request headers"
ANSI = "\x1b["
ARN = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/mlexp"


# --- the prefixing writer ---------------------------------------------------------------------------------------


def test_whole_lines_are_prefixed_and_partial_writes_wait_for_their_newline():
    shared = io.StringIO()
    first, second = PrefixedLines("sweep-trial-0", shared), PrefixedLines("sweep-trial-1", shared)
    first.write("epoch 1: ")
    first.flush()  # a flushed partial line still waits: the other trial's line must not land inside it
    second.write("trial done: test_msle = 0.5\nsecond ")
    first.write("loss 0.3\n\n")
    second.writelines(["line", "\n"])
    assert shared.getvalue() == (
        "[sweep-trial-1] trial done: test_msle = 0.5\n"
        "[sweep-trial-0] epoch 1: loss 0.3\n"
        "\n"
        "[sweep-trial-1] second line\n"
    )


def test_progress_bar_redraws_show_at_once_each_with_the_prefix():
    from tqdm import tqdm

    out = io.StringIO()
    writer = PrefixedLines("t-3", out)
    for _ in tqdm(range(3), desc="Training", file=writer, mininterval=0, leave=False):
        pass
    writer.write("\r\n")  # a carriage return then a newline must not print an empty labelled line
    drawn = [s for s in re.split(r"[\r\n]", out.getvalue()) if s]
    assert len(drawn) >= 4 and all(s.startswith("[t-3] ") for s in drawn)
    assert any("Training: 100%" in s for s in drawn)
    writer.write("\rTraining:  50%")
    writer.flush()  # tqdm flushes after each redraw: it shows now, not at the next newline
    assert out.getvalue().endswith("\r[t-3] Training:  50%")


def test_finish_ends_an_unfinished_line_so_the_next_writer_starts_clean():
    out = io.StringIO()
    writer = PrefixedLines("t", out)
    writer.write("no newline yet")
    assert out.getvalue() == ""
    writer.finish()
    assert out.getvalue() == "[t] no newline yet\n"


def test_lines_written_from_many_threads_stay_whole():
    out = io.StringIO()
    writer = PrefixedLines("t", out)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, inside write() too

    def chatter(n: int) -> None:
        for i in range(2000):
            writer.write(f"thread {n} line {i}\n")  # MLflow's and tqdm's threads write whole lines

    threads = [threading.Thread(target=chatter, args=(n,)) for n in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    lines = out.getvalue().splitlines()
    assert len(lines) == 8000 and all(re.fullmatch(r"\[t\] thread \d line \d+", line) for line in lines)


def test_prefixed_labels_print_warnings_logging_and_progress_bars_in_a_process(tmp_path):
    script = textwrap.dedent(
        """
        import logging, sys, warnings
        from tqdm import tqdm
        from mlexp.console import prefixed

        # like Hydra's job logging: a handler that holds the sys.stdout of before the job
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(levelname)s %(message)s")
        with prefixed("abalone_architectures-trial-2"):
            print("trial done: test_msle = 0.0321")
            logging.getLogger("mlexp.runner").info("a log line")
            print("a partial", end="", flush=True)
            warnings.warn("a library's warning")
            sys.stderr.write("written to stderr\\n")
            for _ in tqdm(range(2), desc="Training", mininterval=0):
                pass
            print(" line")
            print("unfinished", end="")
        print("after the job")
        logging.getLogger("mlexp.runner").info("after the job too")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    prefix = "[abalone_architectures-trial-2] "
    out = done.stdout.splitlines()
    assert out == [
        prefix + "trial done: test_msle = 0.0321",
        prefix + "INFO a log line",
        prefix + "a partial line",
        prefix + "unfinished",
        "after the job",
        "INFO after the job too",
    ]
    err = [s for s in re.split(r"[\r\n]", done.stderr) if s.strip()]
    warning_at = next(i for i, s in enumerate(err) if "UserWarning: a library's warning" in s)
    assert err[warning_at].startswith(prefix)
    assert prefix + "written to stderr" in err
    assert all(s.startswith(prefix) for s in err if "Training" in s)


# --- the sources of noise, silenced -----------------------------------------------------------------------------


@pytest.fixture
def quieted(monkeypatch):
    """quiet_third_party() in this process, leaving the environment as it was after the test."""
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    quiet_third_party()


def test_optuna_logs_without_its_colour_handler_and_only_warnings(quieted, caplog):
    import optuna

    caplog.set_level(logging.INFO)
    optuna.create_study(direction="minimize")
    optuna.logging.get_logger("optuna.study").warning("a warning of Optuna's")
    root = logging.getLogger("optuna")
    assert not [h for h in root.handlers if type(h.formatter).__module__.startswith("colorlog")]
    assert root.getEffectiveLevel() == logging.WARNING and root.propagate
    assert "A new study created" not in caplog.text
    assert "a warning of Optuna's" in caplog.text  # warnings still reach the user's handlers


def test_joblib_launcher_keeps_its_job_list_but_not_the_parallel_repr(quieted, caplog):
    from hydra_plugins.hydra_joblib_launcher import _core

    assert _core.log is logging.getLogger(JOBLIB_LAUNCHER_LOGGER)
    caplog.set_level(logging.INFO)
    _core.log.info("Joblib.Parallel(n_jobs=2,backend=loky,prefer=processes,verbose=0) is launching 2 jobs")
    _core.log.info("Launching jobs, sweep output dir : /tmp/sweep")
    assert [r.getMessage() for r in caplog.records] == ["Launching jobs, sweep output dir : /tmp/sweep"]


def test_optuna_sweeper_says_only_what_went_wrong(quieted, caplog):
    from hydra_plugins.hydra_optuna_sweeper import _impl

    assert _impl.log is logging.getLogger(OPTUNA_SWEEPER_LOGGER)
    caplog.set_level(logging.INFO)
    _impl.log.info("Storage: None")
    _impl.log.warning("Failed experiment: boom")
    assert [r.getMessage() for r in caplog.records] == ["Failed experiment: boom"]


def test_a_fresh_store_is_created_without_a_word(quieted, tmp_path, capsys):
    from mlflow import MlflowClient

    MlflowClient(f"sqlite:///{tmp_path / 'fresh.db'}").search_experiments()
    assert "database tables" not in capsys.readouterr().err


def test_botocore_finding_credentials_says_nothing_but_its_warnings_still_show(caplog, monkeypatch, tmp_path):
    import botocore.session

    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    logging.getLogger("botocore").setLevel(logging.NOTSET)  # as in a fresh process (another test may have set it)
    quiet_third_party()
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    caplog.set_level(logging.INFO)  # as Hydra's job logging is set up

    credentials = botocore.session.Session().get_credentials()
    logging.getLogger("botocore.credentials").warning("a warning of botocore's")

    assert credentials is not None and credentials.method == "env"  # the look-up that logs the INFO line ran
    assert [(r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("botocore")] == [
        ("WARNING", "a warning of botocore's")
    ]


def test_mxnet_type_warning_of_an_input_without_dtype_is_silenced_and_others_are_not():
    import mxnet as mx

    def build_symbol_block(quiet: bool) -> list[str]:
        # how gluoncv's SSD builds its feature extractor: an input symbol declared without a dtype
        data = mx.sym.var("data")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if quiet:
                quiet_third_party()
            mx.gluon.SymbolBlock(mx.sym.FullyConnected(data, num_hidden=2, name="fc"), data)
            warnings.warn("another warning", UserWarning, stacklevel=1)
        return [str(w.message) for w in caught]

    assert any("Cannot decide type" in m for m in build_symbol_block(quiet=False))
    assert build_symbol_block(quiet=True) == ["another warning"]


def _python(script: str, server: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = server
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), server, *args],
        capture_output=True,
        text=True,
        timeout=300,  # MLflow's client retries a busy server with back-off: 1.7 s quiet, over 120 s once in a busy CI
        env=env,
        check=True,
    )


def test_requests_to_a_server_warn_nothing_when_quieted_before_mlflow_loads(mlflow_server):
    done = _python(
        """
        import sys
        from mlexp.console import quiet_third_party
        quiet_third_party()  # as the CLI does: before MLflow is imported
        import mlflow
        from mlflow import MlflowClient
        from mlflow.tracking.request_header.registry import resolve_request_headers

        client = MlflowClient(sys.argv[1])
        experiment = client.create_experiment("quiet")
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "loss", 0.5)
        client.set_terminated(run.info.run_id)
        print("loopback headers:", sorted(resolve_request_headers()))
        # a SageMaker-managed server needs the provider's routing header: it stays for an ARN
        mlflow.set_tracking_uri(sys.argv[2])
        print("arn headers:", sorted(resolve_request_headers()))
        """,
        mlflow_server,
        ARN,
    )
    assert HEADER_WARNING not in done.stderr
    assert "View run" not in done.stdout  # MLflow's own links per run: the CLI prints the one that compares
    assert "loopback headers: ['User-Agent', 'X-MLflow-Client-Version']" in done.stdout
    assert "'x-mlflow-sm-tracking-server-arn'" in done.stdout


def test_requests_stop_warning_once_quieted_after_mlflow_loaded(mlflow_server):
    done = _python(
        """
        import sys
        from mlflow import MlflowClient

        client = MlflowClient(sys.argv[1])
        client.search_experiments()
        print("--- quieted ---", file=sys.stderr, flush=True)
        from mlexp.console import quiet_third_party
        quiet_third_party()  # as a reused joblib worker does: MLflow is loaded by an earlier job
        client.search_experiments()
        client.get_experiment_by_name("Default")
        """,
        mlflow_server,
    )
    before, after = done.stderr.split("--- quieted ---")
    assert HEADER_WARNING in before  # the sagemaker-mlflow plugin is installed: the noise is real
    assert HEADER_WARNING not in after


# --- what a user sees, once the CLI calls console.quiet_third_party() and console.prefixed() ---------------------


@pytest.mark.slow
def test_parallel_sweep_on_a_server_prints_labelled_lines_without_library_noise(tmp_project, mlflow_server):
    env = cli_env(tmp_project)
    env["MLFLOW_TRACKING_URI"] = mlflow_server  # where every request warned before, in every trial
    args = ["-m", "task=tabular_regression", "sweep=grid", "sweep.max_parallel_jobs=2", "model.l1_size=4,16", *TINY]
    stdout, stderr = _run_with_terminal_stderr(tmp_project, args, env)  # progress bars are drawn on a terminal only
    assert HEADER_WARNING not in stderr
    assert "Joblib.Parallel(" not in stdout
    assert "View run" not in stdout
    assert ANSI not in stdout and ANSI not in stderr
    finished = [line for line in stdout.splitlines() if "trial done:" in line]
    labels = [re.match(r"\[(\S+-trial-\d+)\] trial done: ", line) for line in finished]
    assert len(finished) == 2 and all(labels), stdout
    assert len({m.group(1) for m in labels if m}) == 2
    bars = [s for s in re.split(r"[\r\n]", stderr) if "Training" in s]
    assert bars and all(re.match(r"\[\S+-trial-\d+\] ", s) for s in bars), stderr


def test_console_module_is_cheap_to_load():
    """The CLI calls quiet_third_party() before anything else: it must not load the libraries it quiets."""
    script = "import json, sys, mlexp.console as c; c.quiet_third_party(); print(json.dumps(list(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    loaded = set(json.loads(done.stdout))
    assert not loaded & {"mlflow", "optuna", "mxnet", "hydra", "joblib", "tqdm"}


@pytest.fixture
def sigint_restored():
    previous = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_in_a_finaliser_reaches_the_main_code_instead_of_a_printed_traceback(monkeypatch, sigint_restored):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: seen.append(type(unraisable.exc_value)))
    # Ctrl-C as from a terminal: a suite started in the background (`make test &`) has SIGINT ignored, and Python
    # delivers no simulated interrupt to a process that ignores it
    signal.signal(signal.SIGINT, signal.default_int_handler)
    quiet_third_party()

    class RaisesWhenCollected:
        def __init__(self, error: BaseException) -> None:
            self.error = error

        def __del__(self) -> None:
            raise self.error

    with pytest.raises(KeyboardInterrupt):
        RaisesWhenCollected(KeyboardInterrupt())  # as Ctrl-C arriving while MXNet frees an array
        for _ in range(1000):  # the interrupt is raised again at one of the next steps of this code
            time.sleep(0.001)
    assert seen == []
    RaisesWhenCollected(ValueError("a real bug"))
    assert seen == [ValueError]
    hook = sys.unraisablehook
    quiet_third_party()  # once per job: the hook is not wrapped again
    assert sys.unraisablehook is hook


def test_an_mxnet_array_whose_construction_ctrl_c_stopped_is_freed_without_a_traceback():
    # Ctrl-C between MXNet's array allocation and `self.handle = ...` leaves an array whose finaliser fails
    script = (
        "import sys, mxnet as mx, mlexp.console as c\n"
        "if sys.argv[1] == 'quiet': c.quiet_third_party()\n"
        "half_built = mx.nd.NDArray.__new__(mx.nd.NDArray)\n"
        "del half_built\n"
        "class Other:\n"
        "    def __del__(self): raise AttributeError('no attribute handle', name='other')\n"
        "Other()\n"
    )
    runs = {
        mode: subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=120)
        for mode in ("plain", "quiet")
    }
    assert runs["plain"].stderr.count("Traceback") == 2  # Python's own printing, as before
    assert "NDArrayBase.__del__" in runs["plain"].stderr
    # the half-built array is silent; any other finaliser's error is still printed
    assert "NDArrayBase.__del__" not in runs["quiet"].stderr
    assert runs["quiet"].stderr.count("Traceback") == 1 and "Other.__del__" in runs["quiet"].stderr


def _run_with_terminal_stderr(project, args: list[str], env: dict[str, str]) -> tuple[str, str]:
    """Run the CLI with stderr on a pseudo-terminal, as in a user's shell (stdout piped); returns both, as text."""
    import fcntl
    import pty
    import struct
    import termios

    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 0 columns: tqdm draws nothing
    process = subprocess.Popen(
        [sys.executable, "-m", "mlexp.cli", *args], cwd=project, env=env, stdout=subprocess.PIPE, stderr=side
    )
    os.close(side)
    chunks: list[bytes] = []

    def drain() -> None:  # a terminal's buffer is small: read while the command runs
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: every process holding the terminal has ended
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stdout, _ = process.communicate(timeout=600)
    reader.join(timeout=30)
    os.close(main)
    assert process.returncode == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    return stdout.decode(), b"".join(chunks).decode(errors="replace")


LEAKING_WORKERS = """
import sys
import time
from joblib import Parallel, delayed

if sys.argv[1] == "quiet":
    from mlexp.console import quiet_third_party

    quiet_third_party()


def grow(number):
    time.sleep(1.2)  # loky looks at a worker's memory at most once a second
    # what a trial leaves in a pool, above loky's 300 MB (kept by a module: this function's globals travel by value)
    sys.__dict__.setdefault("kept", []).append(b"x" * 400_000_000)
    return number


print(Parallel(n_jobs=2, backend="loky", batch_size=1)(delayed(grow)(n) for n in range(6)))
"""


@pytest.mark.parametrize("quiet", [False, True], ids=["as-loky-prints", "quieted"])
def test_a_sweep_worker_replaced_for_its_memory_goes_unsaid(quiet):
    done = subprocess.run(
        [sys.executable, "-c", LEAKING_WORKERS, "quiet" if quiet else "loud"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout.strip() == "[0, 1, 2, 3, 4, 5]", done.stderr  # no job lost
    assert ("A worker stopped while some jobs were given to the executor" in done.stderr) is not quiet, done.stderr
