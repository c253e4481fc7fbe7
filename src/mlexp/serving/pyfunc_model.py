"""A trial's model as an MLflow Model folder with a pyfunc flavour (what `deploy=registry` registers).

The model is saved as MLflow's "models from code": a three-line entry file naming the task's
PythonModel class, not a cloudpickle (MLflow 3 refuses to unpickle models unless told to).
mlexp's own source travels in the model's `code/` folder and the libraries it imports are
pinned in its requirements, so the folder loads wherever those libraries are installed.
"""

from __future__ import annotations

import logging
import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
from mlflow.models import Model, ModelSignature

import mlexp

# what mlexp's code imports on the way to any task's PythonModel
BASE_REQUIREMENTS = ("mlflow", "hydra-core", "omegaconf", "numpy", "pandas")


@dataclass(frozen=True)
class PyfuncModel:
    """What a task hands the registry: its PythonModel class, the files it loads, an example and a signature."""

    # a mlflow.pyfunc.PythonModel subclass whose constructor takes no argument
    python_model: type
    # name → local file or folder; the class finds them in context.artifacts[name]
    artifacts: dict[str, Path]
    input_example: pd.DataFrame
    signature: ModelSignature
    # distributions the class's code imports beyond BASE_REQUIREMENTS, e.g. ("mxnet",)
    requirements: tuple[str, ...] = ()
    # inference parameters with their defaults (declared in the signature's params too)
    params: dict[str, Any] = field(default_factory=dict)


def pinned(distributions: tuple[str, ...]) -> list[str]:
    """`name==version` of each installed distribution (missing ones are left out)."""
    lines = []
    for name in dict.fromkeys(distributions):
        try:
            lines.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return lines


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Without MLflow's progress bars and INFO lines, which would interleave with the trial's output."""
    from mlexp.tracking.mlflow_settings import mlflow_settings_here

    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        # the environment is left as it is: a service's other threads may be reading it
        with mlflow_settings_here({MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name: "false"}, every_thread=True):
            yield
    finally:
        logger.setLevel(level)


def _entry_file(model: PyfuncModel, folder: Path) -> Path:
    cls = model.python_model
    entry = folder / "mlexp_model.py"
    entry.write_text(
        f'"""MLflow models-from-code entry point: {cls.__name__} of {cls.__module__}."""\n\n'
        "from mlflow.models import set_model\n\n"
        f"from {cls.__module__} import {cls.__name__}\n\n"
        f"set_model({cls.__name__}())\n"
    )
    return entry


def _source_copy(folder: Path) -> Path:
    """mlexp's .py files (no caches), for the model's code/ folder."""
    package = Path(mlexp.__file__).parent
    copy = folder / "mlexp"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return copy


def save(model: PyfuncModel, path: Path, mlflow_model: Model | None = None) -> None:
    """Write `model` as an MLflow Model folder at `path`, then load it back and predict its input example."""
    staging = path.parent / f"{path.name}-source"
    staging.mkdir(parents=True)
    example: Any = (model.input_example, model.params) if model.params else model.input_example
    mlflow.pyfunc.save_model(
        path=str(path),
        python_model=str(_entry_file(model, staging)),
        artifacts={name: str(local) for name, local in model.artifacts.items()},
        code_paths=[str(_source_copy(staging))],
        signature=model.signature,
        input_example=example,
        # given, not inferred: inference loads the model in a subprocess, seconds per trial
        pip_requirements=pinned((*BASE_REQUIREMENTS, *model.requirements)),
        mlflow_model=mlflow_model,
    )
    check(path, model)


def check(path: Path, model: PyfuncModel) -> pd.DataFrame:
    """Load the saved folder as MLflow serving would and predict the input example (fails before registering)."""
    # loading prepends the model's code/ to sys.path; this process keeps importing the installed mlexp
    saved_path = list(sys.path)
    try:
        with warnings.catch_warnings():
            # MXNet's hybridized first forward pass warns about its own graph; nothing to act on
            warnings.filterwarnings("ignore", message="Cannot decide type")
            loaded = mlflow.pyfunc.load_model(str(path))
            predictions: pd.DataFrame = loaded.predict(model.input_example, params=model.params or None)
    finally:
        sys.path[:] = saved_path
    if len(predictions) != len(model.input_example):
        raise RuntimeError(
            f"the saved model answered {len(predictions)} rows for {len(model.input_example)} example rows"
        )
    return predictions
