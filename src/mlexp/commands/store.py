"""`mlexp relocate` and `mlexp delete`: the project's tracking store moved with it, or an experiment taken out."""

from __future__ import annotations

from mlexp.errors import MlexpError
from mlexp.paths import project_root

USAGE = {
    "relocate": "mlexp relocate",
    "delete": "mlexp delete experiment=<name> | task=<task> [--force] [tracking.uri=<uri>]",
}


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
    from mlexp.cleanup import confirm_and_delete  # MLflow loads only when the command runs

    name, force, uri, task = _delete_arguments(argv)
    return confirm_and_delete(name, force=force, tracking_uri=uri, task=task)


def _delete_arguments(argv: list[str]) -> tuple[str, bool, str | None, str | None]:
    values: dict[str, str] = {}
    force = False
    for arg in argv:
        key, sep, value = arg.partition("=")
        if arg == "--force":
            force = True
        elif sep and key in ("experiment", "task", "tracking.uri") and value:
            values[key] = value
        else:
            raise MlexpError(f"unexpected argument {arg!r}; usage: {USAGE['delete']}")
    if "experiment" in values and "task" in values:
        raise MlexpError(f"name the experiment or the task whose experiment goes, not both; usage: {USAGE['delete']}")
    if "task" in values:  # as `compare task=`: the experiment the task's trials go to
        from mlexp.experiment_analytics.store import experiment_of_task

        values["experiment"] = experiment_of_task(values["task"])
    if "experiment" not in values:
        raise MlexpError(f"name the experiment to delete; usage: {USAGE['delete']}")
    return values["experiment"], force, values.get("tracking.uri"), values.get("task")
