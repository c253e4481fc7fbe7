"""The training job's entry point: the same runner, on the config that travelled with the code, with compute=local.

`python -m mlexp.sagemaker.entry` runs in the code folder (/opt/ml/input/data/code). The folders SageMaker sets in
SM_MODEL_DIR, SM_OUTPUT_DATA_DIR and SM_CHANNEL_<NAME> replace the /opt/ml defaults baked into the config, and
hyperparameters that name config keys (a tuning job's `model.lr`) override them. Each headline metric is printed
as `mlexp-metric <name>=<value>`, the line the job's MetricDefinitions read. The files of the data folder the task's
registered model reads are copied into the model folder (mlexp.sagemaker.trained_model), so model.tar.gz holds all
that registering it on the user's machine needs.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from mlexp.sagemaker.packaging import CODE_DIR, CONFIG_FILE, INPUT_DIR, JOB_FILE, MODEL_DIR, OUTPUT_DIR

# hyperparameters that are not config keys: mlexp's own, the SDK's and a tuning job's
RESERVED_PREFIXES = ("mlexp.", "sagemaker_", "_tuning_objective_metric")


def _hyperparameters() -> dict[str, Any]:
    """The job's hyperparameters: SM_HPS (set by the SDK's driver), else SageMaker's hyperparameters.json."""
    if os.environ.get("SM_HPS"):
        found = json.loads(os.environ["SM_HPS"])
    else:
        path = Path(os.environ.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config")) / "hyperparameters.json"
        found = json.loads(path.read_text()) if path.is_file() else {}
    return dict(found)


def config_overrides(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters naming config keys, with their values typed (SageMaker sends every value as a string)."""
    overrides = {}
    for key, value in hyperparameters.items():
        if key.startswith(RESERVED_PREFIXES):
            continue
        overrides[key] = yaml.safe_load(value) if isinstance(value, str) else value
    return overrides


def _relocate(value: str, code_dir: Path) -> str:
    """A baked-in /opt/ml path, moved to where this container (or a local rehearsal) has that folder."""
    moves = [(CODE_DIR, str(code_dir))]
    if os.environ.get("SM_MODEL_DIR"):
        moves.append((MODEL_DIR, os.environ["SM_MODEL_DIR"]))
    if os.environ.get("SM_OUTPUT_DATA_DIR"):
        moves.append((OUTPUT_DIR, os.environ["SM_OUTPUT_DATA_DIR"]))
    for name, folder in os.environ.items():
        if name.startswith("SM_CHANNEL_") and name != "SM_CHANNELS":
            moves.append((f"{INPUT_DIR}/{name.removeprefix('SM_CHANNEL_').lower()}", folder))
    for old, new in moves:
        for prefix in (old, f"sqlite:///{old}"):
            if value == prefix or value.startswith(prefix + "/"):
                return value.replace(old, new, 1)
    return value


def _relocated(node: Any, code_dir: Path) -> Any:
    if isinstance(node, dict):
        return {key: _relocated(value, code_dir) for key, value in node.items()}
    if isinstance(node, list):
        return [_relocated(value, code_dir) for value in node]
    return _relocate(node, code_dir) if isinstance(node, str) else node


def _typed(cfg: DictConfig, choices: Mapping[str, Any]) -> None:
    """Each chosen group's section typed again by its schema (`schema/<group>/<option>`), as Hydra composed it.

    The config travels as plain YAML: without this a stage reading its section as its dataclass
    (`OmegaConf.to_object(cfg.active_learning)`) gets a dict, and enum values stay strings.
    """
    from hydra.core.config_store import ConfigStore
    from hydra.core.object_type import ObjectType

    from mlexp import tasks

    tasks.load_all()  # each task's config module stores its schemas
    store = ConfigStore.instance()
    for group, option in choices.items():
        schema = f"schema/{group}/{option}.yaml"
        if store.get_type(schema) is ObjectType.CONFIG and isinstance(cfg.get(group), DictConfig):
            cfg[group] = OmegaConf.merge(store.load(schema).node, cfg[group])


def job_context(code_dir: Path) -> dict[str, Any]:
    """The job's context that travelled with the code (choices, overrides, trial name); empty when absent."""
    job_file = code_dir / JOB_FILE
    return dict(json.loads(job_file.read_text())) if job_file.is_file() else {}


def load_config(code_dir: Path, job: dict[str, Any] | None = None) -> DictConfig:
    """The config that travelled with the code, moved to this container's folders and typed by the schemas of the
    groups the job chose (`job`: its context, read from the code when not given), with hyperparameter overrides."""
    raw = yaml.safe_load((code_dir / CONFIG_FILE).read_text())
    cfg = OmegaConf.create(_relocated(raw, code_dir))
    _typed(cfg, (job_context(code_dir) if job is None else job).get("choices", {}))
    for key, value in config_overrides(_hyperparameters()).items():
        OmegaConf.update(cfg, key, value, force_add=False)
    cfg.compute.target = "local"
    return cfg


def print_metrics(cfg: DictConfig) -> dict[str, float]:
    """Print the trial's headline metrics as `mlexp-metric <name>=<value>` lines (finite values only)."""
    from mlexp.sagemaker.training_job import metric_line

    path = Path(cfg.paths.reports) / "metrics.json"
    metrics = {k: float(v) for k, v in json.loads(path.read_text()).items()} if path.is_file() else {}
    for name, value in metrics.items():
        if math.isfinite(value):
            print(metric_line(name, value), flush=True)
    return metrics


def code_folder() -> Path:
    """The folder holding the travelled config: the working directory, else the one around this src/mlexp."""
    if (Path.cwd() / CONFIG_FILE).is_file():
        return Path.cwd()
    return Path(__file__).resolve().parents[3]  # <code>/src/mlexp/sagemaker/entry.py (a tuning job's layout)


def main() -> int:
    """Run the travelled config's trial in this container and print its metric lines."""
    from mlexp import runner
    from mlexp.errors import MlexpError
    from mlexp.sagemaker import trained_model

    code_dir = code_folder()
    # the runner's helper processes (the tracking writer) import mlexp too: from this code, in any job layout
    source = str(code_dir / "src")
    os.environ["PYTHONPATH"] = os.pathsep.join([source, *filter(None, [os.environ.get("PYTHONPATH")])])
    os.environ["MLEXP_ROOT"] = str(code_dir)
    job = job_context(code_dir)
    cfg = load_config(code_dir, job)
    context = runner.JobContext(
        choices=job.get("choices", {}), overrides=job.get("overrides", []), trial_name=job.get("trial")
    )
    for folder in ("data", "models", "reports"):
        Path(cfg.paths[folder]).mkdir(parents=True, exist_ok=True)
    try:
        result = runner.run(cfg, context)
        # what the registered model reads from paths.data travels in model.tar.gz too (this machine registers it)
        trained_model.ship(cfg)
    except MlexpError as error:
        # SageMaker shows the failure file's text as the job's FailureReason
        failure = Path(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output")) / "failure"
        if failure.parent.is_dir():
            failure.write_text(str(error)[:1000])
        print(f"mlexp: error: {error}", file=sys.stderr)
        return 1
    print_metrics(cfg)
    print(f"trial done: {cfg.task.objective.metric} = {result.objective:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
