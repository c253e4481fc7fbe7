"""model.init_from=runs:/<run id>/<path>: the run of the tracking store that holds the weights (the run itself, or a
trial's Training component), found before the trial opens: a typo must not cost the prepare stage's minutes.

What is found is kept for the process: the train stage downloads from it without a second lookup, and a sweep's
later trials look nothing up. A store that cannot tell before the trial (a server that does not answer) is asked
again by the train stage, which reports it then. Imports no MXNet: the check runs with the config's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlexp.errors import ConfigError


@dataclass(frozen=True)
class Weights:
    """Where runs:/ weights are: the run holding `path`, and the network's description beside them if logged."""

    run_id: str
    path: str
    about: str | None


class NoWeights(ConfigError):
    """runs:/ names no weights in the store; `reason` says why without the key, for the check before the trial."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"model.init_from={uri}: {reason}")
        self.reason = reason


_FOUND: dict[tuple[str, str], Weights] = {}
TAKES_AN_ID = "runs:/ takes a run id (the MLflow UI's Run ID)"
# the stages whose run checks it: prepare's too, which comes before the train stage that reads it
READ_BY = (None, "prepare", "train")


def locate(uri: str, client: Any) -> Weights:
    """The run holding runs:/<run_id>/<path> in the client's store; NoWeights naming the fix when none does."""
    key = (str(client.tracking_uri), uri)
    if key not in _FOUND:
        _FOUND[key] = _lookup(uri, client)
    return _FOUND[key]


def _lookup(uri: str, client: Any) -> Weights:
    from mlexp.tracking import tags

    run_id, _, path = uri.removeprefix("runs:/").partition("/")
    if not run_id or not path:
        raise NoWeights(uri, "not runs:/<run_id>/<artifact path>; give e.g. runs:/<run id>/model/model.params")
    try:
        experiment = client.get_run(run_id).info.experiment_id
    except Exception as missing:  # MlflowException: no such run in this store
        first = next(iter(str(missing).splitlines()), "")
        raise NoWeights(uri, f"{_no_run(client, run_id, path)} ({first})") from None
    children = client.search_runs(
        [experiment], filter_string=f"tags.`{tags.MLFLOW_PARENT_RUN_ID}` = '{run_id}' and tags.`{tags.STAGE}` = 'train'"
    )
    folder, name = path.rpartition("/")[0], path.rpartition("/")[2]
    about = f"{path.rsplit('.', 1)[0]}.json"
    for candidate in [run_id, *(child.info.run_id for child in children)]:
        listed = {a.path for a in client.list_artifacts(candidate, folder or None)}
        if path in listed:
            return Weights(candidate, path, about if about in listed else None)
    raise NoWeights(uri, f"run {run_id} (nor its train component) has no artifact {name} there")


def _no_run(client: Any, run_id: str, path: str) -> str:
    """No run of that id: a trial's name (what `mlexp compare` lists) is told its run id, which runs:/ takes."""
    from mlexp.serving.trial_names import trials_named

    ids = trials_named(client, run_id)
    if len(ids) == 1:
        return f"{run_id} is a trial's name, runs:/ takes its run id: model.init_from=runs:/{ids[0]}/{path}"
    if ids:  # two projects' trials on one server may share a name
        return f"{run_id} names {len(ids)} trials: model.init_from=runs:/<run id>/{path} with one of {', '.join(ids)}"
    return f"no run {run_id} in the tracking store; {TAKES_AN_ID}"


@functools.cache
def problem(init_from: Any, tracking_uri: str | None, root: str, target: str, stage: str | None) -> str | None:
    """Why model.init_from names no weights in the trial's store, found before the trial; None when it does, when
    it is no runs:/ URI or not read here, or when the store cannot tell now (the train stage asks it again)."""
    if not str(init_from or "").startswith("runs:/") or target == "sagemaker" or stage not in READ_BY:
        return None
    from mlexp.tracking.store import QUICK_CHECK, TrackingStore, has_schema, retries_bounded_here, sqlite_path

    store = TrackingStore.resolve(tracking_uri, Path(root))
    db = sqlite_path(store.uri)
    if db is not None and not has_schema(db):  # not created to ask it: a store not made yet holds no run
        run_id = str(init_from).removeprefix("runs:/").partition("/")[0]
        return f"no run {run_id} in the tracking store (it holds no runs yet); {TAKES_AN_ID}"
    try:
        with retries_bounded_here(QUICK_CHECK):  # a server that is down costs seconds here, then fails the trial
            locate(str(init_from), store.client())
    except NoWeights as missing:
        return missing.reason
    except Exception:  # a store that did not answer, or whose driver is missing: the trial reports it as it opens
        return None
    return None
