"""`mlexp summary`: every task's headline metrics in one Markdown table (the last DVC stage)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path

from mlexp.dvc_stages import dvc_specs, pipeline_file
from mlexp.errors import DataError
from mlexp.paths import check_output_file
from mlexp.tasks import Task

METRICS = "{reports}/metrics.json"


def write_summary(reports: Path, tasks: Mapping[str, Task], out: Path) -> str:
    check_output_file(out, "give the path of the file to write", name_in_folder="summary.md")
    lines = ["| task | metric | value |", "| --- | --- | --- |"]
    for task in sorted(tasks):
        metrics_file = reports / task / "metrics.json"
        if not metrics_file.exists():
            pipeline = reports.parent / "pipelines" / task / "dvc.yaml"
            how = f"dvc repro pipelines/{task}/dvc.yaml" if pipeline.is_file() else "mlexp pipelines, then dvc repro"
            lines.append(f"| {task} | (no {metrics_file.relative_to(reports.parent)}: {how}) | |")
            continue
        for name, value in _metrics(metrics_file, tasks[task]).items():
            lines.append(f"| {task} | {name} | {value:.6g} |")
    text = "# mlexp: headline metrics per task\n\n" + "\n".join(lines) + "\n"
    partial = out.with_name(out.name + ".partial")  # a DVC output: whole or not at all
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text)
        partial.replace(out)
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise DataError(f"cannot write {out} ({error.strerror or error}); give a file path you can write to") from error
    return text


def _metrics(path: Path, task: Task) -> dict[str, float]:
    """The task's metrics file as {name: value}; DataError naming the file and the stage that writes it."""
    try:
        metrics = json.loads(path.read_text())
    except OSError as error:
        problem = f"cannot be read ({error.strerror or error})"
    except ValueError as error:  # not JSON, or not text at all
        problem = f"is not valid JSON ({error})"
    else:
        numbers = isinstance(metrics, dict) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values()
        )
        if numbers:
            return dict(metrics)
        problem = "is not a JSON object of metric values"
    raise DataError(
        f"{path} {problem}; run the stage that writes it again: dvc repro --force --single-item {_writer(task)}"
    )


def _writer(task: Task) -> str:
    """The DVC stage that writes the task's metrics.json, as `dvc repro` names it (else the task's pipeline)."""
    stages = [spec.name for spec in dvc_specs(task) if METRICS in spec.metrics]
    return f"{pipeline_file(task.name)}:{stages[0]}" if stages else pipeline_file(task.name)
