"""`mlexp -m ... compute=sagemaker`: a sweep as one SageMaker hyperparameter tuning job.

The search space is the sweep's own (tuning_space), the objective the task's (metric and direction), the limits
`sweep.max_jobs` / `sweep.max_parallel_jobs`, the strategy `sweep.strategy` (or the sweeper's: Optuna TPE is
Bayesian, its random sampler Random, Hydra's grid Grid), early stopping `sweep.early_stopping`. Each training job
runs the trial's config (the training job's ModelTrainer); when the tuning job ends, its training jobs become
MLflow trials of one sweep (tuning_results).
"""

from __future__ import annotations

import json
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf, open_dict

from mlexp.config.overrides import command_overrides
from mlexp.config.schema import objective_direction
from mlexp.config.validate import check_sagemaker_job
from mlexp.errors import ConfigError
from mlexp.interrupts import sleep_obeying_signals
from mlexp.sagemaker.tuning_results import MODEL_ARTIFACTS_TAG, record_results
from mlexp.sagemaker.tuning_space import SearchSpace, search_space

if TYPE_CHECKING:
    from sagemaker.train.tuner import HyperparameterTuner

STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")
# the script the framework container runs (sagemaker_program): the tuner API has no container entry point
ENTRY_SCRIPT = "mlexp_tuning_entry.py"
ENTRY_SOURCE = '''"""Run mlexp's SageMaker entry in a tuning job's training job (the tuner's sagemaker_program)."""
import os
import sys

# the framework container unpacks sagemaker_submit_directory here (/opt/ml/code), not in a "code" channel
HERE = os.path.dirname(os.path.abspath(__file__))
os.chdir(HERE)
os.environ["MLEXP_ROOT"] = HERE
sys.path.insert(0, os.path.join(HERE, "src"))
from mlexp.sagemaker.entry import main  # noqa: E402

sys.exit(main())
'''


@dataclass(frozen=True)
class TuningPlan:
    """Everything CreateHyperParameterTuningJob says about the search, checked before anything is uploaded."""

    space: SearchSpace
    strategy: str
    objective_metric: str
    objective_type: str  # Maximize | Minimize
    max_jobs: int | None  # None for Grid: every combination
    max_parallel_jobs: int
    early_stopping: str


def _strategy(cfg: DictConfig) -> str:
    """sweep.strategy when set, else the local sweeper's: Optuna TPE → Bayesian, Optuna random → Random, grid → Grid."""
    chosen = cfg.sweep.get("strategy")
    if chosen is not None:
        return str(getattr(chosen, "value", chosen))
    sweeper = str(cfg.hydra.sweeper.get("_target_", ""))
    if "optuna" not in sweeper.lower():
        return "Grid"
    sampler = str(cfg.hydra.sweeper.get("sampler", {}).get("_target_", ""))
    for name, strategy in (("TPESampler", "Bayesian"), ("RandomSampler", "Random")):
        if sampler.endswith(name):
            return strategy
    raise ConfigError(
        f"the sampler {sampler.rsplit('.', 1)[-1]} has no SageMaker tuning strategy; "
        f"set sweep.strategy to one of {', '.join(STRATEGIES)}"
    )


def refuse_deploy(cfg: DictConfig) -> None:
    """A tuning job deploys nothing: its training jobs' models are not brought back to this machine."""
    if cfg.deploy.target != "none":
        raise ConfigError(
            f"deploy={cfg.deploy.target} with a tuning job: its training jobs' models are not brought back to this "
            f"machine; tune with deploy=none: the best trial's model.tar.gz is named by its tag {MODEL_ARTIFACTS_TAG}"
        )


def tuning_plan(cfg: DictConfig) -> TuningPlan:
    """The tuning job the sweep describes; every refusal is one line naming the fix, before any AWS call."""
    direction = objective_direction(cfg)
    metric = str(cfg.task.objective.metric)
    if direction == "report":
        raise ConfigError(
            f"task {cfg.task.name}'s objective {metric} is reporting-only (direction: report): a tuning job has "
            "nothing to optimise; run the grid with compute=local"
        )
    refuse_deploy(cfg)
    space = search_space(cfg)
    if not space.ranges:
        raise ConfigError(
            f"sweep={cfg.sweep.name} has no search space, so every training job would be the same; give one, "
            "e.g. 'model.learning_rate=tag(log, interval(0.001, 0.1))'"
        )
    strategy = _strategy(cfg)
    early_stopping = str(getattr(cfg.sweep.early_stopping, "value", cfg.sweep.early_stopping))
    continuous = [key for key, found in space.ranges.items() if found.kind != "Categorical"]
    if strategy == "Grid" and continuous:
        raise ConfigError(
            f"sweep.strategy=Grid takes listed values only, but {', '.join(continuous)} is a range; "
            "list its values (choice(...)) or use sweep.strategy=Bayesian or Random"
        )
    if strategy == "Hyperband" and early_stopping != "Off":
        raise ConfigError("sweep.strategy=Hyperband stops jobs early itself: set sweep.early_stopping=Off")
    return TuningPlan(
        space=space,
        strategy=strategy,
        objective_metric=metric,
        objective_type="Maximize" if direction == "maximize" else "Minimize",
        max_jobs=None if strategy == "Grid" else int(cfg.sweep.max_jobs),
        max_parallel_jobs=int(cfg.sweep.max_parallel_jobs),
        early_stopping=early_stopping,
    )


def job_config(cfg: DictConfig, plan: TuningPlan) -> DictConfig:
    """The config each training job starts from: the trial's (no `hydra` node), fixed sweep values applied."""
    container = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(container, dict)
    container.pop("hydra", None)
    job = OmegaConf.create(container)
    with open_dict(job):
        for key, value in plan.space.fixed.items():
            OmegaConf.update(job, key, value, force_add=True)
    return job


def _script_mode(trainer: Any, work: Path, stage: bool) -> None:
    """Point the trainer's code at a folder with an entry script: the tuner uploads it as sagemaker_submit_directory.

    ModelTrainer.train() runs a command from its code channel; the tuning API has no container entry point,
    so the framework container runs `sagemaker_program` from that folder instead. `stage=False` (a dry run)
    names the folder without unpacking the code into it: nothing is uploaded.
    """
    source = trainer.source_code
    folder = work / "sourcedir"
    folder.mkdir(parents=True, exist_ok=True)
    packaged = str(source.source_dir or "")
    if stage and packaged.endswith(".tar.gz") and Path(packaged).is_file():
        with tarfile.open(packaged) as archive:
            archive.extractall(folder, filter="data")
    elif stage and packaged and Path(packaged).is_dir():
        import shutil

        shutil.copytree(packaged, folder, dirs_exist_ok=True)
    (folder / ENTRY_SCRIPT).write_text(ENTRY_SOURCE)
    source.source_dir = str(folder)
    source.entry_script = ENTRY_SCRIPT
    source.command = None


def tuning_job_name(task: str, now: datetime | None = None) -> str:
    """mlexp-<task>-<MMDD-HHMMSS>: at most 32 letters, digits and hyphens, as SageMaker's tuning job names allow.

    Named here, to the second: the SDK's default name carries only the minute, so two sweeps started in one
    minute would collide.
    """
    stamp = f"{now or datetime.now():%m%d-%H%M%S}"
    base = f"mlexp-{task}".replace("_", "-")[: 32 - len(stamp) - 1].rstrip("-")
    return f"{base}-{stamp}"


def hyperparameter_tuner(
    cfg: DictConfig, root: Path, work: Path, plan: TuningPlan | None = None, session: Any = None
) -> HyperparameterTuner:
    """The SDK's HyperparameterTuner for the sweep, on the training job's ModelTrainer for the trial's config.

    Its code is staged in `work` for submission, unless compute.dry_run (then only the request is built).
    """
    from sagemaker.train.tuner import HyperparameterTuner

    from mlexp.sagemaker.training_job import metric_definitions, model_trainer

    plan = plan or tuning_plan(cfg)
    job = job_config(cfg, plan)
    choices = {k: v for k, v in cfg.hydra.runtime.choices.items() if not str(k).startswith("hydra")}
    context = {"choices": dict(choices), "overrides": command_overrides(cfg.hydra), "trial": str(cfg.sweep.name)}
    trainer = model_trainer(job, root, session, context, work / "staging")
    _script_mode(trainer, work, stage=not cfg.compute.dry_run)
    return HyperparameterTuner(
        model_trainer=trainer,
        objective_metric_name=plan.objective_metric,
        hyperparameter_ranges={key: found.parameter() for key, found in plan.space.ranges.items()},
        metric_definitions=metric_definitions(job),
        strategy=plan.strategy,
        objective_type=plan.objective_type,
        max_jobs=plan.max_jobs,
        max_parallel_jobs=plan.max_parallel_jobs,
        early_stopping_type=plan.early_stopping,
        # the local sweep's sampler seed: the same seed, a repeatable search (SageMaker's RandomSeed)
        random_seed=int(cfg.seed),
    )


def _inputs(trainer: Any) -> list[Any] | None:
    """The trainer's data channels (dataset.* S3 URIs), given to tune(): the tuner converts only those to channels."""
    from sagemaker.core.training.configs import InputData

    channels = [channel for channel in trainer.input_data_config or [] if isinstance(channel, InputData)]
    return channels or None


def dry_run_request(tuner: HyperparameterTuner, name: str) -> dict[str, Any]:
    """The CreateHyperParameterTuningJob request the tuner would send, without uploading or submitting anything."""
    from sagemaker.core.utils.utils import serialize

    tuner._prepare_for_tuning(job_name=name)
    tuner.static_hyperparameters = {
        **(tuner.static_hyperparameters or {}),
        "sagemaker_program": ENTRY_SCRIPT,
        "sagemaker_submit_directory": "<uploaded at submission: sourcedir.tar.gz>",
    }
    return {
        "HyperParameterTuningJobName": tuner._current_job_name,
        "HyperParameterTuningJobConfig": serialize(tuner._build_tuning_job_config()),
        "TrainingJobDefinition": serialize(tuner._build_training_job_definition(_inputs(tuner.model_trainer))),
    }


def submit(tuner: HyperparameterTuner, name: str) -> str:
    """Start the tuning job `name` (uploads the code, sends CreateHyperParameterTuningJob); returns its name."""
    tuner.tune(inputs=_inputs(tuner.model_trainer), job_name=name, wait=False)
    return str(tuner.latest_tuning_job.hyper_parameter_tuning_job_name)


def wait_for_tuning_job(client: Any, name: str, poll_s: float) -> dict[str, Any]:
    """Poll DescribeHyperParameterTuningJob until it ends; one progress line whenever its counts change."""
    seen = None
    while True:
        described = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        status = described["HyperParameterTuningJobStatus"]
        counters = described.get("TrainingJobStatusCounters") or {}
        state = (status, tuple(sorted(counters.items())))
        if state != seen:
            counts = ", ".join(f"{value} {key.lower()}" for key, value in sorted(counters.items()) if value)
            print(f"tuning job {name}: {status} ({counts or 'no training job yet'})", flush=True)
            seen = state
        if status in ("Completed", "Failed", "Stopped"):
            return dict(described)
        sleep_obeying_signals(poll_s)


# ---- the command: `mlexp -m ... compute=sagemaker` ----


def compose(conf_dir: Path, overrides: list[str]) -> DictConfig:
    """The sweep's composed config as `mlexp -m` composes it (with its `hydra` node: sweeper, params, overrides)."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.types import RunMode

    from mlexp.config import make_composable
    from mlexp.config.search_path import command_folders

    if extra := [folder.shown for folder in command_folders(conf_dir)]:
        raise ConfigError(
            f"compute=sagemaker: the tuning job's training jobs compose their configs from the project's conf/ in the "
            f"code archive, without the options of {', '.join(extra)}: copy the ones the sweep uses into conf/ to "
            "tune them on SageMaker, or run the sweep here"
        )
    make_composable()  # the schemas and tasks, as the command registers them at import
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        hydra = Hydra.create_main_hydra2("cli", create_config_search_path(str(conf_dir)))
        return hydra.compose_config("config", [*overrides, "hydra.mode=MULTIRUN"], run_mode=RunMode.MULTIRUN)
    finally:
        GlobalHydra.instance().clear()  # the command runs no Hydra app after this; a test may compose again


def run(conf_dir: Path, overrides: list[str]) -> int:
    """`mlexp -m <overrides>` with compute=sagemaker: one tuning job instead of local trials; exit status.

    It starts the tuning job (or, with sweep.tuning_job=<name>, takes an existing one), waits for it unless
    compute.wait=false, then records each of its training jobs as a trial of one sweep in MLflow.
    """
    import shlex

    from mlexp.sweeps.checks import check_sweep

    cfg = compose(conf_dir, overrides)
    refuse_deploy(cfg)  # before check_sweep: its deploy=sagemaker line (sweep with deploy=registry) is a local sweep's
    check_sweep(cfg)
    plan = tuning_plan(cfg)  # every refusal comes before the session checks the role, credentials and bucket
    check_sagemaker_job(cfg)  # the role and the job's limits, known without AWS
    root = Path(str(cfg.paths.root))
    name = str(cfg.sweep.tuning_job or "")
    tuner = None
    if not name:
        with tempfile.TemporaryDirectory(prefix="mlexp-tuning-") as work:
            tuner = hyperparameter_tuner(cfg, root, Path(work), plan)
            name = tuning_job_name(str(cfg.task.name))
            if cfg.compute.dry_run:
                print("CreateHyperParameterTuningJob (dry run: nothing uploaded or submitted):")
                print(json.dumps(dry_run_request(tuner, name), indent=2, default=str))
                return 0
            submit(tuner, name)
        jobs = f"{plan.max_jobs} training jobs" if plan.max_jobs else "every combination"
        print(
            f"tuning job {name}: {plan.strategy}, {jobs}, {plan.max_parallel_jobs} at a time, "
            f"{plan.objective_type.lower()} {plan.objective_metric}"
        )
        if not cfg.compute.wait:
            others = [override for override in overrides if override.partition("=")[0] != "sweep.tuning_job"]
            again = shlex.join(["mlexp", "-m", *others, f"sweep.tuning_job={name}"])
            print(f"  record its training jobs as MLflow trials when it ends: {again}")
            return 0
    client = _sagemaker_client(cfg, tuner)
    try:
        wait_for_tuning_job(client, name, float(cfg.compute.poll_s))
    except KeyboardInterrupt:
        print(
            f"\nthe tuning job keeps running: record it later with sweep.tuning_job={name}, or stop it: "
            f"aws sagemaker stop-hyper-parameter-tuning-job --hyper-parameter-tuning-job-name {name}",
            file=sys.stderr,
        )
        raise
    record_results(cfg, root, client, name)
    return 0


def _sagemaker_client(cfg: DictConfig, tuner: HyperparameterTuner | None) -> Any:
    """The boto3 SageMaker client of the job's session."""
    if tuner is not None:
        return tuner.model_trainer.sagemaker_session.sagemaker_client
    from mlexp.sagemaker.session import sagemaker_session

    return sagemaker_session(cfg.compute).sagemaker_client
