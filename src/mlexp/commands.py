"""`mlexp compare`, `params`, `keys`, `review`, ...: commands that read config or a store, not run trials."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from mlexp import tasks
from mlexp.config import params
from mlexp.errors import MlexpError, did_you_mean
from mlexp.paths import command_line_path, project_root

if TYPE_CHECKING:
    from mlexp.tracking.journal_apply import Replayed

USAGE = {
    "compare": (
        "mlexp compare task=<task> | experiment=<name> | sweep=<sweep name or id> "
        "[tracking=server | tracking.uri=<uri>]"
    ),
    "params": "mlexp params [--check]",
    "pipelines": "mlexp pipelines [--check]",
    "data": "mlexp data <dataset> <output file>",
    "summary": "mlexp summary [<output file>]",
    "relocate": "mlexp relocate",
    "delete": "mlexp delete experiment=<name> | task=<task> [--force] [tracking.uri=<uri>]",
    "sync": "mlexp sync [--discard <store URI or journal folder> [--force]]",
    "keys": "mlexp keys create <name> [--limit N] [--period month|day] | list | revoke <name>",
    "review": "mlexp review [--store PATH|URL] add <name> | remove <name> | list | export | label-studio-export | ...",
    "predict": "mlexp predict <task or endpoint> [--file request.json] [--content-type T] [--accept T] [--region R]",
    "undeploy": "mlexp undeploy <task or endpoint> [--region R]",
}

# the two ways back to a params.yaml that matches conf/, and when each is the one
PARAMS_FIXES = (
    "run `mlexp params` to regenerate it from conf/ (you changed conf/), or `git checkout params.yaml` to drop the "
    "values `dvc exp run -S` left in the workspace (conf/ is as you want it)"
)


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


def run_compare(argv: list[str]) -> int:
    """The trials of a task, an experiment or a sweep side by side, best first, with charts of their metrics."""
    from mlexp import compare, next_steps
    from mlexp.experiment_analytics import ExperimentAnalytics
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
    out_dir = project_root() / "outputs" / "compare" / trials.experiment
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
    )
    return 0


def _tracking_choice(choice: str | None) -> str | None:
    """The store of `tracking=<option>` as a trial run with it records to: the server's for `server`."""
    if choice in (None, "mlflow"):
        return None  # the default store: $MLFLOW_TRACKING_URI, else the project's
    if choice == "server":
        from mlexp.config import tracking_server

        return tracking_server()  # $MLEXP_TRACKING_SERVER; unset, the one line that says so
    raise MlexpError(f"tracking={choice!r} is not a tracking option; choose mlflow or server")


def run_params(argv: list[str]) -> int:
    """Write params.yaml, the parameters the DVC stages read, from conf/ (--check: only say whether it is current)."""
    if any(arg != "--check" for arg in argv):
        raise MlexpError(f"usage: {USAGE['params']}")
    root = project_root()
    sections = params.compile_params(root / "conf", sorted(tasks.load_all()))
    target = root / "params.yaml"
    if "--check" in argv:
        # values, not text: `dvc exp run -S` rewrites the file in its own YAML style
        difference = params.check(target, sections)
        if difference:
            print(f"params.yaml is out of date with conf/: {difference}; {PARAMS_FIXES}", file=sys.stderr)
            return 1
        print("params.yaml is in sync with conf/")
        return 0
    target.write_text(params.render(sections))
    print(f"wrote {target} ({len(sections)} tasks)")
    return 0


def run_pipelines(argv: list[str]) -> int:
    """Write pipelines/<task>/dvc.yaml from the tasks' stage declarations (--check: say whether they are current)."""
    from mlexp import dvc_lock, dvc_stages

    if any(arg != "--check" for arg in argv):
        raise MlexpError(f"usage: {USAGE['pipelines']}")
    root = project_root()
    generated = dvc_stages.writer(root).files()
    if "--check" in argv:
        drifted = dvc_stages.drift(root, generated)
        stale = dvc_lock.stale_entries(root)
        for problem in drifted:
            print(f"{problem}: run `mlexp pipelines`", file=sys.stderr)
        for problem in stale:
            print(f"stale committed lock: {problem}; run `dvc repro` and commit, or untrack the lock", file=sys.stderr)
        if drifted or stale:
            return 1
        print(f"{len(generated)} dvc.yaml files are in sync with the tasks' stage declarations")
        return 0
    for path, text in generated.items():
        target = root / path
        if not target.exists() or target.read_text() != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            print(f"wrote {path}")
    for problem in dvc_stages.drift(root, generated):
        print(f"{problem}: delete it", file=sys.stderr)
    print(f"{len(generated)} dvc.yaml files in sync with the tasks' stage declarations")
    return 0


def run_data(argv: list[str]) -> int:
    """Export a packaged dataset in its published format to <output file> (relative: from the working folder)."""
    from mlexp.data import EXPORTS, export_packaged

    if len(argv) != 2 or argv[0] not in EXPORTS:
        raise MlexpError(f"usage: {USAGE['data']} with a dataset among: {', '.join(sorted(EXPORTS))}")
    out = command_line_path(argv[1])
    rows = export_packaged(argv[0], out)
    print(f"wrote {out} ({rows} rows)")
    return 0


def run_summary(argv: list[str]) -> int:
    """Tabulate each task's DVC metrics in <output file> (relative: from the working folder), else reports/summary.md.

    The metrics are what each task's pipeline last wrote to reports/<task>/metrics.json; the default output is the
    project's reports/summary.md, the root dvc.yaml's summary stage."""
    from mlexp.summary import write_summary

    if len(argv) > 1:
        raise MlexpError(f"usage: {USAGE['summary']}")
    root = project_root()
    out = command_line_path(argv[0]) if argv else root / "reports" / "summary.md"
    print(write_summary(root / "reports", tasks.load_all(), out), end="")
    print(f"wrote {out}", file=sys.stderr)  # stdout is the table alone, for a pipe
    return 0


def run_relocate(argv: list[str]) -> int:
    """Point the project's default SQLite store at this project's artifact folder (after a move or copy)."""
    from mlexp.tracking.relocate import relocate
    from mlexp.tracking.store import DEFAULT_ARTIFACTS, DEFAULT_DB

    if argv:
        raise MlexpError(f"usage: {USAGE['relocate']}")
    root = project_root()
    artifact_root = (root / DEFAULT_ARTIFACTS).resolve().as_uri()
    changed = relocate(root / DEFAULT_DB, artifact_root)
    if not changed:
        print(f"{root / DEFAULT_DB}: artifact locations already point at {artifact_root}")
        return 0
    counts = ", ".join(f"{rows} {table}" for table, rows in changed.items() if rows)
    print(f"{root / DEFAULT_DB}: now points at {artifact_root} ({counts})")
    return 0


def run_delete(argv: list[str]) -> int:
    """Delete an experiment and everything it holds: trials, artifacts, sweeps, registered versions (asks first)."""
    from mlexp.cleanup import run_delete as delete  # MLflow loads only when the command runs

    return delete(argv)


def run_sync(argv: list[str]) -> int:
    """Store the trials journals kept (a killed process, a store that refused), then retry failed SageMaker mirrors.

    A journal holds what a trial's process wrote before it was killed, or what its store did not take; a trial
    tagged mlexp.sagemaker_mirror=failed is mirrored again, whole, from the MLflow store."""
    from mlexp.tracking.journal_apply import replay_orphans
    from mlexp.tracking.store import bound_store_retries

    if argv:
        return _discard_journals(argv)
    bound_store_retries()  # a server that is down: one line per journal in seconds, not MLflow's minutes of retries
    replayed = replay_orphans(project_root())
    for entry in replayed:
        if not entry.error:
            ended = f"; ended KILLED: {', '.join(entry.killed)}" if entry.killed else ""
            print(f"{entry.folder.name}: stored{ended}")
    _say_kept([entry for entry in replayed if entry.error])
    print(f"{sum(not e.error for e in replayed)} trial journal(s) stored, {sum(bool(e.error) for e in replayed)} kept")
    mirrored = _retry_sagemaker_mirrors()
    return 1 if any(e.error for e in replayed) or any(mirrored.values()) else 0


def _say_kept(kept: list[Replayed]) -> None:
    """The kept journals by the store they wait for: why it did not take them, and how to give up on them."""
    import shlex

    from mlexp.tracking.store import unreachable

    stores: dict[str, list[Replayed]] = {}
    for entry in kept:
        stores.setdefault(entry.uri, []).append(entry)
    for uri, entries in stores.items():
        reasons = {entry.error for entry in entries}
        them = "it" if len(entries) == 1 else "them"
        count = f"{len(entries)} trial journal{'s' if len(entries) > 1 else ''} kept"
        if len(reasons) == 1 and unreachable(entries[0].error):
            print(f"{count}: {entries[0].error}")  # the reason names the server
        else:
            why = f" ({entries[0].error})" if len(reasons) == 1 else ""
            print(f"{count} for {uri or 'a store its header does not name'}: the store refused {them}{why}")
        for entry in entries:
            print(f"  {entry.folder}" + (f": {entry.error}" if len(reasons) > 1 else ""))
        target = shlex.quote(uri) if uri else "<journal folder>"
        print(f"  `mlexp sync` stores {them} once the store takes {them}; to drop {them} for good: ", end="")
        print(f"mlexp sync --discard {target}")


def _discard_journals(argv: list[str]) -> int:
    """`mlexp sync --discard <store or journal folder> [--force]`: say what goes, confirm on a terminal, delete."""
    from mlexp.console import confirmed_on_terminal
    from mlexp.tracking.journal_apply import discard, orphaned, replay_orphans, store_of
    from mlexp.tracking.store import bound_store_retries

    force = "--force" in argv
    rest = [arg for arg in argv if arg != "--force"]
    if len(rest) != 2 or rest[0] != "--discard" or not rest[1]:
        raise MlexpError(f"usage: {USAGE['sync']}")
    target, root = rest[1], project_root()
    # what a store takes now is stored, not thrown away: only what it still refuses is discarded
    bound_store_retries()
    stored = [entry for entry in replay_orphans(root) if not entry.error]
    for entry in stored:
        print(f"{entry.folder.name}: stored (its store took it; not discarded)")
    kept = {journal.folder: store_of(journal) for journal in orphaned(root)}  # "": a header that cannot be read
    chosen = {folder: uri for folder, uri in kept.items() if _matches(target, folder, uri)}
    if not chosen and stored:
        print("0 trial journal(s) discarded: the store took what was kept")
        return 0
    if not chosen:
        stores = sorted({uri for uri in kept.values() if uri})
        known = f"kept journals wait for: {', '.join(stores)}" if stores else "no journal is kept"
        raise MlexpError(f"no kept trial journal is for {target!r}; {known} (`mlexp sync` lists them)")
    if not force:
        print(f"would discard {len(chosen)} trial journal(s) and the records in them:")
        for folder, uri in chosen.items():
            print(f"  {folder} (for {uri})")
        if not confirmed_on_terminal("mlexp sync", "discard them?", "nothing discarded"):
            return 1
    discarded, busy = discard(root, list(chosen))
    for folder in discarded:
        print(f"{folder.name}: discarded")
    for folder in busy:
        print(f"{folder.name}: kept: its trial still runs, or a writer is storing it now", file=sys.stderr)
    print(f"{len(discarded)} trial journal(s) discarded")
    return 1 if busy else 0


def _matches(target: str, folder: Path, uri: str) -> bool:
    """Whether `target` (a journal folder, or a store as `mlexp sync` names it) picks this journal."""
    from mlexp.tracking.store import absolute_uri

    given = Path(target).expanduser()
    if given.is_dir() and given.resolve() == folder.resolve():
        return True
    return bool(uri) and uri in (target, absolute_uri(target))


def _retry_sagemaker_mirrors() -> dict[str, str | None]:
    """Mirror again the trials whose SageMaker Experiments mirror failed (tagged mlexp.sagemaker_mirror=failed)."""
    from mlexp.tracking.sagemaker_mirror_retry import MirrorsNotRetried, retry_failed_mirrors

    try:
        mirrored = retry_failed_mirrors(project_root())
    except MirrorsNotRetried as missing:
        print(f"mlexp sync: {missing}", file=sys.stderr)
        return {"": str(missing)}
    for run_id, failure in mirrored.items():
        outcome = "done" if failure is None else f"failed again ({failure}); run `mlexp sync` later"
        print(f"trial {run_id}: SageMaker Experiments mirror {outcome}")
    return mirrored


def run_keys(argv: list[str]) -> int:
    """API keys and usage plans of the local services (`deploy=local`)."""
    from mlexp.serving.http.keys_command import main

    return main(argv)


def run_review(argv: list[str]) -> int:
    """Reviewer accounts and review exports of the text_classification service."""
    from mlexp.tasks.text_classification.service.review_command import main

    return main(argv)


def run_predict(argv: list[str]) -> int:
    """Send a request to a deploy=sagemaker endpoint (InvokeEndpoint) and print its answer."""
    from mlexp.sagemaker.endpoint_commands import predict

    return predict(argv)


def run_undeploy(argv: list[str]) -> int:
    """Delete a deploy=sagemaker endpoint, its endpoint config and its model."""
    from mlexp.sagemaker.endpoint_commands import undeploy

    return undeploy(argv)


COMMANDS = {
    "compare": run_compare,
    "params": run_params,
    "pipelines": run_pipelines,
    "data": run_data,
    "summary": run_summary,
    "relocate": run_relocate,
    "delete": run_delete,
    "sync": run_sync,
    "keys": run_keys,
    "review": run_review,
    "predict": run_predict,
    "undeploy": run_undeploy,
}


# commands that parse their own flags with argparse, --help included
OWN_HELP = {"keys", "review", "predict", "undeploy"}


def run(command: str, argv: list[str]) -> int:
    if command not in OWN_HELP and any(arg in ("-h", "--help") for arg in argv):
        doc = (COMMANDS[command].__doc__ or "").strip().splitlines()
        print(f"usage: {USAGE[command]}" + (f"\n\n{doc[0]}" if doc else ""))
        return 0
    try:
        return COMMANDS[command](argv)
    except MlexpError as error:
        print(f"mlexp {command}: error: {error}", file=sys.stderr)
        return 2
    except ImportError as error:
        if not _database_driver(error):
            raise
        # SQLAlchemy loads a database's driver at the store's first request; to it postgresql:// means psycopg 3
        other = " (postgresql+psycopg2://... uses psycopg2, installed with mlexp)" if error.name == "psycopg" else ""
        print(
            f"mlexp {command}: error: the tracking store's database driver is not installed ({error}); install it, "
            f"or name one that is in tracking.uri{other}",
            file=sys.stderr,
        )
        return 1
    except Exception as error:
        # MLflow's error (a store that answered with one): its reason, not its traceback (checked without importing
        # MLflow, which commands that do not use it never load)
        mlflow_errors = sys.modules.get("mlflow.exceptions")
        if mlflow_errors is None or not isinstance(error, mlflow_errors.MlflowException):
            raise
        reason = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        print(f"mlexp {command}: error: MLflow: {reason}", file=sys.stderr)
        return 1


def _database_driver(error: ImportError) -> bool:
    """Whether SQLAlchemy raised `error` loading a database dialect's driver."""
    frame = error.__traceback__
    while frame is not None:
        if "sqlalchemy/dialects" in frame.tb_frame.f_code.co_filename.replace("\\", "/"):
            return True
        frame = frame.tb_next
    return False
