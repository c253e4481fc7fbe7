"""Who holds the alias (default `champion`): it moves only to a version with a better objective.

Parallel trials register at once, so reading the holder and moving the alias must not interleave.
On the default SQLite store a file lock next to the database makes the two one step. MLflow has
no compare-and-set for aliases, so on a tracking server (several machines, no shared lock) each
trial tags its version `pending` until it has settled the alias: it compares the holder with
every pending version, moves the alias to the best, re-reads, and repeats until nothing changed
between its move and its re-read. The last trial to settle has seen every version registered
before it, so the alias ends on the best one; in between, a reader may briefly see a worse one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from filelock import FileLock
from mlflow.entities.model_registry import ModelVersion
from mlflow.environment_variables import MLFLOW_TRACKING_URI
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.utils import _use_tracking_uri

from mlexp.tracking.store import sqlite_path
from mlexp.tracking.tags import quoted

OBJECTIVE = "mlexp.objective"
DIRECTION = "mlexp.direction"
OBJECTIVE_VALUE = "mlexp.objective_value"
# pending while the version's trial settles the alias, then moved (it took the alias) or kept
DECISION = "mlexp.alias_decision"
# rounds of move-and-re-read on a server before giving up (each round follows a concurrent change)
MAX_ROUNDS = 20


@dataclass(frozen=True, order=True)
class Standing:
    version: int
    value: float


def objective_value(version: ModelVersion, metric: str) -> float:
    """The objective recorded on a version; NaN when it was ranked by another metric or none."""
    tags = version.tags or {}
    if tags.get(OBJECTIVE, metric) != metric:
        return math.nan
    try:
        return float(tags.get(OBJECTIVE_VALUE, tags.get(metric, "nan")))
    except ValueError:
        return math.nan


def better(value: float, incumbent: float, direction: str) -> bool:
    if math.isnan(value):
        return False
    if math.isnan(incumbent):
        return True
    return value < incumbent if direction == "minimize" else value > incumbent


def best(holder: Standing | None, rivals: list[Standing], direction: str) -> Standing | None:
    """The holder unless a rival beats it; among equal rivals the earliest version."""
    winner = holder
    for rival in sorted(rivals, key=lambda s: s.version):
        if winner is None or better(rival.value, winner.value, direction):
            winner = rival
    return winner


@contextmanager
def _global_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's global tracking URI set to `uri` for a moment, and $MLFLOW_TRACKING_URI left as it was.

    MLflow's SQL registry looks a `models:/<model id>` source up through the global URI, whatever
    the client's; MLflow's own restore would unset the variable the next trial of a sweep reads.
    """
    variable = os.environ.get(MLFLOW_TRACKING_URI.name)
    try:
        with _use_tracking_uri(uri):
            yield
    finally:
        if variable is not None:
            os.environ[MLFLOW_TRACKING_URI.name] = variable


def _versions(standings: Iterable[Standing | None]) -> list[int]:
    # by version only: a NaN objective never equals itself
    return [s.version for s in standings if s is not None]


def lock_for(tracking_uri: str) -> FileLock | None:
    """The lock beside a local SQLite store; None for servers (see the module's docstring)."""
    db = sqlite_path(tracking_uri)
    return FileLock(str(db) + ".registry.lock", timeout=600) if db is not None else None


class Alias:
    """One alias of one registered model in one store, moved only to a better objective."""

    def __init__(
        self, client: MlflowClient, tracking_uri: str, model_name: str, alias: str, metric: str, direction: str
    ) -> None:
        self.client, self.tracking_uri = client, tracking_uri
        self.model_name, self.alias = model_name, alias
        self.metric, self.direction = metric, direction
        # made before anything is registered: a name no filter can hold fails here, not with a version left pending
        self._pending_filter = f"name = {quoted(model_name)} and tags.`{DECISION}` = 'pending'"

    def register(
        self, source: str, run_id: str, tags: dict[str, str], model_id: str
    ) -> tuple[ModelVersion, Standing | None]:
        """Create a version of the model from `source` and settle the alias; returns it and the alias holder after."""
        lock = lock_for(self.tracking_uri)
        with lock if lock is not None else nullcontext(), _global_tracking_uri(self.tracking_uri):
            self._ensure_registered_model()
            version = self.client.create_model_version(
                self.model_name, source, run_id=run_id, tags={**tags, DECISION: "pending"}, model_id=model_id
            )
            return version, self.settle(int(version.version), locked=lock is not None)

    def _ensure_registered_model(self) -> None:
        try:
            self.client.create_registered_model(
                self.model_name, description="models registered by mlexp deploy=registry"
            )
        except MlflowException as error:
            if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise

    def holder(self) -> Standing | None:
        try:
            version = self.client.get_model_version_by_alias(self.model_name, self.alias)
        except MlflowException:
            return None
        return Standing(int(version.version), objective_value(version, self.metric))

    def pending(self) -> list[Standing]:
        """Versions still settling; one whose trial died before it settled (FAILED, KILLED) never competes."""
        versions = self.client.search_model_versions(self._pending_filter)
        return sorted(
            Standing(int(v.version), objective_value(v, self.metric)) for v in versions if not self._abandoned(v)
        )

    def _abandoned(self, version: ModelVersion) -> bool:
        if not version.run_id:
            return False
        try:
            return self.client.get_run(version.run_id).info.status in ("FAILED", "KILLED")
        except MlflowException:
            return True  # its run was deleted

    def settle(self, ours: int, locked: bool) -> Standing | None:
        """Move the alias to the best of its holder and the pending versions; returns the holder after.

        `locked`: the store's registry lock is held, so nobody else moves the alias meanwhile.
        """
        for _ in range(MAX_ROUNDS):
            holder, rivals = self.holder(), self.pending()
            winner = best(holder, rivals, self.direction)
            if winner is not None and _versions([winner]) != _versions([holder]):
                self.client.set_registered_model_alias(self.model_name, self.alias, str(winner.version))
            if locked or (
                _versions([self.holder()]) == _versions([winner]) and _versions(self.pending()) == _versions(rivals)
            ):
                break
        holder = self.holder()
        moved = holder is not None and holder.version == ours
        self.client.set_model_version_tag(self.model_name, str(ours), DECISION, "moved" if moved else "kept")
        return holder
