"""A training job's model, registered and deployed from this machine like a local trial's.

A task's registered model (`<task package>.registered_model.pyfunc_model`) reads the trial's models folder and a few
files of its data folder, which it names in `DATA_FILES` (tabular_regression's fitted `preprocessors.json`). In the job,
models go to /opt/ml/model (the job's model.tar.gz) and data to /opt/ml/output/data (output.tar.gz), so the entry copies
those files into the model folder too, under `mlexp_data/` (`ship`). A task may first make some of them from what its
stages wrote (`write_data_files(cfg)` beside `DATA_FILES`): churn_incentives and object_detection ship their input
example's few rows or frames, not a whole split. When the job completes, `bring_back` moves them from the unpacked
model.tar.gz into this machine's `paths.data`, beside the job's network in `paths.models`, and `join` records the job's
trial for the pipeline run `sagemaker-<job name>`: the deploy stage run with `MLEXP_PIPELINE_RUN=sagemaker-<job name>`
joins that trial (mlexp.trial_continuation) and registers its model with the job's metrics, the way a local trial's
deploy stage does (`deploy=registry`, `deploy=sagemaker`).
"""

from __future__ import annotations

import importlib
import re
import shlex
import shutil
from pathlib import Path

from omegaconf import DictConfig

from mlexp import tasks
from mlexp.errors import DataError
from mlexp.trial_continuation import OWN_MARKER_PREFIX, PIPELINE_RUN_ENV, Marker, marker_path, write_marker

# the folder of model.tar.gz holding the files of paths.data the registered model reads
DATA_FOLDER = "mlexp_data"
# the override keys the deploy command does not repeat: where the job ran, and what the command itself sets (task=,
# but not task.*: task.objective.metric ranks the model)
NOT_REPEATED = ("compute", "deploy", "stage", "paths", "hydra")


class IncompleteModel(DataError):
    """The job's model.tar.gz lacks files of paths.data its registered model reads: it cannot be registered."""


def data_files(task: tasks.Task) -> tuple[str, ...] | None:
    """The files of paths.data the task's registered model reads; None when it has no model or does not name them."""
    if not task.has_registered_model():
        return None
    declared = getattr(importlib.import_module(task.model_module), "DATA_FILES", None)
    return None if declared is None else tuple(str(name) for name in declared)


def write_derived_files(task: tasks.Task, cfg: DictConfig) -> None:
    """The task's `write_data_files(cfg)`, if it has one: files of paths.data its model reads that the stages do not
    write, made from those they do (a few rows of a large split)."""
    if task.has_registered_model():
        write = getattr(importlib.import_module(task.model_module), "write_data_files", None)
        if write is not None:
            write(cfg)


def ship(cfg: DictConfig) -> list[str]:
    """In the job, after its stages: copy the files of paths.data the registered model reads into the model folder.

    Returns the names copied; one the stages did not write is left out (the trial on this machine names it)."""
    task = tasks.get(cfg.task.name)
    write_derived_files(task, cfg)
    names = data_files(task) or ()
    data, target = Path(cfg.paths.data), Path(cfg.paths.models) / DATA_FOLDER
    shipped = []
    for name in names:
        if (data / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(data / name, target / name)
            shipped.append(name)
    return shipped


def pipeline_run(job_name: str) -> str:
    """The pipeline run the job's trial and the deploy stage run after it share (MLEXP_PIPELINE_RUN)."""
    return f"{OWN_MARKER_PREFIX}{job_name}"


def bring_back(cfg: DictConfig, job_name: str) -> bool:
    """After model.tar.gz is unpacked into paths.models: its data files into paths.data.

    True when the task's registered model has everything it reads (this job's trial can be registered here); False
    with a notice when the task has no model to register, does not name what it reads, or the archive lacks one of
    those files (a stage that did not write it); IncompleteModel for that last case when this command deploys."""
    task = tasks.get(cfg.task.name)
    names = data_files(task)
    if names is None:
        if task.has_registered_model():
            print(
                f"notice: {task.model_module} does not name the files of paths.data its model reads (DATA_FILES): "
                f"job {job_name}'s model cannot be registered from this machine until it does"
            )
        return False
    shipped, data = Path(cfg.paths.models) / DATA_FOLDER, Path(cfg.paths.data)
    missing = [name for name in names if not (shipped / name).is_file()]
    if missing:
        listed = ", ".join(f"{DATA_FOLDER}/{name}" for name in missing)
        problem = (
            f"training job {job_name}'s model.tar.gz lacks {listed}, which {task.name}'s registered model reads (its "
            "stages did not write it): its model cannot be registered from this machine"
        )
        if cfg.deploy.target != "none":
            raise IncompleteModel(f"deploy={cfg.deploy.target}: {problem}; the job's metrics are in this trial")
        print(f"notice: {problem}")
        return False
    for name in names:
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(shipped / name, data / name)
    shutil.rmtree(shipped, ignore_errors=True)  # absent when the task reads nothing from paths.data
    return True


def join(cfg: DictConfig, store_uri: str, experiment_name: str, run_id: str, job_name: str) -> None:
    """Record the job's trial for the deploy stage run with MLEXP_PIPELINE_RUN=sagemaker-<job name>."""
    run = pipeline_run(job_name)
    write_marker(marker_path(Path(cfg.paths.root), store_uri, experiment_name, cfg.task.name, run), Marker(run_id, run))


def remote_inputs(overrides: list[str]) -> list[str]:
    """The job's S3 dataset overrides: its input channels, which the deploy stage here cannot read."""
    return [o.lstrip("+") for o in overrides if o.lstrip("+").startswith("dataset.") and "=s3://" in o]


def _repeated(override: str) -> bool:
    key = override.lstrip("+~").partition("=")[0]
    if key == "task" or key.split(".", 1)[0].split("@", 1)[0] in NOT_REPEATED:
        return False
    return override.lstrip("+") not in remote_inputs([override])


def hydra_quoted(value: str) -> str:
    """A path as Hydra's override grammar reads it verbatim: quoted when it holds what the grammar would parse (a
    space, brackets, commas, `=`, quotes, `${`)."""
    if re.fullmatch(r"[\w./~@:+-]*", value):
        return value
    escaped = value.replace("'", "\\'").replace("${", "\\${")
    return f"'{escaped}'"


def deploy_command(cfg: DictConfig, overrides: list[str], job_name: str, deploy: str = "registry") -> str:
    """The command that registers (deploy=registry) or deploys the job's model: the deploy stage joining its trial,
    reading the folders the job's results came back to, with the job's config overrides (the registered model's
    settings and input example)."""
    kept = [override for override in overrides if _repeated(override)]
    folders = [f"paths.{name}={hydra_quoted(str(cfg.paths[name]))}" for name in ("data", "models")]
    words = [f"{PIPELINE_RUN_ENV}={pipeline_run(job_name)}", "mlexp", f"task={cfg.task.name}", *kept, *folders]
    return " ".join([*map(shlex.quote, words), "stage=deploy", f"deploy={deploy}"])
