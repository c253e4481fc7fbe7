"""Where a plain `mlexp task=...` run wrote its data, models and reports: its own Hydra run folder."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def run_folder(done: subprocess.CompletedProcess[str]) -> Path:
    """The run folder named in a finished trial's `trial done: ... (reports: <folder>/reports)` line."""
    found = re.findall(r"\(reports: (.+?)/reports\)", done.stdout)
    assert found, f"no 'trial done' line in:\n{done.stdout}"
    return Path(found[-1])


def run_folders(project: Path, task: str) -> list[Path]:
    """Every plain run folder of `task` in the project, oldest first."""
    return sorted(p for p in (project / "outputs" / task).glob("*") if (p / ".hydra").is_dir())
