"""What mlexp prints after a trial, a sweep or a comparison: where to look next."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from mlexp.config.params import NOT_PARAMS, flatten
from mlexp.paths import RUN_FOLDERS, relative_if_under
from mlexp.tracking import tags, ui_link

if TYPE_CHECKING:
    from omegaconf import DictConfig


def experiment_tag_writer(tracking_uri: str) -> ui_link.TagWriter | None:
    """Through the tracking writer this process is connected to, if any: it has MLflow loaded and the store open."""
    from mlexp.tracking.journal_writer import TrackingError, running_writer
    from mlexp.tracking.store import absolute_uri

    writer = running_writer()
    if writer is None:
        return None

    def tag(experiment_id: str, key: str, value: str) -> None:
        # set when the command ends; a store that refuses it is said in the writer's log, the link still works
        with contextlib.suppress(TrackingError):
            writer.request(
                cmd="experiment_tag", uri=absolute_uri(tracking_uri), experiment_id=experiment_id, key=key, value=value
            )

    return tag


def compare_command(scope: str, tracking_uri: str) -> str:
    """`mlexp compare <scope>` on the store the trials went to: named when compare would read another by default.

    A store given as `tracking=server` is named so again (its URL stays in $MLEXP_TRACKING_SERVER); any other as
    `tracking.uri=<uri>`.
    """
    from mlexp.errors import ConfigError
    from mlexp.paths import project_root
    from mlexp.tracking.store import TrackingStore, absolute_uri

    used = absolute_uri(tracking_uri)
    try:
        default = absolute_uri(TrackingStore.resolve(None, project_root()).uri)
    except ConfigError:  # compare's default is unusable ($MLFLOW_TRACKING_URI without a scheme): name the store
        default = None
    if used == default:
        return f"mlexp compare {shlex.quote(scope)}"
    server = os.environ.get("MLEXP_TRACKING_SERVER")
    store = "tracking=server" if server and used == absolute_uri(server) else shlex.quote(f"tracking.uri={used}")
    return f"mlexp compare {shlex.quote(scope)} {store}"


def serving_only(cfg: DictConfig) -> bool:
    """Whether this run recorded a trial of its own that only served or registered a model: `stage=deploy` outside a
    pipeline run, where it joins no earlier stage's trial (mlexp.trial_continuation). `mlexp compare` and the trials
    view of the MLflow UI leave such a run out (experiment_analytics.trials.deployment_only)."""
    from mlexp.trial_continuation import pipeline_run_id

    return cfg.stage == tags.SERVING_ONLY_STAGE and pipeline_run_id() is None


def print_ui_link(
    tracking_uri: str,
    experiment_id: str,
    objective: str,
    direction: str,
    sweep_id: str | None = None,
    *,
    sweep_name: str | None = None,
    headline_metrics: Sequence[str] = (),
    params: Sequence[str] = (),
    choices: Sequence[str] = (),
) -> None:
    """Print the MLflow UI link that opens the trials (of one sweep) best first, with their columns shown: the
    headline metrics, `params` and the config groups' `choices`."""
    try:
        link = ui_link.publish_comparison(
            tracking_uri,
            experiment_id,
            objective=objective,
            direction=direction,
            sweep_id=sweep_id,
            sweep_name=sweep_name,
            metric_columns=headline_metrics,
            param_columns=params,
            choice_columns=choices,
            tag_writer=experiment_tag_writer(tracking_uri),
        )
    except ui_link.NoUiAddress as error:
        print(f"MLflow UI: {error}")
        return
    if link.start_command:
        print(f"  start the UI:     {link.start_command}")
    print(f"MLflow UI: {link.url}")


class ViewColumns(NamedTuple):
    """What a trial adds to the view of every trial: params by name, config groups by name (shown by their choice)."""

    params: list[str]
    choices: list[str]


# what a trial tried, not how it ran: `mlexp compare` leaves these out as well
_NOT_TRIED = {*NOT_PARAMS, "compute", "deploy"}


def command_line_columns(cfg: DictConfig) -> ViewColumns:
    """The params and config-group choices this Hydra job's command line set, named as the trial logged them:
    `model.l1_size=16` is param `model.l1_size`; `model=xgboost_churn` is group `model`, or param `features.name`
    for `features=signal_users` when the group's `name` says its choice (as `mlexp compare` shows it). None for a
    DVC stage run (params_file=): `dvc exp run -S` changes params.yaml, not the stage's command."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import DictConfig, OmegaConf

    from mlexp.config.known_keys import list_holding
    from mlexp.config.overrides import command_overrides

    if cfg.params_file:  # a DVC stage: its command line is dvc.yaml's, the values changed are in the params file
        return ViewColumns([], [])
    hydra = HydraConfig.get()
    groups = hydra.runtime.choices
    params: list[str] = []
    choices: list[str] = []
    for override in OverridesParser.create().parse_overrides(command_overrides(hydra)):
        key = override.key_or_group
        if override.is_delete() or re.split(r"[./]", key)[0] in _NOT_TRIED:
            continue
        if key in groups:
            if OmegaConf.select(cfg, f"{key}.name", default=None) == groups[key]:
                params.append(f"{key}.name")
            else:
                choices.append(key)
            continue
        if (whole := list_holding(cfg, key)) is not None:  # flatten logs a list as one param: its items have none
            params.append(whole)
            continue
        node = OmegaConf.select(cfg, key, default=None)
        params += flatten(OmegaConf.to_container(node) if isinstance(node, DictConfig) else node, f"{key}.")
    return ViewColumns(list(dict.fromkeys(params)), list(dict.fromkeys(choices)))


def stage_outputs(cfg: DictConfig) -> list[Path]:
    """The run folders (cfg.paths.data, .models, .reports) the stage run alone wrote into."""
    from mlexp import tasks

    task = tasks.get(cfg.task.name)
    if cfg.stage not in task.stages:
        return []
    written = tasks.declared_outputs(task, cfg.stage, cfg)
    return [folder for folder in _run_folders(cfg).values() if any(_holds(folder, path) for path in written)]


def next_stage_command(
    cfg: DictConfig, overrides: Sequence[str], launch_dir: Path, flags: Sequence[str] = ()
) -> str | None:
    """The command, run from `launch_dir`, that runs the task's next stage on what the stage run alone wrote
    (`overrides` and `flags`, the flags that chose the config: this command's); None after the last stage. A run with
    params_file= writes DVC's folders, which the next one reads by itself."""
    from mlexp import tasks

    task = tasks.get(cfg.task.name)
    # never stage=deploy: it serves deploy.source (the registry's champion by default), not what this run wrote
    stages = [stage for stage in task.stages if stage != "deploy"]
    if cfg.stage not in stages[:-1]:
        return None
    following = stages[stages.index(cfg.stage) + 1]
    inputs = tasks.declared_inputs(task, following, cfg)
    folders = {} if cfg.params_file else _run_folders(cfg)
    read = {name: folder for name, folder in folders.items() if any(_holds(folder, path) for path in inputs)}
    replaced = {"stage", *(f"paths.{name}" for name in read)}
    kept = [o for o in overrides if o.partition("=")[0].lstrip("+~") not in replaced]
    return shlex.join(
        [
            "mlexp",
            *flags,
            *kept,
            f"stage={following}",
            *(f"paths.{n}={relative_if_under(f, launch_dir)}" for n, f in read.items()),
        ]
    )


def _run_folders(cfg: DictConfig) -> dict[str, Path]:
    return {name: Path(cfg.paths[name]) for name in RUN_FOLDERS}


def _holds(folder: Path, path: Path) -> bool:
    return path == folder or folder in path.parents
