"""`mlexp compare`: the trials of a task, an experiment or a sweep side by side, best first, and their charts."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from mlexp import tasks
from mlexp.errors import MlexpError, did_you_mean
from mlexp.paths import experiment_folder, project_root

USAGE = {
    "compare": (
        "mlexp compare task=<task> | experiment=<name> | sweep=<sweep name or id> "
        "[tracking=server | tracking.uri=<uri>]"
    ),
}


def run_compare(argv: list[str]) -> int:
    """The trials of a task, an experiment or a sweep side by side, best first, with charts of their metrics."""
    from mlexp import compare, next_steps
    from mlexp.experiment_analytics.trials import ExperimentAnalytics
    from mlexp.tracking import tags
    from mlexp.tracking.store import bound_store_retries

    args = _key_values(argv, {"task", "experiment", "sweep", "tracking", "tracking.uri"}, "compare")
    if not {"task", "experiment", "sweep"} & set(args):
        raise MlexpError(f"name a task, an experiment or a sweep; usage: {USAGE['compare']}")
    uri = args.get("tracking.uri") or _tracking_choice(args.get("tracking"))
    if "task" in args and args["task"] not in tasks.load_all():
        known = sorted(tasks.load_all())
        raise MlexpError(
            f"task={args['task']!r} is not a task; {did_you_mean(args['task'], known)}choose one of: {', '.join(known)}"
        )
    bound_store_retries()  # a server that is down: one line in seconds, not MLflow's minutes of retries
    trials = ExperimentAnalytics(
        args.get("experiment"), task=args.get("task"), sweep=args.get("sweep"), tracking_uri=uri
    )
    table = trials.dataframe()
    if table.empty and trials.sweep:
        raise MlexpError(
            f"sweep {args['sweep']} recorded no trials: it stopped before its first one (its record in experiment "
            f"{trials.experiment}{tags.SWEEPS_SUFFIX} says why: status and tags)"
        )
    if table.empty:
        raise MlexpError(
            f"no trials in experiment {trials.experiment!r} of {trials.store.uri}; run `mlexp task=...` first"
        )
    # the experiment's own trials say which task they ran: its headline metrics head the table
    headline = list(_task_config(trials.task).task.headline_metrics)
    metric, direction = table.attrs["objective"], table.attrs["direction"]
    scope = (
        f"sweep {args['sweep']} in experiment {trials.experiment}"
        if trials.sweep
        else f"experiment {trials.experiment}"
    )
    if direction == "report":  # the task reports its objective (percent_flagged): no trial is better than another
        order = f"by {metric}, lowest first (a reported figure, not optimised: no trial is best)"
    else:
        order = f"best first by {metric} ({direction})"
    print(f"{scope}: {len(table)} trial{'s' if len(table) != 1 else ''}, {order}")
    if len(trials.objectives) > 1:
        each = ", ".join(f"{name} ({count})" for name, count in trials.objectives.most_common())
        tied = list(trials.objectives.values()).count(trials.objectives[metric]) > 1
        ranking = "the newest trial's" if tied else "the most common"
        print(
            f"  its trials ran with {len(trials.objectives)} objectives: {each}; ranked by {ranking}, the others are "
            "at the end unless they logged it too (compare one sweep with sweep=<name>)"
        )
    print()
    # the other objectives' trials are at the end, unranked: their own objective shows beside the ranking one
    headline = [*(name for name in trials.objectives if name != metric), *headline]
    print(compare.format_table(table, headline))
    # one folder inside outputs/compare/ whatever the experiment's name holds (`team/abalone`, `..`)
    out_dir = project_root() / "outputs" / "compare" / experiment_folder(trials.experiment)
    if trials.sweep:  # a folder of its own: the experiment's charts and another sweep's stay
        out_dir /= experiment_folder(trials.sweep.name)
    written = compare.write_charts(table, trials.metric_history(), out_dir)
    if written:
        print(f"\ncharts: {', '.join(str(p) for p in written)}")
    next_steps.print_ui_link(
        trials.store.uri,
        trials.experiment_id,
        metric,
        direction,
        table.attrs["sweep_id"],
        sweep_name=trials.sweep.name if trials.sweep else None,  # its name, also when named by its id
        headline_metrics=headline,
        params=table.attrs["params"],
        choices=table.attrs.get("choices", []),
    )
    return 0


def _key_values(argv: list[str], allowed: set[str], command: str) -> dict[str, str]:
    values = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in allowed:
            raise MlexpError(f"unexpected argument {arg!r}; usage: {USAGE[command]}")
        if not value:
            raise MlexpError(f"{key}= names nothing; give it a value; usage: {USAGE[command]}")
        values[key] = value
    return values


def _task_config(task: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(project_root() / "conf"), version_base="1.3"):
        return compose("config", overrides=[f"task={task}"])


def _tracking_choice(choice: str | None) -> str | None:
    """The store of `tracking=<option>` as a trial run with it records to: the server's for `server`."""
    if choice in (None, "mlflow"):
        return None  # the default store: $MLFLOW_TRACKING_URI, else the project's
    if choice == "server":
        from mlexp.config import tracking_server

        return tracking_server()  # $MLEXP_TRACKING_SERVER; unset, the one line that says so
    raise MlexpError(f"tracking={choice!r} is not a tracking option; choose mlflow or server")
