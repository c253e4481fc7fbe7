"""Which registry version an alias names now, and loading exactly that version: the inputs of ModelSlot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlexp.errors import DataError
from mlexp.serving.registered_name import NOT_REGISTERED, registered_name

Load = Callable[[], tuple[Any, str]]
Probe = Callable[[], str]


def champion_probe(model_name: str, alias: str = "champion", tracking_uri: str | None = None) -> Probe:
    """A probe returning the version number (as text) the alias names in the registry."""
    # imported here: `mlexp keys` should not wait 2 s for MLflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from mlexp.database_driver import driver_checked
    from mlexp.tracking.store import retries_bounded_here

    with driver_checked():  # MLflow opens a database store here
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def probe() -> str:
        # a registry that is down: the trial fails (or a reload is skipped) in seconds, not minutes; the line about
        # it is worded inside, where it reads the bound it failed under
        with retries_bounded_here(), driver_checked():  # ...and its registry store at the first lookup
            try:
                return str(client.get_model_version_by_alias(model_name, alias).version)
            except MlflowException as error:
                if error.error_code not in NOT_REGISTERED:  # a tracking server that did not answer: no verdict
                    from mlexp.tracking.store import store_failure

                    raise DataError(store_failure(error, client.tracking_uri)) from None
                raise DataError(
                    f"registered model {model_name!r} has no alias {alias!r} ({error.message.splitlines()[0]}); "
                    "register one with deploy=registry first"
                ) from None

    return probe


def champion_loader(
    model_name: str,
    alias: str = "champion",
    tracking_uri: str | None = None,
    load_model: Callable[[str], Any] | None = None,
) -> Load:
    """A ModelSlot `load`: reads the alias's version, loads `models:/<name>/<version>` (pyfunc by default).

    Loading the version read, not `@alias`, keeps the label true if the alias moves during the load.
    """
    probe = champion_probe(model_name, alias, tracking_uri)

    def load() -> tuple[Any, str]:
        import mlflow.pyfunc
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        version = probe()
        uri = f"models:/{model_name}/{version}"
        load_version = load_model or mlflow.pyfunc.load_model
        if tracking_uri is None:
            return load_version(uri), version
        # a task's own loader too: `models:/` resolves in the process's default store otherwise (cwd's mlflow.db)
        with _use_tracking_uri(tracking_uri):
            return load_version(uri), version

    return load


def champion_from_config(cfg: Any, load_model: Callable[[str], Any] | None = None) -> tuple[Load, Probe]:
    """(load, probe) for the task's registered model (deploy.model_name or the task name) at deploy.alias,
    in the trial's tracking store (tracking.uri, else $MLFLOW_TRACKING_URI, else the project's mlflow.db)."""
    from mlexp.tracking.store import TrackingStore

    uri = TrackingStore.resolve(cfg.tracking.uri, Path(cfg.paths.root)).uri
    name, alias = registered_name(cfg)
    return champion_loader(name, alias, uri, load_model), champion_probe(name, alias, uri)
