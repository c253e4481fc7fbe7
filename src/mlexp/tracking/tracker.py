"""The Tracker of a trial component: parameters, inputs, outputs, artifacts, metrics.

Parameters, tags and metrics are buffered and sent with `log_batch`: one `log_metric`
call costs 5–25 ms on SQLite, so a per-step loop would otherwise be dominated by tracking.
Step metrics are sent every `metric_buffer` values, and also once `metric_flush_s` seconds have
passed since the last send, so the MLflow UI follows a long training epoch by epoch: a value logged
just after a send would otherwise wait for the next log call, a whole epoch later. A daemon thread
(`_flush_when_due`) sends it; it runs only while values wait, and holds the Tracker's lock while it
sends, so the values keep their order and a step logged with `log_metrics` goes out whole.
A component's metrics also reach its trial's run: the full history for the task's
declared curves (`task.curves`, e.g. train_loss per epoch), the last value for the rest,
which keeps the trial's row in the MLflow run table complete at half the writes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlexp.tracking import flushers
from mlexp.tracking.digests import file_digest
from mlexp.tracking.store_writer import (
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_VAL_LENGTH,
    MAX_TAG_VAL_LENGTH,
    MetricRecord,
    StoreWriter,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mlflow.tracking import MlflowClient

    from mlexp.tracking.store import TrackingStore
    from mlexp.tracking.store_writer import Pair


class RunWriter(Protocol):
    """Where a trial's records go: straight to the store (StoreWriter) or through its journal (JournalWriter)."""

    store: TrackingStore

    def client(self) -> MlflowClient: ...
    def run_id(self, run: str) -> str: ...
    def experiment(self, experiment: str) -> str: ...
    def experiment_id(self, name: str) -> str: ...
    def create_run(self, experiment_id: str, run_name: str | None, tags: dict[str, str]) -> str: ...
    def log_batch(
        self,
        run: str,
        metrics: Sequence[MetricRecord] = (),
        params: Sequence[Pair] = (),
        tags: Sequence[Pair] = (),
    ) -> None: ...
    def log_text(self, run: str, text: str, artifact_file: str) -> None: ...
    def log_artifact(self, run: str, local_path: str, artifact_path: str | None = None) -> None: ...
    def log_dataset(self, run: str, name: str, digest: str, source: str, context: str) -> None: ...
    def set_status(self, run: str, status: str, terminated: bool = True) -> None: ...
    def sync(self) -> None: ...
    def finish(self, wait: bool = True) -> None: ...


def as_writer(client_or_writer: Any) -> RunWriter:
    """A RunWriter for what the caller has: an MLflow client is written to directly."""
    if hasattr(client_or_writer, "set_status"):
        return client_or_writer  # type: ignore[no-any-return]
    return StoreWriter(client_or_writer)


TRUNCATED = "…(truncated; full value in config.yaml)"


def fit(value: Any, limit: int) -> str:
    """`value` as text within MLflow's length limit."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


class Tracker:
    """Records one trial component into its MLflow run; metrics also reach the trial's run."""

    def __init__(
        self,
        writer: RunWriter,
        run: str,
        trial_run: str | None = None,
        trial_curves: tuple[str, ...] = (),
        metric_buffer: int = 1000,
        *,
        metric_flush_s: float = 5.0,
    ) -> None:
        self.writer = writer
        self.run = run  # the run as the writer names it (maybe before the store has created it)
        self.trial_run = trial_run
        self.trial_curves = frozenset(trial_curves)
        self.metric_buffer = max(1, min(metric_buffer, MAX_METRICS_PER_BATCH))
        self.metric_flush_s = metric_flush_s
        self._sent_at = time.monotonic()
        self._lock = threading.RLock()  # the metric buffer's: the flusher thread sends from it too
        self._due = threading.Condition(self._lock)
        self._flusher: threading.Thread | None = None
        self._flusher_error: Exception | None = None  # raised by the next call: a send the thread tried failed
        self._closed = False
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._metrics: list[tuple[str, MetricRecord]] = []
        self._pending = 0  # values buffered for this component's run, the run that gets every one of them
        self._trial_summary: dict[str, MetricRecord] = {}
        self.last_metrics: dict[str, float] = {}
        self.latest: dict[str, float] = {}  # the last value of every metric, NaN included, as the store keeps it

    @property
    def run_id(self) -> str:
        """The component's MLflow run id (waits for the store to have created the run)."""
        return self.writer.run_id(self.run)

    @property
    def trial_run_id(self) -> str | None:
        return None if self.trial_run is None else self.writer.run_id(self.trial_run)

    @property
    def client(self) -> MlflowClient:
        """An MLflow client for reading the store; everything recorded so far is in it."""
        self.flush()
        return self.writer.client()

    def log_parameters(self, parameters: Mapping[str, Any]) -> None:
        for key, value in parameters.items():
            self._params[key] = fit(value, MAX_PARAM_VAL_LENGTH)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self._tags[key] = fit(value, MAX_TAG_VAL_LENGTH)

    def log_input(self, name: str, media_type: str, value: str | Path) -> None:
        """Record an input; a local file or folder also gets its content hash as data version."""
        self._log_data("input", name, media_type, value)

    def log_output(self, name: str, media_type: str, value: str | Path) -> None:
        self._log_data("output", name, media_type, value)

    def _log_data(self, direction: str, name: str, media_type: str, value: str | Path) -> None:
        tags = {f"{direction}.{name}": str(value), f"{direction}.{name}.media_type": media_type}
        path = Path(value)
        if path.exists():
            digest = file_digest(path)
            tags[f"data_version.{name}"] = digest
            if direction == "input":
                self.writer.log_dataset(self.run, name, digest, str(path.resolve()), media_type)
        self.set_tags(tags)

    def log_artifact(self, file_path: str | Path, name: str | None = None, media_type: str | None = None) -> None:
        """Copy a file into the component's artifacts (under `name/` when given)."""
        self.writer.log_artifact(self.run, str(file_path), name)
        if media_type:
            self.set_tags({f"artifact.{name or Path(file_path).name}.media_type": media_type})

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Buffer one value; it reaches MLflow with the next batch, at latest `metric_flush_s` after the last one."""
        with self._lock:
            self._raise_flusher_error()
            self._buffer(name, value, step)
            self._send_when_due()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Buffer the values of one step; they reach MLflow together."""
        with self._lock:
            self._raise_flusher_error()
            for name, value in metrics.items():
                self._buffer(name, value, step)
            self._send_when_due()

    def _buffer(self, name: str, value: float, step: int | None) -> None:
        metric = (name, float(value), int(time.time() * 1000), step or 0)
        self._metrics.append((self.run, metric))
        if self.trial_run is not None:
            if name in self.trial_curves:
                self._metrics.append((self.trial_run, metric))
            else:
                self._trial_summary[name] = metric
        self.latest[name] = metric[1]
        if math.isfinite(metric[1]):
            self.last_metrics[name] = metric[1]
        self._pending += 1
        # full batches for each run: a curve's values go to two runs, each gets batches of metric_buffer values
        if self._pending >= self.metric_buffer:
            self._send_metrics()

    def _send_when_due(self) -> None:
        """Send what waits once `metric_flush_s` has passed since the last send: checked after a step's values,
        so an epoch's values reach the UI together; values left waiting get a flusher thread to send them."""
        if not self._metrics:
            return
        if time.monotonic() - self._sent_at >= self.metric_flush_s:
            self._send_metrics()
        elif self._flusher is None and not self._closed:
            flusher = threading.Thread(target=self._flush_when_due, name="mlexp-metric-flush", daemon=True)
            flushers.started(self)
            flusher.start()  # it waits for this lock: a Ctrl-C before the next line leaves no thread unjoinable
            self._flusher = flusher

    def _flush_when_due(self) -> None:
        """The flusher thread: sends the waiting values once `metric_flush_s` has passed, and ends when none wait."""
        with self._lock:
            try:
                while self._metrics and not self._closed:
                    left = self._sent_at + self.metric_flush_s - time.monotonic()
                    if left > 0:  # a send meanwhile (a full buffer, a step past the interval) moved the time on
                        self._due.wait(min(left, threading.TIMEOUT_MAX))  # metric_flush_s=1e10: past time_t
                    else:
                        self._send_metrics()
            except Exception as error:  # the stage's thread raises it: the stage fails as if it had sent them
                self._flusher_error = error
            finally:
                self._flusher = None
                flushers.stopped(self)

    def hold_for_fork(self, timeout: float) -> bool:
        """Wait for a send in progress (mlexp.tracking.flushers, before a fork); whether the lock was taken."""
        return self._lock.acquire(timeout=timeout)

    def release_after_fork(self) -> None:
        self._lock.release()

    def reset_in_child(self) -> None:
        """In a forked child: the flusher thread is the parent's; the child's copy starts its own when it logs."""
        self._lock = threading.RLock()
        self._due = threading.Condition(self._lock)
        self._flusher = None

    def _raise_flusher_error(self) -> None:
        error, self._flusher_error = self._flusher_error, None
        if error is not None:
            raise error

    def flush(self) -> None:
        """Send everything buffered, and the last values for the trial, in as few batches as possible."""
        with self._lock:
            self._raise_flusher_error()
            if self.trial_run is not None:
                self._metrics.extend((self.trial_run, metric) for metric in self._trial_summary.values())
            self._trial_summary = {}
            params, tags = list(self._params.items()), list(self._tags.items())
            self._params, self._tags = {}, {}
            if params or tags:
                self.writer.log_batch(self.run, params=params, tags=tags)
            self._send_metrics()

    def close(self, *, after_error: bool = False) -> None:
        """Stop the flusher thread and flush. After the stage's own error (`after_error`), a send the thread could
        not make is not raised in its place: the stage's error (or Ctrl-C) is the one its run ends with."""
        with self._lock:
            self._closed = True
            self._due.notify_all()
            flusher = self._flusher
        if flusher is not None:
            flusher.join()
        if after_error:
            self._flusher_error = None
        self.flush()

    def _send_metrics(self) -> None:
        by_run: dict[str, list[MetricRecord]] = {}
        for run, metric in self._metrics:
            by_run.setdefault(run, []).append(metric)
        waiting, self._metrics, self._pending = self._metrics, [], 0
        sent: set[str] = set()
        try:
            for run, metrics in by_run.items():
                self.writer.log_batch(run, metrics=metrics)
                sent.add(run)
        except BaseException:  # the values not sent wait again: the component's end tries them once more
            self._metrics = [(run, metric) for run, metric in waiting if run not in sent] + self._metrics
            self._pending = len(self._metrics)
            raise
        self._sent_at = time.monotonic()  # after: a send slower than the interval must not make every value a batch
