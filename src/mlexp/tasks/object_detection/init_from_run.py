"""model.init_from=runs:/<run id>/<path>: the run of the tracking store that holds the weights (the run itself, or a
trial's Training component: its own or one it reused, mlexp.serving.trained_components), found before the trial
opens: a typo must not cost the prepare stage's minutes.

What the check before a trial finds is kept until that trial's train stage takes it (no second lookup), and no
longer: a later trial in the process (a sweep's, or `mlexp.run` again) may meet weights logged or trials re-run since.
A store that cannot tell before the trial (a server that does not answer, or answers 5xx) is asked again by the train
stage, which reports it then. Imports no MXNet: the check runs with the config's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlexp.console import logger_quiet
from mlexp.errors import ConfigError, DataError


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


# (store, runs:/ URI) -> what the check before a trial found, until that trial's train stage takes it
_FOUND: dict[tuple[str, str], Weights] = {}
# a refusal the rule's `holds` found, until its `fix` (asked next, with the same values) says it
_UNSAID: dict[tuple[Any, ...], str] = {}
TAKES_AN_ID = "runs:/ takes a run id (the MLflow UI's Run ID)"
# the stages whose run checks it: prepare's too, which comes before the train stage that reads it
READ_BY = (None, "prepare", "train")
# the statuses of a server that answered but will not let this account read the run
_REFUSED = (401, 403)
# stores that did not answer a check, and when: a check soon after (a sweep's other values, each job's) does not wait
# for them again; the train stage asks them anyway
_UNANSWERED: dict[str, float] = {}
UNANSWERED_S = 60.0


def locate(uri: str, client: Any) -> Weights:
    """The train stage's weights: what the check before the trial found, else the store's answer now; NoWeights
    naming the fix when no run holds them, a DataError in one line when the store did not answer."""
    from mlflow.exceptions import MlflowException

    from mlexp.tracking.store import store_failure

    found = _FOUND.pop((str(client.tracking_uri), uri), None)
    if found is not None:
        return found
    try:
        return _lookup(uri, client)
    except MlflowException as error:
        raise DataError(f"model.init_from={uri}: {store_failure(error, str(client.tracking_uri))}") from None


def _lookup(uri: str, client: Any) -> Weights:
    from mlflow.exceptions import MlflowException

    from mlexp.serving.trained_components import NO_SUCH_RUN, training_component_ids

    run_id, _, path = uri.removeprefix("runs:/").partition("/")
    if not run_id or not path:
        raise NoWeights(uri, "not runs:/<run_id>/<artifact path>; give e.g. runs:/<run id>/model/model.params")
    try:
        run = client.get_run(run_id)
    except MlflowException as missing:
        if missing.error_code not in NO_SUCH_RUN:  # no answer, or a refusal: no verdict on the id
            raise
        first = next(iter(str(missing).splitlines()), "")
        raise NoWeights(uri, f"{_no_run(client, run_id, path)} ({first})") from None
    folder, name = path.rpartition("/")[0], path.rpartition("/")[2]
    about = f"{path.rsplit('.', 1)[0]}.json"
    for candidate in [run_id, *training_component_ids(client, run)]:
        listed = {a.path for a in client.list_artifacts(candidate, folder or None)}
        if path in listed:
            return Weights(candidate, path, about if about in listed else None)
    raise NoWeights(uri, f"run {run_id} (nor its train component) has no artifact {name} there")


def _no_run(client: Any, run_id: str, path: str) -> str:
    """No run of that id: a trial's name (what `mlexp compare` lists) is told the run id of its trial that holds the
    weights, whatever its status (one that failed after its train stage does), else of its trial that trained (the
    path is then the typo, which the check of that id names); never the id of a trial that did not train. A trial that
    trained but whose weights were deleted since is told so, with the commands that restore them."""
    from mlexp.serving.trial_names import finished_trials, not_finished

    _, named = finished_trials(client, run_id)
    offered = [run for run in named if _holds(client, run.info.run_id, path)] or [
        run for run in named if _trained(client, run)
    ]
    ids = [run.info.run_id for run in offered]
    if len(ids) == 1:
        return f"{run_id} is a trial's name, runs:/ takes its run id: model.init_from=runs:/{ids[0]}/{path}"
    if ids:  # two projects' trials on one server may share a name
        return f"{run_id} names {len(ids)} trials: model.init_from=runs:/<run id>/{path} with one of {', '.join(ids)}"
    if len(named) > 1:
        return f"{run_id} names {len(named)} trials, none of which trained: give the run id of a trial that trained"
    if named and (lost := _weights_lost(client, named[0], path)) is not None:
        return f"{run_id} is a trial's name and it trained, but {lost}"
    if named:  # failed or stopped before its train stage
        how = "" if named[0].info.status == "FINISHED" else f"{not_finished(named[0])} and "
        return f"{run_id} is a trial's name, but it {how}never trained: give the run id of a trial that trained"
    return f"no run {run_id} in the tracking store; {TAKES_AN_ID}"


def _weights_lost(client: Any, trial: Any, path: str) -> str | None:
    """Why a trial that trained holds no weights now: its Training component (its own, or the one it reused) was
    deleted since, and restoring it brings them back, or the one it reused is gone from the store; None when it never
    trained, or the store cannot tell."""
    from mlflow.exceptions import MlflowException

    from mlexp.serving.trained_components import reused_training_id
    from mlexp.serving.trial_names import restore_commands, runs_to_restore

    try:
        deleted = runs_to_restore(client, trial)
    except MlflowException:  # only a better line: the caller's is still true
        return None
    if deleted:
        what, it = (
            ("its Training component was", "it") if len(deleted) == 1 else ("its Training components were", "them")
        )
        return (
            f"{what} deleted since, and its weights with {it}: restore {it} ({restore_commands(client, deleted)}), "
            f"then give model.init_from=runs:/{trial.info.run_id}/{path}"
        )
    reused = reused_training_id(trial)
    if reused:  # deleted for good (`mlflow gc`), or a tag edited by hand
        return (
            f"its weights are gone: the Training component it reused, run {reused}, is no longer in the tracking "
            "store; give the run id of a trial that trained"
        )
    return None


def _holds(client: Any, run_id: str, path: str) -> bool:
    """Whether the run (or its train component) holds `path`: what the check of runs:/<run_id>/<path> finds; False
    when that cannot be told (an artifact store that cannot be listed), and `_trained` decides."""
    try:
        _lookup(f"runs:/{run_id}/{path}", client)
    except Exception:
        return False
    return True


def _trained(client: Any, trial: Any) -> bool:
    """Whether the trial has a train component, its own or one it reused (its weights may be at another path than
    the one given); False when the store cannot tell."""
    from mlexp.serving.trained_components import training_component_ids

    try:
        return bool(training_component_ids(client, trial))
    except Exception:
        return False


def problem(init_from: Any, tracking_uri: str | None, root: str, target: str, stage: str | None) -> str | None:
    """Why model.init_from names no weights in the trial's store, found before the trial; None when it does, when
    it is no runs:/ URI or not read here, or when the store cannot tell now (the train stage asks it again)."""
    asked = (init_from, tracking_uri, root, target, stage)
    if asked in _UNSAID:
        return _UNSAID.pop(asked)
    reason = _asked_now(*asked)
    if reason is not None:
        _UNSAID[asked] = reason
    return reason


def _asked_now(init_from: Any, tracking_uri: str | None, root: str, target: str, stage: str | None) -> str | None:
    if not str(init_from or "").startswith("runs:/") or target == "sagemaker" or stage not in READ_BY:
        return None
    from mlflow.exceptions import MlflowException

    from mlexp.tracking.store import (
        QUICK_CHECK,
        TrackingStore,
        has_schema,
        retries_bounded_here,
        sqlite_path,
        store_failure,
        unreachable,
    )

    store = TrackingStore.resolve(tracking_uri, Path(root))
    db = sqlite_path(store.uri)
    if db is not None and not has_schema(db):  # not created to ask it: a store not made yet holds no run
        run_id = str(init_from).removeprefix("runs:/").partition("/")[0]
        return f"no run {run_id} in the tracking store (it holds no runs yet); {TAKES_AN_ID}"
    if time.monotonic() - _UNANSWERED.get(store.uri, -UNANSWERED_S) < UNANSWERED_S:
        return None
    try:
        # a server that is down costs seconds here, then fails the trial as it opens; urllib3's `Retrying (...)`
        # lines unsaid: a store that does not answer is the train stage's to report
        with retries_bounded_here(QUICK_CHECK), logger_quiet("urllib3"):
            client = store.client()
            _FOUND[(str(client.tracking_uri), str(init_from))] = _lookup(str(init_from), client)
    except NoWeights as missing:
        return missing.reason
    except MlflowException as error:
        said = store_failure(error, store.uri)
        if unreachable(said):  # no answer (or 5xx to every try): the train stage asks again
            _UNANSWERED[store.uri] = time.monotonic()
            return None
        return said if error.get_http_status_code() in _REFUSED else None
    except Exception:  # a store whose driver is missing: the trial reports it as it opens
        return None
    return None
