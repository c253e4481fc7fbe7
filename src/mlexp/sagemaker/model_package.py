"""deploy=sagemaker's model.tar.gz: the task's registered pyfunc model plus SageMaker's inference handler.

SageMaker unpacks the archive into /opt/ml/model; its framework containers import `code/inference.py`
(SAGEMAKER_PROGRAM) and pip-install `code/requirements.txt` before the first request:

    model/                  the MLflow Model folder deploy=registry registers: MLmodel, the task's artifacts,
                            code/mlexp (the mlexp source its PythonModel imports), requirements.txt
    code/inference.py       mlexp.sagemaker.inference: model_fn, input_fn, predict_fn, output_fn
    code/requirements.txt   the model's pinned libraries (mlflow, mxnet or xgboost, pandas, ...)

The model is the registry champion (`models:/<name>@champion`), a registered version of a named trial,
or this trial's model saved the way the registry saves it.
"""

from __future__ import annotations

import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from mlexp.errors import ConfigError, DataError
from mlexp.serving.registered_name import NOT_REGISTERED, registered_name, registration_command
from mlexp.tracking.tags import is_run_id, quoted

MODEL_FOLDER = "model"
CODE_FOLDER = "code"
HANDLER = "inference.py"
ARCHIVE = "model.tar.gz"


@dataclass(frozen=True)
class ModelSource:
    """Where the packaged model came from: a registry URI (`models:/<name>/<version>`) or this trial's run."""

    uri: str
    label: str  # short, for resource names: "v3" or the trial run id's first characters


def handler_file() -> Path:
    """The inference handler's source, copied into the archive as code/inference.py."""
    from mlexp.sagemaker import inference

    return Path(inference.__file__)


def write_archive(mlflow_model: Path, archive: Path) -> Path:
    """Write model.tar.gz from an MLflow Model folder: model/, code/inference.py, code/requirements.txt."""
    requirements = mlflow_model / "requirements.txt"
    if not (mlflow_model / "MLmodel").is_file() or not requirements.is_file():
        raise DataError(f"{mlflow_model} is not an MLflow Model folder with requirements.txt (MLmodel missing)")
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(mlflow_model, arcname=MODEL_FOLDER, filter=_without_caches)
        tar.add(handler_file(), arcname=f"{CODE_FOLDER}/{HANDLER}")
        tar.add(requirements, arcname=f"{CODE_FOLDER}/requirements.txt")
    return archive


def _without_caches(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "__pycache__" in Path(member.name).parts or member.name.endswith(".pyc") else member


def trial_model(cfg: DictConfig, folder: Path) -> Path:
    """This trial's model saved as deploy=registry saves it (and checked by predicting its input example)."""
    import importlib

    from mlexp import tasks
    from mlexp.serving import pyfunc_model

    task = tasks.get(cfg.task.name)
    if not task.has_registered_model():
        raise ConfigError(f"deploy=sagemaker: task {task.name!r} has no predictive model to deploy; use deploy=none")
    module = importlib.import_module(task.model_module)
    saved = folder / MODEL_FOLDER
    with pyfunc_model.quiet_mlflow():
        pyfunc_model.save(module.pyfunc_model(cfg, folder / "staging"), saved)
    return saved


def registered_version(cfg: DictConfig, tracking_uri: str, source: str) -> tuple[str, str]:
    """(name, version) the source names: the alias holder (`champion`) or the version of trial run `source`."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from mlexp.database_driver import driver_checked
    from mlexp.tracking.store import retries_bounded_here, store_failure

    with driver_checked():  # MLflow opens a database store here
        client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    name, alias = registered_name(cfg)
    # a registry that is down: its line in seconds, worded inside the bound (the line names the timeout); its
    # registry store is opened at the first lookup
    with retries_bounded_here(), driver_checked():
        if source == "champion":
            try:
                return name, str(client.get_model_version_by_alias(name, alias).version)
            except MlflowException as error:
                if error.error_code not in NOT_REGISTERED:  # the registry did not answer
                    raise DataError(store_failure(error, tracking_uri)) from None
                raise DataError(
                    f"deploy.source=champion: models:/{name}@{alias} does not exist in {tracking_uri}; "
                    f"register one first ({registration_command(cfg)}) or deploy deploy.source=trial"
                ) from None
        try:
            versions = (
                client.search_model_versions(f"name = {quoted(name)} and tags.`mlexp.trial_run_id` = '{source}'")
                if is_run_id(source)
                else []  # a source not of a run id's form comes from no run
            )
        except MlflowException as error:
            raise DataError(store_failure(error, tracking_uri)) from None
    if not versions:
        raise DataError(
            f"deploy.source={source}: no version of registered model {name} comes from this trial run; "
            "use deploy.source=champion, or a trial run id that ran with deploy=registry"
        )
    return name, str(max(int(v.version) for v in versions))


def registered_model(tracking_uri: str, name: str, version: str, folder: Path) -> Path:
    """Download registered version `models:/<name>/<version>` (an MLflow Model folder) into `folder`."""
    import mlflow.artifacts

    from mlexp.serving import champion, pyfunc_model

    target = folder / MODEL_FOLDER
    # a version's source is models:/<logged model id>, which MLflow resolves through the global tracking URI
    with pyfunc_model.quiet_mlflow(), champion._global_tracking_uri(tracking_uri):
        mlflow.artifacts.download_artifacts(
            f"models:/{name}/{version}", dst_path=str(target), tracking_uri=tracking_uri, registry_uri=tracking_uri
        )
    return target


def resolve(cfg: DictConfig, tracking_uri: str, trial_run_id: str | None) -> ModelSource:
    """Which model cfg.deploy.source (champion | trial | <trial run id>) names, before anything is built."""
    source = str(cfg.deploy.source)
    if source == "best":
        raise ConfigError("deploy=sagemaker takes deploy.source=champion|trial|<trial run id>, not best")
    if source == "trial":
        if trial_run_id is None:
            raise ConfigError("deploy.source=trial deploys the model of the trial that runs now; run one")
        return ModelSource(f"trial {trial_run_id}", trial_run_id[:8])
    name, version = registered_version(cfg, tracking_uri, source)
    return ModelSource(f"models:/{name}/{version}", f"v{version}")


def build(cfg: DictConfig, tracking_uri: str, source: ModelSource, folder: Path) -> Path:
    """model.tar.gz in `folder` for `source`: this trial's model, or the registered version downloaded."""
    if source.uri.startswith("models:/"):
        name, version = source.uri.removeprefix("models:/").rsplit("/", 1)
        saved = registered_model(tracking_uri, name, version, folder)
    else:
        saved = trial_model(cfg, folder)
    archive = write_archive(saved, folder / ARCHIVE)
    shutil.rmtree(folder / "staging", ignore_errors=True)
    return archive
