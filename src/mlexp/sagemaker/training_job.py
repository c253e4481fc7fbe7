"""A trial as a SageMaker training job: the ModelTrainer request, waiting for the job, its results back in MLflow.

The local trial records the job (name, ARN, status as tags); when the job completes, its final metrics and
model.tar.gz are copied into that trial, so the MLflow UI compares it with local trials.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import tarfile
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from mlexp import runner, tasks
from mlexp.config.validate import resolved_config, stopping_condition
from mlexp.errors import ConfigError, DataError, MlexpError
from mlexp.interrupts import sleep_obeying_signals
from mlexp.sagemaker import trained_model
from mlexp.sagemaker.packaging import CODE_DIR, CONFIG_FILE, package_code, s3_inputs
from mlexp.sagemaker.session import sagemaker_session
from mlexp.tracking import TrackingStore
from mlexp.tracking.journal_writer import record_writer

if TYPE_CHECKING:
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.train import ModelTrainer

METRIC_PREFIX = "mlexp-metric"
# a float as SageMaker's metric parser reads it: the entry prints finite values only
NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
ENTRY_COMMAND = "python3 -m mlexp.sagemaker.entry"
ENDED = ("Completed", "Failed", "Stopped")
TAG = "mlexp.sagemaker."


class TrainingJobFailed(MlexpError):
    """The training job ended Failed or Stopped; the message carries SageMaker's FailureReason."""


def metric_names(cfg: DictConfig) -> list[str]:
    """The objective and the headline metrics, once each, in that order."""
    return list(dict.fromkeys([cfg.task.objective.metric, *cfg.task.headline_metrics]))


def metric_definitions(cfg: DictConfig) -> list[dict[str, str]]:
    """One MetricDefinition per metric name: the regex matches the entry's `mlexp-metric <name>=<value>` lines."""
    return [{"Name": name, "Regex": f"{METRIC_PREFIX} {re.escape(name)}={NUMBER}"} for name in metric_names(cfg)]


def metric_line(name: str, value: float) -> str:
    """The line the container prints for one metric (what metric_definitions' regexes match)."""
    return f"{METRIC_PREFIX} {name}={value:.10g}"


def base_job_name(cfg: DictConfig) -> str:
    """compute.base_job_name, or mlexp-<task>: letters, digits and hyphens as SageMaker's job names allow."""
    name = cfg.compute.base_job_name or f"mlexp-{cfg.task.name}"
    return re.sub(r"[^A-Za-z0-9-]", "-", name)[:40]


def training_image(cfg: DictConfig, region: str) -> str:
    """compute.image_uri, or the framework image image_uris.retrieve names for the instance type (CPU or GPU)."""
    compute = cfg.compute
    if compute.image_uri:
        return str(compute.image_uri)
    from sagemaker.core import image_uris

    try:
        return str(
            image_uris.retrieve(
                compute.framework,
                region,
                version=compute.framework_version,
                py_version=compute.py_version,
                instance_type=compute.instance_type,
                image_scope="training",
            )
        )
    except ValueError as error:
        raise ConfigError(
            f"no SageMaker image for compute.framework={compute.framework} {compute.framework_version} "
            f"{compute.py_version} on {compute.instance_type} in {region} ({error}); set compute.image_uri=<ECR URI>"
        ) from error


def output_path(cfg: DictConfig, session: Session) -> str:
    return str(cfg.compute.output_path or f"s3://{session.default_bucket()}/mlexp/{cfg.task.name}")


def _stopping(cfg: DictConfig) -> tuple[int, int | None]:
    """max_runtime_s, and the spot wait (at least the run time, as SageMaker requires)."""
    return stopping_condition(cfg.compute)


def model_trainer(
    cfg: DictConfig,
    root: Path,
    session: Session | None = None,
    job: dict[str, Any] | None = None,
    staging: Path | None = None,
) -> ModelTrainer:
    """The ModelTrainer that runs `cfg`'s stages in a training job (code channel: src/mlexp + the config file).

    `job` (choices, overrides, trial name, trial run id) travels with the config; `staging` is where the code
    archive is written (default <paths.reports>/sagemaker). Nothing is uploaded until train().
    """
    from sagemaker.core.shapes import MetricDefinition, Tag
    from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig, SourceCode, StoppingCondition
    from sagemaker.train import ModelTrainer

    session = session or sagemaker_session(cfg.compute)
    runtime, wait = _stopping(cfg)
    folder = staging or Path(cfg.paths.reports) / "sagemaker"
    s3 = session.boto_session.client("s3") if s3_inputs(cfg) else None  # tells an input object from a prefix
    archive = package_code(cfg, root, job or {}, folder, s3)
    tags = {"mlexp.task": cfg.task.name, **{f"mlexp.{k}": str(v) for k, v in (job or {}).items() if k == "trial"}}
    trainer = ModelTrainer(
        sagemaker_session=session,
        role=cfg.compute.role_arn,
        base_job_name=base_job_name(cfg),
        training_image=training_image(cfg, session.boto_session.region_name),
        source_code=SourceCode(
            source_dir=str(archive),
            requirements="requirements.txt" if cfg.compute.requirements else None,
            command=ENTRY_COMMAND,
        ),
        compute=Compute(
            instance_type=cfg.compute.instance_type,
            instance_count=int(cfg.compute.instance_count),
            volume_size_in_gb=int(cfg.compute.volume_size_gb),
            enable_managed_spot_training=True if cfg.compute.spot else None,
        ),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=runtime, max_wait_time_in_seconds=wait),
        output_data_config=OutputDataConfig(s3_output_path=output_path(cfg, session)),
        input_data_config=[InputData(channel_name=name, data_source=uri) for name, (_, uri) in s3_inputs(cfg).items()],
        # the config is a file in the code channel; these two only name it (and show in the console)
        hyperparameters={"mlexp.task": cfg.task.name, "mlexp.config": CONFIG_FILE},
        environment={"PYTHONPATH": f"{CODE_DIR}/src", "MLEXP_ROOT": CODE_DIR, "PYTHONUNBUFFERED": "1"},
        tags=[Tag(key=key, value=value) for key, value in tags.items()],
    )
    return trainer.with_metric_definitions(
        [MetricDefinition(name=d["Name"], regex=d["Regex"]) for d in metric_definitions(cfg)]
    )


def dry_run(trainer: ModelTrainer) -> dict[str, Any]:
    """The CreateTrainingJob request train() would send (the code is staged in S3); nothing is submitted."""
    request: dict[str, Any] = trainer._create_training_job_args(boto3=True)
    print("dry run: the CreateTrainingJob request (nothing submitted):")
    print(json.dumps(request, indent=2, default=str))
    return request


def wait_for_job(client: Any, name: str, poll_s: float) -> dict[str, Any]:
    """Poll DescribeTrainingJob until the job ends; one progress line whenever its status changes."""
    started = time.monotonic()
    seen = None
    while True:
        job = client.describe_training_job(TrainingJobName=name)
        state = (job["TrainingJobStatus"], job.get("SecondaryStatus", ""))
        if state != seen:
            elapsed = int(time.monotonic() - started)
            print(f"training job {name}: {state[0]} ({state[1]}) after {elapsed // 60}m{elapsed % 60:02d}s", flush=True)
            seen = state
        if state[0] in ENDED:
            return dict(job)
        sleep_obeying_signals(poll_s)


def _download_model(session: Session, uri: str, folder: Path) -> Path | None:
    """The job's model.tar.gz, unpacked into the local models folder too; None (with a notice) when absent."""
    from botocore.exceptions import ClientError

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.tar.gz"
    try:
        session.boto_session.client("s3").download_file(bucket, key, str(path))
    except ClientError as error:
        print(f"notice: the job's model artifact {uri} could not be downloaded ({error}); it stays in S3")
        return None
    with tarfile.open(path) as archive:
        archive.extractall(folder, filter="data")
    return path


def copy_results(cfg: DictConfig, trial: Any, session: Session, job: dict[str, Any]) -> bool:
    """A completed job's final metrics (those mlexp defined) and model.tar.gz into the local trial.

    The model is unpacked into paths.models, the data files its registered model reads into paths.data
    (trained_model.bring_back); True when the trial's model can then be registered from this machine."""
    wanted = set(metric_names(cfg))
    metrics = {m["MetricName"]: float(m["Value"]) for m in job.get("FinalMetricDataList", [])}
    trial.tracker.log_metrics({name: value for name, value in metrics.items() if name in wanted})
    uri = job.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    trial.set_tags({f"{TAG}model_artifacts": uri or "", f"{TAG}billable_s": job.get("BillableTimeInSeconds", "")})
    if not uri:
        print(f"notice: job {job['TrainingJobName']} names no model.tar.gz (ModelArtifacts): no model came back")
        return False
    model = _download_model(session, uri, Path(cfg.paths.models))
    if model is None:
        return False
    trial.writer.log_artifact(trial.run, str(model), "sagemaker")
    return trained_model.bring_back(cfg, str(job["TrainingJobName"]))


def deploy_here(cfg: DictConfig, trial: Any, job_name: str, registrable: bool, objective: float) -> None:
    """The deploy stage on this machine, in the job's trial, with the model that came back (check_compute refused
    what cannot come back: compute.wait=false, a stage alone)."""
    deploy = f"deploy={cfg.deploy.target}"
    if not registrable:
        raise DataError(
            f"{deploy}: training job {job_name}'s model cannot be deployed from this machine (the notice above says "
            "why); the job's metrics are in this trial"
        )
    if math.isnan(objective):
        raise DataError(
            f"{deploy}: training job {job_name} reported no {cfg.task.objective.metric} to rank its model by (see the "
            "notice above); its model.tar.gz is this trial's artifact sagemaker/model.tar.gz"
        )
    trial.tracker.flush()  # the job's metrics, logged on the trial itself, rank its model in the deploy stage
    runner._run_component(cfg, tasks.get(cfg.task.name), "deploy", trial)


def quiet_sdk() -> None:
    """Keep the SDK's and botocore's INFO chatter (endpoints found, defaults applied) out of mlexp's output.

    The SDK's warnings here are noise too (hyperparameters not passed as arguments: they travel as a file on
    purpose); its errors come back as exceptions, which mlexp reports in one line.
    """
    import sagemaker.core.config  # noqa: F401 - sets its own logger's level on import: set ours after it

    logging.getLogger("botocore").setLevel(logging.WARNING)
    for name in ("sagemaker", "sagemaker.config"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _job_context(cfg: DictConfig, job: runner.JobContext) -> dict[str, Any]:
    name = job.trial_name or f"{cfg.task.name}-{datetime.now():%Y%m%d-%H%M%S}"
    return {"choices": dict(job.choices), "overrides": list(job.overrides), "trial": name}


def run_training_job(cfg: DictConfig, job: runner.JobContext) -> runner.TrialResult:
    """Run the trial's stages as a training job; this machine's trial records it and receives its results."""
    # the runner's check_compute refused a deploy target, a missing role and values SageMaker refuses
    quiet_sdk()
    root = Path(cfg.paths.root)
    session = sagemaker_session(cfg.compute)  # refuses a missing role, credentials or bucket before any upload
    context = _job_context(cfg, job)
    store = TrackingStore.resolve(cfg.tracking.uri, root)
    if cfg.compute.dry_run:
        dry_run(model_trainer(cfg, root, session, context))
        return runner.TrialResult("", "", store.uri, math.nan)
    experiment_name = cfg.tracking.experiment_name or cfg.task.name
    store.check_not_moved_early(experiment_name)
    writer = record_writer(root, store, job.sweep_id or "")
    trial = runner.open_recorded_trial(cfg, job, writer, experiment_name, resolved_config(cfg))
    name = ""
    try:
        trainer = model_trainer(cfg, root, session, context)
        trainer.train(wait=False, logs=False)
        submitted = trainer._latest_training_job
        name = str(submitted.training_job_name)
        trial.set_tags(
            {
                f"{TAG}job_name": name,
                f"{TAG}job_arn": str(submitted.training_job_arn),
                f"{TAG}status": "InProgress",
                f"{TAG}region": session.boto_session.region_name,
                "mlexp.compute": "sagemaker",
            }
        )
        print(f"training job {name} submitted ({cfg.compute.instance_count} x {cfg.compute.instance_type})")
        objective, headline, registrable = math.nan, dict[str, float](), False
        if cfg.compute.wait:
            described = wait_for_job(session.sagemaker_client, name, float(cfg.compute.poll_s))
            status = described["TrainingJobStatus"]
            trial.set_tags({f"{TAG}status": status})
            if status != "Completed":
                reason = str(described.get("FailureReason") or "no reason given").splitlines()[0]
                raise TrainingJobFailed(f"SageMaker training job {name} {status}: {reason}")
            registrable = copy_results(cfg, trial, session, described)
            headline = runner._write_metrics(cfg, trial)
            objective = headline.get(cfg.task.objective.metric, math.nan)
            if math.isnan(objective):
                print(
                    f"notice: job {name} reported no {cfg.task.objective.metric}: its log has no "
                    f"`{METRIC_PREFIX} {cfg.task.objective.metric}=` line (CloudWatch /aws/sagemaker/TrainingJobs)"
                )
            if cfg.deploy.target != "none":
                deploy_here(cfg, trial, name, registrable, objective)
        else:
            print(
                f"not waiting (compute.wait=false): follow it with `aws sagemaker describe-training-job "
                f"--training-job-name {name}`; its results are not copied into the trial"
            )
    except KeyboardInterrupt as interrupt:
        trial.close(interrupt)
        if name:
            print(
                f"\nthe job keeps running: aws sagemaker stop-training-job --training-job-name {name}", file=sys.stderr
            )
        raise
    except BaseException as error:
        trial.close(error)
        user_error = isinstance(error, MlexpError)
        text = str(error) if user_error else f"{type(error).__name__}: {error}"
        raise runner.TrialFailed(text, trial.run_id, user_error) from error
    trial.close()
    if registrable and not math.isnan(objective) and cfg.deploy.target == "none":  # deploy ranks by the objective
        trained_model.join(cfg, store.uri, experiment_name, trial.run_id, name)
        print(f"register its model: {trained_model.deploy_command(cfg, list(job.overrides), name)}")
        for remote in trained_model.remote_inputs(list(job.overrides)):
            key, uri = remote.split("=", 1)
            print(f"  add {key}=<a local copy of {uri}>: the registered model's input example is read here")
    return runner.TrialResult(trial.run_id, trial.experiment_id, store.uri, objective, headline=headline)
