"""The Tracker of a trial component: parameters, inputs, outputs, artifacts, metrics.

Parameters, tags and metrics are buffered and sent with `log_batch`: one `log_metric`
call costs 5–25 ms on SQLite, so a per-step loop would otherwise be dominated by tracking.
A component's metrics also reach its trial's run: the full history for the task's
declared curves (`task.curves`, e.g. train_loss per epoch), the last value for the rest,
which keeps the trial's row in the MLflow run table complete at half the writes.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import (
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
)

TRUNCATED = "…(truncated; full value in config.yaml)"


def file_digest(path: Path) -> str:
    """MD5 of a file's bytes or of a folder's files: the same hash DVC records for a file."""
    digest = hashlib.md5()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def fit(value: Any, limit: int) -> str:
    """`value` as text within MLflow's length limit."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


class Tracker:
    """Records one trial component into its MLflow run; metrics also reach the trial's run."""

    def __init__(
        self,
        client: MlflowClient,
        run_id: str,
        trial_run_id: str | None = None,
        trial_curves: tuple[str, ...] = (),
        metric_buffer: int = 1000,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.trial_run_id = trial_run_id
        self.trial_curves = frozenset(trial_curves)
        self.metric_buffer = max(1, min(metric_buffer, MAX_METRICS_PER_BATCH))
        self._params: dict[str, Param] = {}
        self._tags: dict[str, RunTag] = {}
        self._metrics: list[tuple[str, Metric]] = []
        self._trial_summary: dict[str, Metric] = {}
        self.last_metrics: dict[str, float] = {}

    def log_parameters(self, parameters: Mapping[str, Any]) -> None:
        for key, value in parameters.items():
            self._params[key] = Param(key, fit(value, MAX_PARAM_VAL_LENGTH))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self._tags[key] = RunTag(key, fit(value, MAX_TAG_VAL_LENGTH))

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
                dataset = Dataset(name=name, digest=digest[:36], source_type="local", source=str(path.resolve()))
                context = InputTag(key="mlflow.data.context", value=media_type)
                self.client.log_inputs(self.run_id, [DatasetInput(dataset, tags=[context])])
        self.set_tags(tags)

    def log_artifact(self, file_path: str | Path, name: str | None = None, media_type: str | None = None) -> None:
        """Copy a file into the component's artifacts (under `name/` when given)."""
        self.client.log_artifact(self.run_id, str(file_path), artifact_path=name)
        if media_type:
            self.set_tags({f"artifact.{name or Path(file_path).name}.media_type": media_type})

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Buffer one value; it reaches MLflow on the next flush (at latest when the component closes)."""
        metric = Metric(name, float(value), int(time.time() * 1000), step or 0)
        self._metrics.append((self.run_id, metric))
        if self.trial_run_id is not None:
            if name in self.trial_curves:
                self._metrics.append((self.trial_run_id, metric))
            else:
                self._trial_summary[name] = metric
        if math.isfinite(metric.value):
            self.last_metrics[name] = metric.value
        if len(self._metrics) >= self.metric_buffer:
            self._send_metrics()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for name, value in metrics.items():
            self.log_metric(name, value, step)

    def flush(self) -> None:
        """Send everything buffered, and the last values for the trial, in as few `log_batch` calls as possible."""
        if self.trial_run_id is not None:
            self._metrics.extend((self.trial_run_id, metric) for metric in self._trial_summary.values())
        self._trial_summary = {}
        params, tags = list(self._params.values()), list(self._tags.values())
        self._params, self._tags = {}, {}
        for start in range(0, max(len(params), len(tags)), MAX_PARAMS_TAGS_PER_BATCH):
            end = start + MAX_PARAMS_TAGS_PER_BATCH
            self.client.log_batch(self.run_id, params=params[start:end], tags=tags[start:end])
        self._send_metrics()

    def _send_metrics(self) -> None:
        by_run: dict[str, list[Metric]] = {}
        for run_id, metric in self._metrics:
            by_run.setdefault(run_id, []).append(metric)
        self._metrics = []
        for run_id, metrics in by_run.items():
            for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
                self.client.log_batch(run_id, metrics=metrics[start : start + MAX_METRICS_PER_BATCH])
