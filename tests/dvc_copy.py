"""A throw-away copy of the project as a fresh git + DVC repository, and the real `dvc` command in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from conftest import REPO, cli_env
from mlexp import tasks
from mlexp.config import params

VENV_BIN = str(Path(sys.executable).parent)


def dvc(
    workdir: Path, *args: str, check: bool = True, exported_root: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `dvc` in `workdir` (its stages find `mlexp` on PATH), with $MLEXP_ROOT=`exported_root` if given
    (as a user who exported it)."""
    env = {k: v for k, v in cli_env(workdir).items() if k != "MLEXP_ROOT"}
    if exported_root is not None:
        env["MLEXP_ROOT"] = str(exported_root)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    # files, not pipes: `dvc queue start` forks a process that keeps them open while it waits on the queue worker
    # (which exits 10-20 s after the queue empties), and a pipe is read until every holder closes it; a file is read
    # once `dvc` itself exits, as a shell returns. Work DVC left running is not waited for here
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        returncode = subprocess.run(
            [os.path.join(VENV_BIN, "dvc"), *args], cwd=workdir, env=env, stdout=stdout, stderr=stderr, timeout=900
        ).returncode
        stdout.seek(0)
        stderr.seek(0)
        done = subprocess.CompletedProcess(["dvc", *args], returncode, stdout.read(), stderr.read())
    if check:
        assert done.returncode == 0, f"dvc {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def git(workdir: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=workdir, check=True, capture_output=True
    )


def copy_project(target: Path, sizes: dict[str, dict[str, Any]] | None = None) -> Path:
    """The project's git files (no results, no locks) in a new git repository at `target`.

    params.yaml is compiled afresh from conf/ (its sync is another test's concern), with `sizes`
    (`{task: {"dataset.n_rows": 300}}`) set in it, as `dvc exp run -S` would.
    """
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True)
    for name in listed.stdout.splitlines():
        source = REPO / name
        if source.is_file() and Path(name).name != "dvc.lock" and not name.startswith(("data/", "models/", "reports/")):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    sections = params.compile_params(REPO / "conf", sorted(tasks.load_all()))
    for task, values in (sizes or {}).items():
        for key, value in values.items():
            *path, last = key.split(".")
            node = sections[task]
            for part in path:
                node = node[part]
            node[last] = value
    (target / "params.yaml").write_text(params.HEADER + yaml.safe_dump(sections, sort_keys=False))
    git(target, "init", "-q")
    git(target, "add", "-A")
    git(target, "commit", "-qm", "copy")
    return target


def stage_outputs(workdir: Path) -> list[Path]:
    """Every out, metric and plot the copy's dvc.yaml files declare."""
    found = []
    for dvc_file in [workdir / "dvc.yaml", *sorted((workdir / "pipelines").glob("*/dvc.yaml"))]:
        base = (dvc_file.parent / ".." / "..") if dvc_file.parent != workdir else workdir
        for stage in yaml.safe_load(dvc_file.read_text())["stages"].values():
            for kind in ("outs", "metrics", "plots"):
                for entry in stage.get(kind, []):
                    found.append((base / (entry if isinstance(entry, str) else next(iter(entry)))).resolve())
    return found


def fake_outputs(workdir: Path) -> None:
    """Stand-ins for every declared output (folders for folders), so DVC can plan and record without running."""
    for path in stage_outputs(workdir):
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"stand-in for {path.name}\n")
        else:
            path.mkdir(parents=True, exist_ok=True)
            (path / "stand-in.txt").write_text("stand-in\n")
