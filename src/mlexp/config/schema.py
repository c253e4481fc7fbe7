"""Dataclass schemas of the config groups every task shares.

Hydra validates each group option against its schema while composing, so a wrong
key or type fails before any work starts. Task-specific schemas (datasets, models)
live in each task's package and register themselves the same way; so do a task's own
groups (`mlexp.config.task_groups`), which `register_schemas` adds to the root schema.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


class Direction(str, Enum):
    minimize = "minimize"
    maximize = "maximize"
    # a metric sweeps report per trial but nothing is better for it (anomaly_detection's percent_flagged):
    # grid sweeps tag no best trial, searches are refused
    report = "report"


def choice_text(value: Any) -> str:
    """A config choice as text: an enum field's value (OmegaConf gives the member), or the string as given."""
    return str(getattr(value, "value", value))


def objective_direction(cfg: Any) -> str:
    """The task's objective direction as text ("minimize", "maximize" or "report"), from an enum or a plain string."""
    return choice_text(cfg.task.objective.direction)


@dataclass
class Objective:
    metric: str = MISSING
    direction: Direction = Direction.minimize


@dataclass
class TaskConfig:
    """What a task is: its name, the metric sweeps optimise and the groups it accepts."""

    name: str = MISSING
    description: str = ""
    objective: Objective = field(default_factory=Objective)
    headline_metrics: list[str] = field(default_factory=list)
    # step metrics whose whole history the trial's run carries, for per-trial curves
    curves: list[str] = field(default_factory=list)
    # config-group options this task can run with, e.g. {model: [mlp]}
    choices: dict[str, list[str]] = field(default_factory=dict)


class TuningStrategy(str, Enum):
    """A SageMaker tuning job's search strategy (compute=sagemaker sweeps)."""

    Bayesian = "Bayesian"
    Random = "Random"
    Hyperband = "Hyperband"
    Grid = "Grid"


class EarlyStopping(str, Enum):
    """A tuning job's TrainingJobEarlyStoppingType; quote "Off" in YAML files (a bare Off is YAML's false)."""

    Off = "Off"
    Auto = "Auto"


@dataclass
class SweepConfig:
    """A sweep in the terms of a SageMaker tuning job."""

    name: str = "none"
    max_jobs: int = 1
    max_parallel_jobs: int = 1
    # compute=sagemaker: the tuning job's strategy; null takes the sweeper's (TPE: Bayesian, random: Random, grid: Grid)
    strategy: TuningStrategy | None = None
    early_stopping: EarlyStopping = EarlyStopping.Off
    # compute=sagemaker: record the results of this existing tuning job instead of starting one
    tuning_job: str | None = None


@dataclass
class ComputeConfig:
    """Where a trial runs: this machine (local) or a SageMaker training job (sagemaker, conf/compute/sagemaker.yaml)."""

    target: str = "local"
    # MXNet and BLAS threads per trial; 0 leaves the library default
    num_threads: int = 0
    # compute=sagemaker only (docs/sagemaker.md); a local trial ignores them
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    role_arn: str | None = None
    image_uri: str | None = None  # null: framework/framework_version/py_version through image_uris.retrieve
    framework: str = "pytorch"
    framework_version: str = "2.5.1"
    py_version: str = "py311"
    requirements: str | None = "requirements.lock"  # installed in the container; null: the image has them
    volume_size_gb: int = 30
    max_runtime_s: int = 14400
    spot: bool = False
    max_wait_s: int | None = None  # spot only; null: twice max_runtime_s
    bucket: str | None = None  # null: the SDK's sagemaker-<region>-<account>
    output_path: str | None = None  # null: s3://<bucket>/mlexp/<task>
    region: str | None = None  # null: AWS_DEFAULT_REGION or the AWS profile's
    base_job_name: str | None = None  # null: mlexp-<task>
    wait: bool = True
    poll_s: float = 30.0
    dry_run: bool = False


@dataclass
class DeployConfig:
    target: str = "none"
    # deploy=registry: the registered model (null: the task name) and the alias that follows the best version
    model_name: str | None = None
    alias: str = "champion"
    # deploy=local: a task's HTTP service on this machine (mlexp.serving.http)
    host: str = "127.0.0.1"
    port: int = 8080  # 0 picks a free port
    # which model the service loads: trial (this run's) | champion (the registry alias) | best | <trial run id>
    source: str = "champion"
    max_request_bytes: int = 1_048_576
    request_timeout_s: float = 30.0
    # decoded image size limit for endpoints that take images (decompression bombs)
    max_pixels: int = 40_000_000
    require_api_key: bool = True
    keys_db: str | None = None  # null: <project root>/serving/keys.sqlite
    # how often a running service checks whether the registry alias moved to a new champion
    reload_interval_s: float = 5.0
    max_seconds: float | None = None  # null: until Ctrl-C or SIGTERM
    # deploy=sagemaker: a SageMaker real-time endpoint (mlexp.sagemaker.endpoint), source as above but not best
    endpoint_name: str | None = None  # null: mlexp-<task>
    instance_type: str = "ml.m5.large"
    initial_instance_count: int = 1
    role_arn: str | None = None
    image_uri: str | None = None  # null: the region's PyTorch 2.5.1 / Python 3.11 inference container
    model_data_prefix: str | None = None  # s3://<bucket>/<prefix>; null: the SDK's sagemaker-<region>-<account>
    wait_s: float = 1800.0  # 0: do not wait for InService
    region: str | None = None  # null: the AWS default region


@dataclass
class TrackingConfig:
    # null: $MLFLOW_TRACKING_URI, else a SQLite store in the project root
    uri: str | None = None
    # null: the task name
    experiment_name: str | None = None
    # step metrics kept in memory before one log_batch call
    metric_buffer: int = 1000
    # ...or until this many seconds have passed since the last send, so the MLflow UI follows a long training
    metric_flush_s: float = 5.0
    # also write each trial to SageMaker Experiments (AWS region and credentials from the usual chain)
    sagemaker_mirror: bool = False


@dataclass
class PathsConfig:
    root: str = MISSING
    data: str = MISSING
    models: str = MISSING
    reports: str = MISSING


@dataclass
class MlexpConfig:
    task: TaskConfig = field(default_factory=TaskConfig)
    dataset: Any = MISSING
    preprocessing: Any = MISSING
    model: Any = MISSING
    # here `register_schemas` adds the groups tasks declare of their own (task_groups.py)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = 42
    # run one stage only (DVC stages do); null runs them all
    stage: str | None = None
    # take the task's config from this params file (DVC's params.yaml) instead of conf/
    params_file: str | None = None


def shared_groups() -> set[str]:
    """The top-level keys of every task's config; a task cannot declare a group of its own by these names."""
    return {f.name for f in dataclasses.fields(MlexpConfig)}


def root_schema(task_groups: typing.Iterable[str]) -> type:
    """MlexpConfig with one more key per task group, after `model`: null unless the task selects an option."""
    hints = typing.get_type_hints(MlexpConfig)
    spec: list[tuple[str, Any, Any]] = []
    for shared in dataclasses.fields(MlexpConfig):
        spec.append(
            (shared.name, hints[shared.name], field(default=shared.default, default_factory=shared.default_factory))
        )
        if shared.name == "model":
            spec.extend((group, Any, field(default=None)) for group in sorted(task_groups))
    schema = dataclasses.make_dataclass("MlexpConfig", spec)
    schema.__module__ = __name__
    return schema


def register_schemas() -> None:
    """Store the root schema, with the groups the loaded tasks declared, where conf/config.yaml names it."""
    from mlexp.config.task_groups import TASK_GROUPS  # here: task_groups imports this module

    store = ConfigStore.instance()
    store.store(name="mlexp_schema", node=root_schema(TASK_GROUPS))
