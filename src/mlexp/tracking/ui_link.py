"""Links that open MLflow's UI on an experiment's runs table: trials only, best first, headline columns shown.

What MLflow 3.17's UI reads (checked in its bundled JavaScript and in a real browser):
- `workflowType=machine_learning` in the query: without it the UI takes the GenAI/Model-training switch from the
  browser's local storage (GenAI by default) and opens an experiment on the GenAI traces overview; the experiment
  tag `mlflow.experimentKind` no longer decides it.
- the runs page's URL state: `searchFilter` (MLflow search syntax), `orderByKey` (e.g. ``metrics.`test_msle` ``),
  `orderByAsc` (`true`/`false`), `startTime`, `lifecycleFilter`, `modelVersionFilter`, `datasetsFilter`.
- columns and "Group by" are never read from the URL; only a saved view carries them: an experiment tag
  `mlflow.sharedViewState.<id>` holding `{name, createdAt, updatedAt, state}`, opened by `?viewStateShareKey=<id>`
  and listed in the page's "Views" menu. The UI ignores the view when the URL also holds any search key above.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import shlex
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlencode, urlparse

from mlexp.errors import MlexpError
from mlexp.tracking import tags

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# sets an experiment tag (experiment id, key, value): the tracking writer process does it off the critical path
TagWriter = Callable[[str, str, str], None]

# where `mlflow ui` listens when started without options
LOCAL_UI = "http://127.0.0.1:5000"
SAVED_VIEW_TAG = "mlflow.sharedViewState."
# MLflow's limit on an experiment tag value; longer views are stored deflated, as the UI itself does
_TAG_VALUE_LIMIT = 20_000
_MODEL_TRAINING = {"workflowType": "machine_learning"}
_TRIALS_VIEW = ("mlexp-trials", "mlexp trials")
# the runs table's own column ids for the run name and its "Created" column
_RUN_NAME, _CREATED = "attributes.`Run Name`", "runDateAndNestInfo"
_NAME_WIDTH, _CREATED_WIDTH, _METRIC_WIDTH, _PARAM_WIDTH = 300, 130, 160, 140
_DEFLATED = "deflate;"
# a view's columns in the order RunsView gives them; a replaced view's params and tags are kept: how trials differ
_KINDS = ("metrics", "params", "tags")
_KEPT_KINDS = ("params.", "tags.")
# `mlexp compare` leaves out a run of `stage=deploy` alone, which served a model an earlier trial made
# (experiment_analytics.trials.deployment_only); a view of trials does too
_SERVING_ONLY_APART = f" and tags.`{tags.STAGE}` != '{tags.SERVING_ONLY_STAGE}'"


class NoUiAddress(MlexpError):
    """The tracking store has no UI address mlexp can link to."""


class UiLocation(NamedTuple):
    """Where the MLflow UI of a tracking store is served, and the command that serves it when nothing does yet."""

    base_url: str
    start_command: str | None


class UiLink(NamedTuple):
    """A link into the MLflow UI, and the command that serves the UI when nothing does yet."""

    url: str
    start_command: str | None


@dataclass(frozen=True)
class RunsView:
    """What the experiment's runs table shows: which runs, in which order, which columns, grouped by what."""

    search_filter: str
    order_by_metric: str | None = None
    ascending: bool = True
    metric_columns: Sequence[str] = ()
    param_columns: Sequence[str] = ()
    tag_columns: Sequence[str] = ()
    group_by_tag: str | None = None

    def search_state(self) -> dict[str, Any]:
        """The runs page's search keys, as its URL and its saved views spell them."""
        state: dict[str, Any] = {"searchFilter": self.search_filter}
        if self.order_by_metric:
            state["orderByKey"] = _column("metrics", self.order_by_metric)
            state["orderByAsc"] = self.ascending
        return state

    def table_state(self) -> dict[str, Any]:
        """Columns and grouping: only a saved view carries them."""
        columns = [_column("metrics", m) for m in _unique(self.order_by_metric or "", *self.metric_columns)]
        columns += [_column("params", p) for p in _unique(*self.param_columns)]
        columns += [_column("tags", t) for t in _unique(*self.tag_columns)]
        group_by = None
        if self.group_by_tag:
            group_by = {"aggregateFunction": "min", "groupByKeys": [{"mode": "tag", "groupByData": self.group_by_tag}]}
        return _table_state(columns, group_by)


def trials_filter(sweep_id: str | None = None) -> str:
    """Search filter for trials (of one sweep) as `mlexp compare` lists them: their component runs carry the same
    metrics and stay out, and so do runs that only served a model. Saved in a view, `every_trial_listed` decides."""
    query = f"tags.`{tags.KIND}` = 'trial'"
    if sweep_id is not None:
        if "'" in sweep_id:
            raise ValueError(f"sweep id {sweep_id!r} cannot be quoted in an MLflow search filter")
        query += f" and tags.`{tags.SWEEP_ID}` = '{sweep_id}'"
    return query + _SERVING_ONLY_APART


def every_trial_listed(client: MlflowClient, experiment_id: str, search_filter: str) -> str:
    """`search_filter` without its clause that leaves out serving-only runs when a trial it would list has no stage
    tag (a SageMaker tuning job's): MLflow's `!=` leaves out a run without the tag too, and its filters have no OR.
    Asked when a view is saved: the view then lists serving-only runs too, rather than hide a trial. A store that
    cannot tell gets the filter without the clause as well."""
    from mlflow.exceptions import MlflowException

    if not search_filter.endswith(_SERVING_ONLY_APART):
        return search_filter
    trials = search_filter.removesuffix(_SERVING_ONLY_APART)
    try:
        untagged = client.search_runs([experiment_id], f"{trials} and tags.`{tags.STAGE}` IS NULL", max_results=1)
    except MlflowException:  # an older server without IS NULL on tags, say
        return trials
    return trials if untagged else search_filter


def ui_base_url(tracking_uri: str) -> UiLocation:
    """The UI of `tracking_uri`: a server is its own UI; a local store needs `mlflow ui` started on it."""
    scheme = urlparse(tracking_uri).scheme
    if scheme in ("http", "https"):
        return UiLocation(tracking_uri.rstrip("/"), None)
    if scheme in ("", "file", "sqlite", "postgresql", "mysql", "mssql"):
        return UiLocation(LOCAL_UI, f"mlflow ui --backend-store-uri {shlex.quote(tracking_uri)}")
    raise NoUiAddress(
        f"tracking store {tracking_uri} has no UI address mlexp can link to; open its MLflow UI from its own console"
    )


def runs_view_url(
    base_url: str, experiment_id: str, *, search_filter: str, order_by_metric: str | None = None, ascending: bool = True
) -> str:
    """Link to the experiment's runs table filtered and sorted by the URL alone (no columns: see save_runs_view)."""
    state = RunsView(search_filter, order_by_metric, ascending).search_state()
    query = {**_MODEL_TRAINING, **{k: _url_value(v) for k, v in state.items()}}
    return f"{_runs_page(base_url, experiment_id)}?{urlencode(query)}"


def save_runs_view(client: MlflowClient, experiment_id: str, view: RunsView, *, view_id: str, name: str) -> None:
    """Save `view` as the experiment's named view `name` (the runs page's "Views" menu); saving again replaces it,
    keeping the param and tag columns the view had (`with_saved_columns`)."""
    key, value = view_tag(view, view_id=view_id, name=name)
    set_view_tag(client, experiment_id, key, value)


def set_view_tag(client: MlflowClient, experiment_id: str, key: str, value: str) -> None:
    """Set the experiment tag `key` of a saved view to `value` with the columns of the view it replaces kept.

    Read, merged and set under a lock beside a local SQLite store: trials and comparisons of other processes (their
    own writers, `mlexp compare`) save the same view. A tracking server has no such lock: two saves at the same
    moment may keep one's columns only, until the next save adds them again."""
    from filelock import FileLock

    from mlexp.tracking.store import sqlite_path

    value = _listing_every_trial(client, experiment_id, value)
    db = sqlite_path(client.tracking_uri)
    with FileLock(f"{db}.views.lock") if db is not None else contextlib.nullcontext():
        saved = client.get_experiment(experiment_id).tags.get(key)
        client.set_experiment_tag(experiment_id, key, with_saved_columns(value, saved))


def _listing_every_trial(client: MlflowClient, experiment_id: str, value: str) -> str:
    """The saved view `value` with its search filter as `every_trial_listed` decides it."""
    envelope = json.loads(value)
    state = json.loads(_state_text(envelope["state"]))
    search_filter = state.get("searchFilter", "")
    listed = every_trial_listed(client, experiment_id, search_filter)
    return value if listed == search_filter else _envelope(envelope["name"], {**state, "searchFilter": listed})


def view_tag(view: RunsView, *, view_id: str, name: str) -> tuple[str, str]:
    """The experiment tag (key, value) that saves `view` as the named view `name`."""
    return SAVED_VIEW_TAG + view_id, _envelope(name, {**view.search_state(), **view.table_state()})


def with_saved_columns(value: str, saved: str | None) -> str:
    """The saved view `value` with the param and tag columns of `saved`, the view it replaces, shown first.

    One view shows every trial of the experiment: a single trial saves it with the params its command line set, a
    comparison with the params that vary; replacing the view must not drop the columns the other one showed.
    """
    envelope = json.loads(value)
    state = json.loads(_state_text(envelope["state"]))
    columns = state["selectedColumns"]
    kept = [c for c in _saved_columns(saved) if c.startswith(_KEPT_KINDS)]
    shown = sorted(dict.fromkeys([*kept, *columns]), key=_column_kind)
    return _envelope(envelope["name"], state | _table_state(shown, state.get("groupBy")))


def _saved_columns(saved: str | None) -> list[str]:
    try:
        state = json.loads(_state_text(json.loads(saved or "{}").get("state", "{}")))
        return [c for c in state.get("selectedColumns", []) if isinstance(c, str)]
    except (ValueError, AttributeError):  # not a view as mlexp or the UI saves it: replaced whole
        return []


def _table_state(columns: list[str], group_by: dict[str, Any] | None) -> dict[str, Any]:
    # wide enough for a sweep's trial names and for metrics as the UI prints them (every digit of a float)
    # (the UI applies widths to the columns of columnOrder only)
    widths = {_RUN_NAME: _NAME_WIDTH, _CREATED: _CREATED_WIDTH}
    widths |= {c: _METRIC_WIDTH if c.startswith("metrics.") else _PARAM_WIDTH for c in columns}
    order = [_RUN_NAME, _CREATED, *columns]
    return {"selectedColumns": columns, "columnOrder": order, "columnWidths": widths, "groupBy": group_by}


def _envelope(name: str, state: dict[str, Any]) -> str:
    now = int(time.time() * 1000)
    text = json.dumps(state)
    envelope = json.dumps({"name": name, "createdAt": now, "updatedAt": now, "state": text})
    if len(envelope) > _TAG_VALUE_LIMIT:
        deflated = _DEFLATED + base64.b64encode(zlib.compress(text.encode())).decode()
        envelope = json.dumps({"name": name, "createdAt": now, "updatedAt": now, "state": deflated})
    return envelope


def _state_text(state: str) -> str:
    if not state.startswith(_DEFLATED):
        return state
    try:
        return zlib.decompress(base64.b64decode(state.removeprefix(_DEFLATED))).decode()
    except (zlib.error, binascii.Error) as error:
        raise ValueError(f"a deflated view state that does not inflate: {error}") from error


def _column_kind(column: str) -> int:
    kind = column.partition(".")[0]
    return _KINDS.index(kind) if kind in _KINDS else len(_KINDS)


def saved_view_url(base_url: str, experiment_id: str, view_id: str) -> str:
    """Link that opens the experiment's runs table on the view saved as `view_id`."""
    query = urlencode({"viewStateShareKey": view_id, **_MODEL_TRAINING})
    return f"{_runs_page(base_url, experiment_id)}?{query}"


def publish_runs_view(
    client: MlflowClient, base_url: str, experiment_id: str, view: RunsView, *, view_id: str, name: str
) -> str:
    """Save `view` in the experiment and return the link that opens it."""
    save_runs_view(client, experiment_id, view, view_id=view_id, name=name)
    return saved_view_url(base_url, experiment_id, view_id)


def publish_comparison(
    tracking_uri: str,
    experiment_id: str,
    *,
    objective: str,
    direction: str,
    sweep_id: str | None = None,
    sweep_name: str | None = None,
    metric_columns: Sequence[str] = (),
    param_columns: Sequence[str] = (),
    choice_columns: Sequence[str] = (),
    tag_writer: TagWriter | None = None,
) -> UiLink:
    """Save the trials comparison (of one sweep) as a view of the experiment; returns the link and how to start the UI.

    The view lists trials only, best first by `objective`, with the objective, `metric_columns`, `param_columns` and
    the choice of each config group of `choice_columns` shown; the experiment-wide view also shows each trial's
    sweep. It appears in the UI's "Views" menu as "mlexp sweep <name>" or "mlexp trials". Saving it again keeps the
    param and tag columns it had: each trial adds the params it set.
    """
    base_url, start_command = ui_base_url(tracking_uri)
    choices = [tags.CHOICE_PREFIX + group for group in choice_columns]
    view = RunsView(
        trials_filter(sweep_id),
        objective,
        ascending=direction != "maximize",
        metric_columns=metric_columns,
        param_columns=param_columns,
        tag_columns=choices if sweep_id else [*choices, tags.SWEEP_NAME],
    )
    view_id, name = (f"mlexp-sweep-{sweep_id}", f"mlexp sweep {sweep_name or sweep_id}") if sweep_id else _TRIALS_VIEW
    if tag_writer is not None:
        tag_writer(experiment_id, *view_tag(view, view_id=view_id, name=name))
        return UiLink(saved_view_url(base_url, experiment_id, view_id), start_command)
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    try:
        url = publish_runs_view(client, base_url, experiment_id, view, view_id=view_id, name=name)
    except MlflowException:
        # a store that refuses the experiment tag (read-only user) still gets filter and sort, without columns
        url = runs_view_url(
            base_url,
            experiment_id,
            search_filter=every_trial_listed(client, experiment_id, view.search_filter),
            order_by_metric=objective,
            ascending=view.ascending,
        )
    return UiLink(url, start_command)


def _runs_page(base_url: str, experiment_id: str) -> str:
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs"


def _url_value(value: Any) -> str:
    # the UI parses orderByAsc with === "true"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _column(kind: str, key: str) -> str:
    # the UI's canonical column key: kind.`key`, as in its search syntax
    return f"{kind}.`{key}`"


def _unique(*keys: str) -> list[str]:
    return [k for k in dict.fromkeys(keys) if k]
