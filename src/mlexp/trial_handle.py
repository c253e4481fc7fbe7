"""A trial as Python code sees it: what the MLflow store holds about one trial, read again by refresh()."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from mlexp.errors import MlexpError


class TrialPaths(NamedTuple):
    """The folders a trial wrote: its run folder's data/, models/ and reports/ (or the folders it was given)."""

    data: Path
    models: Path
    reports: Path


@dataclass(repr=False)
class Trial:
    """One trial: run id, name, status, metrics, params and tags as stored, its artifacts and files, the UI link."""

    run_id: str
    tracking_uri: str
    name: str = ""
    status: str = ""
    experiment_id: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifact_uri: str = ""
    # the task's objective metric as the trial ran (e.g. test_msle) and whether to minimize or maximize it
    objective: str = ""
    direction: str = ""
    sweep_id: str | None = None
    # the `MLflow UI:` link the command line prints: the trials (of the sweep) best first
    ui_link: str | None = None
    # the command that serves that UI, when the store is a local file
    ui_start_command: str | None = None

    @classmethod
    def load(cls, tracking_uri: str, run_id: str) -> Trial:
        """The trial stored as run `run_id` in `tracking_uri`."""
        return cls(run_id, tracking_uri).refresh()

    def refresh(self) -> Trial:
        """Read the trial again from the store (status, metrics, tags change while it runs); returns itself."""
        # imported here: `import mlexp` stays fast, MLflow takes seconds to load
        from mlflow.tracking import MlflowClient

        from mlexp.tracking import tags

        run = MlflowClient(self.tracking_uri).get_run(self.run_id)
        self.name = run.info.run_name or self.run_id[:8]
        self.status = run.info.status
        self.experiment_id = run.info.experiment_id
        self.metrics = dict(run.data.metrics)
        self.params = dict(run.data.params)
        self.tags = dict(run.data.tags)
        self.artifact_uri = run.info.artifact_uri
        self.objective = self.tags.get(tags.OBJECTIVE, "")
        self.direction = self.tags.get(tags.DIRECTION, "")
        self.sweep_id = self.tags.get(tags.SWEEP_ID)
        return self

    @property
    def objective_value(self) -> float:
        """The objective's value; NaN when the trial did not reach it."""
        return self.metrics.get(self.objective, math.nan)

    @property
    def paths(self) -> TrialPaths:
        """Where the trial wrote data, models and reports (its run folder's, or those given as paths.*=...)."""
        if "paths.reports" not in self.tags:
            raise MlexpError(f"trial {self.run_id} has no paths.* tags: it was not recorded by an mlexp run")
        return TrialPaths(*(Path(self.tags[f"paths.{folder}"]) for folder in TrialPaths._fields))

    def __repr__(self) -> str:
        value = f"{self.objective or 'objective'}={self.objective_value:.6g}"
        return f"Trial(name={self.name!r}, status={self.status!r}, {value}, run_id={self.run_id!r})"
