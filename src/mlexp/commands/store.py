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
    from mlexp.cleanup import run_delete as delete  # MLflow loads only when the command runs

    return delete(argv)
