"""A trial of a partial `dvc repro` reuses the stages DVC kept: it links each to the component that made its outputs.

DVC skips a stage whose command, dependencies, params and outputs are those dvc.lock recorded, so the trial of
the stages that did run lacked what only the skipped ones record (the AUC of an unchanged model, the rows of
an unchanged split) and looked broken beside full trials. Each DVC stage's component records the digest of its
outputs (`mlexp.outputs_digest`). The stages a trial did not run — before its stages, those no process of the
trial ran; after them, those DVC will skip — are looked up by the digest dvc.lock records for their outputs,
then linked as SageMaker Experiments' shared trial components are: `mlexp.shared_component.<stage>` names the
component run, `mlexp.reused.<stage>` says where it came from, and its metrics are copied onto the trial's
run. A stage whose outputs no component of the store recorded (made before tracking, or the store was reset)
is named as such, and nothing is copied.
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig

from mlexp import tasks
from mlexp.console import warn
from mlexp.errors import one_line
from mlexp.kept_stages import Pipeline
from mlexp.tracking import Trial, tags
from mlexp.tracking.journal_writer import find_producers
from mlexp.tracking.producers import Producer, Wanted
from mlexp.trial_continuation import DVC_STAGE_ENV, dvc_forces_stages

NOT_RECORDED = (
    "kept by DVC; no trial component in this store recorded the outputs dvc.lock records for it (made before "
    "tracking, or the store was reset)"
)
NOT_IN_WORKSPACE = (
    "kept by DVC; the workspace does not hold the outputs dvc.lock records for it, so its source is unknown"
)


def link_kept_stages(cfg: DictConfig, task: tasks.Task, trial: Trial) -> None:
    """Under `dvc repro`, after this process's stages: record their outputs' digest, then link the stages it kept.

    Bookkeeping after the work: the stages ran and are recorded, so whatever fails here (a store that cannot be
    searched, an unreadable dvc.lock) is one warning, never a failed stage that would stop `dvc repro`."""
    if not os.environ.get(DVC_STAGE_ENV) or not trial.component_runs:
        return
    try:
        _link_kept_stages(cfg, task, trial)
    except Exception as error:
        warn(f"the stages DVC kept are not linked to their components: {one_line(error)}")


def _link_kept_stages(cfg: DictConfig, task: tasks.Task, trial: Trial) -> None:
    pipeline = Pipeline.read(Path(cfg.paths.root), task)
    if pipeline is None or any(stage not in pipeline.stages for stage in trial.component_runs):
        return
    for stage, run in trial.component_runs.items():
        digest = pipeline.written_outputs_digest(cfg, stage)
        if digest:
            trial.writer.log_batch(run, tags=[(tags.OUTPUTS_DIGEST, digest)])
    linked = set(trial.earlier.reused) if trial.earlier else set()
    for stage in trial.component_runs.keys() & linked:  # forced to run after all: its link no longer holds
        trial.set_tags({tags.SHARED_COMPONENT_PREFIX + stage: "", tags.REUSED_PREFIX + stage: ""})
    kept = stages_to_link(pipeline, trial, linked)
    if kept:
        _link(cfg, pipeline, trial, kept)


def stages_to_link(pipeline: Pipeline, trial: Trial, linked: set[str]) -> list[str]:
    """The pipeline's stages this trial neither ran nor linked: before the stages this process ran, those no process
    of the trial ran; after them, those DVC will skip (up to the first it will run: that one continues the trial)."""
    order = pipeline.stages
    ran = [order.index(stage) for stage in trial.component_runs]
    before = [stage for stage in order[: min(ran)] if stage not in trial.statuses and stage not in linked]
    after = []
    for stage in order[max(ran) + 1 :] if not dvc_forces_stages() else []:  # forced: every stage after runs
        if not pipeline.unchanged(stage):
            break
        after.append(stage)
    return before + after


def _link(cfg: DictConfig, pipeline: Pipeline, trial: Trial, kept: list[str]) -> None:
    wanted = [
        Wanted(stage, digest, pipeline.locked_params(stage), list(trial.curves))
        for stage in kept
        if (digest := pipeline.locked_outputs_digest(stage)) and pipeline.outputs_kept(stage)
    ]
    found: dict[str, Producer] = {}
    if wanted:
        experiment = cfg.tracking.experiment_name or cfg.task.name
        found = find_producers(Path(cfg.paths.root), trial.writer.store, experiment, wanted)
    have = set(trial.logged_metrics())
    for stage in kept:
        name = pipeline.task.component_name(stage)
        source = found.get(stage)
        if source is None:
            said = NOT_RECORDED if stage in {w.stage for w in wanted} else NOT_IN_WORKSPACE
            trial.set_tags({tags.REUSED_PREFIX + stage: said})
            print(f"{name}: {said}")
            continue
        for metric, value in source.metrics.items():
            if metric in have:  # logged by a stage this trial ran: its own value stays
                continue
            for step, logged in source.histories.get(metric) or [(0, value)]:
                trial.tracker.log_metric(metric, logged, step)
        # the link last: it marks a complete one
        trial.set_tags({tags.SHARED_COMPONENT_PREFIX + stage: source.run_id, tags.REUSED_PREFIX + stage: _said(source)})
        print(f"{name}: kept by DVC, reusing component {source.run_id} of trial {source.trial_name}")
    trial.tracker.flush()


def _said(source: Producer) -> str:
    return f"kept by DVC: the outputs of {source.name} {source.run_id} (trial {source.trial_name} {source.trial_id})"
