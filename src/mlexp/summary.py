"""`mlexp summary`: every task's headline metrics in one Markdown table (the last DVC stage)."""

from __future__ import annotations

import json
from pathlib import Path


def write_summary(reports: Path, task_names: list[str], out: Path) -> str:
    lines = ["| task | metric | value |", "| --- | --- | --- |"]
    for task in sorted(task_names):
        metrics_file = reports / task / "metrics.json"
        if not metrics_file.exists():
            lines.append(f"| {task} | (not run) | |")
            continue
        for name, value in json.loads(metrics_file.read_text()).items():
            lines.append(f"| {task} | {name} | {value:.6g} |")
    text = "# mlexp: headline metrics per task\n\n" + "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text
