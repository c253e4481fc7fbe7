"""A Trial is a top-level MLflow run; each trial component is a run nested under it.

Status follows what happened: a stage that raises leaves its component and the trial
FAILED, Ctrl-C (KeyboardInterrupt) leaves them KILLED, and a trial continued by a later
DVC stage never closes FINISHED while one of its components is FAILED.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from mlexp.tracking import tags
from mlexp.tracking.tracker import Tracker


class Trial:
    """One iteration of the workflow: a parent run carrying the headline metrics."""

    def __init__(
        self, client: MlflowClient, run_id: str, metric_buffer: int = 1000, curves: tuple[str, ...] = ()
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.metric_buffer = metric_buffer
        # step metrics whose whole history the trial's run carries (e.g. train_loss per epoch)
        self.curves = curves
        self.tracker = Tracker(client, run_id, metric_buffer=metric_buffer)

    @classmethod
    def open(
        cls,
        client: MlflowClient,
        experiment_id: str,
        name: str | None,
        run_tags: Mapping[str, str],
        metric_buffer: int = 1000,
        curves: tuple[str, ...] = (),
    ) -> Trial:
        run = client.create_run(experiment_id, tags={tags.KIND: "trial", **run_tags}, run_name=name)
        return cls(client, run.info.run_id, metric_buffer, curves)

    @classmethod
    def resume(
        cls, client: MlflowClient, run_id: str, metric_buffer: int = 1000, curves: tuple[str, ...] = ()
    ) -> Trial:
        """Continue a trial opened by an earlier process (a previous DVC stage)."""
        client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        return cls(client, run_id, metric_buffer, curves)

    @property
    def name(self) -> str:
        return str(self.client.get_run(self.run_id).info.run_name)

    def component_statuses(self) -> dict[str, str]:
        """Each stage recorded in this trial and its component's status (FINISHED, FAILED, ...)."""
        experiment_id = self.client.get_run(self.run_id).info.experiment_id
        children = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`{tags.MLFLOW_PARENT_RUN_ID}` = '{self.run_id}'"
        )
        return {run.data.tags.get(tags.STAGE, ""): run.info.status for run in children}

    @contextmanager
    def component(self, display_name: str, stage: str) -> Iterator[Tracker]:
        """Open a nested run for one stage; on error mark it FAILED, store the error, re-raise."""
        experiment_id = self.client.get_run(self.run_id).info.experiment_id
        run = self.client.create_run(
            experiment_id,
            run_name=display_name,
            tags={tags.KIND: "component", tags.STAGE: stage, tags.MLFLOW_PARENT_RUN_ID: self.run_id},
        )
        tracker = Tracker(self.client, run.info.run_id, self.run_id, self.curves, self.metric_buffer)
        try:
            yield tracker
        except BaseException as error:
            tracker.flush()
            self._record_error(run.info.run_id, error)
            self.client.set_terminated(run.info.run_id, RunStatus.to_string(status_after(error)))
            raise
        tracker.flush()
        self.tracker.last_metrics.update(tracker.last_metrics)
        self.client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FINISHED))

    def _record_error(self, run_id: str, error: BaseException) -> None:
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        self.client.set_tag(run_id, tags.ERROR, f"{type(error).__name__}: {error}"[:5000])
        self.client.log_text(run_id, text, "error.txt")

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.tracker.log_parameters(params)

    def set_tags(self, run_tags: Mapping[str, Any]) -> None:
        self.tracker.set_tags(run_tags)

    def close(self, error: BaseException | None = None) -> str:
        """End the trial; its status is FAILED (or KILLED) after an error or a failed component."""
        self.tracker.flush()
        if error is not None:
            self._record_error(self.run_id, error)
            status = status_after(error)
        elif "FAILED" in self.component_statuses().values():
            status = RunStatus.FAILED
        else:
            status = RunStatus.FINISHED
        self.client.set_terminated(self.run_id, RunStatus.to_string(status))
        return RunStatus.to_string(status)


def status_after(error: BaseException) -> int:
    """KILLED when the user interrupted the run (Ctrl-C), FAILED for any other error."""
    return RunStatus.KILLED if isinstance(error, KeyboardInterrupt) else RunStatus.FAILED
