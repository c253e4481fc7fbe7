"""What a run prints: libraries' known noise silenced where it starts, and each parallel trial's lines labelled."""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, TextIO

from mlexp.interrupts import interrupt_again

# imported by MLflow on its first REST request; holds the request header providers of every plugin
HEADER_REGISTRY = "mlflow.tracking.request_header.registry"
JOBLIB_LAUNCHER_LOGGER = "hydra_plugins.hydra_joblib_launcher._core"
OPTUNA_SWEEPER_LOGGER = "hydra_plugins.hydra_optuna_sweeper._impl"
LEAKED_SEMAPHORES_IGNORED = "ignore:resource_tracker:UserWarning"  # its message starts "resource_tracker: There appear"
WORKER_REPLACED = "A worker stopped while some jobs were given to the executor"  # loky's process_executor
INTERRUPT_AGAIN_S = 0.05  # Ctrl-C lost in a finaliser is raised again this much later
_LINE_ENDS = re.compile(r"(\r\n|\n|\r)")


_kept: list[list[str]] = []  # the lists of warnings_kept blocks open now


def warn(message: str) -> None:
    """A warning the user sees on the terminal, in the form every mlexp warning takes."""
    _tell(f"mlexp: warning: {message}")


def skipped(what: str) -> None:
    """An input a stage leaves out (a document it cannot read), named on the terminal as a warning is."""
    _tell(f"mlexp: skipped {what}")


def _tell(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
    for kept in _kept:
        kept.append(line)


@contextmanager
def warnings_kept() -> Iterator[list[str]]:
    """The lines `warn` and `skipped` print meanwhile, in their order (filled as they are printed): a shared
    Pre-processing keeps them for the trials that reuse it."""
    kept: list[str] = []
    _kept.append(kept)
    try:
        yield kept
    finally:
        _kept.remove(kept)


def confirmed(question: str) -> bool:
    """Whether the user answers yes to `question` on the terminal; end of input (Ctrl-D) or Ctrl-C is a no."""
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except (EOFError, KeyboardInterrupt):
        print()
        return False


def confirmed_on_terminal(command: str, question: str, nothing: str) -> bool:
    """A destructive command's yes: without a terminal, `nothing` happens and --force is the way (one line on
    stderr); on one, `question` is asked and a no says `nothing`."""
    if not sys.stdin.isatty():
        print(f"{command}: {nothing}: no terminal to confirm on; add --force", file=sys.stderr)
        return False
    if not confirmed(question):
        print(nothing)
        return False
    return True


@contextmanager
def logger_quiet(name: str, level: int = logging.ERROR) -> Iterator[None]:
    """Logger `name` below `level` silenced for the block: what it would say is reported in one line instead."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


def quiet_third_party() -> None:
    """Silence the libraries' known noise in this process; imports none of them (call once per process)."""
    # the sagemaker-mlflow plugin's header provider warns "list index out of range" on every request
    # to any server that is not SageMaker's: keep it for SageMaker ARNs only
    after_import(HEADER_REGISTRY, _limit_sagemaker_headers_to_sagemaker)
    # Optuna's own colour handler writes ANSI codes even into files and pipes
    after_import("optuna.logging", _plain_optuna_logs)
    # gluoncv's SSD feature extractor declares its input without a dtype; MXNet then uses float32, as we do
    warnings.filterwarnings(
        "ignore",
        message="Cannot decide type for the following arguments",
        category=UserWarning,
        module=r"mxnet\.gluon\.block",
    )
    # loky replaces a sweep worker whose memory grew 300 MB since its first job (MXNet's pool keeps what a trial
    # used) and warns "A worker stopped ... memory leak" among the trials' lines; the sweep goes on in the new worker
    warnings.filterwarnings("ignore", message=WORKER_REPLACED, category=UserWarning)
    # the launcher's next lines list the jobs; its full Parallel(...) arguments say nothing to a user
    logging.getLogger(JOBLIB_LAUNCHER_LOGGER).addFilter(_without_parallel_repr)
    # the sweeper's settings ("Storage: None") and best value at INFO: mlexp prints the sweep and its best trial
    logging.getLogger(OPTUNA_SWEEPER_LOGGER).setLevel(logging.WARNING)
    # "Creating initial MLflow database tables..." on a fresh store
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    # alembic's "setup plugin ..." lines, at INFO once Hydra's job logging is set up (MLflow imports it late)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # botocore's "Found credentials in environment variables." at INFO on the first AWS client (Textract, Athena,
    # the SageMaker mirror); its warnings and errors still show
    logging.getLogger("botocore").setLevel(logging.WARNING)
    # joblib's resource tracker, a process of its own started with this one's -W options, warns of "leaked
    # semaphore objects" after Ctrl-C stops the workers, below the command's last line; it frees them itself
    if LEAKED_SEMAPHORES_IGNORED not in sys.warnoptions:
        sys.warnoptions.append(LEAKED_SEMAPHORES_IGNORED)
    if not getattr(sys.unraisablehook, "mlexp_quiet", False):
        sys.unraisablehook = _interrupt_in_finaliser_ignored(sys.unraisablehook)
    # the CLI prints one link to the comparison of trials; MLflow would print two per run and component
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def _interrupt_in_finaliser_ignored(hook: Callable[[Any], object]) -> Callable[[Any], object]:
    """Ctrl-C landing in an object's finaliser (MXNet's NDArray.__del__) is delivered again, to the main code.

    Python would print it as an ignored exception with a traceback and drop it: the command would go on as if no
    Ctrl-C came. Raised again at the main code's next step, it stops the command with its one-line report.
    A half-built MXNet array that Ctrl-C left behind is freed quietly. Other unraisable errors still go to `hook`.
    """

    def ignoring_interrupts(unraisable: Any) -> object:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            # from another thread, a moment later: raised now, it would land in this hook and be dropped again
            threading.Timer(INTERRUPT_AGAIN_S, interrupt_again).start()
            return None
        if _half_built_array_freed(unraisable):
            return None
        return hook(unraisable)

    ignoring_interrupts.mlexp_quiet = True  # type: ignore[attr-defined]
    return ignoring_interrupts


def _half_built_array_freed(unraisable: Any) -> bool:
    """MXNet freeing an array whose constructor Ctrl-C stopped before it held a handle: nothing to free.

    Its finaliser then fails on the missing `handle` and Python prints that traceback under the command's own
    one-line report of the interrupt.
    """
    error = unraisable.exc_value
    finaliser_module = getattr(unraisable.object, "__module__", None) or ""
    return (
        isinstance(error, AttributeError)
        and getattr(error, "name", None) == "handle"
        and finaliser_module.startswith("mxnet.")
    )


def is_sagemaker_arn(uri: str) -> bool:
    """True for a SageMaker-managed MLflow server's ARN used as tracking URI."""
    return uri.startswith("arn:") and ":sagemaker:" in uri


def after_import(module: str, then: Callable[[ModuleType], None]) -> None:
    """Call `then(module)` now if the module is loaded, else right after its first import."""
    loaded = sys.modules.get(module)
    if loaded is not None:
        _call(then, loaded)
    elif not any(isinstance(f, _AfterImport) and (f.module, f.then) == (module, then) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(module, then))


class _AfterImport:
    """An import hook that lets the usual finders load one module, then calls a function on it."""

    def __init__(self, module: str, then: Callable[[ModuleType], None]) -> None:
        self.module = module
        self.then = then

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != self.module:
            return None
        for finder in [f for f in sys.meta_path if f is not self]:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or isinstance(loader, type) or not hasattr(loader, "exec_module"):
            return spec  # a built-in or shared loader: leave it alone
        exec_module = loader.exec_module

        def exec_then_call(loaded: ModuleType) -> None:
            exec_module(loaded)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            _call(self.then, loaded)

        loader.exec_module = exec_then_call
        return spec


def _call(then: Callable[[ModuleType], None], module: ModuleType) -> None:
    try:
        then(module)
    except Exception as error:  # a quieter console is never worth a failed trial
        warnings.warn(f"mlexp: could not quiet {module.__name__}: {error}", stacklevel=2)


class _OnlyOnSageMaker:
    """The sagemaker-mlflow header provider, active only while the tracking URI is a SageMaker ARN."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider

    def in_context(self) -> bool:
        import mlflow  # loaded already: this runs inside an MLflow request

        # the provider reads the process-wide tracking URI itself, so that is the one to test
        return is_sagemaker_arn(mlflow.get_tracking_uri()) and bool(self.provider.in_context())

    def request_headers(self) -> dict[str, str]:
        return dict(self.provider.request_headers())


def _limit_sagemaker_headers_to_sagemaker(registry: ModuleType) -> None:
    providers = registry._request_header_provider_registry._registry
    providers[:] = [
        _OnlyOnSageMaker(p) if type(p).__module__.split(".")[0] == "sagemaker_mlflow" else p for p in providers
    ]


def _plain_optuna_logs(optuna_logging: ModuleType) -> None:
    optuna_logging.set_verbosity(optuna_logging.WARNING)
    optuna_logging.disable_default_handler()
    optuna_logging.enable_propagation()  # its warnings still reach the user, through the usual handlers


def _without_parallel_repr(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Joblib.Parallel(")


class PrefixedLines:
    """A text stream that writes each whole line to `stream` as `[name] line`, in one write."""

    def __init__(self, name: str, stream: TextIO) -> None:
        self.prefix = f"[{name}] "
        self.stream = stream
        self._line = ""  # the current line's text not written yet
        self._shown = False  # the current line's prefix is out already (a progress bar drawn early)
        self._redraw = False  # the current line follows a carriage return: a progress bar redrawing itself
        self._lock = threading.Lock()  # MLflow and tqdm write from their own threads too

    def write(self, text: str) -> int:
        with self._lock:
            for piece in _LINE_ENDS.split(text):
                if piece in ("\n", "\r\n", "\r"):
                    self._end_line(piece)
                else:
                    self._line += piece
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Write a progress bar's current state now; other partial lines wait for their newline."""
        with self._lock:
            if self._redraw and self._line:
                self._emit(("" if self._shown else self.prefix) + self._line)
                self._line, self._shown = "", True
            self.stream.flush()

    def finish(self) -> None:
        """End an unfinished line, so the next writer starts on a line of its own."""
        with self._lock:
            if self._line or self._shown:
                self._end_line("\n")
            self.stream.flush()

    def _end_line(self, end: str) -> None:
        prefix = self.prefix if self._line and not self._shown else ""
        self._emit(prefix + self._line + end)
        self._line, self._shown, self._redraw = "", False, end == "\r"

    def _emit(self, text: str) -> None:
        # one write, flushed at once: parallel trials share the terminal, and a line must not split
        self.stream.write(text)
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)  # encoding, isatty, fileno, ... of the real stream


@contextmanager
def prefixed(name: str) -> Iterator[None]:
    """Label with `[name] ` every line printed meanwhile: print(), warnings, logging and progress bars."""
    out, err = sys.stdout, sys.stderr
    writers = {id(out): PrefixedLines(name, out), id(err): PrefixedLines(name, err)}
    swapped = [(h, h.stream) for h in _stream_handlers() if id(h.stream) in writers]
    for handler, stream in swapped:
        handler.setStream(writers[id(stream)])  # type: ignore[arg-type]
    sys.stdout, sys.stderr = writers[id(out)], writers[id(err)]  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err
        for handler, stream in swapped:
            handler.setStream(stream)
        for writer in writers.values():
            writer.finish()


def _stream_handlers() -> list[logging.StreamHandler]:
    """Handlers that hold a stream of their own (Hydra's job logging holds the sys.stdout it started with)."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    handlers = {id(h): h for lg in loggers if isinstance(lg, logging.Logger) for h in lg.handlers}
    return [h for h in handlers.values() if isinstance(h, logging.StreamHandler)]
