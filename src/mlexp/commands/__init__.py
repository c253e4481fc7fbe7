"""`mlexp compare`, `params`, `keys`, `review`, ...: commands that read config or a store, not run trials.

Each family of commands is a module of this package with its usage lines; this module finds a command by its name,
prints its --help, and reports its errors in one line."""

from __future__ import annotations

import sys
from collections.abc import Callable

from mlexp.commands import comparison, dvc_files, exports, services, store, sync
from mlexp.database_driver import missing_driver
from mlexp.errors import MlexpError

COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "compare": comparison.run_compare,
    "params": dvc_files.run_params,
    "pipelines": dvc_files.run_pipelines,
    "data": exports.run_data,
    "summary": exports.run_summary,
    "relocate": store.run_relocate,
    "delete": store.run_delete,
    "sync": sync.run_sync,
    "keys": services.run_keys,
    "review": services.run_review,
    "predict": services.run_predict,
    "undeploy": services.run_undeploy,
}
USAGE = {**comparison.USAGE, **dvc_files.USAGE, **exports.USAGE, **store.USAGE, **sync.USAGE, **services.USAGE}

# commands that parse their own flags with argparse, --help included
OWN_HELP = {"keys", "review", "predict", "undeploy"}


def run(command: str, argv: list[str]) -> int:
    """Run `mlexp <command> <argv>`; its exit status, an error told in one line (2: mlexp refused, 1: the store)."""
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
        # SQLAlchemy loads a database's driver at the store's first request
        missing = missing_driver(error)
        if missing is None:
            raise
        print(f"mlexp {command}: error: {missing}", file=sys.stderr)
        return 1
    except Exception as error:
        unstored = _unstored_schema(error, argv)
        if unstored is not None:
            print(f"mlexp {command}: error: {unstored}", file=sys.stderr)
            return 2
        # MLflow's error (a store that answered with one): its reason, not its traceback (checked without importing
        # MLflow, which commands that do not use it never load)
        mlflow_errors = sys.modules.get("mlflow.exceptions")
        if mlflow_errors is None or not isinstance(error, mlflow_errors.MlflowException):
            raise
        reason = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        print(f"mlexp {command}: error: MLflow: {reason}", file=sys.stderr)
        return 1


def _unstored_schema(error: Exception, argv: list[str]) -> str | None:
    """A task whose config module is not imported, met by compare's or delete's composition: the one line that names
    the import, not Hydra's block."""
    from hydra.errors import MissingConfigException

    if not isinstance(error, MissingConfigException):
        return None
    from mlexp.config.missing_schema import missing_schema, task_given
    from mlexp.paths import project_root

    unstored = missing_schema(error, project_root() / "conf", task_given(argv))
    return None if unstored is None else str(unstored)
