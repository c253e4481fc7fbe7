"""`mlexp data` and `mlexp summary`: a packaged dataset, or the tasks' DVC metrics, written to a file."""

from __future__ import annotations

import sys

from mlexp import tasks
from mlexp.errors import MlexpError
from mlexp.paths import command_line_path, project_root

USAGE = {
    "data": "mlexp data <dataset> <output file>",
    "summary": "mlexp summary [<output file>]",
}


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
