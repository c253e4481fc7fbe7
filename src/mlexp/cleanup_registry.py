"""An experiment's registered model versions, deleted with it; each alias they held moves to the best version left.

A version belongs to the experiment when its source run (the trial's Deployment component) or
its trial (tag `mlexp.trial_run_id`, written by deploy=registry) is one of the experiment's runs.
A registered model left without a version is removed whole. An alias such as `champion` that
pointed at a deleted version moves to the best remaining version by the objective recorded on
each version, so `models:/<name>@champion` keeps loading the best model still registered.
"""

from __future__ import annotations

import math
from collections.abc import Set
from contextlib import nullcontext
from typing import TYPE_CHECKING

from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from mlexp.serving import champion
from mlexp.tracking.tags import quotable, quoted

if TYPE_CHECKING:
    from mlexp.cleanup_report import DeletionReport

TRIAL_TAG = "mlexp.trial_run_id"


def _search(client: MlflowClient, filter_string: str | None = None) -> list[ModelVersion]:
    versions: list[ModelVersion] = []
    token = None
    while True:
        page = client.search_model_versions(filter_string, page_token=token)
        versions.extend(page)
        token = page.token
        if not token:
            return versions


def versions_of(client: MlflowClient, run_ids: Set[str]) -> list[ModelVersion]:
    """The registered model versions made by these runs."""
    return [v for v in _search(client) if v.run_id in run_ids or (v.tags or {}).get(TRIAL_TAG) in run_ids]


def delete_versions(client: MlflowClient, tracking_uri: str, run_ids: Set[str], report: DeletionReport) -> None:
    """Delete the versions made by `run_ids`; record removed models and moved aliases in `report`."""
    lock = champion.lock_for(tracking_uri)
    # the registry's own lock: no trial of another experiment moves an alias meanwhile
    with lock if lock is not None else nullcontext():
        doomed: dict[str, set[str]] = {}
        for version in versions_of(client, run_ids):
            doomed.setdefault(version.name, set()).add(str(version.version))
        for name, numbers in doomed.items():
            aliases = client.get_registered_model(name).aliases or {}
            lost = sorted(alias for alias, version in aliases.items() if str(version) in numbers)
            for number in sorted(numbers, key=int):
                client.delete_model_version(name, number)
            # a name another tool registered may be one no filter can hold: then every version is read
            left = (
                _search(client, f"name = {quoted(name)}")
                if quotable(name)
                else [v for v in _search(client) if v.name == name]
            )
            if not left:
                client.delete_registered_model(name)
                report.registered_models.append(name)
                continue
            for alias in lost:
                report.moved_aliases.append(_move_alias(client, name, alias, left))


def _move_alias(client: MlflowClient, name: str, alias: str, left: list[ModelVersion]) -> str:
    """Point `alias` at the best of the versions left; says where it went."""
    ranked = []
    for version in left:
        tags = version.tags or {}
        metric, direction = tags.get(champion.OBJECTIVE), tags.get(champion.DIRECTION, "minimize")
        value = champion.objective_value(version, metric) if metric else math.nan
        if not math.isnan(value):
            ranked.append((metric, direction, champion.Standing(int(version.version), value)))
    if not ranked:
        return f"{name}@{alias}: removed (no version left records an objective to rank by)"
    ranked.sort(key=lambda entry: entry[2].version)
    metric, direction, _ = ranked[-1]  # rank by what the newest version was ranked by
    same = [standing for m, d, standing in ranked if (m, d) == (metric, direction)]
    winner = champion.best(None, same, direction)
    assert winner is not None
    client.set_registered_model_alias(name, alias, str(winner.version))
    return f"{name}@{alias} to version {winner.version} ({metric} {winner.value:.6g}), the best version left"
