"""Every write mlexp makes to an MLflow store, in one place: the journal's writer and direct callers use it alike.

Records are plain values (name, value, timestamp, step tuples; key/value pairs), so code that
only records them never imports MLflow; this module imports it when it first writes.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from mlexp.tracking.sagemaker_mirror import ExperimentsMirror
from mlexp.tracking.store import TrackingStore

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# MLflow's limits (mlflow.utils.validation), spelled out so that recording needs no MLflow import;
# a test checks they match the installed MLflow
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000

MetricRecord = tuple[str, float, int, int]  # name, value, timestamp (ms), step
Pair = tuple[str, str]

Write = TypeVar("Write", bound=Callable[..., Any])


def one_at_a_time(write: Write) -> Write:
    """A write that waits for any other of the same writer: a Tracker's flusher thread writes too, and the
    mirror follows each run's writes in order."""

    @functools.wraps(write)
    def serialized(self: StoreWriter, *args: Any, **kwargs: Any) -> Any:
        with self.writing:
            return write(self, *args, **kwargs)

    return cast(Write, serialized)


class StoreWriter:
    """Writes runs, params, tags, metrics, artifacts and datasets straight to one MLflow store."""

    def __init__(self, client: MlflowClient, store: TrackingStore | None = None) -> None:
        self._client = client
        self.store = store or TrackingStore(str(client.tracking_uri), None)
        # the second consumer of every write: SageMaker Experiments, for trials whose config asks for it
        self.mirror = ExperimentsMirror(client)
        self.writing = threading.RLock()

    def client(self) -> MlflowClient:
        """The MLflow client, for reads: everything written so far is in the store."""
        return self._client

    def run_id(self, run: str) -> str:
        return run

    def experiment(self, experiment: str) -> str:
        return experiment

    def experiment_id(self, name: str) -> str:
        return self.store.experiment_id(name)

    @one_at_a_time
    def create_run(self, experiment_id: str, run_name: str | None, tags: dict[str, str]) -> str:
        info = self._client.create_run(experiment_id, run_name=run_name, tags=tags).info
        self.mirror.run_created(str(info.run_id), experiment_id, run_name, tags, info)
        return str(info.run_id)

    def find_run(self, experiment_id: str, tag: str, value: str) -> str | None:
        """The id of a run (of any status, even deleted) tagged `tag=value`, if the store holds one."""
        from mlflow.entities import ViewType

        found = self._client.search_runs(
            [experiment_id], f"tags.`{tag}` = '{value}'", run_view_type=ViewType.ALL, max_results=1
        )
        return str(found[0].info.run_id) if found else None

    @one_at_a_time
    def log_batch(
        self,
        run: str,
        metrics: Sequence[MetricRecord] = (),
        params: Sequence[Pair] = (),
        tags: Sequence[Pair] = (),
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        params_, tags_ = [Param(k, v) for k, v in params], [RunTag(k, v) for k, v in tags]
        for start in range(0, max(len(params_), len(tags_)), MAX_PARAMS_TAGS_PER_BATCH):
            end = start + MAX_PARAMS_TAGS_PER_BATCH
            self._client.log_batch(run, params=params_[start:end], tags=tags_[start:end])
        values = [Metric(name, value, timestamp, step) for name, value, timestamp, step in metrics]
        for start in range(0, len(values), MAX_METRICS_PER_BATCH):
            self._client.log_batch(run, metrics=values[start : start + MAX_METRICS_PER_BATCH])
        self.mirror.batch_logged(run, metrics, params, tags)

    @one_at_a_time
    def log_text(self, run: str, text: str, artifact_file: str) -> None:
        self._client.log_text(run, text, artifact_file)
        self.mirror.artifact_logged(run, artifact_file)

    @one_at_a_time
    def log_artifact(self, run: str, local_path: str, artifact_path: str | None = None) -> None:
        if Path(local_path).is_dir():
            self._client.log_artifacts(run, local_path, artifact_path=artifact_path)
            stored = artifact_path or ""
        else:
            self._client.log_artifact(run, local_path, artifact_path=artifact_path)
            stored = f"{artifact_path}/{Path(local_path).name}" if artifact_path else Path(local_path).name
        self.mirror.artifact_logged(run, stored)

    @one_at_a_time
    def log_dataset(self, run: str, name: str, digest: str, source: str, context: str) -> None:
        """Record a local dataset as an MLflow input of the run, with its context (the media type or role)."""
        from mlflow.entities import Dataset, DatasetInput, InputTag
        from mlflow.exceptions import MlflowException

        dataset = Dataset(name=name, digest=digest[:36], source_type="local", source=source)
        tag = InputTag(key="mlflow.data.context", value=context)
        for attempt in range(3):
            try:
                self._client.log_inputs(run, [DatasetInput(dataset, tags=[tag])])
                self.mirror.dataset_logged(run, name, source, context)
                return
            except MlflowException as error:
                # parallel trials logging the same dataset race to insert it (MLflow's SQL store checks, then
                # inserts); the loser's retry finds the winner's row and links to it
                duplicate = "UNIQUE constraint" in str(error) or "duplicate key" in str(error)
                if not duplicate or attempt == 2:
                    raise

    @one_at_a_time
    def set_status(self, run: str, status: str, terminated: bool = True) -> None:
        """End the run with `status`, or (terminated=False) mark it RUNNING again."""
        if terminated:
            self._client.set_terminated(run, status)
        else:
            self._client.update_run(run, status=status)
        self.mirror.status_set(run, status, terminated)

    def sync(self) -> None:
        """Nothing to wait for: every call has reached the store when it returns."""

    def finish(self, wait: bool = True) -> None:
        """Nothing to hand over: see sync."""
