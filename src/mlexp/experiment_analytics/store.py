"""Where the trials are read from: the tracking store, and in it the experiment and the sweep asked for."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlexp.errors import MlexpError, did_you_mean
from mlexp.paths import project_root
from mlexp.tracking import TrackingStore, tags

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

MAX_TRIALS = 5000  # the most runs (or sweeps' experiments) one search reads


class AnalyticsError(MlexpError):
    """The trials asked for cannot be read: the experiment, sweep, search or column is not in the store, or the store
    is not there (nothing recorded yet, a server that is down or refuses the request)."""


def tracking_store(tracking_uri: str | None, root: Path | None = None) -> TrackingStore:
    """The store the CLI would use; a URI given outright needs no project folder."""
    configured = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if root is not None:
        return TrackingStore.resolve(tracking_uri, root)
    try:
        root = project_root()
    except FileNotFoundError as error:
        if not configured:
            # `mlexp compare` reads the project's conf/ too (the task's headline metrics): in Python, a store alone
            raise AnalyticsError(f"{error}; in Python, analytics(..., tracking_uri=...) reads a store alone") from error
        root = Path.cwd()
    return TrackingStore.resolve(tracking_uri, root)


def experiment_of_task(task: str, root: Path | None = None) -> str:
    """The experiment a task's trials go to: `tracking.experiment_name`, else the task's name."""
    from hydra import compose, initialize_config_dir

    from mlexp.config import make_composable

    conf_dir = (root or project_root()) / "conf"
    known = sorted(p.stem for p in (conf_dir / "task").glob("*.yaml"))
    if task not in known:
        raise AnalyticsError(
            f"task={task!r} is not a task; {did_you_mean(task, known)}choose one of: {', '.join(known)}"
        )
    make_composable()
    # a context restores Hydra's global state on exit: a notebook may compose again afterwards
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose("config", overrides=[f"task={task}"])
    return str(cfg.tracking.experiment_name or task)


@dataclass(frozen=True)
class SweepRecord:
    """Where a sweep's trials are: its id, name, task and the experiment holding its trials."""

    sweep_id: str
    name: str
    task: str
    experiment: str


def find_sweep(client: MlflowClient, name_or_id: str) -> SweepRecord | None:
    """The sweep named `name_or_id` (as printed when it ran) or with that id, in any experiment."""
    if not tags.quotable(name_or_id):
        return None  # no filter can hold it: looked up as no sweep
    sweeps_experiments = [
        e for e in client.search_experiments(max_results=MAX_TRIALS) if e.name.endswith(tags.SWEEPS_SUFFIX)
    ]
    if not sweeps_experiments:
        return None
    by_id = {e.experiment_id: e.name for e in sweeps_experiments}
    # MLflow's search has no OR: the name first, then the id
    for key in (tags.SWEEP_NAME, tags.SWEEP_ID):
        condition = f"tags.`{tags.KIND}` = 'sweep' and tags.`{key}` = {tags.quoted(name_or_id)}"
        runs = client.search_runs(list(by_id), filter_string=condition, max_results=1)
        if runs:
            run = runs[0]
            experiment = by_id[run.info.experiment_id][: -len(tags.SWEEPS_SUFFIX)]
            return SweepRecord(run.info.run_id, run.info.run_name or "", run.data.tags.get(tags.TASK, ""), experiment)
    return None


def sweep_names(client: MlflowClient, limit: int = 100) -> list[str]:
    """The names of the store's sweeps, the newest first."""
    experiments = [e.experiment_id for e in client.search_experiments() if e.name.endswith(tags.SWEEPS_SUFFIX)]
    if not experiments:
        return []
    runs = client.search_runs(
        experiments, f"tags.`{tags.KIND}` = 'sweep'", max_results=limit, order_by=["attributes.start_time DESC"]
    )
    return [run.data.tags.get(tags.SWEEP_NAME) or run.info.run_name or run.info.run_id for run in runs]


def sweep_of(client: MlflowClient, sweep: str, store_uri: str) -> SweepRecord:
    """The sweep named `sweep` or with that id, as `mlexp compare sweep=` finds it."""
    found = find_sweep(client, sweep)
    if found is None:
        raise AnalyticsError(
            f"no sweep named or with id {sweep!r} in {store_uri}; {_known(sweep, sweep_names(client))}"
        )
    return found


def experiment_id(client: MlflowClient, name: str, store_uri: str) -> str:
    """The id of the experiment named `name`."""
    found = client.get_experiment_by_name(name)
    if found is None:
        names = [e.name for e in client.search_experiments() if not e.name.endswith(tags.SWEEPS_SUFFIX)]
        raise AnalyticsError(
            f"no trials in experiment {name!r} of {store_uri}: there is no such experiment; "
            f"run `mlexp task=...` first or check the name; {_known(name, names)}"
        )
    return str(found.experiment_id)


def _known(typed: str, names: list[str]) -> str:
    """The closest of the names the store holds (sweeps are named `<sweep file>-<time>`: one typed without its time
    gets the newest of that file), and the names, the newest first, up to ten."""
    if not names:
        return "the store holds none"
    close = [n for n in names if n.startswith(f"{typed}-")][:1] or difflib.get_close_matches(typed, names, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return f"{hint}the store holds: {shown}"
