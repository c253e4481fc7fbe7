"""What deleting an experiment would remove: its runs, logged models, registered versions and shared outputs.

Nothing is touched here. An experiment that cannot be deleted (MLflow's Default, one with a run
still RUNNING) is refused before anything is listed as going.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import Experiment, LoggedModel, Run, ViewType
from mlflow.tracking import MlflowClient

from mlexp import cleanup_registry
from mlexp.cleanup_report import DeletionReport, count
from mlexp.errors import MlexpError, did_you_mean
from mlexp.shared_component import SHARED_TAG
from mlexp.tracking import TrackingStore, tags
from mlexp.tracking.store import mlflow_command_env

# the SQL store's permanent deletes, the ones `mlflow gc` uses; a REST store (a server) has none
HARD_DELETES = ("_hard_delete_run", "_hard_delete_logged_model", "_hard_delete_experiment")
DEFAULT_EXPERIMENT_ID = "0"
# more run ids than this make the Default refusal's command too long for one line: it names the listing instead
LISTED_DEFAULT_RUNS = 5


class ExperimentNotFound(MlexpError):
    """No experiment (nor sweep record experiment) of that name in the store."""


class DeletionNotConfirmed(MlexpError):
    """Deleting was asked without force=True (or --force, or a yes on the terminal)."""


@dataclass
class DeletionTarget:
    """The experiment and its sweeps' experiment, with their runs and logged models, in one store."""

    report: DeletionReport
    store: TrackingStore
    client: MlflowClient
    root: Path
    experiments: list[Experiment]
    runs: list[Run]
    models: list[LoggedModel]

    @property
    def run_ids(self) -> set[str]:
        return {run.info.run_id for run in self.runs}


def every_page(fetch: Callable[[str | None], Any]) -> list[Any]:
    """Every item of a paged MLflow search."""
    items: list[Any] = []
    token = None
    while True:
        page = fetch(token)
        items.extend(page)
        token = page.token
        if not token:
            return items


def store_backend(client: MlflowClient) -> object:
    """The store object behind the client: `mlflow gc` calls the same hard-delete methods on it."""
    return client._tracking_client.store


def survey(name: str, store: TrackingStore, root: Path) -> DeletionTarget:
    """Experiment `name` and `<name>-sweeps` with everything deleting them removes; refused when they cannot go."""
    client = store.answering_client()
    found = [client.get_experiment_by_name(n) for n in (name, name + tags.SWEEPS_SUFFIX)]
    experiments = [e for e in found if e is not None]
    if not experiments:
        active = [e.name for e in client.search_experiments(max_results=50)]
        raise ExperimentNotFound(
            f"no experiment named {name!r} in {store.uri}; {did_you_mean(name, active)}"
            f"its experiments: {', '.join(active) or 'none'}"
        )
    if any(e.experiment_id == DEFAULT_EXPERIMENT_ID for e in experiments):
        raise DeletionNotConfirmed(_default_refusal(client, store.uri))
    ids = [e.experiment_id for e in experiments]
    runs = every_page(
        lambda token: client.search_runs(ids, run_view_type=ViewType.ALL, max_results=1000, page_token=token)
    )
    models = every_page(lambda token: client.search_logged_models(ids, page_token=token))
    report = DeletionReport(name, store.uri, permanent=all(hasattr(store_backend(client), m) for m in HARD_DELETES))
    for run in runs:
        kind = run.data.tags.get(tags.KIND)
        group = {"trial": report.trials, "component": report.components, "sweep": report.sweep_records}
        group.get(kind or "", report.other_runs).append(run.info.run_id)
        report.running += run.info.status == "RUNNING"
    if report.running:
        raise DeletionNotConfirmed(
            f"{report.running} run(s) of {name!r} are still RUNNING (a trial or sweep in progress); let them finish "
            "or stop them (Ctrl-C), then delete — even --force does not delete a running experiment"
        )
    report.logged_models = [m.model_id for m in models]
    target = DeletionTarget(report, store, client, root, experiments, runs, models)
    report.model_versions = [f"{v.name}/{v.version}" for v in cleanup_registry.versions_of(client, target.run_ids)]
    report.shared_preprocessing = [entry for entry, run_id in _shared_entries(root) if run_id in target.run_ids]
    report.linked_elsewhere = _linked_elsewhere(target)
    return target


def _default_refusal(client: MlflowClient, uri: str) -> str:
    """Why the Default experiment stays, and the MLflow command that deletes its runs instead (mlexp has none)."""
    runs = every_page(lambda token: client.search_runs([DEFAULT_EXPERIMENT_ID], max_results=1000, page_token=token))
    ids = [run.info.run_id for run in runs]
    kept = "MLflow expects its Default experiment (id 0) to exist, so it is not deleted"
    if not ids:
        return f"{kept}; it holds no runs to delete"
    tracking = mlflow_command_env(uri)
    if len(ids) == 1:
        how = f"`{tracking} mlflow runs delete --run-id {ids[0]}`"
    elif len(ids) <= LISTED_DEFAULT_RUNS:
        how = f"`for run in {' '.join(ids)}; do {tracking} mlflow runs delete --run-id $run; done`"
    else:
        listing = f"{tracking} mlflow runs list --experiment-id {DEFAULT_EXPERIMENT_ID}"
        how = f"`{tracking} mlflow runs delete --run-id <id>` for each id `{listing}` prints"
    return f"{kept}; delete its {count(ids, 'run')} instead: {how}"


def _shared_entries(root: Path) -> list[tuple[Path, str]]:
    """Each published shared Pre-processing folder with the component run its outputs came from."""
    entries = []
    for record in sorted((root / ".mlexp" / "shared").glob("*/*/component.json")):
        try:
            entries.append((record.parent, str(json.loads(record.read_text())["run_id"])))
        except (OSError, ValueError, KeyError):
            continue
    return entries


def _linked_elsewhere(target: DeletionTarget) -> int:
    """Trials of other experiments tagged with a shared Pre-processing component of this one."""
    ours = {run.data.tags.get(SHARED_TAG) for run in target.runs} & target.run_ids
    if not ours:
        return 0
    mine = {e.experiment_id for e in target.experiments}
    client = target.client
    everyone = every_page(lambda token: client.search_experiments(page_token=token))
    others = [e.experiment_id for e in everyone if e.experiment_id not in mine]
    if not others:
        return 0
    return sum(
        len(client.search_runs(others, f"tags.`{SHARED_TAG}` = '{component}'", max_results=1000)) for component in ours
    )
