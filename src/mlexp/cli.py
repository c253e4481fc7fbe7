"""The `mlexp` command: a Hydra app for trials and sweeps, plus `compare` and `params`."""

from __future__ import annotations

import gc
import math
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig

from mlexp.config import make_composable
from mlexp.config.overrides import check_override_keys
from mlexp.errors import MlexpError
from mlexp.paths import project_root, resolve
from mlexp.sweeps import SWEEP_NAME_ENV, SWEEP_RUN_ENV

if TYPE_CHECKING:
    from mlexp import runner

# at import: joblib sweep workers import this module to run jobs, and need it too
make_composable()

# keys the runner reads itself; never merged from params.yaml
RUN_KEYS = ("stage", "params_file")


def _value_overrides(overrides: list[str], groups: set[str]) -> list[str]:
    """`key=value` overrides of config values (not group choices), as a dotlist."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [
        f"{o.key_or_group}={o.get_value_element_as_str()}"
        for o in parsed
        if o.key_or_group not in groups and o.key_or_group not in RUN_KEYS and not o.is_delete()
    ]


def _fail(message: str, multirun: bool) -> float:
    print(f"mlexp: error: {message}", file=sys.stderr)
    if multirun:
        return math.nan
    sys.exit(1)


def _job(cfg: DictConfig) -> float:
    # imported here: MLflow and MXNet take seconds to load, which --help and --cfg don't need
    from mlexp import runner
    from mlexp.config.params import apply_params_file

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra")}
    overrides = list(hydra_cfg.overrides.task)
    job = runner.JobContext(choices=choices, overrides=overrides)
    try:
        if cfg.params_file:
            cfg = apply_params_file(cfg, resolve(cfg.params_file), _value_overrides(overrides, set(choices)))
        if multirun:
            job = _sweep_job(cfg, job, hydra_cfg.job.num, Path(hydra_cfg.runtime.output_dir))
        objective = runner.run(cfg, job)
    except runner.TrialFailed as failed:
        where = "" if failed.user_error else "; traceback in the trial's artifact error.txt"
        return _fail(f"{failed} (trial {failed.run_id} marked FAILED{where})", multirun)
    except MlexpError as error:
        return _fail(str(error), multirun)
    _print_next_steps(cfg, objective, multirun)
    return objective


def _sweep_job(cfg: DictConfig, job: runner.JobContext, number: int, output_dir: Path) -> runner.JobContext:
    """Give each sweep trial its own data/model/report folders and link it to the sweep run."""
    cfg.paths.data = str(output_dir / "data")
    cfg.paths.models = str(output_dir / "models")
    cfg.paths.reports = str(output_dir / "reports")
    name = os.environ.get(SWEEP_NAME_ENV, "sweep")
    sweep_run = os.environ.get(SWEEP_RUN_ENV)
    return replace(job, sweep_run_id=sweep_run, sweep_id=sweep_run, trial_name=f"{name}-trial-{number}")


def _print_next_steps(cfg: DictConfig, objective: float, multirun: bool) -> None:
    metric = cfg.task.objective.metric
    if math.isnan(objective):
        print(f"stage {cfg.stage} done.")
        return
    print(f"trial done: {metric} = {objective:.6g}  (reports: {cfg.paths.reports})")
    if multirun:
        return
    from mlexp.tracking import TrackingStore

    store = TrackingStore.resolve(cfg.tracking.uri, Path(cfg.paths.root))
    print(f"  compare trials:  mlexp compare task={cfg.task.name}")
    print(f"  MLflow UI:       mlflow ui --backend-store-uri {store.uri}")


def main() -> None:
    argv = sys.argv[1:]
    from mlexp import commands

    if argv and argv[0] in commands.COMMANDS:
        sys.exit(commands.run(argv[0], argv[1:]))
    conf_dir = project_root() / "conf"
    try:
        overrides = get_args_parser().parse_args(argv).overrides
        if any(arg in ("--help", "-h") for arg in argv):
            from mlexp.usage import help_text

            print(help_text(conf_dir, overrides))
            sys.exit(0)
        check_override_keys(conf_dir, overrides)
    except MlexpError as error:
        print(f"mlexp: error: {error}", file=sys.stderr)
        sys.exit(2)
    app = hydra.main(version_base="1.3", config_path=str(conf_dir), config_name="config")
    app(_job)()
    # MLflow, MXNet and pandas leave millions of objects; skip collecting them at exit (seconds)
    gc.freeze()


if __name__ == "__main__":
    main()
