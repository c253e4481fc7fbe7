"""A finished tuning job's training jobs as MLflow trials of one sweep, recorded like a local sweep's.

Each training job becomes a top-level trial run (its tuned values as params, its final objective and headline
metrics, its status) tagged with a new sweep record in `<experiment>-sweeps`; SageMaker's best job is tagged best.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from mlexp.config.schema import objective_direction
from mlexp.errors import ConfigError
from mlexp.sagemaker.training_job import TAG

# the same tags a compute=sagemaker trial carries (training_job.TAG), plus the tuning job's name
TUNING_JOB_TAG = f"{TAG}tuning_job_name"
TRAINING_JOB_TAG = f"{TAG}job_name"
TRAINING_JOB_ARN_TAG = f"{TAG}job_arn"
TRAINING_JOB_STATUS_TAG = f"{TAG}status"
MODEL_ARTIFACTS_TAG = f"{TAG}model_artifacts"
# a training job's end status → the MLflow status of its trial
RUN_STATUS = {"Completed": "FINISHED", "Failed": "FAILED", "Stopped": "KILLED", "Stopping": "KILLED"}


@dataclass(frozen=True)
class TrainingJobResult:
    """One training job of a tuning job: its tuned values, status and final objective."""

    name: str
    arn: str
    status: str
    hyperparameters: dict[str, str]
    objective: float
    created: datetime | None


@dataclass(frozen=True)
class SweepRecord:
    """The sweep a tuning job's trials belong to."""

    sweep_id: str
    name: str
    tuning_job: str


def training_jobs(client: Any, tuning_job: str) -> list[TrainingJobResult]:
    """Every training job the tuning job started, oldest first (ListTrainingJobsForHyperParameterTuningJob)."""
    found: list[TrainingJobResult] = []
    token: str | None = None
    while True:
        page = client.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=tuning_job,
            MaxResults=100,
            SortBy="CreationTime",
            SortOrder="Ascending",
            **({"NextToken": token} if token else {}),
        )
        for summary in page["TrainingJobSummaries"]:
            final = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
            found.append(
                TrainingJobResult(
                    name=summary["TrainingJobName"],
                    arn=summary["TrainingJobArn"],
                    status=summary["TrainingJobStatus"],
                    hyperparameters=dict(summary.get("TunedHyperParameters") or {}),
                    objective=float(final["Value"]) if "Value" in final else math.nan,
                    created=summary.get("CreationTime"),
                )
            )
        token = page.get("NextToken")
        if not token:
            return found


def _experiment(cfg: DictConfig) -> str:
    return str(cfg.tracking.experiment_name or cfg.task.name)


def record_results(cfg: DictConfig, root: Path, client: Any, tuning_job: str) -> str:
    """Store each training job of `tuning_job` as one trial of a new sweep record; tag SageMaker's best. Returns its id.

    `client` is a boto3 SageMaker client (the session's). The trials carry the tuned values as params and the
    final objective and headline metrics, like a local sweep's trials, so `mlexp compare` ranks them.
    """
    from mlexp import next_steps
    from mlexp.sweeps.recorder import sweep_name
    from mlexp.tracking import TrackingStore, tags

    store = TrackingStore.resolve(cfg.tracking.uri, root)
    mlflow = store.client()
    metric, direction = str(cfg.task.objective.metric), objective_direction(cfg)
    trials_experiment = store.experiment_id(_experiment(cfg))
    sweeps_experiment = store.experiment_id(_experiment(cfg) + tags.SWEEPS_SUFFIX)
    # recorded once: a second read-back would list every training job twice
    earlier = mlflow.search_runs([sweeps_experiment], f"tags.`{TUNING_JOB_TAG}` = '{tuning_job}'", max_results=1)
    if earlier:
        recorded = earlier[0].data.tags.get(tags.SWEEP_NAME, earlier[0].info.run_id)
        raise ConfigError(
            f"tuning job {tuning_job} is already recorded as sweep {recorded}: compare it with "
            f"`mlexp compare sweep={recorded}`, or delete that sweep's runs in MLflow to record it again"
        )
    described = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_job)
    jobs = training_jobs(client, tuning_job)
    name = sweep_name(cfg)
    sweep_id = _open_sweep(mlflow, sweeps_experiment, cfg, name, described)
    try:
        record = SweepRecord(sweep_id, name, tuning_job)
        run_ids = [_record_trial(mlflow, trials_experiment, cfg, record, n, job, client) for n, job in enumerate(jobs)]
        best = _best(described, jobs, direction)
        if best is not None:
            number = jobs.index(best)
            mlflow.set_tag(run_ids[number], tags.BEST_IN_SWEEP, "true")
            mlflow.set_tag(sweep_id, "mlexp.best_trial", run_ids[number])
            mlflow.set_tag(sweep_id, "mlexp.best_trial_name", f"{name}-trial-{number}")
            mlflow.set_tag(sweep_id, f"{TAG}best_training_job", best.name)
            mlflow.log_metric(sweep_id, f"best_{metric}", best.objective)
            print(f"best trial: {name}-trial-{number} ({best.name}) {metric} = {best.objective:.6g}")
        else:
            print(f"no training job of tuning job {tuning_job} finished with a {metric}")
    except BaseException:
        mlflow.set_terminated(sweep_id, "FAILED")
        raise
    finished = sum(job.status == "Completed" for job in jobs)
    print(f"sweep {name} (id {sweep_id}): {finished}/{len(jobs)} training jobs of {tuning_job} completed")
    completed = described.get("HyperParameterTuningJobStatus") == "Completed"
    mlflow.set_terminated(sweep_id, "FINISHED" if best is not None and completed else "FAILED")
    next_steps.print_ui_link(
        store.uri,
        trials_experiment,
        metric,
        direction,
        sweep_id,
        sweep_name=name,
        headline_metrics=list(cfg.task.headline_metrics),
        params=sorted({key for job in jobs for key in job.hyperparameters}),
    )
    print(f"  compare trials:  {next_steps.compare_command(f'sweep={name}', store.uri)}")
    return sweep_id


def _open_sweep(mlflow: Any, experiment_id: str, cfg: DictConfig, name: str, described: Mapping[str, Any]) -> str:
    """The sweep's record in `<experiment>-sweeps`, as a local sweep's, naming its tuning job; returns its run id."""
    from mlexp.tracking import tags

    tuning_job = str(described["HyperParameterTuningJobName"])
    sweep = mlflow.create_run(
        experiment_id,
        run_name=name,
        tags={
            tags.KIND: "sweep",
            tags.TASK: str(cfg.task.name),
            tags.SWEEP_NAME: name,
            tags.OBJECTIVE: str(cfg.task.objective.metric),
            tags.DIRECTION: objective_direction(cfg),
            "mlexp.sweeper": "sagemaker.HyperparameterTuner",
            "mlexp.command": " ".join(["mlexp", *sys.argv[1:]]),
            TUNING_JOB_TAG: tuning_job,
            f"{TAG}tuning_job_arn": str(described.get("HyperParameterTuningJobArn", "")),
            f"{TAG}tuning_job_status": str(described.get("HyperParameterTuningJobStatus", "")),
        },
    )
    sweep_id = str(sweep.info.run_id)
    mlflow.set_tag(sweep_id, tags.SWEEP_ID, sweep_id)
    config = described["HyperParameterTuningJobConfig"]
    mlflow.log_text(sweep_id, json.dumps(config, indent=2, default=str) + "\n", "tuning_job_config.json")
    return sweep_id


def _record_trial(
    mlflow: Any,
    experiment_id: str,
    cfg: DictConfig,
    sweep: SweepRecord,
    number: int,
    job: TrainingJobResult,
    client: Any,
) -> str:
    """One training job as one trial run: tuned values as params, its metrics, its status; returns the run id."""
    from mlflow.entities import Metric, Param

    from mlexp.tracking import tags

    run = mlflow.create_run(
        experiment_id,
        run_name=f"{sweep.name}-trial-{number}",
        tags={
            tags.KIND: "trial",
            tags.TASK: str(cfg.task.name),
            tags.OBJECTIVE: str(cfg.task.objective.metric),
            tags.DIRECTION: objective_direction(cfg),
            tags.SWEEP_ID: sweep.sweep_id,
            tags.SWEEP_NAME: sweep.name,
            tags.STAGE: "all",  # a whole trial, as the runner tags one: the trials view lists it (tracking.ui_link)
            TUNING_JOB_TAG: sweep.tuning_job,
            TRAINING_JOB_TAG: job.name,
            TRAINING_JOB_ARN_TAG: job.arn,
            TRAINING_JOB_STATUS_TAG: job.status,
            "mlexp.compute": "sagemaker",
        },
    )
    stamp = int((job.created or datetime.now()).timestamp() * 1000)
    params = [Param(key, value) for key, value in sorted(job.hyperparameters.items())]
    values, model = _final_metrics(client, cfg, job)
    metrics = [Metric(key, value, stamp, 0) for key, value in values.items()]
    mlflow.log_batch(run.info.run_id, metrics=metrics, params=params)
    if model:
        mlflow.set_tag(run.info.run_id, MODEL_ARTIFACTS_TAG, model)
    mlflow.set_terminated(run.info.run_id, RUN_STATUS.get(job.status, "FAILED"))
    return str(run.info.run_id)


def _final_metrics(client: Any, cfg: DictConfig, job: TrainingJobResult) -> tuple[dict[str, float], str]:
    """The job's objective and, for a completed job, the headline metrics its log printed and its model.tar.gz URI."""
    from mlexp.sagemaker.training_job import metric_names

    values = {} if math.isnan(job.objective) else {str(cfg.task.objective.metric): job.objective}
    if job.status != "Completed":
        return values, ""
    described = client.describe_training_job(TrainingJobName=job.name)
    wanted = set(metric_names(cfg))
    final = {m["MetricName"]: float(m["Value"]) for m in described.get("FinalMetricDataList", [])}
    model = str((described.get("ModelArtifacts") or {}).get("S3ModelArtifacts", ""))
    return {**{name: value for name, value in final.items() if name in wanted}, **values}, model


def _best(described: Mapping[str, Any], jobs: list[TrainingJobResult], direction: str) -> TrainingJobResult | None:
    """SageMaker's best training job; by the task's direction when the description names none."""
    by_name = {job.name: job for job in jobs}
    named = (described.get("BestTrainingJob") or {}).get("TrainingJobName")
    if named in by_name and not math.isnan(by_name[named].objective):
        return by_name[named]
    scored = [job for job in jobs if job.status == "Completed" and not math.isnan(job.objective)]
    if not scored:
        return None
    pick = max if direction == "maximize" else min
    return pick(scored, key=lambda job: job.objective)
