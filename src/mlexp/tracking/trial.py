"""A Trial is a top-level MLflow run; each trial component is a run nested under it.

Status follows what happened: a stage that raises leaves its component and the trial
FAILED, Ctrl-C (KeyboardInterrupt) leaves them KILLED, and a trial continued by a later
DVC stage never closes FINISHED while one of its components is FAILED.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mlexp.errors import MlexpError
from mlexp.tracking import sagemaker_mirror, tags
from mlexp.tracking.tracker import RunWriter, Tracker, as_writer
from mlexp.tracking.trial_state import TrialState

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

FINISHED, FAILED, KILLED, RUNNING = "FINISHED", "FAILED", "KILLED", "RUNNING"


class Trial:
    """One iteration of the workflow: a parent run carrying the headline metrics.

    It records through a RunWriter: an MLflow client given here is written to directly; the runner
    gives a JournalWriter, whose runs get their store ids in the background (`run_id` waits for them).
    """

    def __init__(
        self,
        client: MlflowClient | RunWriter,
        run_id: str,
        metric_buffer: int = 1000,
        curves: tuple[str, ...] = (),
        experiment_id: str | None = None,
        *,
        metric_flush_s: float = 5.0,
    ) -> None:
        self.writer = as_writer(client)
        self.run = run_id
        self.metric_buffer = metric_buffer
        self.metric_flush_s = metric_flush_s
        # step metrics whose whole history the trial's run carries (e.g. train_loss per epoch)
        self.curves = curves
        self.tracker = Tracker(self.writer, run_id, metric_buffer=metric_buffer, metric_flush_s=metric_flush_s)
        self._experiment_id = experiment_id
        # each stage this process ran, and its component's status: the trial's end needs no store read
        self.statuses: dict[str, str] = {}
        self.component_runs: dict[str, str] = {}  # each stage this process ran: its component's run (writer's name)
        self.metrics: dict[str, float] = {}  # what the trial's run holds of this process's metrics
        self.earlier: TrialState | None = None  # what earlier processes recorded, for a resumed trial
        self.ended: str | None = None  # the status `close` ended it with

    @classmethod
    def open(
        cls,
        client: MlflowClient | RunWriter,
        experiment_id: str,
        name: str | None,
        run_tags: Mapping[str, str],
        metric_buffer: int = 1000,
        curves: tuple[str, ...] = (),
        *,
        metric_flush_s: float = 5.0,
    ) -> Trial:
        writer = as_writer(client)
        run = writer.create_run(experiment_id, name, {tags.KIND: "trial", **run_tags})
        return cls(writer, run, metric_buffer, curves, experiment_id, metric_flush_s=metric_flush_s)

    @classmethod
    def resume(
        cls,
        writer: RunWriter,
        run_id: str,
        state: TrialState,
        metric_buffer: int = 1000,
        curves: tuple[str, ...] = (),
        *,
        metric_flush_s: float = 5.0,
    ) -> Trial:
        """Continue a trial opened by an earlier process (a previous DVC stage), as the store holds it (`state`)."""
        trial = cls(writer, run_id, metric_buffer, curves, state.experiment_id, metric_flush_s=metric_flush_s)
        trial.earlier = state
        trial.statuses = dict(state.components)  # a FAILED one among them keeps the trial from closing FINISHED
        writer.set_status(run_id, RUNNING, terminated=False)
        return trial

    @property
    def run_id(self) -> str:
        """The trial's MLflow run id (waits for the store to have created the run)."""
        return self.writer.run_id(self.run)

    @property
    def client(self) -> MlflowClient:
        """An MLflow client for reading the store; everything recorded so far is in it."""
        self.tracker.flush()
        return self.writer.client()

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = str(self.client.get_run(self.run_id).info.experiment_id)
        return self.writer.experiment(self._experiment_id)

    @property
    def name(self) -> str:
        return str(self.client.get_run(self.run_id).info.run_name)

    def logged_metrics(self) -> dict[str, float]:
        """The trial run's metrics: those earlier processes logged (a resumed trial), then this process's own.

        A name both logged is this process's value, where the store would keep the one at the higher step;
        the stages of one trial log different names, so the two agree.
        """
        earlier = self.earlier.metrics if self.earlier else {}
        return {**earlier, **self.metrics, **self.tracker.latest}

    @contextmanager
    def component(self, display_name: str, stage: str) -> Iterator[Tracker]:
        """Open a nested run for one stage; on error mark it FAILED, store the error, re-raise."""
        experiment = self._experiment_id if self._experiment_id is not None else self.experiment_id
        run = self.writer.create_run(
            experiment,
            display_name,
            {tags.KIND: "component", tags.STAGE: stage, tags.MLFLOW_PARENT_RUN_ID: self.run},
        )
        self.component_runs[stage] = run
        tracker = Tracker(
            self.writer, run, self.run, self.curves, self.metric_buffer, metric_flush_s=self.metric_flush_s
        )
        try:
            yield tracker
            tracker.close()  # inside: a send the flusher thread could not make fails the component like any error
        except BaseException as error:
            tracker.close(after_error=True)
            self._record_error(run, error)
            self.statuses[stage] = status_after(error)
            self.metrics.update(tracker.latest)
            self.writer.set_status(run, status_after(error))
            raise
        self.tracker.last_metrics.update(tracker.last_metrics)
        self.metrics.update(tracker.latest)
        self.statuses[stage] = FINISHED
        self.writer.set_status(run, FINISHED)

    def _record_error(self, run: str, error: BaseException) -> None:
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        self.writer.log_batch(run, tags=[(tags.ERROR, f"{type(error).__name__}: {error}"[:5000])])
        self.writer.log_text(run, text, "error.txt")

    def log_params(self, params: Mapping[str, Any]) -> None:
        """The trial's config; one asking for the SageMaker mirror without AWS access ends the trial FAILED here."""
        try:
            sagemaker_mirror.check_setup(params)
        except MlexpError as error:  # before any stage runs: the command says it in one line
            self.close(error)
            raise
        self.tracker.log_parameters(params)

    def set_tags(self, run_tags: Mapping[str, Any]) -> None:
        self.tracker.set_tags(run_tags)

    def close(self, error: BaseException | None = None, wait: bool = True) -> str:
        """End the trial; its status is FAILED (or KILLED) after an error or a failed component.

        When it returns, the store holds everything the trial recorded, unless wait=False: then the
        writer process stores the rest on its own (a sweep waits for its trials' journals at its end).
        A trial already closed stays as it ended: the caller that closes it again after an error (the runner, after
        `log_params` closed it FAILED) must get that error through, not the closed journal's refusal of a second end.
        """
        if self.ended is not None:
            return self.ended
        self.tracker.close(after_error=error is not None)
        if error is not None:
            self._record_error(self.run, error)
            status = status_after(error)
        elif FAILED in self.statuses.values():
            status = FAILED
        else:
            status = FINISHED
        self.ended = status
        self.writer.set_status(self.run, status)
        self.writer.finish(wait)
        return status


def status_after(error: BaseException) -> str:
    """KILLED when the user interrupted the run (Ctrl-C), FAILED for any other error."""
    return KILLED if isinstance(error, KeyboardInterrupt) else FAILED
