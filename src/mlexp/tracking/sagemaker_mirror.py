"""`tracking.sagemaker_mirror=true`: what a trial writes to MLflow is written again to SageMaker Experiments.

Every write to an MLflow store goes through StoreWriter (in the journal's writer process, in `mlexp sync`
and with MLEXP_TRACKING_WRITER=inline alike), which hands each one to this mirror once MLflow holds it: the
trial's own process pays nothing. The mirror follows runs in memory and calls SageMaker only for trials
whose recorded config says `tracking.sagemaker_mirror=True`; the SDK is imported then.

  MLflow                                  SageMaker Experiments
  experiment                              Experiment (DisplayName: the MLflow name)
  trial run (mlexp.kind=trial)            Trial, and a trial component of the same name with the trial's
                                          config parameters, metrics and artifacts
  component run (one per stage)           trial component associated with its trial
  shared component (tag                   the first trial's component, associated with every trial reusing it
    mlexp.shared_component.<stage>)       (a sweep's Pre-processing, a stage a partial `dvc repro` kept)
  params / metrics                        Parameters (numbers as NumberValue) / BatchPutMetrics
  input.* tags, datasets / output.* tags, InputArtifacts / OutputArtifacts (MLflow artifact URIs)
    logged artifacts
  RUNNING, FINISHED, FAILED, KILLED       InProgress, Completed, Failed (mlexp.error as message), Stopped

A SageMaker error (no credentials, throttling) stops the mirror of that trial only: MLflow keeps the trial,
its run is tagged `mlexp.sagemaker_mirror=failed: <reason>`, one line says so, and `mlexp sync` mirrors it
again from the MLflow store (sagemaker_mirror_retry.py). A mirrored trial's run is tagged with its SageMaker name.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlexp.tracking import tags as mlexp_tags
from mlexp.tracking.sagemaker_experiments import (
    STATUSES,
    Artifact,
    Experiments,
    experiment_name,
    media_type,
    run_entity_name,
)

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

MIRROR_PARAM = "tracking.sagemaker_mirror"  # the trial's flattened config: whether to mirror it
MIRROR_TAG = "mlexp.sagemaker_mirror"  # on the trial's run: its SageMaker trial name, or "failed: <reason>"
FAILED = "failed: "
MEDIA_SUFFIX = ".media_type"

MetricRecord = tuple[str, float, int, int]
Pair = tuple[str, str]


def wanted(params: Mapping[str, Any]) -> bool:
    """Whether a trial's config parameters ask for the mirror."""
    return str(params.get(MIRROR_PARAM, "")).lower() == "true"


def check_before_trial(mirror: bool) -> None:
    """Before the trial opens (the runner, `mirror` being tracking.sagemaker_mirror): no AWS region, or no credentials
    botocore's chain finds offline, is refused in one line (exit 2) and nothing is recorded."""
    if mirror:
        from mlexp.tracking.sagemaker_experiments import check_setup as check

        check(offline=True)


def check_setup(params: Mapping[str, Any]) -> None:
    """At trial start: a config asking for the mirror without AWS region or credentials fails in one line (what the
    runner's check_before_trial could not judge offline, such as an instance without a role, or a trial opened
    elsewhere)."""
    if wanted(params):
        from mlexp.tracking.sagemaker_experiments import check_setup as check

        check()


@dataclass
class _Changes:
    """What a trial component got since its last UpdateTrialComponent."""

    parameters: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, Artifact] = field(default_factory=dict)
    outputs: dict[str, Artifact] = field(default_factory=dict)
    message: str = ""


@dataclass
class _Run:
    """A mirrored MLflow run: its trial component and the MLflow trial run it belongs to."""

    trial_run: str
    component: str
    artifact_uri: str
    changes: _Changes = field(default_factory=_Changes)


@dataclass
class _NewTrial:
    """A trial run whose config (its first parameters) has not said yet whether to mirror it."""

    experiment_id: str
    name: str
    start_ms: float
    artifact_uri: str
    changes: _Changes = field(default_factory=_Changes)  # artifacts logged meanwhile (config.yaml)


def _never_raises(report: Callable[..., None]) -> Callable[..., None]:
    """A mirror's mistake must never reach the MLflow writer that reports to it: said, then dropped."""

    @functools.wraps(report)
    def safe(self: ExperimentsMirror, *args: Any) -> None:
        try:
            report(self, *args)
        except Exception as error:
            print(f"SageMaker Experiments mirror: {type(error).__name__}: {error}".splitlines()[0], file=sys.stderr)

    return safe


class ExperimentsMirror:
    """Follows the runs written to one MLflow store and mirrors the trials that ask for it."""

    def __init__(self, client: MlflowClient, announce_failures: bool = True) -> None:
        self._client = client
        # a failure's line to stderr as it happens; `mlexp sync` says the outcome of each trial itself
        self._announce_failures = announce_failures
        self._sagemaker: Experiments | None = None
        self._new: dict[str, _NewTrial] = {}
        self._runs: dict[str, _Run] = {}
        self._trials: dict[str, str] = {}  # MLflow trial run id -> SageMaker trial name
        self._ignored: set[str] = set()  # runs known not to be mirrored
        self._associated: set[tuple[str, str]] = set()
        self._revisited: set[str] = set()  # trials mirrored before (continued, retried): their links may exist
        self._experiments: dict[str, str] = {}  # MLflow experiment id -> SageMaker experiment name
        self.failures: dict[str, str] = {}  # MLflow trial run id -> why its mirror stopped

    # --- what StoreWriter reports, after MLflow took it --------------------------------------------------------

    @_never_raises
    def run_created(self, run: str, experiment_id: str, name: str | None, tags: Mapping[str, str], info: Any) -> None:
        kind, parent = tags.get(mlexp_tags.KIND), tags.get(mlexp_tags.MLFLOW_PARENT_RUN_ID, "")
        if kind == "trial":
            self._new[run] = _NewTrial(experiment_id, name or run, float(info.start_time), str(info.artifact_uri))
        elif kind == "component" and self._mirrors(parent):
            start, uri = float(info.start_time), str(info.artifact_uri)
            self._guarded(parent, self._create_component, run, name, start, uri, parent)
        else:
            self._ignored.add(run)

    @_never_raises
    def batch_logged(
        self, run: str, metrics: Sequence[MetricRecord], params: Sequence[Pair], tags: Sequence[Pair]
    ) -> None:
        new = self._new.get(run)
        if new is not None:
            flag = dict(params).get(MIRROR_PARAM)
            if flag is None:
                return  # not the config's batch
            del self._new[run]
            if not wanted({MIRROR_PARAM: flag}):
                self._ignored.add(run)
                return
            self._guarded(run, self._create_trial, run, new)
        if self._mirrors(run):
            entity = self._runs[run]
            self._guarded(entity.trial_run, self._log, run, entity, metrics, params, tags)

    @_never_raises
    def artifact_logged(self, run: str, artifact_path: str) -> None:
        entity = self._new.get(run) or (self._runs[run] if self._mirrors(run) else None)
        if entity is not None:
            path = artifact_path.strip("/")
            value = f"{entity.artifact_uri}/{path}" if path else entity.artifact_uri
            entity.changes.outputs[path or "artifacts"] = (value, None)

    @_never_raises
    def dataset_logged(self, run: str, name: str, source: str, context: str) -> None:
        entity = self._new.get(run) or (self._runs[run] if self._mirrors(run) else None)
        if entity is not None:
            entity.changes.inputs[name] = (source, media_type(context))

    @_never_raises
    def status_set(self, run: str, status: str, terminated: bool) -> None:
        if run in self._new and terminated:
            del self._new[run]  # ended before its config was logged
            self._ignored.add(run)
        if not self._mirrors(run):
            return
        entity = self._runs[run]
        end = time.time() * 1000 if terminated else None
        self._guarded(entity.trial_run, self._flush, entity, STATUSES.get(status, status), end)

    # --- SageMaker ----------------------------------------------------------------------------------------------

    def _experiments_api(self) -> Experiments:
        if self._sagemaker is None:
            self._sagemaker = Experiments()
        return self._sagemaker

    def _create_trial(self, run: str, new: _NewTrial) -> None:
        trial = run_entity_name(new.name, run)
        self._runs[run] = _Run(run, trial, new.artifact_uri, new.changes)
        self._trials[run] = trial
        api, existing = self._experiments_api(), run in self._revisited
        if new.experiment_id not in self._experiments:
            display = self._client.get_experiment(new.experiment_id).name
            api.create_experiment(experiment_name(display), display, existing)
            self._experiments[new.experiment_id] = experiment_name(display)
        api.create_trial(trial, self._experiments[new.experiment_id], new.name, existing)
        api.create_component(trial, new.name, new.start_ms, existing)
        self._associate(trial, run)
        self._client.set_tag(run, MIRROR_TAG, trial)

    def _create_component(self, run: str, name: str | None, start_ms: float, artifact_uri: str, trial_run: str) -> None:
        self._flush(self._runs[trial_run])  # the trial's config shows in Studio while its stages run
        component = run_entity_name(name, run)
        self._runs[run] = _Run(trial_run, component, artifact_uri)
        self._experiments_api().create_component(component, name or run, start_ms, trial_run in self._revisited)
        self._associate(component, trial_run)

    def _associate(self, component: str, trial_run: str) -> None:
        trial = self._trials[trial_run]
        if (component, trial) not in self._associated:
            self._experiments_api().associate(component, trial, unless_associated=trial_run in self._revisited)
            self._associated.add((component, trial))

    def _log(
        self, run: str, entity: _Run, metrics: Sequence[MetricRecord], params: Sequence[Pair], tags: Sequence[Pair]
    ) -> None:
        entity.changes.parameters.update(params)
        values = dict(tags)
        for key, value in values.items():
            direction, _, name = key.partition(".")
            if direction in ("input", "output") and name and not name.endswith(MEDIA_SUFFIX):
                found = entity.changes.inputs if direction == "input" else entity.changes.outputs
                found[name] = (value, media_type(values.get(key + MEDIA_SUFFIX)))
        if mlexp_tags.ERROR in values:
            entity.changes.message = values[mlexp_tags.ERROR]
        if run == entity.trial_run:
            for shared in mlexp_tags.shared_components(values).values():
                self._associate_shared(shared, run)
        if metrics:
            self._experiments_api().put_metrics(entity.component, metrics)

    def _associate_shared(self, component_run: str, trial_run: str) -> None:
        """A component this trial reuses (another trial's), mirrored now if that trial was not."""
        if component_run in self._runs:
            self._associate(self._runs[component_run].component, trial_run)
            return
        found = self._client.get_run(component_run)
        source = self._client.get_run(found.data.tags.get(mlexp_tags.MLFLOW_PARENT_RUN_ID, component_run))
        mirrored = not source.data.tags.get(MIRROR_TAG, FAILED).startswith(FAILED)
        if mirrored:
            self._associate(run_entity_name(found.info.run_name, component_run), trial_run)
        else:
            from mlexp.tracking.sagemaker_mirror_retry import replay_run

            replay_run(self, found, functools.partial(self._create_component, *_created(found), trial_run))

    def _flush(self, entity: _Run, status: str | None = None, end_ms: float | None = None) -> None:
        changes = entity.changes
        if not (changes.parameters or changes.inputs or changes.outputs or status):
            return
        entity.changes = _Changes(message=changes.message)
        self._experiments_api().update_component(
            entity.component, changes.parameters, changes.inputs, changes.outputs, status, changes.message, end_ms
        )

    # --- runs this process did not create: resumed trials, a restarted writer (retries: sagemaker_mirror_retry) ---

    def _mirrors(self, run: str) -> bool:
        """Whether `run` is mirrored and its trial's mirror still works (a run never seen is looked up once)."""
        if not run or run in self._new:
            return False
        if run not in self._runs and run not in self._ignored:
            self._adopt(run)
        entity = self._runs.get(run)
        return entity is not None and entity.trial_run not in self.failures

    def _adopt(self, run: str) -> None:
        """A run created by another process (an earlier DVC stage's, a killed writer's): mirror on if its trial is."""
        self._ignored.add(run)  # unless found mirrored below
        try:
            found = self._client.get_run(run)
        except Exception:  # not in this store
            return
        run_tags = found.data.tags
        kind, parent = run_tags.get(mlexp_tags.KIND), run_tags.get(mlexp_tags.MLFLOW_PARENT_RUN_ID, "")
        if kind == "trial" and wanted(found.data.params) and not run_tags.get(MIRROR_TAG, "").startswith(FAILED):
            self._ignored.discard(run)
            self._revisited.add(run)
            self._guarded(run, self._create_trial, run, _new(found))
        elif kind == "component" and self._mirrors(parent):
            self._ignored.discard(run)
            self._guarded(parent, self._create_component, *_created(found), parent)

    # --- failures -----------------------------------------------------------------------------------------------

    def _guarded(self, trial_run: str, call: Callable[..., None], *args: Any) -> None:
        """Run one mirror step of a trial; a failure stops that trial's mirror, never its MLflow records."""
        if trial_run in self.failures:
            return
        try:
            call(*args)
        except Exception as error:
            reason = f"{type(error).__name__}: {error}".splitlines()[0][:300]
            self.failures[trial_run] = reason
            with contextlib.suppress(Exception):  # the store may be what failed
                self._client.set_tag(trial_run, MIRROR_TAG, FAILED + reason)
            if self._announce_failures:
                print(failure_line(trial_run, reason), file=sys.stderr)


def failure_line(trial_run: str, reason: str) -> str:
    return (
        f"SageMaker Experiments mirror of trial {trial_run} failed ({reason}); the trial is stored in MLflow, "
        f"tagged {MIRROR_TAG}: run `mlexp sync` to mirror it again"
    )


def _new(found: Run) -> _NewTrial:
    info = found.info
    return _NewTrial(info.experiment_id, info.run_name or info.run_id, float(info.start_time), info.artifact_uri)


def _created(found: Run) -> tuple[str, str | None, float, str]:
    """A stored component run as `_create_component` takes it (without the trial)."""
    info = found.info
    return info.run_id, info.run_name, float(info.start_time), str(info.artifact_uri)
