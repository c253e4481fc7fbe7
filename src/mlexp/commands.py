"""`mlexp compare` and `mlexp params`: commands that read config or the store, not run trials."""

from __future__ import annotations

import sys

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from mlexp import tasks
from mlexp.config import params
from mlexp.errors import MlexpError
from mlexp.paths import project_root, resolve

USAGE = {
    "compare": "mlexp compare task=<task> [experiment=<name>] [sweep=<sweep run id>] [tracking.uri=<uri>]",
    "params": "mlexp params [--check]",
    "data": "mlexp data <dataset> <output file>",
    "summary": "mlexp summary [<output file>]",
}


def _key_values(argv: list[str], allowed: set[str], command: str) -> dict[str, str]:
    values = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in allowed:
            raise MlexpError(f"unexpected argument {arg!r}; usage: {USAGE[command]}")
        values[key] = value
    return values


def _task_config(task: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(project_root() / "conf"), version_base="1.3"):
        return compose("config", overrides=[f"task={task}"])


def run_compare(argv: list[str]) -> int:
    from mlexp import compare
    from mlexp.tracking import TrackingStore

    args = _key_values(argv, {"task", "experiment", "sweep", "tracking.uri"}, "compare")
    if "task" not in args and "experiment" not in args:
        raise MlexpError(f"name a task or an experiment; usage: {USAGE['compare']}")
    cfg = _task_config(args.get("task", "tabular_regression"))
    experiment = args.get("experiment") or cfg.tracking.experiment_name or cfg.task.name
    store = TrackingStore.resolve(args.get("tracking.uri") or cfg.tracking.uri, project_root())
    client = store.client()
    rows = compare.find_trials(client, experiment, args.get("sweep"))
    if not rows:
        raise MlexpError(f"no trials in experiment {experiment!r} of {store.uri}; run `mlexp task=...` first")
    metric = rows[0].run_tags.get("mlexp.objective", cfg.task.objective.metric)
    direction = rows[0].run_tags.get("mlexp.direction", "minimize")
    print(f"experiment {experiment}: {len(rows)} trials, best first by {metric} ({direction})\n")
    print(compare.format_table(rows, metric, direction, list(cfg.task.headline_metrics)))
    out_dir = project_root() / "reports" / cfg.task.name / "compare"
    written = compare.write_charts(client, rows, metric, out_dir)
    if written:
        print(f"\ncharts: {', '.join(str(p) for p in written)}")
    print(f"MLflow UI: mlflow ui --backend-store-uri {store.uri}  (experiment {experiment!r})")
    return 0


def run_params(argv: list[str]) -> int:
    check = "--check" in argv
    root = project_root()
    sections = params.compile_params(root / "conf", sorted(tasks.load_all()))
    target = root / "params.yaml"
    fresh = params.render(sections)
    if check:
        if not target.exists() or target.read_text() != fresh:
            print("params.yaml is out of date with conf/: run `mlexp params`", file=sys.stderr)
            return 1
        print("params.yaml is in sync with conf/")
        return 0
    target.write_text(fresh)
    print(f"wrote {target} ({len(sections)} tasks)")
    return 0


def run_data(argv: list[str]) -> int:
    from mlexp.data import EXPORTS

    if len(argv) != 2 or argv[0] not in EXPORTS:
        raise MlexpError(f"usage: {USAGE['data']} with a dataset among: {', '.join(sorted(EXPORTS))}")
    out = resolve(argv[1])
    rows = EXPORTS[argv[0]](out)
    print(f"wrote {out} ({rows} rows)")
    return 0


def run_summary(argv: list[str]) -> int:
    from mlexp.summary import write_summary

    if len(argv) > 1:
        raise MlexpError(f"usage: {USAGE['summary']}")
    root = project_root()
    out = resolve(argv[0]) if argv else root / "reports" / "summary.md"
    print(write_summary(root / "reports", sorted(tasks.load_all()), out), end="")
    return 0


COMMANDS = {"compare": run_compare, "params": run_params, "data": run_data, "summary": run_summary}


def run(command: str, argv: list[str]) -> int:
    try:
        return COMMANDS[command](argv)
    except MlexpError as error:
        print(f"mlexp {command}: error: {error}", file=sys.stderr)
        return 2
